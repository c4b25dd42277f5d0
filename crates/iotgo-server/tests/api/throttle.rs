//! Throttles of logins and sign-ups (docs/security.md, "Throttling"): 429 with
//! `Retry-After` and a JSON `error`, per client address and per account. The client
//! address of each request is set with `X-Forwarded-For` from a trusted proxy (the test
//! client at 127.0.0.1).

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, spawn_app, spawn_app_with};
use iotgo_server::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server with its throttles on, behind a trusted proxy at 127.0.0.1.
async fn throttled_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        c.rate_limits = true;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        tweak(c);
    })
    .await
}

/// `POST path` from client address `from`: status, `Retry-After` in seconds, JSON body.
async fn post_from(
    app: &TestApp,
    from: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Option<u64>, Value) {
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (status, retry, res.json().await.expect("JSON"))
}

async fn login_from(
    app: &TestApp,
    from: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    let body = json!({"email": email, "password": password});
    post_from(app, from, "/api/user/login", body).await
}

fn wrong_password() -> Value {
    json!({"error": "Email address or password is not correct!"})
}

fn too_many(seconds: u64) -> Value {
    json!({"error": format!("Too many attempts, please try again in {seconds} seconds.")})
}

#[tokio::test]
async fn a_user_who_mistypes_twice_is_not_locked_out() {
    let app = throttled_app(|_| {}).await;
    app.register("mia@example.com").await;

    for _ in 0..2 {
        let (status, retry, body) =
            login_from(&app, "198.51.100.1", "mia@example.com", "typo typo").await;
        assert_eq!(
            (status, retry, body),
            (StatusCode::OK, None, wrong_password())
        );
    }
    let (status, _, body) = login_from(&app, "198.51.100.1", "mia@example.com", PASSWORD).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["email"], "mia@example.com", "{body}");
}

