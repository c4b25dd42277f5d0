//! E-mail end to end, against the SMTP sink started by each test: verification at
//! sign-up, password reset, e-mail change, and the mail limits.

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::smtp_sink::SmtpSink;
use base64::Engine;
use iotgo_server::config::{Config, Secret};
use iotgo_server::mail::token_hash;
use iotgo_server::store::{Millis, TokenKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BAD_LINK: &str = "This link is not valid: it was used already, or it expired.";
const TAKEN: &str = "Email address already exists, please choose another one.";
const UNVERIFIED: &str = "Please verify your e-mail address first: open the link we mailed you.";

/// A server that mails through a new sink; `tweak` adjusts the configuration after.
async fn mail_app(tweak: impl FnOnce(&mut Config)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(Secret::new(url));
        c.smtp_from = Some("IoTgo <iotgo@example.com>".into());
        c.public_url = Some("https://iot.example.com/".into());
        tweak(c);
    })
    .await;
    (app, sink)
}

/// The payload of a JWT, as the original web app reads it (`atob` on the middle part).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

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

async fn forgot(app: &TestApp, email: &str) {
    let (status, body) = app
        .post("/api/user/password/forgot", &json!({"email": email}), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
}

#[tokio::test]
async fn sign_up_with_verification_mails_a_link_that_activates_the_account_once() {
    let (app, sink) = mail_app(|c| c.email_verification = true).await;

    let (jwt, user) = app.register("new@example.com").await;

    assert_eq!(claims(&jwt)["isActivated"], false);
    let (status, body) = app.get("/api/user/device", Some(&jwt)).await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"error": UNVERIFIED}))
    );
    let (status, _) = app
        .get(
            "/api/user/device/0100000001/history?fields=switch",
            Some(&jwt),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            "/api/user/device",
            &json!({"name": "Lamp", "type": "01"}),
            Some(&jwt),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to, ["new@example.com"]);
    assert!(
        mails[0]
            .data
            .contains("https://iot.example.com/verify-email?token="),
        "{}",
        mails[0].data
    );
    let token = mails[0].token("verify-email");
    assert_eq!(token.len(), 64);
    // Signing in works; the token still says not activated.
    let session = login(&app, "new@example.com", PASSWORD).await;
    assert_eq!(
        claims(session["jwt"].as_str().unwrap())["isActivated"],
        false
    );

    let (status, body) = app
        .post("/api/user/email/verify", &json!({"token": token}), None)
        .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], user);
    let fresh = body["jwt"].as_str().expect("a new session");
    assert_eq!(claims(fresh)["isActivated"], true);
    let (status, body) = app.get("/api/user/device", Some(fresh)).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let session = login(&app, "new@example.com", PASSWORD).await;
    assert_eq!(
        claims(session["jwt"].as_str().unwrap())["isActivated"],
        true
    );
    // The link works once.
    let (status, body) = app
        .post("/api/user/email/verify", &json!({"token": token}), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"error": BAD_LINK})));
}

#[tokio::test]
async fn a_resent_verification_link_replaces_the_first() {
    let (app, sink) = mail_app(|c| c.email_verification = true).await;
    let (jwt, _) = app.register("again@example.com").await;
    let first = sink.wait_for(1).await[0].token("verify-email");

    let (status, body) = app
        .post("/api/user/email/resend", &json!({}), Some(&jwt))
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let second = sink.wait_for(2).await[1].token("verify-email");
    assert_ne!(first, second);
    let (_, body) = app
        .post("/api/user/email/verify", &json!({"token": first}), None)
        .await;
    assert_eq!(body, json!({"error": BAD_LINK}));
    let (_, body) = app
        .post("/api/user/email/verify", &json!({"token": second}), None)
        .await;
    assert_eq!(claims(body["jwt"].as_str().unwrap())["isActivated"], true);
    let (_, body) = app
        .post("/api/user/email/resend", &json!({}), Some(&jwt))
        .await;
    assert_eq!(
        body,
        json!({"error": "Your e-mail address needs no verification."})
    );
}

