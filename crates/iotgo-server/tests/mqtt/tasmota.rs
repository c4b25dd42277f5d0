//! A simulated stock Tasmota device: rumqttc sending the message shapes Tasmota sends
//! under the default FullTopic `%prefix%/%topic%/`, connected with MqttUser = deviceid and
//! MqttPassword = the owner's apikey.

use crate::client::{Client, connect, connect_with_will, mqtt_app};
use crate::helpers::{Owner, TestApp};
use crate::support::{Ws, device, http, owner, web_device, web_device_until};
use rumqttc::{ConnectReturnCode, LastWill, QoS, SubscribeReasonCode};
use serde_json::{Value, json};

// The fixtures follow the message shapes of Tasmota's documentation for the firmware and
// module named; values are typical, not captured from a device.

/// The shape of `tele/<t>/STATE` of a Sonoff Basic R2 (module 1), Tasmota 13.2.0.
const STATE_BASIC: &str = r#"{"Time":"2024-01-14T10:21:07","Uptime":"0T00:05:09","UptimeSec":309,"Heap":27,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"ON","Wifi":{"AP":1,"SSId":"home","BSSId":"AA:BB:CC:DD:EE:FF","Channel":6,"Mode":"11n","RSSI":78,"Signal":-61,"LinkCount":1,"Downtime":"0T00:00:03"}}"#;
/// The shape of `tele/<t>/SENSOR` of a Sonoff POW R2 (module 43), Tasmota 13.2.0.
const SENSOR_POW: &str = r#"{"Time":"2024-01-14T10:26:07","ENERGY":{"TotalStartTime":"2023-11-02T18:40:11","Total":12.345,"Yesterday":0.456,"Today":0.123,"Period":1,"Power":45,"ApparentPower":50,"ReactivePower":22,"Factor":0.90,"Voltage":231,"Current":0.217}}"#;
/// The shape of `tele/<t>/SENSOR` with an AM2301 on a Sonoff TH10 (module 4), Tasmota 12.5.0.
const SENSOR_AM2301: &str = r#"{"Time":"2024-01-14T10:21:07","AM2301":{"Temperature":21.3,"Humidity":40.1,"DewPoint":7.2},"TempUnit":"C"}"#;
/// The shape of `tele/<t>/SENSOR` with a DS18B20 alone (a temperature, no humidity), Tasmota 13.2.0.
const SENSOR_DS18B20: &str = r#"{"Time":"2024-01-14T10:21:07","DS18B20":{"Id":"01131B3C1AAA","Temperature":19.5},"TempUnit":"C"}"#;
/// The shape of `tele/<t>/INFO1` after connecting, Tasmota 13.2.0.
const INFO1: &str = r#"{"Info1":{"Module":"Sonoff Basic","Version":"13.2.0(tasmota)","FallbackTopic":"cmnd/DVES_A1B2C3_fb/","GroupTopic":"cmnd/tasmotas/"}}"#;

/// Connects as Tasmota does with `Topic <t>`: its Will on `tele/<t>/LWT` (`Offline`,
/// retained), then `Online` retained, then its three subscriptions.
async fn tasmota(app: &TestApp, owner: &Owner, id: &str, t: &str) -> Client {
    let will = LastWill::new(format!("tele/{t}/LWT"), "Offline", QoS::AtLeastOnce, true);
    let mut dev = connect_with_will(app, id, &owner.apikey, Some(will))
        .await
        .unwrap();
    dev.publish_retained_acked(&format!("tele/{t}/LWT"), "Online")
        .await;
    for filter in [
        format!("cmnd/{t}/#"),
        "cmnd/tasmotas/#".to_owned(),
        "cmnd/DVES_A1B2C3_fb/#".to_owned(),
    ] {
        assert_eq!(
            dev.subscribe(&filter, QoS::AtMostOnce).await,
            SubscribeReasonCode::Success(QoS::AtMostOnce),
            "{filter}"
        );
    }
    dev
}

/// A WebSocket app subscribed to `owner`'s devices.
async fn ws_app(app: &TestApp, owner: &Owner) -> Ws {
    let mut ws = Ws::connect(app).await;
    let ok = ws
        .call(json!({"action": "subscribe", "apikey": owner.apikey}))
        .await;
    assert_eq!(ok["error"], 0);
    ws
}

