//! `/metrics` moves as devices and apps use the Device API over HTTP and WebSocket.

use crate::helpers::{Scrape, TestApp, spawn_app};
use crate::support::*;
use serde_json::json;

fn requests(s: &Scrape, action: &str, code: &str) -> f64 {
    s.value(
        "iotgo_device_requests_total",
        &[("action", action), ("code", code)],
    )
}

fn connected(s: &Scrape, what: &str, transport: &str) -> f64 {
    s.value(
        &format!("iotgo_connected_{what}"),
        &[("transport", transport)],
    )
}

/// Scrapes until `check` holds (presence is written just after the answer that causes it).
async fn scrape_until(app: &TestApp, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = app.scrape().await;
        if check(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never true:\n{}",
            s.0
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn device_api_traffic_moves_the_counters_and_gauges() {
    let app = spawn_app().await;
    let me = owner(&app, "m@example.com").await;
    let (polling, socket) = (device(&app, &me, "01").await, device(&app, &me, "01").await);
    let k = me.apikey.clone();
    let http_route = [
        ("method", "POST"),
        ("route", "/api/http"),
        ("status", "200"),
    ];
    let before = app.scrape().await;
    assert_eq!(connected(&before, "devices", "ws"), 0.0);
    assert_eq!(connected(&before, "devices", "http"), 0.0);
    assert_eq!(connected(&before, "apps", "ws"), 0.0);

    // An app subscribes to all of the user's devices over WebSocket.
    let mut web = Ws::connect(&app).await;
    let a = web.call(json!({"action": "subscribe", "apikey": k})).await;
    assert_eq!(a["error"], 0, "{a}");

    // A device polls over HTTP: two updates, a query, one refused, one unreadable.
    let update = |id: &str, key: &str, v: &str| json!({"action": "update", "deviceid": id, "apikey": key, "params": {"switch": v}});
    assert_eq!(http(&app, update(&polling, &k, "on")).await["error"], 0);
    assert_eq!(http(&app, update(&polling, &k, "off")).await["error"], 0);
    let q = json!({"action": "query", "deviceid": polling, "apikey": k, "params": []});
    assert_eq!(http(&app, q).await["error"], 0);
    let stranger = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        http(&app, update(&polling, stranger, "on")).await["error"],
        403
    );
    let (status, _) = http_raw(&app, &json!({"action": "update"})).await;
    assert_eq!(status, 200);

    // Another device over WebSocket: three updates.
    let mut dev = Ws::connect(&app).await;
    for v in ["on", "off", "on"] {
        assert_eq!(dev.call(update(&socket, &k, v)).await["error"], 0);
    }

    // The app got every push: 2 + 3 updates and the two devices' `online` sysmsgs.
    let mut pushes = 0;
    while web
        .next(std::time::Duration::from_millis(300))
        .await
        .is_some()
    {
        pushes += 1;
    }
    assert_eq!(pushes, 7);

    let s = scrape_until(&app, |s| connected(s, "devices", "ws") == 1.0).await;
    let moved =
        |name: &str, labels: &[(&str, &str)]| s.value(name, labels) - before.value(name, labels);
    let requests_moved =
        |action, code| requests(&s, action, code) - requests(&before, action, code);
    assert_eq!(requests_moved("update", "0"), 5.0);
    assert_eq!(requests_moved("update", "403"), 1.0);
    assert_eq!(requests_moved("query", "0"), 1.0);
    assert_eq!(requests_moved("invalid", "400"), 1.0);
    assert_eq!(requests_moved("subscribe", "0"), 1.0);
    assert_eq!(requests_moved("date", "0"), 0.0);
    assert_eq!(moved("iotgo_updates_committed_total", &[]), 5.0);
    assert_eq!(moved("iotgo_pushes_queued_total", &[]), 7.0);
    assert_eq!(moved("iotgo_pushes_dropped_total", &[]), 0.0);
    assert_eq!(moved("iotgo_http_requests_total", &http_route), 5.0);
    assert_eq!(connected(&s, "devices", "http"), 1.0);
    assert_eq!(connected(&s, "apps", "ws"), 1.0);
    // Every commit is in the histograms: at least one batch per acked update round trip.
    let commits = moved("iotgo_commit_duration_seconds_count", &[]);
    assert!(commits >= 1.0, "{}", s.0);
    assert_eq!(moved("iotgo_commit_batch_size_count", &[]), commits);
    assert!(moved("iotgo_commit_batch_size_sum", &[]) >= 5.0);
    assert!(
        s.value("process_resident_memory_bytes", &[]) > 1e6,
        "{}",
        s.0
    );
    assert!(s.value("process_open_fds", &[]) >= 3.0, "{}", s.0);

    // Sockets closing bring the gauges down again.
    drop(dev);
    drop(web);
    let s = scrape_until(&app, |s| {
        connected(s, "devices", "ws") == 0.0 && connected(s, "apps", "ws") == 0.0
    })
    .await;
    assert_eq!(connected(&s, "devices", "http"), 1.0);
}

#[tokio::test]
async fn history_points_are_counted() {
    let app = spawn_app().await;
    let me = owner(&app, "h@example.com").await;
    // Type 03 keeps two series (temperature, humidity): two points per update.
    let id = device(&app, &me, "03").await;
    let before = app.scrape().await;
    let u = json!({"action": "update", "deviceid": id, "apikey": me.apikey,
        "params": {"temperature": 21.5, "humidity": 40}});
    assert_eq!(http(&app, u).await["error"], 0);
    let s = app.scrape().await;
    let points = s.value("iotgo_history_points_total", &[])
        - before.value("iotgo_history_points_total", &[]);
    assert_eq!(points, 2.0);
    assert_eq!(s.value("iotgo_history_folds_total", &[]), 0.0);
}
