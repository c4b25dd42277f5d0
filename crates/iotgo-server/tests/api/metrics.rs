//! `GET /metrics`: who may read it, and the HTTP layer's counts by route template.

use crate::helpers::{spawn_app, spawn_app_with};
use iotgo_server::config::{MetricsMode, Secret};
use reqwest::StatusCode;

/// `GET /metrics` with an optional bearer token: status, `content-type` and text.
async fn scrape(app: &crate::helpers::TestApp, token: Option<&str>) -> (u16, String, String) {
    let mut req = app.client.get(format!("{}/metrics", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

#[tokio::test]
async fn by_default_a_generated_token_kept_0600_is_required() {
    let app = spawn_app().await;
    let path = app.data_dir().join("metrics_token");
    let token = std::fs::read_to_string(&path).unwrap();
    assert_eq!(token.trim().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (status, kind, text) = scrape(&app, Some(token.trim())).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        text.contains("# TYPE iotgo_device_requests_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE process_resident_memory_bytes gauge\n"),
        "{text}"
    );

    let (status, _, text) = scrape(&app, None).await;
    assert_eq!((status, text.contains("iotgo_")), (401, false));
    let (status, _, text) = scrape(&app, Some("not-the-token")).await;
    assert_eq!((status, text.contains("iotgo_")), (401, false));
    // A token of another kind (a user's login) is no metrics token either.
    let (jwt, _) = app.register("m@example.com").await;
    assert_eq!(scrape(&app, Some(&jwt)).await.0, 401);

    // The same file is used again after a restart.
    let app = app.restart().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
    assert_eq!(scrape(&app, Some(token.trim())).await.0, 200);
}

#[tokio::test]
async fn a_configured_token_replaces_the_file() {
    let app =
        spawn_app_with(|c| c.metrics_token = Some(Secret::new("a-configured-metrics-token"))).await;
    assert!(!app.data_dir().join("metrics_token").exists());
    assert_eq!(
        scrape(&app, Some("a-configured-metrics-token")).await.0,
        200
    );
    assert_eq!(scrape(&app, None).await.0, 401);
}

#[tokio::test]
async fn open_mode_needs_no_token_and_off_answers_404() {
    let open = spawn_app_with(|c| c.metrics = MetricsMode::Open).await;
    let (status, _, text) = scrape(&open, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("iotgo_connected_devices"), "{text}");
    assert!(!open.data_dir().join("metrics_token").exists());

    let off = spawn_app_with(|c| c.metrics = MetricsMode::Off).await;
    let (status, _, text) = scrape(&off, None).await;
    assert_eq!((status, text.as_str()), (404, "not found\n"));
    assert!(!off.data_dir().join("metrics_token").exists());
}

#[tokio::test]
async fn http_requests_count_by_route_template_and_status() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("r@example.com").await;
    let id = app.create_device(&jwt, "lamp", "01").await["deviceid"]
        .as_str()
        .unwrap()
        .to_owned();
    let route = "/api/user/device/{deviceid}";
    let count = |s: &crate::helpers::Scrape, status: &str| {
        s.value(
            "iotgo_http_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    let before = app.scrape().await;
    for _ in 0..3 {
        let (status, _) = app.get(&format!("/api/user/device/{id}"), Some(&jwt)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app.get(&format!("/api/user/device/{id}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let after = app.scrape().await;
    assert_eq!(count(&after, "200") - count(&before, "200"), 3.0);
    assert_eq!(count(&after, "401") - count(&before, "401"), 1.0);
    // The raw path never becomes a label.
    assert!(!after.0.contains(&id), "{}", after.0);
    let durations = after.value(
        "iotgo_http_request_duration_seconds_count",
        &[("method", "GET"), ("route", route)],
    );
    assert_eq!(durations, 4.0);
    // Scrapes count themselves too, under their route.
    assert!(
        after.value(
            "iotgo_http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "200")]
        ) >= 1.0
    );
    // Paths that match no route count as `other`, whatever the path.
    let res = app
        .client
        .get(format!("{}/no/such/{id}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let s = app.scrape().await;
    assert_eq!(
        s.value(
            "iotgo_http_requests_total",
            &[("method", "GET"), ("route", "other"), ("status", "303")]
        ),
        1.0
    );
    // A made-up method is counted as `other`, never as a series of its own.
    let made_up = reqwest::Method::from_bytes(b"BREW").unwrap();
    let res = app
        .client
        .request(made_up, format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let s = app.scrape().await;
    assert!(!s.0.contains("BREW"), "{}", s.0);
    assert_eq!(
        s.value(
            "iotgo_http_requests_total",
            &[
                ("method", "other"),
                ("route", "/healthz"),
                ("status", "405")
            ]
        ),
        1.0
    );
}
