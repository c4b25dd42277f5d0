//! Accounts: register, login, password change, tokens, captcha.

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};
use axum::Json;
use axum::routing::post;
use iotgo_server::config::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn jwt_payload(jwt: &str) -> Value {
    use base64::Engine;
    let middle = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(middle)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn register_answers_a_token_and_the_user() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/user/register",
            &json!({"email": " Holly@ITEAD.cc", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let user = body["user"].as_object().unwrap();
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["apikey", "createdAt", "email"]);
    assert_eq!(user["email"], "holly@itead.cc");
    let apikey = user["apikey"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(apikey).unwrap().get_version_num(), 4);
    assert!(user["createdAt"].as_str().unwrap().ends_with('Z'));
    let claims = jwt_payload(body["jwt"].as_str().unwrap());
    assert_eq!(claims["isActivated"], true);
    assert_eq!(claims["apikey"], apikey);
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
}

#[tokio::test]
async fn register_refuses_bad_accounts_with_clear_errors() {
    let app = spawn_app().await;
    app.register("taken@example.com").await;
    let cases = [
        (
            json!({"email": "Taken@example.com", "password": PASSWORD}),
            "Email address already exists, please choose another one.",
        ),
        (
            json!({"email": "", "password": PASSWORD}),
            "Email address and password must not be empty!",
        ),
        (
            json!({"email": "a@example.com", "password": ""}),
            "Email address and password must not be empty!",
        ),
        (
            json!({"password": PASSWORD}),
            "Email address and password must not be empty!",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "Email address is not valid!",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "Password must be at least 8 characters!",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = app.post("/api/user/register", &body, None).await;
        assert_eq!(
            (status, answer),
            (StatusCode::OK, json!({"error": message})),
            "{body}"
        );
    }
}

#[tokio::test]
async fn unreadable_bodies_get_4xx_never_500() {
    let app = spawn_app().await;
    let url = format!("{}/api/user/register", app.base);
    let send = |body: String, ctype: &'static str| {
        app.client
            .post(&url)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let malformed = send("{\"email\":".into(), "application/json")
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let wrong_type = send(r#"{"email":5,"password":"x"}"#.into(), "application/json")
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
    assert!(wrong_type.text().await.unwrap().contains("\"error\""));
    let huge = format!(r#"{{"email":"{}","password":"x"}}"#, "a".repeat(70 * 1024));
    let too_large = send(huge, "application/json").await.unwrap();
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = send("{}".into(), "text/plain").await.unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let with_charset = send("{}".into(), "application/json; charset=utf-8")
        .await
        .unwrap();
    assert_eq!(with_charset.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_checks_the_password() {
    let app = spawn_app().await;
    let (_, user) = app.register("user@example.com").await;
    let (status, body) = app
        .post(
            "/api/user/login",
            &json!({"email": "USER@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], user);
    let wrong = json!({"error": "Email address or password is not correct!"});
    for creds in [
        json!({"email": "user@example.com", "password": "wrong password"}),
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    ] {
        assert_eq!(
            app.post("/api/user/login", &creds, None).await,
            (StatusCode::OK, wrong.clone())
        );
    }
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/user/device", None).await;
    assert_eq!(
        (status, body["error"].is_string()),
        (StatusCode::UNAUTHORIZED, true)
    );
    assert_eq!(
        app.get("/api/user/device", Some("garbage")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (jwt, _) = app.register("user@example.com").await;
    let mut forged = jwt.clone();
    forged.pop();
    forged.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        app.get("/api/user/device", Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await,
        (StatusCode::OK, json!([]))
    );
}

#[tokio::test]
async fn tokens_expire() {
    let app = spawn_app_with(|c| c.jwt_ttl = Duration::from_secs(1)).await;
    let (jwt, _) = app.register("user@example.com").await;
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn password_change_retires_old_tokens() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("user@example.com").await;
    let change = |old: &str, new: &str| json!({"oldPassword": old, "newPassword": new});
    let (_, body) = app
        .post(
            "/api/user/password",
            &change("wrong pw!", "new password"),
            Some(&jwt),
        )
        .await;
    assert_eq!(body, json!({"error": "Old password is not correct!"}));
    let (_, body) = app
        .post("/api/user/password", &change(PASSWORD, ""), Some(&jwt))
        .await;
    assert_eq!(
        body,
        json!({"error": "Old password and new password must not be empty!"})
    );
    let (_, body) = app
        .post("/api/user/password", &change(PASSWORD, "short"), Some(&jwt))
        .await;
    assert_eq!(
        body,
        json!({"error": "Password must be at least 8 characters!"})
    );

    let ok = app
        .post(
            "/api/user/password",
            &change(PASSWORD, "new password"),
            Some(&jwt),
        )
        .await;
    assert_eq!(ok, (StatusCode::OK, json!({})));
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let old = app
        .post(
            "/api/user/login",
            &json!({"email": "user@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(old.1["error"], "Email address or password is not correct!");
    let (_, body) = app
        .post(
            "/api/user/login",
            &json!({"email": "user@example.com", "password": "new password"}),
            None,
        )
        .await;
    let fresh = body["jwt"].as_str().unwrap();
    assert_eq!(
        app.get("/api/user/device", Some(fresh)).await.0,
        StatusCode::OK
    );
}

/// A siteverify endpoint on port 0 that accepts the token "good" and refuses the rest.
async fn captcha_verifier() -> String {
    async fn verify(body: String) -> Json<Value> {
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        let ok = form.contains(&("secret".into(), "s3cret".into()))
            && form.contains(&("response".into(), "good".into()));
        Json(json!({"success": ok}))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/siteverify", post(verify));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

#[tokio::test]
async fn captcha_is_verified_server_side_and_fails_closed() {
    let url = captcha_verifier().await;
    let app = spawn_app_with(|c| {
        c.recaptcha_secret = Some(Secret::new("s3cret"));
        c.recaptcha_url = url;
    })
    .await;
    let reg = |email: &str, response: Option<&str>| {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(r) = response {
            body["response"] = json!(r);
        }
        body
    };
    let (_, body) = app
        .post("/api/user/register", &reg("a@example.com", None), None)
        .await;
    assert_eq!(
        body,
        json!({"error": "reCAPTCHA verification is required!"})
    );
    let (_, body) = app
        .post(
            "/api/user/register",
            &reg("a@example.com", Some("bad")),
            None,
        )
        .await;
    assert_eq!(body, json!({"error": "reCAPTCHA verification failed!"}));
    let (_, body) = app
        .post(
            "/api/user/register",
            &reg("a@example.com", Some("good")),
            None,
        )
        .await;
    assert!(body["jwt"].is_string(), "{body}");
    let (_, config) = app.get("/api/config", None).await;
    assert_eq!(config["captchaRequired"], true);

    let down = spawn_app_with(|c| {
        c.recaptcha_secret = Some(Secret::new("s3cret"));
        c.recaptcha_url = "http://127.0.0.1:9/siteverify".into();
    })
    .await;
    let (_, body) = down
        .post(
            "/api/user/register",
            &reg("b@example.com", Some("good")),
            None,
        )
        .await;
    assert_eq!(
        body,
        json!({"error": "reCAPTCHA verification failed! Please try again later."})
    );
    let (_, body) = down
        .post(
            "/api/user/login",
            &json!({"email": "b@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        body["error"], "Email address or password is not correct!",
        "no account was made"
    );
}

#[tokio::test]
async fn without_a_captcha_secret_no_captcha_is_asked() {
    let app = spawn_app().await;
    let (_, config) = app.get("/api/config", None).await;
    assert_eq!(config["captchaRequired"], false);
    assert_eq!(config["recaptchaSiteKey"], Value::Null);
    assert_eq!(
        config["mapTileUrl"],
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    );
    // MQTT is off unless mqtt_listen is set.
    assert_eq!(config["mqttPort"], Value::Null);
}
