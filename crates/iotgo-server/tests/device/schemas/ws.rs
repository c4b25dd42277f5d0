//! Messages over WebSocket.

use super::*;

#[tokio::test]
async fn websocket_messages_match_their_schemas() {
    let app = spawn_app().await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let id = device(&app, &me, "01").await;
    let k = me.apikey.clone();

    // Apps subscribe to every device of their user, by apikey or by token.
    let mut by_key = Client::connect(&app, &s).await;
    let a = by_key
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "apikey": k, "userAgent": "app", "sequence": 1}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k, "sequence": 1}));
    let mut by_jwt = Client::connect(&app, &s).await;
    let a = by_jwt
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "jwt": me.token}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k}));
    let mut refused = Client::connect(&app, &s).await;
    let a = refused
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "jwt": "x.y.z"}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 403, "reason": "Forbidden"}));
    let a = refused
        .call_wrong(
            Kind::Subscribe,
            json!({"action": "subscribe", "apikey": "nope", "sequence": "s"}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "apikey": "nope", "sequence": "s"})
    );

    // An app watches one device with a query, as the original web app does.
    let mut web = Client::connect(&app, &s).await;
    let a = web
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": k, "userAgent": "web",
                "params": ["any_not_exist_property"], "sequence": "s1"}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": {}, "deviceid": id, "apikey": k, "sequence": "s1"})
    );

    // The device's update binds its socket: every app gets the push, then the sysmsg.
    let mut dev = Client::connect(&app, &s).await;
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k,
                "params": {"switch": "on", "power": "12.5"}, "sequence": 7}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": 7})
    );
    for c in [&mut by_key, &mut by_jwt, &mut web] {
        assert_eq!(
            c.recv(Kind::Push).await,
            push("update", &id, &k, json!({"switch": "on", "power": "12.5"}))
        );
        assert_eq!(
            c.recv(Kind::Push).await,
            push("sysmsg", &id, &k, json!({"online": true}))
        );
    }

    // The device reads its params and the time.
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": k,
                "params": ["switch", "nope"], "sequence": {"n": 1}}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": {"switch": "on"}, "deviceid": id, "apikey": k,
            "sequence": {"n": 1}})
    );
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "date", "deviceid": id, "apikey": k}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "date": a["date"], "deviceid": id, "apikey": k})
    );

    // An app's update reaches the DIY device and the other apps, not the sender.
    let a = web
        .call(
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
                "params": {"switch": "off"}, "sequence": "9"}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "9"})
    );
    let off = push("update", &id, &k, json!({"switch": "off"}));
    assert_eq!(dev.recv(Kind::Push).await, off);
    assert_eq!(by_key.recv(Kind::Push).await, off);
    assert_eq!(by_jwt.recv(Kind::Push).await, off);

    // Error answers: wrong requests (400) and a foreign apikey (403).
    let bad = |deviceid: &str| json!({"error": 400, "reason": "Bad Request", "deviceid": deviceid, "apikey": k});
    let a = dev
        .call_wrong(
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k,
                "params": {"switch": "maybe"}}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, bad(&id));
    let a = dev
        .call_wrong(
            Kind::Request,
            json!({"action": "query", "deviceid": "010000000", "apikey": k, "params": []}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, bad("010000000"));
    let a = dev
        .call_wrong(
            Kind::Request,
            json!({"action": "fly", "deviceid": id, "apikey": k}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, bad(&id));
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": other.apikey, "params": []}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": other.apikey})
    );

    // The device's socket closes: every app gets the offline sysmsg.
    drop(dev);
    for c in [&mut by_key, &mut by_jwt, &mut web] {
        assert_eq!(
            c.recv(Kind::Push).await,
            push("sysmsg", &id, &k, json!({"online": false}))
        );
    }
}
