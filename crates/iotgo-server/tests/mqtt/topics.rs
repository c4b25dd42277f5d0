//! Topics: device requests and answers, retained state and presence, app updates and
//! commands, the ACL, and every transport seeing every other.

use crate::client::{connect, mqtt_app};
use crate::support::{Ws, claim, device, license, owner, web_device, web_device_until};
use rumqttc::{QoS, SubscribeReasonCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_qos1_update_is_acked_after_it_committed_and_answered_on_down() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    let down = format!("iotgo/{id}/down");
    assert_eq!(
        dev.subscribe(&down, QoS::AtLeastOnce).await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let up = format!("iotgo/{id}/up");
    for (n, state) in ["on", "off", "on"].iter().enumerate() {
        let update = json!({"action": "update", "params": {"switch": state}, "sequence": n});
        dev.publish_acked(&up, &update.to_string()).await;
        // Acked: committed, so the Web API reads it at once.
        let d = web_device(&app, &alice, &id).await;
        assert_eq!(d["params"]["switch"], *state);
        let answer = dev.json_on(&down).await;
        assert_eq!(
            answer,
            json!({"error": 0, "deviceid": id, "apikey": alice.apikey, "sequence": n})
        );
    }
    // Other requests: answered on down too.
    dev.publish(
        &up,
        &json!({"action": "query", "params": ["switch"]}).to_string(),
    )
    .await;
    let answer = dev.json_on(&down).await;
    assert_eq!(answer["params"], json!({"switch": "on"}));
    assert_eq!(web_device(&app, &alice, &id).await["online"], true);
}

#[tokio::test]
async fn subscribers_get_the_current_state_and_presence_retained() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let other = device(&app, &alice, "01").await;
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    dev.publish_acked(
        &format!("iotgo/{id}/up"),
        &json!({"action": "update", "params": {"switch": "on"}}).to_string(),
    )
    .await;

    let mut alice_app = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    assert_eq!(
        alice_app.subscribe("iotgo/+/state", QoS::AtLeastOnce).await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let state = alice_app.publish_on(&format!("iotgo/{id}/state")).await;
    assert!(state.retain);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&state.payload).unwrap(),
        json!({"switch": "on"})
    );
    let state = alice_app.publish_on(&format!("iotgo/{other}/state")).await;
    assert_eq!(&state.payload[..], b"{}");

    // QoS 2 asked: granted 1.
    assert_eq!(
        alice_app
            .subscribe(&format!("iotgo/{id}/online"), QoS::ExactlyOnce)
            .await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let online = alice_app.publish_on(&format!("iotgo/{id}/online")).await;
    assert!(online.retain);
    assert_eq!(&online.payload[..], b"true");

    // Live: the device leaves, then the state changes over HTTP.
    drop(dev);
    let online = alice_app.publish_on(&format!("iotgo/{id}/online")).await;
    assert!(!online.retain);
    assert_eq!(&online.payload[..], b"false");
    crate::support::http(
        &app,
        json!({"action": "update", "deviceid": other, "apikey": alice.apikey,
            "params": {"switch": "on"}}),
    )
    .await;
    let state = alice_app.json_on(&format!("iotgo/{other}/state")).await;
    assert_eq!(state, json!({"switch": "on"}));
}

