//! `/api/ws`: binding, subscriptions, pushes, sysmsg, indie forwarding, subscribe-all.

use crate::helpers::{spawn_app, spawn_app_with};
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

fn query(id: &str, key: &str, agent: Option<&str>) -> Value {
    let mut q = json!({"action": "query", "deviceid": id, "apikey": key,
        "params": ["any_not_exist_property"], "sequence": "s1"});
    if let Some(a) = agent {
        q["userAgent"] = json!(a);
    }
    q
}

#[tokio::test]
async fn devices_bind_apps_subscribe_and_get_pushes_and_sysmsg() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let k = me.apikey.clone();

    let mut web = Ws::connect(&app).await;
    let a = web.call(query(&id, &k, Some("web"))).await;
    assert_eq!(
        a,
        json!({"error": 0, "params": {}, "deviceid": id, "apikey": k, "sequence": "s1"})
    );

    let mut dev = Ws::connect(&app).await;
    let a = dev
        .call(json!({"action": "update", "deviceid": id, "apikey": k, "params": {"switch": "on"}}))
        .await;
    assert_eq!(a, json!({"error": 0, "deviceid": id, "apikey": k}));
    let push = web.recv().await;
    assert_eq!(
        push,
        json!({"action": "update", "deviceid": id, "apikey": k, "params": {"switch": "on"}})
    );
    let sys = web.recv().await;
    assert_eq!(
        sys,
        json!({"action": "sysmsg", "deviceid": id, "apikey": k, "params": {"online": true}})
    );
    dev.silent().await;
    let d = web_device_until(&app, &me, &id, |d| d["online"] == true).await;
    assert!(
        d["lastConnectedAt"].is_string() && d["lastSeenAt"].is_string(),
        "{d}"
    );

    drop(dev);
    let sys = web.recv().await;
    assert_eq!(sys["params"], json!({"online": false}));
    let d = web_device(&app, &me, &id).await;
    assert_eq!(d["online"], false);
    assert!(d["lastDisconnectedAt"].is_string(), "{d}");
}

#[tokio::test]
async fn app_updates_reach_diy_devices_and_other_apps_but_not_the_sender() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "02").await;
    let k = me.apikey.clone();
    let mut app1 = Ws::connect(&app).await;
    let mut app2 = Ws::connect(&app).await;
    assert_eq!(app1.call(query(&id, &k, Some("app"))).await["error"], 0);
    assert_eq!(app2.call(query(&id, &k, Some("app"))).await["error"], 0);
    let mut dev = Ws::connect(&app).await;
    assert_eq!(dev.call(query(&id, &k, None)).await["error"], 0);
    assert_eq!(app1.recv().await["action"], "sysmsg");
    assert_eq!(app2.recv().await["action"], "sysmsg");

    let up = json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
        "params": {"light": "on"}, "sequence": "9"});
    let a = app1.call(up).await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "9"})
    );
    let push = json!({"action": "update", "deviceid": id, "apikey": k, "params": {"light": "on"}});
    assert_eq!(dev.recv().await, push);
    assert_eq!(app2.recv().await, push);
    app1.silent().await;

    // Over HTTP an app's update follows the same rules.
    let up = json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
        "params": {"light": "off"}});
    assert_eq!(http(&app, up).await["error"], 0);
    let push = json!({"action": "update", "deviceid": id, "apikey": k, "params": {"light": "off"}});
    assert_eq!(dev.recv().await, push);
    assert_eq!(app1.recv().await, push);
    assert_eq!(app2.recv().await, push);
    assert_eq!(
        web_device(&app, &me, &id).await["params"],
        json!({"light": "off"})
    );
}

