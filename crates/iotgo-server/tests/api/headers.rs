//! Security headers (docs/security.md, "Web hardening"): the exact headers on the web app,
//! the Web API's JSON, static files and the API docs page.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// The web app's policy with the default configuration.
const APP_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https://tile.openstreetmap.org; connect-src 'self'; \
     frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn head_of(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, String) {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// The headers every answer carries, `policy` its CSP.
fn assert_hardened(headers: &HeaderMap, policy: &str, what: &str) {
    assert_eq!(
        header(headers, "content-security-policy"),
        Some(policy),
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("strict-origin-when-cross-origin"),
        "{what}"
    );
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        headers.get_all("content-security-policy").iter().count(),
        1,
        "{what}"
    );
}

#[tokio::test]
async fn the_web_app_and_the_web_api_answer_with_the_security_headers() {
    let app = spawn_app().await;
    for (path, status) in [
        ("/", StatusCode::OK),
        ("/admin/users", StatusCode::OK),
        ("/favicon.svg", StatusCode::OK),
        ("/devices/1", StatusCode::SEE_OTHER),
        ("/api/config", StatusCode::OK),
        ("/healthz", StatusCode::OK),
        ("/api/no-such-thing", StatusCode::NOT_FOUND),
        ("/api/user/device", StatusCode::UNAUTHORIZED),
    ] {
        let (got, headers, _) = head_of(&app, path).await;
        assert_eq!(got, status, "{path}");
        assert_hardened(&headers, APP_POLICY, path);
        assert_eq!(
            header(&headers, "strict-transport-security"),
            None,
            "{path}"
        );
    }
    // A JSON answer keeps its own headers too.
    let (_, headers, body) = head_of(&app, "/api/no-such-thing").await;
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert!(body.starts_with("{\"error\":"), "{body}");
}

#[tokio::test]
async fn the_device_api_answers_without_the_web_headers() {
    // Devices read these answers, some into a 512-byte buffer (the Arduino library), and
    // no browser renders them.
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/http", app.base))
        .json(&serde_json::json!({"action": "date"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for name in [
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
        "x-content-type-options",
    ] {
        assert_eq!(header(res.headers(), name), None, "{name}");
    }
    let (status, headers, _) = head_of(&app, "/api/ws").await;
    assert_ne!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&headers, "content-security-policy"), None);
}

#[tokio::test]
async fn the_web_app_loads_no_inline_script() {
    let app = spawn_app().await;
    let (_, _, html) = head_of(&app, "/").await;
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    for script in &scripts {
        let tag = &script[..script.find('>').unwrap()];
        assert!(tag.contains("src="), "an inline script: <script{script}");
        assert!(
            script[script.find('>').unwrap() + 1..].starts_with("</script>"),
            "<script{script}"
        );
    }
}

#[tokio::test]
async fn the_api_docs_page_has_its_own_policy_and_still_renders() {
    let app = spawn_app().await;
    let (status, headers, html) = head_of(&app, "/api/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert_hardened(&headers, DOCS_POLICY, "/api/docs/");
    assert!(html.contains("swagger-ui"), "{html}");
    // Swagger UI's own files, under the same policy.
    for path in ["/api/docs/swagger-initializer.js", "/api/openapi.json"] {
        let (status, headers, _) = head_of(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_hardened(&headers, DOCS_POLICY, path);
    }
    let (_, _, html) = head_of(&app, "/api/docs/").await;
    for script in html.split("<script").skip(1) {
        let tag = &script[..script.find('>').unwrap()];
        assert!(tag.contains("src="), "an inline script: <script{script}");
    }
}

#[tokio::test]
async fn hsts_only_when_configured() {
    let app = spawn_app_with(|c| {
        c.hsts = true;
        c.hsts_max_age = Duration::from_secs(86_400);
    })
    .await;
    for path in ["/", "/api/config", "/api/docs/"] {
        let (_, headers, _) = head_of(&app, path).await;
        assert_eq!(
            header(&headers, "strict-transport-security"),
            Some("max-age=86400"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_policy_names_the_map_tiles_and_the_captcha_when_configured() {
    let app = spawn_app_with(|c| {
        c.map_tile_url = "https://{s}.tiles.example.com/{z}/{x}/{y}.png".into();
        c.recaptcha_site_key = Some("site-key".into());
    })
    .await;
    let (_, headers, _) = head_of(&app, "/").await;
    let want = "default-src 'self'; \
         script-src 'self' https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/; \
         style-src 'self'; img-src 'self' data: https://*.tiles.example.com; \
         connect-src 'self'; \
         frame-src https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
    assert_hardened(&headers, want, "/");
}