#[tokio::test]
async fn sign_up_without_verification_is_activated_and_mails_nothing() {
    let (app, sink) = mail_app(|_| {}).await;
    let (_, config) = app.get("/api/config", None).await;
    assert_eq!(config["mailEnabled"], true);

    let (jwt, _) = app.register("plain@example.com").await;

    assert_eq!(claims(&jwt)["isActivated"], true);
    let (status, _) = app.get("/api/user/device", Some(&jwt)).await;
    assert_eq!(status, StatusCode::OK);
    // The queue is sent in order: once a later mail arrived, an earlier one would have.
    forgot(&app, "plain@example.com").await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].data.contains("/reset-password?token="));
}

#[tokio::test]
async fn a_reset_link_sets_the_password_once_and_retires_every_older_token() {
    let (app, sink) = mail_app(|_| {}).await;
    let (old_jwt, _) = app.register("forgetful@example.com").await;

    // An unknown address answers the same and is sent nothing.
    forgot(&app, "nobody@example.com").await;
    forgot(&app, "Forgetful@Example.com").await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["forgetful@example.com"]);
    let token = mails[0].token("reset-password");

    let (status, body) = app
        .post(
            "/api/user/password/reset",
            &json!({"token": token, "newPassword": "a new password"}),
            None,
        )
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _) = app.get("/api/user/device", Some(&old_jwt)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = login(&app, "forgetful@example.com", PASSWORD).await;
    assert_eq!(
        body,
        json!({"error": "Email address or password is not correct!"})
    );
    let body = login(&app, "forgetful@example.com", "a new password").await;
    assert!(body["jwt"].is_string(), "{body}");
    let (_, body) = app
        .post(
            "/api/user/password/reset",
            &json!({"token": token, "newPassword": "a third password"}),
            None,
        )
        .await;
    assert_eq!(body, json!({"error": BAD_LINK}));
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_reset_link_mailed_before_an_apikey_rotation_still_works() {
    let (app, sink) = mail_app(|_| {}).await;
    let (jwt, _) = app.register("rotating@example.com").await;
    forgot(&app, "rotating@example.com").await;
    let token = sink.wait_for(1).await[0].token("reset-password");

    // The mailed token follows the account to its new apikey (one transaction).
    let (status, rotated) = app.post("/api/user/apikey", &json!({}), Some(&jwt)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, body) = app
        .post(
            "/api/user/password/reset",
            &json!({"token": token, "newPassword": "a new password"}),
            None,
        )
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let body = login(&app, "rotating@example.com", "a new password").await;
    assert_eq!(body["user"]["apikey"], rotated["user"]["apikey"]);
}

#[tokio::test]
async fn reset_requests_from_one_address_are_limited() {
    let (app, sink) = mail_app(|c| c.rate_limits = true).await;

    // Five at once are taken (their mails then meet the per-address mail limit)…
    for n in 0..5 {
        forgot(&app, &format!("someone{n}@example.com")).await;
    }
    // …the sixth waits: 10 an hour, so one more in six minutes.
    let response = app
        .client
        .post(format!("{}/api/user/password/forgot", app.base))
        .json(&json!({"email": "someone5@example.com"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "360");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "Too many attempts, please try again in 360 seconds."})
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let app = spawn_app().await;
    let (_, user) = app.register("late@example.com").await;
    let token = "ab".repeat(32);
    app.state
        .store
        .email_tokens()
        .issue(
            TokenKind::Reset,
            user["apikey"].as_str().unwrap(),
            "late@example.com",
            &token_hash(&token),
            Millis(Millis::now().0 - 1),
        )
        .await
        .unwrap();

    let (status, body) = app
        .post(
            "/api/user/password/reset",
            &json!({"token": token, "newPassword": "a new password"}),
            None,
        )
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({"error": BAD_LINK})));
    let body = login(&app, "late@example.com", PASSWORD).await;
    assert!(body["jwt"].is_string(), "{body}");
}