#[tokio::test]
async fn app_updates_to_indie_devices_are_forwarded_and_wait_for_the_device() {
    let app = spawn_app_with(|c| c.pending_request_timeout_ms = 300).await;
    let me = owner(&app, "a@example.com").await;
    let (id, fkey) = license(&app, "01").await;
    claim(&app, &me, &id, &fkey).await;
    let k = me.apikey.clone();
    let mut web = Ws::connect(&app).await;
    let up = |seq: &str| {
        json!({"action": "update", "deviceid": id, "apikey": k,
        "userAgent": "app", "params": {"switch": "on"}, "sequence": seq})
    };
    assert_eq!(
        web.call(up("1")).await,
        json!({"error": 503, "reason": "Device Offline", "deviceid": id, "apikey": k, "sequence": "1"})
    );

    // `register` gives the device its device key, which it uses from then on; the
    // commands it gets carry that key, never the owner's apikey.
    let dk = device_key(&app, &me, &id).await;
    let mut dev = Ws::connect(&app).await;
    let a = dev
        .call(json!({"action": "register", "deviceid": id, "apikey": fkey}))
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": dk, "deviceid": id}));
    // Indie firmware quirk: an empty params object answers as 0.
    let a = dev
        .call(json!({"action": "query", "deviceid": id, "apikey": dk, "params": []}))
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": 0, "deviceid": id, "apikey": dk})
    );
    let sys = web.recv().await;
    assert_eq!(sys["params"], json!({"online": true}));

    web.send(up("2")).await;
    let cmd = dev.recv().await;
    let mut command = up("2");
    command["apikey"] = json!(dk);
    assert_eq!(cmd, command);
    dev.send(json!({"error": 0, "sequence": "2"})).await;
    assert_eq!(
        web.recv().await,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "2"})
    );
    assert_eq!(
        web_device(&app, &me, &id).await["params"],
        json!({"switch": "on"})
    );

    web.send(up("3")).await;
    assert_eq!(dev.recv().await["sequence"], "3");
    dev.send(json!({"error": 500, "reason": "Relay stuck", "sequence": "3"}))
        .await;
    assert_eq!(
        web.recv().await,
        json!({"error": 500, "reason": "Relay stuck", "sequence": "3"})
    );

    web.send(up("4")).await;
    assert_eq!(dev.recv().await["sequence"], "4");
    let a = web.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        a,
        json!({"error": 504, "reason": "Request Timeout", "deviceid": id, "apikey": k, "sequence": "4"})
    );

    // Without a sequence the server adds one; empty timers travel as 0.
    web.send(
        json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
        "params": {"timers": []}}),
    )
    .await;
    let cmd = dev.recv().await;
    assert_eq!(cmd["params"], json!({"timers": 0}));
    let seq = cmd["sequence"].clone();
    assert!(seq.is_string(), "{cmd}");
    dev.send(json!({"error": 0, "sequence": seq})).await;
    assert_eq!(web.recv().await["error"], 0);
}

#[tokio::test]
async fn one_socket_subscribes_to_all_devices_of_a_user() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let k = me.apikey.clone();
    let mut by_key = Ws::connect(&app).await;
    let a = by_key
        .call(json!({"action": "subscribe", "apikey": k, "userAgent": "app", "sequence": 1}))
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k, "sequence": 1}));
    let mut by_jwt = Ws::connect(&app).await;
    let a = by_jwt
        .call(json!({"action": "subscribe", "jwt": me.token}))
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k}));
    let mut bad = Ws::connect(&app).await;
    let a = bad
        .call(json!({"action": "subscribe", "jwt": "x.y.z"}))
        .await;
    assert_eq!(a["error"], 403);
    let a = bad
        .call(json!({"action": "subscribe", "apikey": "nope"}))
        .await;
    assert_eq!(a["error"], 400);

    // A device created after the subscription is watched too.
    let id = device(&app, &me, "00").await;
    let foreign = device(&app, &other, "00").await;
    let up = json!({"action": "update", "deviceid": id, "apikey": k, "params": {"t": 1}});
    assert_eq!(http(&app, up).await["error"], 0);
    for ws in [&mut by_key, &mut by_jwt] {
        assert_eq!(ws.recv().await["action"], "update");
        assert_eq!(
            ws.recv().await,
            json!({"action": "sysmsg", "deviceid": id, "apikey": k,
            "params": {"online": true}})
        );
    }
    let up = json!({"action": "update", "deviceid": foreign, "apikey": other.apikey, "params": {"t": 2}});
    assert_eq!(http(&app, up).await["error"], 0);
    by_key.silent().await;
    by_jwt.silent().await;
}

