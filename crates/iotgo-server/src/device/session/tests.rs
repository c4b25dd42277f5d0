//! The session against real parts: a SQLite store in a temporary directory, the real
//! writer and hub of a started [`DeviceApi`].

use super::*;
use crate::config::{Config, Secret};
use crate::history::Recorder;
use crate::metrics::{Access, Metrics};
use serde_json::json;
use std::time::Duration;

use crate::store::testing::{OWNER, store_with_devices};

/// The client address of every test connection.
const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A started Device API over a fresh SQLite file, with one user and one DIY device.
async fn api_with_device() -> (tempfile::TempDir, Arc<DeviceApi>, String) {
    let (dir, store, mut ids) = store_with_devices("00", 1).await;
    let jwt = Arc::new(auth::Jwt::new(&Secret::new("k"), Duration::from_secs(60)));
    let metrics = Metrics::start(Access::Open).expect("metrics");
    let recorder = Recorder::load(store.clone(), true)
        .await
        .expect("a recorder");
    let api = DeviceApi::start(store, recorder, jwt, &Config::default(), metrics, None)
        .await
        .expect("the Device API");
    (dir, api, ids.remove(0))
}

fn update(id: &str, n: u32, agent: &str) -> String {
    json!({"action": "update", "deviceid": id, "apikey": OWNER, "userAgent": agent,
        "params": {"n": n}, "sequence": n.to_string()})
    .to_string()
}

fn query(id: &str, sequence: &str, agent: &str) -> String {
    json!({"action": "query", "deviceid": id, "apikey": OWNER, "userAgent": agent,
        "params": ["n"], "sequence": sequence})
    .to_string()
}

/// The JSON of the next message queued for a connection.
async fn next(outbox: &Outbox) -> Value {
    match tokio::time::timeout(Duration::from_secs(5), outbox.recv()).await {
        Ok(Message::Text(t)) => serde_json::from_str(&t).expect("JSON"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn pipelined_updates_and_a_query_between_them_are_answered_in_request_order() {
    let (_dir, api, id) = api_with_device().await;
    let (mut device, outbox) = Session::open(api.clone(), 16, LOCAL);

    // Two updates are taken without waiting for their commits.
    device.receive(&update(&id, 1, "device")).await;
    device.receive(&update(&id, 2, "device")).await;
    assert_eq!(device.pending.len(), 2);
    assert!(
        outbox.try_recv().is_none(),
        "nothing is answered before it commits"
    );

    // A query waits for the updates before it, and reads what they wrote.
    device.receive(&query(&id, "q", "device")).await;
    assert!(device.pending.is_empty());
    device.receive(&update(&id, 3, "device")).await;
    device.answer_next().await;

    let ack =
        |n: u32| json!({"error": 0, "deviceid": id, "apikey": OWNER, "sequence": n.to_string()});
    assert_eq!(next(&outbox).await, ack(1));
    assert_eq!(next(&outbox).await, ack(2));
    assert_eq!(
        next(&outbox).await,
        json!({"error": 0, "params": {"n": 2}, "deviceid": id, "apikey": OWNER, "sequence": "q"})
    );
    assert_eq!(next(&outbox).await, ack(3));
    assert!(outbox.try_recv().is_none());
    api.shutdown().await;
}

#[tokio::test]
async fn a_dropped_session_leaves_the_hub_and_its_device_goes_offline() {
    let (_dir, api, id) = api_with_device().await;
    let (mut app, app_box) = Session::open(api.clone(), 16, LOCAL);
    app.receive(&query(&id, "q", "app")).await;
    assert_eq!(next(&app_box).await["error"], 0);
    let (mut device, _device_box) = Session::open(api.clone(), 16, LOCAL);

    // Arrange: the device's update binds its session; the app watches the device.
    device.receive(&update(&id, 1, "device")).await;
    device.answer_next().await;
    assert!(api.hub.is_connected(&id));
    assert_eq!(next(&app_box).await["params"], json!({"n": 1}));
    assert_eq!(next(&app_box).await["params"], json!({"online": true}));

    // Act: the device's connection ends.
    drop(device);

    // Assert: unbound, marked offline, and the watchers are told.
    assert_eq!(
        next(&app_box).await,
        json!({"action": "sysmsg", "deviceid": id, "apikey": OWNER, "params": {"online": false}})
    );
    assert!(!api.hub.is_connected(&id));

    // The app's session, dropped, watches nothing any more: a new connection of the
    // device pushes to nobody (its outbox, still here, stays empty).
    drop(app);
    let (mut device, device_box) = Session::open(api.clone(), 16, LOCAL);
    device.receive(&update(&id, 2, "device")).await;
    device.answer_next().await;
    assert_eq!(next(&device_box).await["sequence"], "2");
    assert!(api.hub.is_connected(&id));
    assert!(app_box.try_recv().is_none());
    api.shutdown().await;
}

#[tokio::test]
async fn answer_next_cancelled_at_every_await_still_answers_each_update_once_in_order() {
    let (_dir, api, id) = api_with_device().await;
    let (mut app, app_box) = Session::open(api.clone(), 16, LOCAL);
    app.receive(&query(&id, "q", "app")).await;
    assert_eq!(next(&app_box).await["error"], 0);
    let (mut device, outbox) = Session::open(api.clone(), 16, LOCAL);
    for n in 1..=3 {
        device.receive(&update(&id, n, "device")).await;
    }

    // Polled once and dropped, again and again, as when the transport's select picks
    // another branch: through the commits and the device's way online.
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        while !device.pending.is_empty() || device.connecting.is_some() {
            let _ = futures_util::FutureExt::now_or_never(device.answer_next());
            tokio::task::yield_now().await;
        }
    });
    answered.await.expect("every update answered");

    for n in 1..=3 {
        assert_eq!(next(&outbox).await["sequence"], n.to_string());
    }
    assert!(outbox.try_recv().is_none());
    // The watcher sees the first update, the device coming online once, then the rest.
    assert_eq!(next(&app_box).await["params"], json!({"n": 1}));
    assert_eq!(next(&app_box).await["params"], json!({"online": true}));
    assert_eq!(next(&app_box).await["params"], json!({"n": 2}));
    assert_eq!(next(&app_box).await["params"], json!({"n": 3}));
    assert!(app_box.try_recv().is_none());
    api.shutdown().await;
}