/// The next push of an update to `ws`, as (deviceid, params).
async fn pushed_params(ws: &mut Ws) -> (Value, Value) {
    loop {
        let msg = ws.recv().await;
        if msg["action"] == "update" {
            return (msg["deviceid"].clone(), msg["params"].clone());
        }
    }
}

#[tokio::test]
async fn a_tasmota_switch_reports_its_relay_and_energy() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut ws = ws_app(&app, &alice).await;
    let mut dev = tasmota(&app, &alice, &id, "plug").await;
    let online = ws.recv().await;
    assert_eq!(
        (&online["action"], &online["params"]),
        (&json!("sysmsg"), &json!({"online": true}))
    );
    // Online, INFO1: nothing to store, nothing pushed.
    dev.publish_acked("tele/plug/INFO1", INFO1).await;
    ws.silent().await;

    dev.publish_acked("tele/plug/STATE", STATE_BASIC).await;
    assert_eq!(
        pushed_params(&mut ws).await,
        (json!(id), json!({"switch": "on"}))
    );
    // Energy readings with the stored relay state (a switch update carries `switch`).
    dev.publish_acked("tele/plug/SENSOR", SENSOR_POW).await;
    let energy = json!({"power": 45, "voltage": 231, "current": 0.217, "energy": 12.345,
        "switch": "on"});
    assert_eq!(pushed_params(&mut ws).await, (json!(id), energy));
    let d = web_device(&app, &alice, &id).await;
    assert_eq!(
        d["params"],
        json!({"switch": "on", "power": 45, "voltage": 231, "current": 0.217,
            "energy": 12.345})
    );
    assert_eq!(d["online"], true);

    dev.publish_acked("stat/plug/RESULT", r#"{"POWER":"OFF"}"#)
        .await;
    assert_eq!(pushed_params(&mut ws).await.1, json!({"switch": "off"}));
    dev.publish_acked("stat/plug/POWER", "ON").await;
    assert_eq!(pushed_params(&mut ws).await.1, json!({"switch": "on"}));
    // Retained or not, the same; a second relay maps to nothing on a one-relay type.
    dev.publish_retained_acked("stat/plug/POWER1", "OFF").await;
    assert_eq!(pushed_params(&mut ws).await.1, json!({"switch": "off"}));
    dev.publish_acked("stat/plug/POWER2", "ON").await;
    dev.publish_acked("stat/plug/STATUS", r#"{"Status":{"Module":1}}"#)
        .await;
    ws.silent().await;
    assert_eq!(
        web_device(&app, &alice, &id).await["params"]["switch"],
        "off"
    );

    // Kept in the history like any update.
    let (_, history) = app
        .get(
            &format!("/api/user/device/{id}/history?fields=switch,power"),
            Some(&alice.token),
        )
        .await;
    let points = history["points"].as_array().unwrap();
    let switch: Vec<Option<f64>> = points.iter().map(|p| p["switch"].as_f64()).collect();
    assert_eq!(switch, [1.0, 1.0, 0.0, 1.0, 0.0].map(Some), "{history}");
    assert_eq!(points[1]["power"], 45.0);
}

#[tokio::test]
async fn a_tasmota_th_sensor_stores_both_readings_or_nothing() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "03").await;
    let mut ws = ws_app(&app, &alice).await;
    let mut dev = tasmota(&app, &alice, &id, "th10").await;
    assert_eq!(ws.recv().await["action"], "sysmsg");
    // STATE (no relay on a sensor) and a temperature alone: nothing.
    dev.publish_acked("tele/th10/STATE", STATE_BASIC).await;
    dev.publish_acked("tele/th10/SENSOR", SENSOR_DS18B20).await;
    ws.silent().await;
    dev.publish_acked("tele/th10/SENSOR", SENSOR_AM2301).await;
    assert_eq!(
        pushed_params(&mut ws).await,
        (json!(id), json!({"temperature": 21.3, "humidity": 40.1}))
    );
    let d = web_device(&app, &alice, &id).await;
    assert_eq!(d["params"], json!({"temperature": 21.3, "humidity": 40.1}));
}

