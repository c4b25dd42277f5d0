//! Credentials that die while in use (issue 13): an apikey rotated, a device key
//! regenerated, a user's tokens retired or expired. The old credential must stop working
//! at once on HTTP, on a new WebSocket and on the sockets already open with it.

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn query(id: &str, key: &str, agent: &str) -> Value {
    json!({"action": "query", "deviceid": id, "apikey": key, "userAgent": agent,
        "params": [], "sequence": "q"})
}

fn update(id: &str, key: &str, agent: &str, params: Value) -> Value {
    json!({"action": "update", "deviceid": id, "apikey": key, "userAgent": agent,
        "params": params})
}

fn forbidden(id: &str, key: &str) -> Value {
    json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": key, "sequence": "q"})
}

/// A socket bound as device `id` by a successful update with `key`.
async fn bound_device(app: &TestApp, id: &str, key: &str) -> Ws {
    let mut dev = Ws::connect(app).await;
    let a = dev
        .call(update(id, key, "device", json!({"switch": "on"})))
        .await;
    assert_eq!(a["error"], 0, "{a}");
    dev
}

#[tokio::test]
async fn a_rotated_apikey_dies_on_every_transport_and_on_open_sockets() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let old = me.apikey.clone();
    let (id, keyed_id) = (device(&app, &me, "01").await, device(&app, &me, "01").await);
    let dk = device_key(&app, &me, &keyed_id).await;

    // Arrange: sockets that proved themselves with the old apikey, and one device that
    // uses its own key.
    let mut dev = bound_device(&app, &id, &old).await;
    let mut keyed_dev = bound_device(&app, &keyed_id, &dk).await;
    let mut watcher = Ws::connect(&app).await;
    assert_eq!(watcher.call(query(&id, &old, "app")).await["error"], 0);
    let mut by_key = Ws::connect(&app).await;
    let a = by_key
        .call(json!({"action": "subscribe", "apikey": old}))
        .await;
    assert_eq!(a["error"], 0);
    let mut by_jwt = Ws::connect(&app).await;
    let a = by_jwt
        .call(json!({"action": "subscribe", "jwt": me.token}))
        .await;
    assert_eq!(a["error"], 0);

    // Act.
    let (status, session) = app
        .post("/api/user/apikey", &json!({}), Some(&me.token))
        .await;

    // Assert: a new apikey and a fresh token that works.
    assert_eq!(status, StatusCode::OK, "{session}");
    let new = session["user"]["apikey"].as_str().unwrap().to_owned();
    let jwt = session["jwt"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(session["user"]["email"], "a@example.com");
    let (status, devices) = app.get("/api/user/device", Some(&jwt)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(devices.as_array().unwrap().len(), 2);
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["apikey"] == new.as_str()),
        "{devices}"
    );
    // Every older token is refused.
    let (status, body) = app.get("/api/user/device", Some(&me.token)).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "Invalid or expired token"})
        )
    );
    // The sockets that proved themselves with the old apikey or token are cut.
    for (name, ws) in [
        ("device", &mut dev),
        ("watcher", &mut watcher),
        ("subscriber by apikey", &mut by_key),
        ("subscriber by token", &mut by_jwt),
    ] {
        assert!(ws.closed_within(WAIT).await, "the {name} socket stays open");
    }
    // The old apikey is refused on HTTP and on a new socket; the new one works.
    assert_eq!(
        http(&app, query(&id, &old, "device")).await,
        forbidden(&id, &old)
    );
    let mut fresh = Ws::connect(&app).await;
    assert_eq!(
        fresh.call(query(&id, &old, "app")).await,
        forbidden(&id, &old)
    );
    let a = fresh
        .call(json!({"action": "subscribe", "apikey": old, "sequence": "q"}))
        .await;
    assert_eq!(a["error"], 403);
    assert_eq!(http(&app, query(&id, &new, "device")).await["error"], 0);
    assert_eq!(fresh.call(query(&id, &new, "app")).await["error"], 0);
    // The device on its own key is untouched.
    let a = keyed_dev
        .call(update(&keyed_id, &dk, "device", json!({"switch": "off"})))
        .await;
    assert_eq!(a, json!({"error": 0, "deviceid": keyed_id, "apikey": dk}));
}