#[tokio::test]
async fn an_email_change_takes_effect_when_the_new_address_confirms() {
    let (app, sink) = mail_app(|_| {}).await;
    let (jwt, user) = app.register("old@example.com").await;
    app.register("taken@example.com").await;
    let change = |email: &str, password: &str| json!({"email": email, "password": password});

    let (_, body) = app
        .post(
            "/api/user/email",
            &change("new@example.com", "wrong password"),
            Some(&jwt),
        )
        .await;
    assert_eq!(body, json!({"error": "Password is not correct!"}));
    let (_, body) = app
        .post(
            "/api/user/email",
            &change("taken@example.com", PASSWORD),
            Some(&jwt),
        )
        .await;
    assert_eq!(body, json!({"error": TAKEN}));
    let (status, body) = app
        .post(
            "/api/user/email",
            &change("New@Example.com", PASSWORD),
            Some(&jwt),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));

    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to, ["new@example.com"]);
    let token = mails[0].token("confirm-email");
    // Nothing changed yet.
    let body = login(&app, "new@example.com", PASSWORD).await;
    assert!(body["error"].is_string(), "{body}");

    let (status, body) = app
        .post("/api/user/email/confirm", &json!({"token": token}), None)
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let notice = &sink.wait_for(2).await[1];
    assert_eq!(notice.to, ["old@example.com"]);
    assert!(notice.data.contains("new@example.com"), "{}", notice.data);
    let body = login(&app, "new@example.com", PASSWORD).await;
    assert_eq!(body["user"]["apikey"], user["apikey"]);
    assert_eq!(body["user"]["email"], "new@example.com");
    let body = login(&app, "old@example.com", PASSWORD).await;
    assert!(body["error"].is_string(), "{body}");
    let (_, body) = app
        .post("/api/user/email/confirm", &json!({"token": token}), None)
        .await;
    assert_eq!(body, json!({"error": BAD_LINK}));
}

#[tokio::test]
async fn an_email_change_fails_if_the_address_was_taken_before_the_confirmation() {
    let (app, sink) = mail_app(|_| {}).await;
    let (jwt, _) = app.register("mover@example.com").await;
    let (status, _) = app
        .post(
            "/api/user/email",
            &json!({"email": "contested@example.com", "password": PASSWORD}),
            Some(&jwt),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = sink.wait_for(1).await[0].token("confirm-email");
    app.register("contested@example.com").await;

    let (status, body) = app
        .post("/api/user/email/confirm", &json!({"token": token}), None)
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({"error": TAKEN})));
    let body = login(&app, "mover@example.com", PASSWORD).await;
    assert!(body["jwt"].is_string(), "{body}");
    let (_, body) = app
        .post("/api/user/email/confirm", &json!({"token": token}), None)
        .await;
    assert_eq!(body, json!({"error": BAD_LINK}));
}

#[tokio::test]
async fn mails_to_one_account_are_limited_and_throttled_requests_answer_the_same() {
    let (app, sink) = mail_app(|c| c.rate_limits = true).await;
    app.register("target@example.com").await;
    app.register("other@example.com").await;

    for _ in 0..3 {
        forgot(&app, "target@example.com").await;
    }
    forgot(&app, "other@example.com").await;

    // The queue is sent in order: the last mail's arrival means the others were handled.
    let mails = sink.wait_for(2).await;
    let to: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(to, ["target@example.com", "other@example.com"]);
    let scrape = app.scrape().await;
    assert_eq!(
        scrape.get("iotgo_mails_total", &[("result", "throttled")]),
        Some(2.0)
    );
    assert_eq!(
        scrape.get("iotgo_mails_total", &[("result", "sent")]),
        Some(2.0)
    );
}