#[tokio::test]
async fn an_apps_update_reaches_a_tasmota_device_as_commands() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let plug = device(&app, &alice, "01").await;
    let bulb = device(&app, &alice, "02").await;
    let mut ws = ws_app(&app, &alice).await;
    let mut dev = tasmota(&app, &alice, &plug, "plug").await;
    assert_eq!(ws.recv().await["params"], json!({"online": true}));

    // From a WebSocket app: committed (a DIY device), then sent as POWER.
    ws.send(
        json!({"action": "update", "deviceid": plug, "apikey": alice.apikey,
            "userAgent": "app", "params": {"switch": "off"}, "sequence": "1"}),
    )
    .await;
    let ok = loop {
        let msg = ws.recv().await;
        if msg["sequence"] == "1" {
            break msg;
        }
    };
    assert_eq!(ok["error"], 0, "{ok}");
    let command = dev.publish_on("cmnd/plug/POWER").await;
    assert_eq!((&command.payload[..], command.retain), (&b"OFF"[..], false));
    // The device's answer confirms it.
    dev.publish_acked("stat/plug/RESULT", r#"{"POWER":"OFF"}"#)
        .await;
    web_device_until(&app, &alice, &plug, |d| d["params"]["switch"] == "off").await;

    // From an MQTT app's `set`.
    let mut mqtt = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    mqtt.publish_acked(&format!("iotgo/{plug}/set"), r#"{"switch":"on"}"#)
        .await;
    let command = dev.publish_on("cmnd/plug/POWER").await;
    assert_eq!(&command.payload[..], b"ON");
    // From an app over the HTTP Device API.
    let ok = http(
        &app,
        json!({"action": "update", "deviceid": plug, "apikey": alice.apikey,
            "userAgent": "app", "params": {"switch": "off"}}),
    )
    .await;
    assert_eq!(ok["error"], 0, "{ok}");
    let command = dev.publish_on("cmnd/plug/POWER").await;
    assert_eq!(&command.payload[..], b"OFF");

    // A light: Color and Dimmer, then POWER.
    let mut light = tasmota(&app, &alice, &bulb, "bulb").await;
    mqtt.publish_acked(
        &format!("iotgo/{bulb}/set"),
        r##"{"light":"on","brightness":40,"color":"#FF8000"}"##,
    )
    .await;
    let mut sent = Vec::new();
    for cmd in ["Color", "Dimmer", "POWER"] {
        let p = light.publish_on(&format!("cmnd/bulb/{cmd}")).await;
        sent.push(String::from_utf8(p.payload.to_vec()).unwrap());
    }
    assert_eq!(sent, ["#ff8000", "40", "ON"]);
    // The shape of its RESULT (Tasmota 13.x, an RGB bulb after `Color #FF8000`).
    light
        .publish_acked(
            "stat/bulb/RESULT",
            r#"{"POWER":"ON","Dimmer":40,"Color":"663300","HSBColor":"30,100,40","Channel":[40,20,0]}"#,
        )
        .await;
    let d = web_device_until(&app, &alice, &bulb, |d| d["params"]["color"] == "#663300").await;
    assert_eq!(
        d["params"],
        json!({"light": "on", "brightness": 40, "color": "#663300"})
    );
}

#[tokio::test]
async fn a_dropped_tasmota_device_goes_offline_and_a_second_topic_closes_it() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut ws = ws_app(&app, &alice).await;
    let dev = tasmota(&app, &alice, &id, "plug").await;
    assert_eq!(ws.recv().await["params"], json!({"online": true}));
    drop(dev);
    assert_eq!(ws.recv().await["params"], json!({"online": false}));
    web_device_until(&app, &alice, &id, |d| d["online"] == false).await;

    // The topic is the connection's first: another is outside its ACL.
    let mut dev = tasmota(&app, &alice, &id, "plug").await;
    dev.publish_acked("tele/plug/STATE", STATE_BASIC).await;
    dev.publish("tele/other/STATE", STATE_BASIC).await;
    assert!(dev.closed_within(crate::support::WAIT).await);
    // Without a Will, the first publish names it; commands are no one's to publish.
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    dev.publish_acked("stat/kitchen/POWER", "OFF").await;
    assert_eq!(
        dev.subscribe("cmnd/kitchen/#", QoS::AtMostOnce).await,
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    dev.publish("cmnd/kitchen/POWER", "ON").await;
    assert!(dev.closed_within(crate::support::WAIT).await);
    let d = web_device_until(&app, &alice, &id, |d| d["online"] == false).await;
    assert_eq!(d["params"]["switch"], "off");
}

#[tokio::test]
async fn another_user_cannot_drive_a_tasmota_device() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let bob = owner(&app, "bob@example.com").await;
    let id = device(&app, &alice, "01").await;
    let bobs = device(&app, &bob, "01").await;
    let mut dev = tasmota(&app, &alice, &id, "plug").await;
    // Bob's device with the same Tasmota topic gets none of Alice's commands.
    let mut bobs_dev = tasmota(&app, &bob, &bobs, "plug").await;

    // Alice's deviceid with Bob's apikey: refused.
    let will = LastWill::new("tele/plug/LWT", "Offline", QoS::AtMostOnce, true);
    assert_eq!(
        connect_with_will(&app, &id, &bob.apikey, Some(will))
            .await
            .err(),
        Some(ConnectReturnCode::BadUserNamePassword)
    );
    // Bob's app may neither listen to nor set Alice's device.
    let mut bobs_app = connect(&app, &bob.apikey, &bob.apikey).await.unwrap();
    assert_eq!(
        bobs_app.subscribe("cmnd/plug/#", QoS::AtMostOnce).await,
        SubscribeReasonCode::Failure
    );
    bobs_app
        .publish(&format!("iotgo/{id}/set"), r#"{"switch":"off"}"#)
        .await;
    assert!(bobs_app.closed_within(crate::support::WAIT).await);

    // Alice's own update goes to her device only; Bob's then to his only.
    let mut alices_app = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    alices_app
        .publish_acked(&format!("iotgo/{id}/set"), r#"{"switch":"on"}"#)
        .await;
    assert_eq!(&dev.publish_on("cmnd/plug/POWER").await.payload[..], b"ON");
    let mut bobs_app = connect(&app, &bob.apikey, &bob.apikey).await.unwrap();
    bobs_app
        .publish_acked(&format!("iotgo/{bobs}/set"), r#"{"switch":"off"}"#)
        .await;
    let first = bobs_dev.publish_on("cmnd/plug/POWER").await;
    assert_eq!(
        &first.payload[..],
        b"OFF",
        "Bob's device got Alice's command"
    );
    assert_eq!(
        web_device(&app, &alice, &id).await["params"]["switch"],
        "on"
    );
}

#[tokio::test]
async fn energy_readings_carry_the_relay_state_last_reported_or_commanded() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut ws = ws_app(&app, &alice).await;
    // Stored: off.
    let mut dev = tasmota(&app, &alice, &id, "plug").await;
    dev.publish_acked("stat/plug/POWER", "OFF").await;
    dev.disconnect().await;
    web_device_until(&app, &alice, &id, |d| d["online"] == false).await;

    // Switched on at the device: its STATE and SENSOR come back to back (QoS 0, as
    // Tasmota publishes, neither waiting for the other's commit).
    let mut dev = tasmota(&app, &alice, &id, "plug").await;
    dev.publish("tele/plug/STATE", STATE_BASIC).await;
    dev.publish("tele/plug/SENSOR", SENSOR_POW).await;
    dev.publish_acked("tele/plug/INFO1", INFO1).await;
    let mut pushed = Vec::new();
    while pushed.len() < 3 {
        pushed.push(pushed_params(&mut ws).await.1["switch"].clone());
    }
    assert_eq!(pushed, ["off", "on", "on"]);

    // An app's update, committed and commanded: the next reading carries it.
    let mut mqtt = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    mqtt.publish_acked(&format!("iotgo/{id}/set"), r#"{"switch":"off"}"#)
        .await;
    assert_eq!(&dev.publish_on("cmnd/plug/POWER").await.payload[..], b"OFF");
    assert_eq!(pushed_params(&mut ws).await.1["switch"], "off");
    dev.publish_acked("tele/plug/SENSOR", SENSOR_POW).await;
    assert_eq!(pushed_params(&mut ws).await.1["switch"], "off");
}