#[tokio::test]
async fn a_device_key_acts_only_as_its_own_device() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let k = me.apikey.clone();
    let (id, other) = (device(&app, &me, "01").await, device(&app, &me, "01").await);
    let dk = device_key(&app, &me, &id).await;
    assert!(iotgo_protocol::ApiKey::parse(&dk).is_ok(), "{dk}");
    assert_ne!(dk, device_key(&app, &me, &other).await);

    // Its own device: update and query, over HTTP.
    let a = http(&app, update(&id, &dk, "device", json!({"switch": "on"}))).await;
    assert_eq!(a, json!({"error": 0, "deviceid": id, "apikey": dk}));
    let a = http(&app, query(&id, &dk, "device")).await;
    assert_eq!(
        a,
        json!({"error": 0, "params": {"switch": "on"}, "deviceid": id, "apikey": dk, "sequence": "q"})
    );
    // Another device of the same owner: 403, in the Device API's shape.
    assert_eq!(
        http(&app, query(&other, &dk, "device")).await,
        forbidden(&other, &dk)
    );
    let a = http(&app, update(&other, &dk, "device", json!({"switch": "on"}))).await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": other, "apikey": dk})
    );
    // Not as an app, and no subscription to the owner's devices.
    assert_eq!(
        http(&app, query(&id, &dk, "app")).await,
        forbidden(&id, &dk)
    );
    let mut ws = Ws::connect(&app).await;
    let a = ws
        .call(json!({"action": "subscribe", "apikey": dk, "sequence": "q"}))
        .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "apikey": dk, "sequence": "q"})
    );
    // The owner's apikey still works for old firmware.
    let a = http(&app, update(&id, &k, "device", json!({"switch": "off"}))).await;
    assert_eq!(a, json!({"error": 0, "deviceid": id, "apikey": k}));

    // A device bound by its key gets an app's update with its key, never the owner's.
    let mut dev = bound_device(&app, &id, &dk).await;
    let a = http(&app, update(&id, &k, "app", json!({"switch": "off"}))).await;
    assert_eq!(a["error"], 0);
    assert_eq!(
        dev.recv().await,
        json!({"action": "update", "deviceid": id, "apikey": dk, "params": {"switch": "off"}})
    );
}

#[tokio::test]
async fn a_regenerated_device_key_dies_at_once_also_on_an_open_socket() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let stranger = owner(&app, "b@example.com").await;
    let id = device(&app, &me, "01").await;
    let old = device_key(&app, &me, &id).await;
    let mut dev = bound_device(&app, &id, &old).await;
    let mut by_owner_key = bound_device(&app, &device(&app, &me, "01").await, &me.apikey).await;

    let path = format!("/api/user/device/{id}/key");
    let (status, d) = app.post(&path, &json!({}), Some(&me.token)).await;

    assert_eq!(status, StatusCode::OK);
    let new = d["deviceKey"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        (&d["deviceid"], &d["apikey"]),
        (&json!(id), &json!(me.apikey))
    );
    assert!(
        dev.closed_within(WAIT).await,
        "the socket on the old key stays open"
    );
    assert_eq!(
        http(&app, query(&id, &old, "device")).await,
        forbidden(&id, &old)
    );
    assert_eq!(http(&app, query(&id, &new, "device")).await["error"], 0);
    assert_eq!(device_key(&app, &me, &id).await, new);
    // Other sockets stay.
    by_owner_key.silent().await;
    // Only the owner can.
    let (status, body) = app.post(&path, &json!({}), Some(&stranger.token)).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"error": "Device does not exist!"}))
    );
    let (status, _) = app.post(&path, &json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A socket subscribed to all of `token`'s user's devices with that token.
async fn subscribed_by_token(app: &TestApp, token: &str) -> Ws {
    let mut ws = Ws::connect(app).await;
    let a = ws.call(json!({"action": "subscribe", "jwt": token})).await;
    assert_eq!(a["error"], 0, "{a}");
    ws
}

#[tokio::test]
async fn a_password_change_and_signing_out_everywhere_cut_sockets_subscribed_by_token() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let mut by_jwt = subscribed_by_token(&app, &me.token).await;
    let mut by_key = Ws::connect(&app).await;
    let a = by_key
        .call(json!({"action": "subscribe", "apikey": me.apikey}))
        .await;
    assert_eq!(a["error"], 0);

    let change = json!({"oldPassword": PASSWORD, "newPassword": "another password"});
    let (status, body) = app
        .post("/api/user/password", &change, Some(&me.token))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert!(
        by_jwt.closed_within(WAIT).await,
        "the socket on the old token stays open"
    );
    by_key.silent().await;
    let a = by_key
        .call(json!({"action": "subscribe", "jwt": me.token, "sequence": "q"}))
        .await;
    assert_eq!(a["error"], 403);

    let login = json!({"email": "a@example.com", "password": "another password"});
    let (_, session) = app.post("/api/user/login", &login, None).await;
    let token = session["jwt"].as_str().unwrap().to_owned();
    let mut by_jwt = subscribed_by_token(&app, &token).await;
    let (status, body) = app
        .post("/api/user/logout-all", &json!({}), Some(&token))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert!(
        by_jwt.closed_within(WAIT).await,
        "the socket on the old token stays open"
    );
    assert_eq!(
        app.get("/api/user/device", Some(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    by_key.silent().await;
}

#[tokio::test]
async fn a_socket_subscribed_by_token_is_cut_when_the_token_expires() {
    let app = spawn_app_with(|c| c.jwt_ttl = Duration::from_secs(2)).await;
    let me = owner(&app, "a@example.com").await;
    let mut by_jwt = subscribed_by_token(&app, &me.token).await;
    let mut by_key = Ws::connect(&app).await;
    let a = by_key
        .call(json!({"action": "subscribe", "apikey": me.apikey}))
        .await;
    assert_eq!(a["error"], 0);

    // Open while the token lives (it lives one to two seconds: `exp` is in seconds)...
    by_jwt.silent().await;
    // ...and cut once it expired.
    assert!(
        by_jwt.closed_within(Duration::from_secs(8)).await,
        "the socket outlives its token"
    );
    by_key.silent().await;
}
