//! Messages over HTTP, and the device types' rules in the schema and the server.

use super::*;

#[tokio::test]
async fn http_messages_match_their_schemas() {
    let app = spawn_app().await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let id = device(&app, &me, "03").await;
    let k = me.apikey.clone();
    let mut all = Client::connect(&app, &s).await;
    let a = all
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "jwt": me.token}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k}));

    // A device that polls over HTTP: its update is pushed, and it is online.
    let params = json!({"temperature": "21.5", "humidity": 40});
    let a = post(
        &app,
        &s,
        json!({"action": "update", "deviceid": id, "apikey": k, "params": params,
            "sequence": "1"}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "1"})
    );
    assert_eq!(
        all.recv(Kind::Push).await,
        push("update", &id, &k, params.clone())
    );
    assert_eq!(
        all.recv(Kind::Push).await,
        push("sysmsg", &id, &k, json!({"online": true}))
    );
    let a = post(
        &app,
        &s,
        json!({"action": "query", "deviceid": id, "apikey": k, "params": []}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": params, "deviceid": id, "apikey": k})
    );
    let a = post(
        &app,
        &s,
        json!({"action": "date", "deviceid": id, "apikey": k, "sequence": null}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 0, "date": a["date"], "deviceid": id, "apikey": k, "sequence": null})
    );

    // Error answers.
    let a = post(
        &app,
        &s,
        json!({"action": "query", "deviceid": id, "apikey": other.apikey, "params": []}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": other.apikey})
    );
    let upper = k.to_uppercase();
    let a = post(
        &app,
        &s,
        json!({"action": "date", "deviceid": id, "apikey": upper}),
        false,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "deviceid": id, "apikey": upper})
    );
    // `subscribe` is WebSocket only.
    let a = post(
        &app,
        &s,
        json!({"action": "subscribe", "deviceid": id, "apikey": k}),
        false,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "deviceid": id, "apikey": k})
    );
    let a = post(
        &app,
        &s,
        json!({"action": "register", "deviceid": id, "apikey": k}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": k})
    );
    // A body that is not a JSON object: the transport's own 400, in the answer's shape.
    let res = app
        .client
        .post(format!("{}/api/http", app.base))
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let a: Value = res.json().await.unwrap();
    s.valid(Kind::Answer, &a);
    assert_eq!(a, json!({"error": 400, "reason": "Bad Request"}));
}

#[tokio::test]
async fn the_request_schema_and_the_server_agree_on_each_device_types_rules() {
    let app = spawn_app().await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let k = me.apikey.clone();
    let timer = json!({"enabled": true, "type": "repeat", "at": "0 8 * * *",
        "do": {"switch": "on"}});
    // (device type, action, params, well formed)
    let cases = [
        ("01", "update", json!({"switch": "on"}), true),
        ("01", "update", json!({"switch": true}), false),
        ("01", "update", json!({"light": "on"}), false),
        ("01", "update", json!({"timers": [timer]}), true),
        (
            "01",
            "update",
            json!({"timers": [timer], "switch": "maybe"}),
            true,
        ),
        ("01", "update", json!({"timers": []}), true),
        (
            "01",
            "update",
            json!({"timers": null, "switch": "off"}),
            true,
        ),
        ("01", "update", json!({"timers": 0}), false),
        ("01", "update", json!({"timers": "soon"}), false),
        ("01", "update", json!({"timers": {}}), false),
        (
            "01",
            "update",
            json!({"timers": [{"enabled": "yes", "type": "once", "at": "x", "do": {}}]}),
            false,
        ),
        (
            "01",
            "update",
            json!({"timers": [{"enabled": true, "type": "once", "at": "", "do": {}}]}),
            false,
        ),
        (
            "01",
            "update",
            json!({"switch": "off", "power": "12.5", "energy": 3, "current": " 1e-1 "}),
            true,
        ),
        (
            "01",
            "update",
            json!({"switch": "off", "voltage": -1}),
            false,
        ),
        (
            "01",
            "update",
            json!({"switch": "off", "voltage": "-1"}),
            false,
        ),
        (
            "01",
            "update",
            json!({"switch": "on", "current": ""}),
            false,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "brightness": "100", "color": "#A0b1C2"}),
            true,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "brightness": 101}),
            false,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "brightness": true}),
            false,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "color": "red"}),
            false,
        ),
        ("02", "update", json!({"brightness": 50}), false),
        (
            "02",
            "update",
            json!({"timers": [timer], "brightness": 50}),
            true,
        ),
        (
            "03",
            "update",
            json!({"temperature": 21.5, "humidity": "40"}),
            true,
        ),
        (
            "03",
            "update",
            json!({"temperature": " ", "humidity": -3}),
            true,
        ),
        (
            "03",
            "update",
            json!({"temperature": "warm", "humidity": 40}),
            false,
        ),
        ("03", "update", json!({"temperature": 20}), false),
        ("03", "update", json!({"timers": [], "humidity": 1}), false),
        (
            "04",
            "update",
            json!({"lat": -90, "lng": "180", "alt": 12}),
            true,
        ),
        ("04", "update", json!({"lat": 91, "lng": 0}), false),
        ("04", "update", json!({"lat": 10}), false),
        (
            "04",
            "update",
            json!({"lat": 1, "lng": 2, "speed": -3}),
            false,
        ),
        (
            "04",
            "update",
            json!({"lat": 1, "lng": 2, "accuracy": "x"}),
            false,
        ),
        ("00", "update", json!({"anything": [1, {"x": null}]}), true),
        ("00", "update", json!({}), true),
        ("00", "update", json!([]), false),
        ("7a", "update", json!({"switch": 1}), true),
        ("01", "query", json!(["switch", 3]), true),
        ("01", "query", json!([]), true),
        ("01", "query", json!({}), false),
        ("01", "query", json!("switch"), false),
    ];
    let mut ids = std::collections::HashMap::new();
    let mut wrong = Vec::new();
    for (kind, action, params, well_formed) in cases {
        if !ids.contains_key(kind) {
            ids.insert(kind, device(&app, &me, kind).await);
        }
        let req = json!({"action": action, "deviceid": ids[kind], "apikey": k, "params": params});
        let by_schema = s.of(Kind::Request).is_valid(&req);
        let (status, text) = http_raw(&app, &req).await;
        assert_eq!(status, 200, "{req} → {text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        s.valid(Kind::Answer, &answer);
        let by_server = answer["error"] != 400;
        if (by_schema, by_server) != (well_formed, well_formed) {
            wrong.push(format!(
                "{req}: schema {by_schema}, server {by_server} ({text}), expected {well_formed}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn an_update_refused_for_the_stored_params_size_matches_the_answer_schema() {
    let app = spawn_app_with(|c| {
        c.max_device_state_keys = 1;
        c.max_params_keys = 1;
    })
    .await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let k = me.apikey.clone();
    let update = |params: Value| {
        json!({"action": "update", "deviceid": id, "apikey": k, "params": params,
            "sequence": "1"})
    };
    assert_eq!(
        post(&app, &s, update(json!({"a": 1})), true).await["error"],
        0
    );

    let a = post(&app, &s, update(json!({"b": 1})), true).await;

    assert_eq!(
        a,
        json!({"error": 400, "reason": "Device State Too Large", "deviceid": id,
            "apikey": k, "sequence": "1"})
    );
}
