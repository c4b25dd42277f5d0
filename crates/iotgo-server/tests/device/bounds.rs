//! Bounds on what one device or connection may hold: the stored params' size and keys,
//! the commands waiting for indie devices' answers.

use crate::helpers::{spawn_app, spawn_app_with};
use crate::support::*;
use serde_json::{Value, json};

/// An update of `id` with `params`, as the device sends it.
fn update(id: &str, key: &str, params: Value) -> Value {
    json!({"action": "update", "deviceid": id, "apikey": key, "params": params})
}

#[tokio::test]
async fn updates_that_would_grow_the_stored_params_past_64_kib_are_refused_over_http() {
    // The defaults: the measured attack sent ~52 KB of new keys per update.
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let key = &me.apikey;
    let big = "x".repeat(40_000);
    assert_eq!(
        http(&app, update(&id, key, json!({"k0": big}))).await["error"],
        0
    );

    let (status, text) = http_raw(&app, &update(&id, key, json!({"k1": big}))).await;

    assert_eq!(status, 200);
    assert_eq!(
        text,
        format!(
            r#"{{"error":400,"reason":"Device State Too Large","deviceid":"{id}","apikey":"{key}"}}"#
        )
    );
    // Nothing of it was stored: not the key, not its time.
    let stored = web_device(&app, &me, &id).await;
    assert_eq!(stored["params"], json!({"k0": big}));
    // An update that keeps the state within the bound still works.
    let a = http(&app, update(&id, key, json!({"k0": "small", "k1": big}))).await;
    assert_eq!(a["error"], 0, "{a}");
    let stored = web_device(&app, &me, &id).await;
    assert_eq!(stored["params"], json!({"k0": "small", "k1": big}));
}

#[tokio::test]
async fn updates_adding_keys_past_the_bound_are_refused_over_websocket_and_the_rest_commit() {
    // The per-request bound too: the state's is never below it.
    let app = spawn_app_with(|c| {
        c.max_device_state_keys = 4;
        c.max_params_keys = 4;
    })
    .await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let key = &me.apikey;
    let mut ws = Ws::connect(&app).await;
    for n in 0..3 {
        let a = ws.call(update(&id, key, json!({format!("k{n}"): n}))).await;
        assert_eq!(a["error"], 0, "{a}");
    }

    // Pipelined: the fourth key fits, the fifth does not, a replaced key does.
    let mut frames = Vec::new();
    for (seq, params) in [
        ("4", json!({"k3": 3})),
        ("5", json!({"k4": 4})),
        ("6", json!({"k0": "zero"})),
    ] {
        let mut frame = update(&id, key, params);
        frame["sequence"] = json!(seq);
        frames.push(frame);
    }
    for frame in frames {
        ws.send(frame).await;
    }
    let answers = [ws.recv().await, ws.recv().await, ws.recv().await];

    assert_eq!(answers[0]["error"], 0);
    assert_eq!(
        answers[1],
        json!({"error": 400, "reason": "Device State Too Large", "deviceid": id,
            "apikey": key, "sequence": "5"})
    );
    assert_eq!(answers[2]["error"], 0);
    let stored = web_device(&app, &me, &id).await;
    assert_eq!(
        stored["params"],
        json!({"k0": "zero", "k1": 1, "k2": 2, "k3": 3})
    );
}

/// The next answer an app gets, past the indie device's sysmsg (the app watches the
/// device since its first command; the device's online sysmsg may come after that).
async fn answer(app: &mut Ws) -> Value {
    loop {
        let m = app.recv().await;
        if m["action"] != "sysmsg" {
            return m;
        }
    }
}

#[tokio::test]
async fn an_app_past_its_pending_commands_gets_429_at_once_and_the_device_never_sees_it() {
    let app = spawn_app_with(|c| {
        c.max_pending_commands = 2;
        c.pending_request_timeout_ms = 5_000;
    })
    .await;
    let me = owner(&app, "a@example.com").await;
    let (id, fkey) = license(&app, "01").await;
    claim(&app, &me, &id, &fkey).await;
    let k = me.apikey.clone();
    // An indie device that reads its commands and never answers.
    let mut dev = Ws::connect(&app).await;
    let a = dev
        .call(json!({"action": "register", "deviceid": id, "apikey": fkey}))
        .await;
    assert_eq!(a["error"], 0, "{a}");
    let command = |seq: &str| {
        json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
            "params": {"switch": "on"}, "sequence": seq})
    };
    let mut web = Ws::connect(&app).await;
    web.send(command("1")).await;
    web.send(command("2")).await;
    assert_eq!(dev.recv().await["sequence"], "1");
    assert_eq!(dev.recv().await["sequence"], "2");

    web.send(command("3")).await;
    let a = answer(&mut web).await;

    assert_eq!(
        a,
        json!({"error": 429, "reason": "Too Many Requests", "deviceid": id, "apikey": k,
            "sequence": "3"})
    );
    dev.silent().await;
    // Once the device answers one, the app may send another.
    dev.send(json!({"error": 0, "sequence": "1"})).await;
    assert_eq!(
        answer(&mut web).await,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "1"})
    );
    web.send(command("4")).await;
    assert_eq!(dev.recv().await["sequence"], "4");
    // Another connection has its own bound.
    let mut other = Ws::connect(&app).await;
    other.send(command("5")).await;
    assert_eq!(dev.recv().await["sequence"], "5");
}