#[tokio::test]
async fn users_can_neither_read_nor_write_each_others_devices() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let bob = owner(&app, "bob@example.com").await;
    let id = device(&app, &alice, "01").await;
    let bobs = device(&app, &bob, "01").await;

    let mut bob_app = connect(&app, &bob.apikey, &bob.apikey).await.unwrap();
    for filter in [
        format!("iotgo/{id}/state"),
        format!("iotgo/{id}/#"),
        format!("iotgo/{bobs}/down"),
        "#".to_owned(),
        "iotgo/+/up".to_owned(),
    ] {
        assert_eq!(
            bob_app.subscribe(&filter, QoS::AtMostOnce).await,
            SubscribeReasonCode::Failure,
            "{filter}"
        );
    }
    // `iotgo/+/state` is granted, and reaches Bob's devices only.
    bob_app.subscribe("iotgo/+/state", QoS::AtMostOnce).await;
    let first = bob_app.publish_on(&format!("iotgo/{bobs}/state")).await;
    assert_eq!(&first.payload[..], b"{}");
    let mut alice_dev = connect(&app, &id, &alice.apikey).await.unwrap();
    alice_dev
        .publish_acked(
            &format!("iotgo/{id}/up"),
            &json!({"action": "update", "params": {"switch": "on"}}).to_string(),
        )
        .await;
    let mut bob_dev = connect(&app, &bobs, &bob.apikey).await.unwrap();
    bob_dev
        .publish_acked(
            &format!("iotgo/{bobs}/up"),
            &json!({"action": "update", "params": {"switch": "off"}}).to_string(),
        )
        .await;
    // Bob's next state is his own device's: Alice's update never reached him.
    let next = bob_app.publish_on(&format!("iotgo/{bobs}/state")).await;
    assert_eq!(&next.payload[..], br#"{"switch":"off"}"#);

    // Writing Alice's device: the connection is closed, the state unchanged.
    bob_app
        .publish(&format!("iotgo/{id}/set"), r#"{"switch":"off"}"#)
        .await;
    assert!(bob_app.closed_within(Duration::from_secs(3)).await);
    // A device connection publishing for another device: closed too.
    bob_dev
        .publish(
            &format!("iotgo/{bobs}/up"),
            &json!({"action": "update", "deviceid": id, "params": {"switch": "off"}}).to_string(),
        )
        .await;
    assert!(bob_dev.closed_within(Duration::from_secs(3)).await);
    // Bob's apikey does not open Alice's device either.
    assert!(connect(&app, &id, &bob.apikey).await.is_err());
    assert_eq!(
        web_device(&app, &alice, &id).await["params"]["switch"],
        "on"
    );
}

#[tokio::test]
async fn updates_cross_transports_both_ways() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    // A WebSocket app, and a device on WebSocket.
    let mut ws_app = Ws::connect(&app).await;
    let ok = ws_app
        .call(json!({"action": "subscribe", "apikey": alice.apikey}))
        .await;
    assert_eq!(ok["error"], 0);
    let mut ws_dev = Ws::connect(&app).await;
    let ok = ws_dev
        .call(
            json!({"action": "update", "deviceid": id, "apikey": alice.apikey,
            "params": {"switch": "off"}}),
        )
        .await;
    assert_eq!(ok["error"], 0);
    // Its push and its sysmsg, in either order.
    let mut actions = [ws_app.recv().await, ws_app.recv().await].map(|m| m["action"].clone());
    actions.sort_by_key(|a| a.to_string());
    assert_eq!(actions, [json!("sysmsg"), json!("update")]);

    // MQTT app → WebSocket app and device.
    let mut mqtt_app = connect(&app, "alice@example.com", &alice.token)
        .await
        .unwrap();
    mqtt_app
        .subscribe(&format!("iotgo/{id}/#"), QoS::AtLeastOnce)
        .await;
    assert_eq!(
        mqtt_app.json_on(&format!("iotgo/{id}/state")).await,
        json!({"switch": "off"})
    );
    mqtt_app
        .publish_acked(&format!("iotgo/{id}/set"), r#"{"switch":"on"}"#)
        .await;
    assert_eq!(
        web_device(&app, &alice, &id).await["params"]["switch"],
        "on"
    );
    let answer = mqtt_app.json_on(&format!("iotgo/{id}/answer")).await;
    assert_eq!(
        answer,
        json!({"error": 0, "deviceid": id, "apikey": alice.apikey})
    );
    // Its own update shows on `state` too.
    assert_eq!(
        mqtt_app.json_on(&format!("iotgo/{id}/state")).await,
        json!({"switch": "on"})
    );
    let push = ws_app.recv().await;
    assert_eq!(
        push,
        json!({"action": "update", "deviceid": id, "apikey": alice.apikey,
            "params": {"switch": "on"}})
    );
    assert_eq!(ws_dev.recv().await["params"], json!({"switch": "on"}));

    // WebSocket device → MQTT app.
    ws_dev
        .call(
            json!({"action": "update", "deviceid": id, "apikey": alice.apikey,
            "params": {"switch": "off"}}),
        )
        .await;
    assert_eq!(
        mqtt_app.json_on(&format!("iotgo/{id}/state")).await,
        json!({"switch": "off"})
    );

    // An invalid update: the answer comes on `answer`, nothing is stored.
    mqtt_app
        .publish_acked(&format!("iotgo/{id}/set"), r#"{"switch":"sideways"}"#)
        .await;
    let answer = mqtt_app.json_on(&format!("iotgo/{id}/answer")).await;
    assert_eq!(answer["error"], 400);
    assert_eq!(
        web_device(&app, &alice, &id).await["params"]["switch"],
        "off"
    );
}

#[tokio::test]
async fn commands_reach_indie_devices_over_mqtt_and_offline_ones_answer_503() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let (indie, factory_key) = license(&app, "01").await;
    claim(&app, &alice, &indie, &factory_key).await;
    let mut alice_app = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    alice_app
        .subscribe(&format!("iotgo/{indie}/answer"), QoS::AtMostOnce)
        .await;

    // Offline: 503.
    alice_app
        .publish_acked(&format!("iotgo/{indie}/set"), r#"{"switch":"on"}"#)
        .await;
    let answer = alice_app.json_on(&format!("iotgo/{indie}/answer")).await;
    assert_eq!(answer["error"], 503);

    let mut dev = connect(&app, &indie, &factory_key).await.unwrap();
    let down = format!("iotgo/{indie}/down");
    dev.subscribe(&down, QoS::AtMostOnce).await;
    web_device_until(&app, &alice, &indie, |d| d["online"] == true).await;
    // An app's command over WebSocket, then over MQTT: the device gets both on `down`
    // and answers each on `up`.
    let mut ws_app = Ws::connect(&app).await;
    ws_app
        .send(
            json!({"action": "update", "deviceid": indie, "apikey": alice.apikey,
            "userAgent": "app", "params": {"switch": "on"}, "sequence": "ws-1"}),
        )
        .await;
    let command = dev.json_on(&down).await;
    assert_eq!(
        (&command["params"], &command["sequence"]),
        (&json!({"switch": "on"}), &json!("ws-1"))
    );
    dev.publish_acked(
        &format!("iotgo/{indie}/up"),
        &json!({"error": 0, "sequence": "ws-1"}).to_string(),
    )
    .await;
    let answer = ws_app.recv().await;
    assert_eq!(
        (&answer["error"], &answer["sequence"]),
        (&json!(0), &json!("ws-1"))
    );

    alice_app
        .publish_acked(&format!("iotgo/{indie}/set"), r#"{"switch":"off"}"#)
        .await;
    let command = dev.json_on(&down).await;
    assert_eq!(command["params"], json!({"switch": "off"}));
    dev.publish_acked(
        &format!("iotgo/{indie}/up"),
        &json!({"error": 0, "sequence": command["sequence"]}).to_string(),
    )
    .await;
    let answer = alice_app.json_on(&format!("iotgo/{indie}/answer")).await;
    assert_eq!(answer["error"], 0);
    let d = web_device_until(&app, &alice, &indie, |d| d["params"]["switch"] == "off").await;
    assert_eq!(d["online"], true);
}

#[tokio::test]
async fn pipelined_qos1_updates_are_acked_in_order_once_committed() {
    // (Fewer than the client's request queue holds: it is polled only after.)
    const N: u16 = 12;
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "00").await;
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    // All sent before any PUBACK is read.
    for n in 0..N {
        let update = json!({"action": "update", "params": {"n": n}}).to_string();
        dev.client
            .publish(format!("iotgo/{id}/up"), QoS::AtLeastOnce, false, update)
            .await
            .unwrap();
    }
    let acked = dev.pubacks(usize::from(N)).await;
    assert_eq!(acked, (1..=N).collect::<Vec<_>>());
    // The last one acked is the one stored.
    assert_eq!(web_device(&app, &alice, &id).await["params"]["n"], N - 1);
}
