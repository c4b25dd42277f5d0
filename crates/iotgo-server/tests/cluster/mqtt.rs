//! MQTT on a cluster: an MQTT connection hangs on its node's hub like a WebSocket, so
//! pushes and commands cross nodes for it as for one.

use crate::client::connect_to;
use crate::harness::Cluster;
use crate::helpers::{device, owner};
use crate::rules::query;
use crate::support::Ws;
use rumqttc::QoS;
use serde_json::json;

#[tokio::test]
async fn mqtt_devices_and_apps_on_different_nodes_see_each_other() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(3).await;
    let (on0, on1) = (c.mqtt(0).await, c.mqtt(1).await);

    // The device on node 0, an MQTT app on node 1, a WebSocket app on node 2.
    let mut dev = connect_to(on0, &sw, &k, None).await.expect("device");
    assert_eq!(
        dev.subscribe(&format!("iotgo/{sw}/down"), QoS::AtLeastOnce)
            .await,
        rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let mut app = connect_to(on1, &k, &k, None).await.expect("app");
    app.subscribe(&format!("iotgo/{sw}/state"), QoS::AtLeastOnce)
        .await;
    assert_eq!(app.json_on(&format!("iotgo/{sw}/state")).await, json!({}));
    let mut ws = Ws::connect_to(c.base(2)).await;
    assert_eq!(ws.call(query(&sw, &k, true)).await["error"], 0);

    // The device's update, acked once committed on node 0, reaches both apps.
    let up = json!({"action": "update", "params": {"switch": "on"}}).to_string();
    dev.publish_acked(&format!("iotgo/{sw}/up"), &up).await;
    let answer = dev.json_on(&format!("iotgo/{sw}/down")).await;
    assert_eq!(answer["error"], 0, "{answer}");
    assert_eq!(
        app.json_on(&format!("iotgo/{sw}/state")).await,
        json!({"switch": "on"})
    );
    assert_eq!(ws.recv().await["params"], json!({"switch": "on"}));

    // The MQTT app's `set` on node 1 reaches the device's connection on node 0.
    app.publish_acked(&format!("iotgo/{sw}/set"), r#"{"switch":"off"}"#)
        .await;
    let command = dev.json_on(&format!("iotgo/{sw}/down")).await;
    assert_eq!(command["action"], "update", "{command}");
    assert_eq!(command["params"], json!({"switch": "off"}), "{command}");
    assert_eq!(ws.recv().await["params"], json!({"switch": "off"}));
}
