//! Update validation per device type, and the registry as `GET /api/types` serves it.

use crate::helpers::spawn_app;
use crate::{bad, device, ok, owner, update};
use serde_json::json;

#[tokio::test]
async fn the_original_rules_stay() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let (sw, li, th) = (
        device(&app, &me, "01").await,
        device(&app, &me, "02").await,
        device(&app, &me, "03").await,
    );
    let timers = json!([{"enabled": true, "type": "repeat", "at": "0 8 * * *",
        "do": {"switch": "on"}}]);
    let cases = [
        (&sw, json!({"switch": "on"}), true),
        (
            &sw,
            json!({"switch": "off", "extra": [1, {"x": null}]}),
            true,
        ),
        (&sw, json!({"switch": true}), false),
        (&sw, json!({"light": "on"}), false),
        (&sw, json!({"timers": timers}), true),
        (&sw, json!({"timers": "soon"}), false),
        (&sw, json!({"timers": 0, "switch": "on"}), true),
        (&li, json!({"light": "off"}), true),
        (&li, json!({"light": "dim"}), false),
        (&li, json!({"timers": []}), true),
        (&th, json!({"temperature": 21.5, "humidity": 40}), true),
        (
            &th,
            json!({"temperature": "-3.5", "humidity": " 40 "}),
            true,
        ),
        (&th, json!({"temperature": "", "humidity": "1e2"}), true),
        (&th, json!({"temperature": "warm", "humidity": 40}), false),
        (&th, json!({"temperature": 20}), false),
        (&th, json!({"temperature": [20], "humidity": 40}), false),
        (&th, json!({"timers": []}), false),
    ];
    for (id, params, accepted) in cases {
        let answer = update(&app, &me, id, params.clone()).await;
        let want = if accepted { ok(&me, id) } else { bad(&me, id) };
        assert_eq!(answer, want, "{id} {params}");
    }
}

#[tokio::test]
async fn new_params_are_checked_when_present() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let (sw, li, gps, other) = (
        device(&app, &me, "01").await,
        device(&app, &me, "02").await,
        device(&app, &me, "04").await,
        device(&app, &me, "7a").await,
    );
    let cases = [
        (
            &li,
            json!({"light": "on", "brightness": 0, "color": "#00ff7F"}),
            true,
        ),
        (&li, json!({"light": "on", "brightness": "100"}), true),
        (&li, json!({"light": "on", "brightness": 100.5}), false),
        (&li, json!({"light": "on", "brightness": -1}), false),
        (&li, json!({"light": "on", "brightness": "bright"}), false),
        (&li, json!({"light": "on", "brightness": ""}), false),
        (&li, json!({"light": "on", "color": "red"}), false),
        (&li, json!({"light": "on", "color": "#12345"}), false),
        (&li, json!({"light": "on", "color": 0xff0000}), false),
        (&li, json!({"brightness": 50}), false),
        (
            &sw,
            json!({"switch": "on", "power": 1500.5, "voltage": "230", "current": 6.5,
            "energy": "1234.56"}),
            true,
        ),
        (&sw, json!({"switch": "on", "power": -1}), false),
        (&sw, json!({"switch": "on", "energy": "lots"}), false),
        (&sw, json!({"switch": "on", "current": false}), false),
        (
            &gps,
            json!({"lat": 48.8584, "lng": "2.2945", "alt": 35, "speed": 0,
            "accuracy": "5"}),
            true,
        ),
        (&gps, json!({"lat": -90, "lng": 180}), true),
        (&gps, json!({"lat": 90.1, "lng": 0}), false),
        (&gps, json!({"lat": 0, "lng": -180.5}), false),
        (&gps, json!({"lat": 10}), false),
        (&gps, json!({"lng": 10}), false),
        (&gps, json!({"lat": 1, "lng": 2, "speed": -1}), false),
        (&gps, json!({"lat": "north", "lng": 2}), false),
        (&other, json!({"brightness": 500, "lat": 1000}), true),
    ];
    for (id, params, accepted) in cases {
        let answer = update(&app, &me, id, params.clone()).await;
        let want = if accepted { ok(&me, id) } else { bad(&me, id) };
        assert_eq!(answer, want, "{id} {params}");
    }
    // Numbers are stored as sent (text stays text), unknown params as free JSON.
    let (_, d) = app
        .get(&format!("/api/user/device/{sw}"), Some(&me.token))
        .await;
    assert_eq!(
        d["params"],
        json!({"switch": "on", "power": 1500.5, "voltage": "230", "current": 6.5,
            "energy": "1234.56"})
    );
}

#[tokio::test]
async fn types_lists_the_registry_without_a_token() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/types", None).await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["00", "01", "02", "03", "04"]);
    assert_eq!(
        body[0],
        json!({"code": "00", "name": "Custom", "timers": false, "params": []})
    );
    assert_eq!(
        body[2],
        json!({"code": "02", "name": "Light", "timers": true, "params": [
            {"name": "light", "kind": "onoff", "required": true, "writable": true,
                "history": true},
            {"name": "brightness", "kind": "number", "unit": "%", "min": 0.0, "max": 100.0,
                "required": false, "writable": true, "history": true},
            {"name": "color", "kind": "color", "required": false, "writable": true,
                "history": false},
        ]})
    );
    assert_eq!(
        body[4]["params"][0],
        json!({"name": "lat", "kind": "number", "unit": "°", "min": -90.0, "max": 90.0,
            "required": true, "writable": false, "history": true})
    );
    assert_eq!(
        body[1]["params"][4],
        json!({"name": "energy", "kind": "number", "unit": "kWh", "min": 0.0, "max": null,
            "required": false, "writable": false, "history": true})
    );
}
