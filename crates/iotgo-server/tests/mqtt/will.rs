//! Will messages: published for a client whose connection ends without DISCONNECT.

use crate::client::{connect, connect_with_will, mqtt_app};
use crate::support::{device, owner, web_device_until};
use rumqttc::{ConnectReturnCode, LastWill, QoS};
use serde_json::json;

#[tokio::test]
async fn a_devices_will_is_its_request_when_it_vanishes_not_when_it_says_goodbye() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut watcher = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    watcher
        .subscribe(&format!("iotgo/{id}/#"), QoS::AtMostOnce)
        .await;
    let state = format!("iotgo/{id}/state");
    let online = format!("iotgo/{id}/online");
    assert_eq!(&watcher.publish_on(&state).await.payload[..], b"{}");
    assert_eq!(&watcher.publish_on(&online).await.payload[..], b"false");
    let will = || {
        let off = json!({"action": "update", "params": {"switch": "off"}});
        Some(LastWill::new(
            format!("iotgo/{id}/up"),
            off.to_string(),
            QoS::AtLeastOnce,
            false,
        ))
    };
    let on = json!({"action": "update", "params": {"switch": "on"}}).to_string();

    // A DISCONNECT: the Will is dropped.
    let mut dev = connect_with_will(&app, &id, &alice.apikey, will())
        .await
        .unwrap();
    dev.publish_acked(&format!("iotgo/{id}/up"), &on).await;
    dev.disconnect().await;
    assert_eq!(&watcher.publish_on(&online).await.payload[..], b"true");
    assert_eq!(watcher.json_on(&state).await, json!({"switch": "on"}));
    assert_eq!(&watcher.publish_on(&online).await.payload[..], b"false");

    // Vanished (the socket closed without a DISCONNECT): the Will is its last update.
    let mut dev = connect_with_will(&app, &id, &alice.apikey, will())
        .await
        .unwrap();
    assert_eq!(&watcher.publish_on(&online).await.payload[..], b"true");
    dev.publish_acked(&format!("iotgo/{id}/up"), &on).await;
    assert_eq!(watcher.json_on(&state).await, json!({"switch": "on"}));
    drop(dev);
    assert_eq!(watcher.json_on(&state).await, json!({"switch": "off"}));
    assert_eq!(&watcher.publish_on(&online).await.payload[..], b"false");
    let d = web_device_until(&app, &alice, &id, |d| d["online"] == false).await;
    assert_eq!(d["params"]["switch"], "off");
}

#[tokio::test]
async fn a_will_outside_the_acl_is_not_authorised() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let bob = owner(&app, "bob@example.com").await;
    let id = device(&app, &alice, "01").await;
    let bobs = device(&app, &bob, "01").await;
    let set = |d: &str| {
        Some(LastWill::new(
            format!("iotgo/{d}/set"),
            r#"{"switch":"on"}"#,
            QoS::AtMostOnce,
            false,
        ))
    };
    assert_eq!(
        connect_with_will(&app, &bob.apikey, &bob.apikey, set(&id))
            .await
            .err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        connect_with_will(&app, &bobs, &bob.apikey, set(&bobs))
            .await
            .err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    // An app's Will on its own device's `set` is taken.
    let app_conn = connect_with_will(&app, &bob.apikey, &bob.apikey, set(&bobs)).await;
    assert!(app_conn.is_ok());
}