#[tokio::test]
async fn the_sixth_wrong_login_for_an_account_is_429_from_any_address_and_backs_off() {
    let app = throttled_app(|_| {}).await;
    app.register("bo@example.com").await;

    // Five wrong passwords, each from another address: the per-account limit.
    for i in 1..=5 {
        let (status, _, body) = login_from(
            &app,
            &format!("198.51.100.{i}"),
            "bo@example.com",
            "guess guess",
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, wrong_password()));
    }
    let (status, retry, body) =
        login_from(&app, "198.51.100.6", "bo@example.com", "guess again").await;
    assert_eq!(
        (status, retry, body),
        (StatusCode::TOO_MANY_REQUESTS, Some(2), too_many(2))
    );
    // Even the right password waits (it is not even checked).
    let (status, _, _) = login_from(&app, "198.51.100.7", "bo@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Once the back-off passed, one more guess is checked, and the next back-off doubles.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, _, body) = login_from(&app, "198.51.100.8", "bo@example.com", "guess guess").await;
    assert_eq!((status, body), (StatusCode::OK, wrong_password()));
    let (status, retry, _) = login_from(&app, "198.51.100.9", "bo@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // 4 s less the time the last request took.
    assert!(matches!(retry, Some(3..=4)), "{retry:?}");
    assert_eq!(
        app.scrape()
            .await
            .value("iotgo_throttled_total", &[("what", "login")]),
        3.0
    );
}

#[tokio::test]
async fn a_success_forgets_the_accounts_failures() {
    let app = throttled_app(|_| {}).await;
    app.register("cy@example.com").await;

    for round in 0..3 {
        for _ in 0..4 {
            let (status, _, body) =
                login_from(&app, "198.51.100.1", "cy@example.com", "nope nope").await;
            assert_eq!(
                (status, body),
                (StatusCode::OK, wrong_password()),
                "round {round}"
            );
        }
        let (status, _, body) = login_from(&app, "198.51.100.1", "cy@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["jwt"].is_string(), "round {round}: {body}");
    }
}

#[tokio::test]
async fn a_flood_from_one_address_over_many_accounts_is_429_users_and_admins_together() {
    let app = throttled_app(|c| c.login_failures_free_per_ip = 8).await;

    for i in 0..8 {
        let email = format!("nobody{i}@example.com");
        let (status, _, body) = login_from(&app, "203.0.113.9", &email, "guess guess").await;
        assert_eq!((status, body), (StatusCode::OK, wrong_password()));
    }
    let (status, retry, body) =
        login_from(&app, "203.0.113.9", "nobody9@example.com", "guess").await;
    assert_eq!(
        (status, retry, body),
        (StatusCode::TOO_MANY_REQUESTS, Some(2), too_many(2))
    );
    let admin = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let (status, _, _) = post_from(&app, "203.0.113.9", "/api/admin/login", admin.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Another address is not concerned.
    let (status, _, body) = login_from(&app, "203.0.113.10", "nobody9@example.com", "guess").await;
    assert_eq!((status, body), (StatusCode::OK, wrong_password()));
    let (status, _, body) = post_from(&app, "203.0.113.10", "/api/admin/login", admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["isAdmin"], true);
    let scrape = app.scrape().await;
    assert_eq!(
        scrape.value("iotgo_throttled_total", &[("what", "login")]),
        1.0
    );
    assert_eq!(
        scrape.value("iotgo_throttled_total", &[("what", "admin_login")]),
        1.0
    );
}

#[tokio::test]
async fn the_sixth_wrong_admin_login_is_429() {
    let app = throttled_app(|_| {}).await;
    let login = |from: String, password: &str| {
        let body = json!({"email": ADMIN_EMAIL, "password": password});
        let app = &app;
        async move { post_from(app, &from, "/api/admin/login", body).await }
    };

    for i in 1..=5 {
        let (status, _, body) = login(format!("198.51.100.{i}"), "not it").await;
        assert_eq!((status, body), (StatusCode::OK, wrong_password()));
    }
    let (status, retry, body) = login("198.51.100.6".into(), ADMIN_PASSWORD).await;

    assert_eq!(
        (status, retry, body),
        (StatusCode::TOO_MANY_REQUESTS, Some(2), too_many(2))
    );
    // A user of the same e-mail address is another account.
    let (status, _, body) = login_from(&app, "198.51.100.6", ADMIN_EMAIL, "not it").await;
    assert_eq!((status, body), (StatusCode::OK, wrong_password()));
}

#[tokio::test]
async fn registrations_per_address_are_limited() {
    let app = throttled_app(|c| {
        c.registrations_per_hour = 10;
        c.registrations_burst = 2;
    })
    .await;
    let register = |from: &'static str, email: &'static str| {
        let app = &app;
        async move {
            let body = json!({"email": email, "password": PASSWORD});
            post_from(app, from, "/api/user/register", body).await
        }
    };

    for email in ["a@example.com", "b@example.com"] {
        let (status, _, body) = register("198.51.100.1", email).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["user"]["email"], email);
    }
    let (status, retry, body) = register("198.51.100.1", "c@example.com").await;
    // One sign-up every 6 minutes, sustained.
    assert_eq!(
        (status, retry, body),
        (StatusCode::TOO_MANY_REQUESTS, Some(360), too_many(360))
    );
    // A sign-up refused for its input costs nothing.
    let short = json!({"email": "d@example.com", "password": "short"});
    let (status, _, body) = post_from(&app, "198.51.100.1", "/api/user/register", short).await;
    let refused = json!({"error": "Password must be at least 8 characters!"});
    assert_eq!((status, body), (StatusCode::OK, refused));
    let (status, _, body) = register("198.51.100.2", "c@example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["email"], "c@example.com");
    let scrape = app.scrape().await;
    assert_eq!(
        scrape.value("iotgo_throttled_total", &[("what", "register")]),
        1.0
    );
}

#[tokio::test]
async fn with_rate_limits_off_nothing_is_throttled() {
    let app = spawn_app().await;
    app.register("di@example.com").await;

    for _ in 0..8 {
        let (status, body) = app
            .post(
                "/api/user/login",
                &json!({"email": "di@example.com", "password": "wrong one"}),
                None,
            )
            .await;
        assert_eq!((status, body), (StatusCode::OK, wrong_password()));
    }
    let (status, body) = app
        .post(
            "/api/user/login",
            &json!({"email": "di@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["jwt"].is_string(), "{body}");
}

#[tokio::test]
async fn the_throttled_routes_document_their_429() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/api/openapi.json", None).await;

    for path in [
        "/api/user/login",
        "/api/user/register",
        "/api/admin/login",
        "/api/user/password/forgot",
    ] {
        let answer = &doc["paths"][path]["post"]["responses"]["429"];
        assert!(
            answer["headers"]["Retry-After"].is_object(),
            "{path}: {answer}"
        );
        assert!(
            answer["content"]["application/json"].is_object(),
            "{path}: {answer}"
        );
    }
}

#[tokio::test]
async fn concurrent_guesses_pass_one_at_a_time_and_throttled_ones_cost_no_hash() {
    // One hash at a time, and no wait for a turn: a login that has to hash beside another
    // is answered 503.
    let app = throttled_app(|c| {
        c.password_hash_concurrency = 1;
        c.password_hash_queue_timeout = std::time::Duration::from_millis(1);
    })
    .await;
    app.register("eve@example.com").await;
    // Four guesses, counted whether they were checked or found hashing busy (a guess
    // counts from its start).
    let checked_or_busy = |status: StatusCode, body: &Value| {
        let busy = json!({"error": "The server is busy, please try again in a moment."});
        (status, body) == (StatusCode::OK, &wrong_password())
            || (status, body) == (StatusCode::SERVICE_UNAVAILABLE, &busy)
    };
    for i in 1..=4 {
        let from = format!("198.51.100.{i}");
        let (status, _, body) = login_from(&app, &from, "eve@example.com", "guess guess").await;
        assert!(checked_or_busy(status, &body), "{status} {body}");
    }

    // The last free guess, sixteen times at once from sixteen addresses.
    let guesses = (0..16).map(|i| {
        let app = &app;
        async move {
            let from = format!("203.0.113.{i}");
            login_from(app, &from, "eve@example.com", "guess guess").await
        }
    });
    let answers = futures_util::future::join_all(guesses).await;

    // One went on to the hasher; fifteen were refused before it (had they hashed beside
    // it, they would have been 503s).
    let passed = answers.iter().filter(|(s, _, b)| checked_or_busy(*s, b));
    let throttled = answers.iter().filter(|(s, r, b)| {
        *s == StatusCode::TOO_MANY_REQUESTS && *r == Some(2) && *b == too_many(2)
    });
    assert_eq!((passed.count(), throttled.count()), (1, 15), "{answers:?}");
}
