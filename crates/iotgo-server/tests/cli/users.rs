//! `iotgo user …`: accounts made and changed by the CLI, seen through the Web API.

use crate::helpers::{PASSWORD, TestApp, owner, spawn_app};
use crate::{Cli, closed_address};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn login(app: &TestApp, email: &str, password: &str) -> Value {
    let (status, body) = app
        .post(
            "/api/user/login",
            &json!({"email": email, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    body
}

#[tokio::test]
async fn a_user_made_by_the_cli_logs_in_and_set_password_retires_the_old_one() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);

    let out = cli
        .run(
            &["user", "create", "--email", " Op@Example.COM "],
            Some("first password\n"),
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("created user op@example.com (apikey "),
        "{}",
        out.stdout
    );

    let session = login(&app, "op@example.com", "first password").await;
    let jwt = session["jwt"].as_str().expect("jwt").to_owned();
    let apikey = session["user"]["apikey"].as_str().unwrap().to_owned();
    assert!(out.stdout.contains(&apikey));
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.0,
        StatusCode::OK
    );

    let out = cli
        .run(
            &["user", "set-password", "--email", "op@example.com"],
            Some("second password"),
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "password of op@example.com set; their earlier logins are signed out\n"
    );
    assert_eq!(
        login(&app, "op@example.com", "first password").await,
        json!({"error": "Email address or password is not correct!"})
    );
    assert!(login(&app, "op@example.com", "second password").await["jwt"].is_string());
    // The token version moved: the token issued before is refused.
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid or expired token"})
        )
    );
}

#[tokio::test]
async fn user_list_prints_a_table_and_json() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);
    let a = owner(&app, "a@example.com").await;
    owner(&app, "b@example.com").await;

    let out = cli.run(&["user", "list"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("EMAIL"));
    assert!(lines[2].starts_with(&format!("a@example.com  {}  20", a.apikey)));
    assert_eq!(out.stderr, "2 users\n");

    let out = cli.run(&["user", "list", "--json"], None).await;
    assert_eq!(out.code, 0);
    let users: Value = serde_json::from_str(&out.stdout).unwrap();
    // The admin API's user shape, newest first.
    let (_, admin_list) = app
        .get("/api/admin/users", Some(&app.admin_token().await))
        .await;
    assert_eq!(users, admin_list);
    assert_eq!(users[1]["email"], "a@example.com");
}

#[tokio::test]
async fn user_errors_exit_1_with_the_reason() {
    let app = spawn_app().await;
    let cli = Cli::of(&app);
    owner(&app, "taken@example.com").await;

    let cases: [(&[&str], Option<&str>, &str); 6] = [
        (
            &["user", "create", "--email", "not-an-email"],
            Some(PASSWORD),
            "error: Email address is not valid!\n",
        ),
        (
            &["user", "create", "--email", "x@example.com"],
            Some("short"),
            "error: Password must be at least 8 characters!\n",
        ),
        (
            &["user", "create", "--email", "x@example.com"],
            Some(""),
            "error: no password on standard input\n",
        ),
        (
            &["user", "create", "--email", "taken@example.com"],
            Some(PASSWORD),
            "error: a user with e-mail taken@example.com exists\n",
        ),
        (
            &["user", "set-password", "--email", "nobody@example.com"],
            Some(PASSWORD),
            "error: no user with e-mail nobody@example.com\n",
        ),
        (
            &["user", "delete", "--email", "nobody@example.com"],
            None,
            "error: no user with e-mail nobody@example.com\n",
        ),
    ];
    for (args, stdin, stderr) in cases {
        let out = cli.run(args, stdin).await;
        assert_eq!(
            (out.code, out.stderr.as_str(), out.stdout.as_str()),
            (1, stderr, ""),
            "{args:?}"
        );
    }
    // Usage errors are clap's: exit 2.
    assert_eq!(cli.run(&["user", "create"], None).await.code, 2);
    assert_eq!(cli.run(&["user", "rename"], None).await.code, 2);
    // Nothing was made by the failures.
    let out = cli.run(&["user", "list"], None).await;
    assert_eq!(out.stderr, "1 users\n");
}

#[tokio::test]
async fn user_delete_removes_the_devices_and_refuses_while_a_server_answers() {
    let app = spawn_app().await;
    let u = owner(&app, "gone@example.com").await;
    let device = crate::helpers::device(&app, &u, "01").await;
    let admin = app.admin_token().await;

    // The server answers at the configured listen address: refused, nothing deleted.
    let mut cli = Cli::of(&app);
    cli.listen = app.addr.to_string();
    let out = cli
        .run(&["user", "delete", "--email", "gone@example.com"], None)
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: a server answers at http://{}/healthz",
            app.addr
        )),
        "{}",
        out.stderr
    );
    let path = format!("/api/admin/users/{}", u.apikey);
    assert_eq!(
        app.get(&path, Some(&admin)).await.1["email"],
        "gone@example.com"
    );

    // None seen there: deleted, with the device (what the admin API's delete does).
    cli.listen = closed_address();
    let out = cli
        .run(&["user", "delete", "--email", "gone@example.com"], None)
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "deleted user gone@example.com and 1 devices\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        app.get(&path, Some(&admin)).await.1,
        json!({"error": "User does not exist!"})
    );
    assert_eq!(
        app.get(&format!("/api/admin/devices/{device}"), Some(&admin))
            .await
            .1,
        json!({"error": "Device does not exist!"})
    );
}
