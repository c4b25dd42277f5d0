//! What a broken or silent client gets: closed, without harm to anyone else.

use crate::client::{connect, connect_packet, mqtt_app, raw, send_until_closed};
use crate::support::{device, owner, web_device, web_device_until};
use rumqttc::QoS;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn garbage_and_oversized_packets_are_closed_and_the_server_goes_on() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut watcher = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    watcher
        .subscribe(&format!("iotgo/{id}/state"), QoS::AtMostOnce)
        .await;
    watcher.publish_on(&format!("iotgo/{id}/state")).await;

    // Not MQTT at all.
    let mut tcp = raw(&app).await;
    let got = send_until_closed(&mut tcp, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(got, Some(Vec::new()));
    // A CONNECT, then garbage.
    let mut tcp = raw(&app).await;
    let mut bytes = connect_packet(&id, &alice.apikey, 30);
    bytes.extend_from_slice(&[0xff; 64]);
    let got = send_until_closed(&mut tcp, &bytes).await.expect("closed");
    assert_eq!(&got[..4], [0x20, 2, 0, 0]);
    // A publish larger than max_body_bytes (64 KiB): closed when its header announces it.
    let mut tcp = raw(&app).await;
    let mut bytes = connect_packet(&id, &alice.apikey, 30);
    let mut big = bytes::BytesMut::new();
    let payload = vec![b'x'; 70 * 1024];
    rumqttc::Packet::Publish(rumqttc::Publish::new(
        format!("iotgo/{id}/up"),
        QoS::AtMostOnce,
        payload,
    ))
    .write(&mut big, usize::MAX)
    .unwrap();
    bytes.extend_from_slice(&big);
    assert!(send_until_closed(&mut tcp, &bytes).await.is_some());

    // Everyone else is served as before.
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    dev.publish_acked(
        &format!("iotgo/{id}/up"),
        &json!({"action": "update", "params": {"switch": "on"}}).to_string(),
    )
    .await;
    assert_eq!(
        watcher.json_on(&format!("iotgo/{id}/state")).await,
        json!({"switch": "on"})
    );
    let (status, _) = app.get("/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_device_silent_past_its_keep_alive_goes_offline() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut tcp = raw(&app).await;
    tcp.write_all(&connect_packet(&id, &alice.apikey, 1))
        .await
        .unwrap();
    let mut connack = [0u8; 4];
    tcp.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    web_device_until(&app, &alice, &id, |d| d["online"] == true).await;
    // Nothing more is sent: after 1.5 s the server closes and the device is offline.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        tcp.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "not closed within 3 s");
    let d = web_device_until(&app, &alice, &id, |d| d["online"] == false).await;
    assert_eq!(d["online"], false);
    assert_eq!(web_device(&app, &alice, &id).await["online"], false);
}

#[tokio::test]
async fn a_connect_must_come_in_time() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.mqtt_listen = Some("127.0.0.1:0".parse().unwrap());
        c.http_header_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let mut tcp = raw(&app).await;
    let got = send_until_closed(&mut tcp, &[]).await;
    assert_eq!(got, Some(Vec::new()));
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_cut_off_and_others_keep_up() {
    const PUSHES: usize = 40;
    let app = crate::helpers::spawn_app_with(|c| {
        c.mqtt_listen = Some("127.0.0.1:0".parse().unwrap());
        c.ws_queue_len = 4;
        c.max_body_bytes = 1 << 20;
        c.max_params_keys = 1 << 20;
    })
    .await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "00").await;
    let state = format!("iotgo/{id}/state");
    // Subscribes, then reads nothing more.
    let mut stuck = raw(&app).await;
    stuck
        .write_all(&connect_packet(&alice.apikey, &alice.apikey, 0))
        .await
        .unwrap();
    let mut subscribe = bytes::BytesMut::new();
    rumqttc::Packet::Subscribe(rumqttc::Subscribe::new(&state, QoS::AtMostOnce))
        .write(&mut subscribe, usize::MAX)
        .unwrap();
    stuck.write_all(&subscribe).await.unwrap();
    let mut reader = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    reader.subscribe(&state, QoS::AtMostOnce).await;
    reader.publish_on(&state).await;

    let big = "z".repeat(512 * 1024);
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    let send_all = async {
        for n in 0..PUSHES {
            let update = json!({"action": "update", "params": {"n": n, "blob": big}});
            dev.publish_acked(&format!("iotgo/{id}/up"), &update.to_string())
                .await;
        }
    };
    let read_all = async {
        for n in 0..PUSHES {
            assert_eq!(reader.json_on(&state).await["n"], n);
        }
    };
    tokio::join!(send_all, read_all);
    // The stuck one was closed: what it had not read ends, then the connection.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stuck.read_to_end(&mut rest),
    )
    .await;
    assert!(matches!(closed, Ok(Ok(_))), "not closed");
    let (_, metrics) = app.metrics().await;
    assert!(metrics.contains("iotgo_peers_cut_off_total 1"), "{metrics}");
}

#[tokio::test]
async fn mqtt_connections_are_held_to_the_connection_caps() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.mqtt_listen = Some("127.0.0.1:0".parse().unwrap());
        c.rate_limits = true;
        c.max_connections_per_ip = 3;
    })
    .await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    // Counted with HTTP's: the test's HTTP client holds one keep-alive connection.
    let _first = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    let _second = connect(&app, &id, &alice.apikey).await.unwrap();
    // A fourth connection from the same address: closed at once, no CONNACK.
    let mut tcp = raw(&app).await;
    let got = send_until_closed(&mut tcp, &connect_packet(&id, &alice.apikey, 30)).await;
    assert_eq!(got, Some(Vec::new()));
    let (_, metrics) = app.metrics().await;
    assert!(
        metrics.contains(r#"iotgo_connections_refused_total{reason="per_ip"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_shutdown_closes_mqtt_connections_and_marks_devices_offline() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    let mut watcher = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    watcher.subscribe("iotgo/+/online", QoS::AtMostOnce).await;
    assert_eq!(
        &watcher
            .publish_on(&format!("iotgo/{id}/online"))
            .await
            .payload[..],
        b"true"
    );
    dev.publish_acked(
        &format!("iotgo/{id}/up"),
        &json!({"action": "update", "params": {"switch": "on"}}).to_string(),
    )
    .await;
    let started = std::time::Instant::now();
    // The drain ends long before its timeout (10 s): the MQTT connections closed.
    let app = app.restart().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(dev.closed_within(std::time::Duration::from_secs(1)).await);
    assert!(
        watcher
            .closed_within(std::time::Duration::from_secs(1))
            .await
    );
    let d = web_device(&app, &alice, &id).await;
    assert_eq!(
        (&d["online"], &d["params"]["switch"]),
        (&json!(false), &json!("on"))
    );
}

#[tokio::test]
async fn a_qos2_publish_closes_the_connection() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let mut dev = connect(&app, &id, &alice.apikey).await.unwrap();
    let update = json!({"action": "update", "params": {"switch": "on"}}).to_string();
    dev.client
        .publish(format!("iotgo/{id}/up"), QoS::ExactlyOnce, false, update)
        .await
        .unwrap();
    assert!(dev.closed_within(std::time::Duration::from_secs(3)).await);
    // Not taken: the device's state is as it was.
    let d = web_device(&app, &alice, &id).await;
    assert_eq!(d["params"], json!({}));
}