#[tokio::test]
async fn without_smtp_the_mail_routes_say_so() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("nomail@example.com").await;
    let no_mail = json!({"error": "This server does not send e-mail."});

    let (status, body) = app
        .post(
            "/api/user/password/forgot",
            &json!({"email": "nomail@example.com"}),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, no_mail.clone()));
    let (_, body) = app
        .post(
            "/api/user/email",
            &json!({"email": "other@example.com", "password": PASSWORD}),
            Some(&jwt),
        )
        .await;
    assert_eq!(body, no_mail);
    assert_eq!(claims(&jwt)["isActivated"], true);
    let (_, config) = app.get("/api/config", None).await;
    assert_eq!(config["mailEnabled"], false);
}

/// A change to a configuration.
type Tweak = fn(&mut Config);

#[tokio::test]
async fn mail_settings_that_cannot_work_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let base = Config {
        data_dir: dir.path().to_path_buf(),
        admin_email: Some("admin@example.com".into()),
        admin_password: Some(Secret::new("admin-password")),
        ..Config::default()
    };
    let cases: [(&str, Tweak); 4] = [
        ("email_verification = true needs smtp_url", |c| {
            c.email_verification = true
        }),
        ("smtp_url needs public_url", |c| {
            c.smtp_url = Some(Secret::new("smtp://u:hunter2@mail.example.com"));
            c.smtp_from = Some("iotgo@example.com".into());
        }),
        ("smtp_url needs smtp_from", |c| {
            c.smtp_url = Some(Secret::new("smtp://u:hunter2@mail.example.com"));
            c.public_url = Some("https://iot.example.com".into());
        }),
        ("a password with tls=none", |c| {
            c.smtp_url = Some(Secret::new("smtp://u:hunter2@mail.example.com?tls=none"));
            c.smtp_from = Some("iotgo@example.com".into());
            c.public_url = Some("https://iot.example.com".into());
        }),
    ];
    for (want, tweak) in cases {
        let mut config = base.clone();
        tweak(&mut config);

        let error = match iotgo_server::App::build(config).await {
            Ok(_) => panic!("started with: {want}"),
            Err(e) => format!("{e:#}"),
        };

        assert!(error.contains(want), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[tokio::test]
async fn a_resend_too_soon_after_the_sign_up_mail_answers_the_same_and_sends_nothing() {
    let (app, sink) = mail_app(|c| {
        c.email_verification = true;
        c.rate_limits = true;
    })
    .await;
    let (jwt, _) = app.register("eager@example.com").await;

    let (status, body) = app
        .post("/api/user/email/resend", &json!({}), Some(&jwt))
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({})));
    app.register("patient@example.com").await;
    let mails = sink.wait_for(2).await;
    let to: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(to, ["eager@example.com", "patient@example.com"]);
    // The first link still works: a throttled request issues no new token.
    let (_, body) = app
        .post(
            "/api/user/email/verify",
            &json!({"token": mails[0].token("verify-email")}),
            None,
        )
        .await;
    assert_eq!(claims(body["jwt"].as_str().unwrap())["isActivated"], true);
}

#[tokio::test]
async fn a_mail_the_smtp_server_does_not_take_is_counted_as_failed() {
    // A port with nobody listening: every send fails.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(Secret::new(format!(
            "smtp://u:hunter2@127.0.0.1:{port}?tls=none"
        )));
        c.smtp_from = Some("iotgo@example.com".into());
        c.public_url = Some("https://iot.example.com".into());
    })
    .await;
    app.register("unlucky@example.com").await;

    forgot(&app, "unlucky@example.com").await;

    let failed = async {
        loop {
            let scrape = app.scrape().await;
            if scrape.get("iotgo_mails_total", &[("result", "failed")]) == Some(1.0) {
                return scrape;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let scrape = tokio::time::timeout(std::time::Duration::from_secs(20), failed)
        .await
        .expect("the failed mail is counted");
    assert_eq!(
        scrape.get("iotgo_mails_total", &[("result", "sent")]),
        Some(0.0)
    );
}
