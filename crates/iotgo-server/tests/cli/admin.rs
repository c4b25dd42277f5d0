//! `iotgo admin revoke-tokens`: every admin token dies, on the running server too.

use crate::Cli;
use crate::helpers::spawn_app;
use reqwest::StatusCode;

#[tokio::test]
async fn revoke_tokens_signs_every_admin_out_of_a_running_server() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    assert_eq!(
        app.get("/api/admin/users", Some(&token)).await.0,
        StatusCode::OK
    );

    let out = Cli::of(&app).run(&["admin", "revoke-tokens"], None).await;

    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "admin tokens revoked (admin token version 1)\n");
    let (status, _) = app.get("/api/admin/users", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let fresh = app.admin_token().await;
    assert_eq!(
        app.get("/api/admin/users", Some(&fresh)).await.0,
        StatusCode::OK
    );
}