#[tokio::test]
async fn the_newest_socket_of_a_device_wins() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let k = me.apikey.clone();
    let mut web = Ws::connect(&app).await;
    assert_eq!(web.call(query(&id, &k, Some("app"))).await["error"], 0);
    let mut old = Ws::connect(&app).await;
    assert_eq!(old.call(query(&id, &k, None)).await["error"], 0);
    assert_eq!(web.recv().await["params"], json!({"online": true}));
    let mut new = Ws::connect(&app).await;
    assert_eq!(new.call(query(&id, &k, None)).await["error"], 0);
    assert!(old.closed_within(WAIT).await, "the older socket is closed");
    web.silent().await;
    assert_eq!(web_device(&app, &me, &id).await["online"], true);

    // Commands go to the newest socket.
    let up = json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
        "params": {"switch": "off"}});
    assert_eq!(web.call(up).await["error"], 0);
    assert_eq!(new.recv().await["params"], json!({"switch": "off"}));

    drop(new);
    assert_eq!(web.recv().await["params"], json!({"online": false}));
    web_device_until(&app, &me, &id, |d| d["online"] == false).await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_a_query_sees_every_update() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let id = device(&app, &me, "00").await;
    let k = me.apikey.clone();
    let mut web = Ws::connect(&app).await;
    assert_eq!(web.call(query(&id, &k, Some("web"))).await["error"], 0);

    // 40 updates, one of them refused, and a query, all sent before reading any answer:
    // more than the server keeps in flight per connection, so reading pauses and resumes.
    let mut dev = Ws::connect(&app).await;
    let refused = 20;
    for n in 0..40 {
        let key = if n == refused { &other.apikey } else { &k };
        dev.send(json!({"action": "update", "deviceid": id, "apikey": key,
            "params": {"n": n}, "sequence": n.to_string()}))
            .await;
    }
    dev.send(
        json!({"action": "query", "deviceid": id, "apikey": k, "params": ["n"],
        "sequence": "q"}),
    )
    .await;
    for n in 0..40 {
        let a = dev.recv().await;
        let error = if n == refused { 403 } else { 0 };
        assert_eq!(
            (a["sequence"].clone(), a["error"].clone()),
            (json!(n.to_string()), json!(error)),
            "{a}"
        );
    }
    let a = dev.recv().await;
    assert_eq!(
        (a["sequence"].clone(), a["params"].clone()),
        (json!("q"), json!({"n": 39}))
    );

    // The app got every accepted update, in order (and the device's sysmsg among them).
    let mut seen = Vec::new();
    while seen.len() < 39 {
        let push = web.recv().await;
        if push["action"] == "update" {
            seen.push(push["params"]["n"].as_i64().unwrap());
        }
    }
    let expected: Vec<i64> = (0..40).filter(|n| *n != refused).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn subscribe_by_token_follows_the_web_apis_token_rule() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    // An admin's token names no user.
    let admin = app.admin_token().await;
    let mut ws = Ws::connect(&app).await;
    let a = ws.call(json!({"action": "subscribe", "jwt": admin})).await;
    assert_eq!(a["error"], 403);
    // A password change retires the older token here as on the Web API.
    let change =
        json!({"oldPassword": crate::helpers::PASSWORD, "newPassword": "another password"});
    let (_, body) = app
        .post("/api/user/password", &change, Some(&me.token))
        .await;
    assert!(body.get("error").is_none(), "{body}");
    let a = ws
        .call(json!({"action": "subscribe", "jwt": me.token}))
        .await;
    assert_eq!(a["error"], 403);
    assert_eq!(app.get("/api/user/device", Some(&me.token)).await.0, 401);
}
