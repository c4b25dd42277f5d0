//! Throttles of the Device API (docs/security.md, "Throttling"): an address that sent
//! wrong apikeys is answered 429 for a while, over HTTP and WebSocket, from memory; the
//! updates per device are bounded. Every client here is 127.0.0.1.

use crate::helpers::{TestApp, spawn_app_with};
use crate::support::*;
use iotgo_server::Config;
use serde_json::{Value, json};
use std::time::Duration;

/// An apikey of the right form that is nobody's.
const STRANGER: &str = "00000000-0000-4000-8000-000000000000";

async fn throttled_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        c.rate_limits = true;
        tweak(c);
    })
    .await
}

fn update(id: &str, key: &str, sequence: &str) -> Value {
    json!({"action": "update", "deviceid": id, "apikey": key, "params": {"n": 1},
        "sequence": sequence})
}

fn too_many(id: &str, key: &str, sequence: &str) -> Value {
    json!({"error": 429, "reason": "Too Many Requests", "deviceid": id, "apikey": key,
        "sequence": sequence})
}

#[tokio::test]
async fn wrong_apikeys_over_http_block_the_address_without_a_database_read() {
    let app = throttled_app(|c| c.device_key_failures_free = 3).await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;

    for i in 1..=3 {
        let a = http(&app, update(&id, STRANGER, &i.to_string())).await;
        assert_eq!(a["error"], 403, "{a}");
    }
    // Even the owner's key waits now, on either transport.
    let a = http(&app, update(&id, &me.apikey, "4")).await;
    assert_eq!(a, too_many(&id, &me.apikey, "4"));
    let mut ws = Ws::connect(&app).await;
    let a = ws.call(update(&id, &me.apikey, "5")).await;
    assert_eq!(a, too_many(&id, &me.apikey, "5"));
    let scrape = app.scrape().await;
    assert_eq!(
        scrape.value("iotgo_throttled_total", &[("what", "device_apikey")]),
        2.0
    );

    // With the database gone, an unknown device is still answered 429 (a read would
    // answer 500).
    app.state.store.close().await;
    let a = http(&app, update("1000000999", STRANGER, "6")).await;
    assert_eq!(a, too_many("1000000999", STRANGER, "6"));
}

#[tokio::test]
async fn wrong_apikeys_over_websocket_block_the_address_until_the_back_off_passes() {
    let app = throttled_app(|c| c.device_key_failures_free = 3).await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let mut ws = Ws::connect(&app).await;

    for _ in 0..3 {
        let a = ws
            .call(json!({"action": "subscribe", "apikey": STRANGER}))
            .await;
        assert_eq!(a["error"], 403, "{a}");
    }
    let a = ws
        .call(json!({"action": "subscribe", "apikey": me.apikey}))
        .await;
    assert_eq!(a["error"], 429, "{a}");
    let a = http(&app, update(&id, &me.apikey, "1")).await;
    assert_eq!(a, too_many(&id, &me.apikey, "1"));

    // The first back-off is 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = ws
        .call(json!({"action": "subscribe", "apikey": me.apikey}))
        .await;
    assert_eq!(a["error"], 0, "{a}");
    assert_eq!(http(&app, update(&id, &me.apikey, "2")).await["error"], 0);
}

#[tokio::test]
async fn updates_per_device_are_bounded_over_http_and_websocket() {
    let app = throttled_app(|c| {
        c.device_updates_per_second = 1;
        c.device_updates_burst = 3;
    })
    .await;
    let me = owner(&app, "a@example.com").await;
    let (id, other) = (device(&app, &me, "00").await, device(&app, &me, "00").await);
    let key = &me.apikey;

    for i in 1..=3 {
        let a = http(&app, update(&id, key, &i.to_string())).await;
        assert_eq!(a["error"], 0, "{a}");
    }
    let a = http(&app, update(&id, key, "4")).await;
    assert_eq!(a, too_many(&id, key, "4"));
    let mut ws = Ws::connect(&app).await;
    let a = ws.call(update(&id, key, "5")).await;
    assert_eq!(a, too_many(&id, key, "5"));
    // Another device has its own budget, and the device's own comes back at 1/s.
    assert_eq!(ws.call(update(&other, key, "6")).await["error"], 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(http(&app, update(&id, key, "7")).await["error"], 0);
    let scrape = app.scrape().await;
    assert_eq!(
        scrape.value("iotgo_throttled_total", &[("what", "device_updates")]),
        2.0
    );
    let refused = [("action", "update"), ("code", "429")];
    assert_eq!(scrape.value("iotgo_device_requests_total", &refused), 2.0);
}
