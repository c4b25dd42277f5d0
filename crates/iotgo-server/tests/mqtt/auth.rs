//! CONNECT: who may connect, with which credentials, and what a refusal answers.

use crate::client::{connect, connect_packet, mqtt_app, raw, send_until_closed};
use crate::support::{claim, device, device_key, license, owner, web_device, web_device_until};
use rumqttc::ConnectReturnCode;

#[tokio::test]
async fn devices_connect_with_the_owners_apikey_their_device_key_or_their_license() {
    let app = mqtt_app().await;
    // The web app's connect panel learns the port here.
    let (_, config) = app.get("/api/config", None).await;
    assert_eq!(config["mqttPort"], app.mqtt.unwrap().port());
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let key = device_key(&app, &alice, &id).await;
    let (indie, factory_key) = license(&app, "01").await;
    claim(&app, &alice, &indie, &factory_key).await;

    for password in [&alice.apikey, &key] {
        assert!(connect(&app, &id, password).await.is_ok(), "{password}");
    }
    let _indie = connect(&app, &indie, &factory_key).await.expect("license");
    let d = web_device_until(&app, &alice, &indie, |d| d["online"] == true).await;
    assert_eq!(d["online"], true);

    let wrong = "00000000-0000-4000-8000-000000000000";
    for (user, password) in [(&id, wrong), (&id, "not a key"), (&id, &factory_key)] {
        assert_eq!(
            connect(&app, user, password).await.err(),
            Some(ConnectReturnCode::BadUserNamePassword),
            "{user} {password}"
        );
    }
    // A license of a device nobody claimed: right key, nothing to act as.
    let (unclaimed, unclaimed_key) = license(&app, "01").await;
    assert_eq!(
        connect(&app, &unclaimed, &unclaimed_key).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    let (_, metrics) = app.metrics().await;
    assert!(
        metrics.contains("iotgo_mqtt_connects_refused_total 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn apps_connect_with_apikey_or_email_and_a_token_or_the_apikey() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let bob = owner(&app, "bob@example.com").await;
    for (user, password) in [
        (alice.apikey.as_str(), alice.apikey.as_str()),
        ("alice@example.com", alice.apikey.as_str()),
        ("Alice@Example.com", alice.token.as_str()),
        (alice.apikey.as_str(), alice.token.as_str()),
    ] {
        assert!(
            connect(&app, user, password).await.is_ok(),
            "{user} {password}"
        );
    }
    for (user, password) in [
        ("alice@example.com", bob.apikey.as_str()),
        ("alice@example.com", bob.token.as_str()),
        ("alice@example.com", "wrong"),
        ("nobody@example.com", "00000000-0000-4000-8000-000000000000"),
    ] {
        assert_eq!(
            connect(&app, user, password).await.err(),
            Some(ConnectReturnCode::BadUserNamePassword),
            "{user} {password}"
        );
    }
}

#[tokio::test]
async fn a_connect_without_credentials_is_not_authorised() {
    let app = mqtt_app().await;
    let mut connect = rumqttc::Connect::new("anonymous");
    connect.keep_alive = 30;
    let mut buf = bytes::BytesMut::new();
    rumqttc::Packet::Connect(connect)
        .write(&mut buf, usize::MAX)
        .unwrap();
    let mut tcp = raw(&app).await;
    let got = send_until_closed(&mut tcp, &buf).await.expect("closed");
    assert_eq!(got, [0x20, 2, 0, 5]);
}

#[tokio::test]
async fn mqtt_5_is_refused_with_unacceptable_protocol_version() {
    let app = mqtt_app().await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    // A CONNECT as MQTT 5 sends it: protocol level 5, then properties.
    let mut v5 = connect_packet(&id, &alice.apikey, 30);
    v5[8] = 5;
    let mut tcp = raw(&app).await;
    let got = send_until_closed(&mut tcp, &v5).await.expect("closed");
    assert_eq!(got, [0x20, 2, 0, 1]);
    // The device did not come online.
    assert_eq!(web_device(&app, &alice, &id).await["online"], false);
}

#[tokio::test]
async fn failed_connects_are_throttled_like_failed_apikeys() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.mqtt_listen = Some("127.0.0.1:0".parse().unwrap());
        c.rate_limits = true;
        c.device_key_failures_free = 2;
    })
    .await;
    let alice = owner(&app, "alice@example.com").await;
    let id = device(&app, &alice, "01").await;
    let wrong = "00000000-0000-4000-8000-000000000000";
    for _ in 0..2 {
        assert_eq!(
            connect(&app, &id, wrong).await.err(),
            Some(ConnectReturnCode::BadUserNamePassword)
        );
    }
    // Blocked now, even with the right key.
    assert_eq!(
        connect(&app, &id, &alice.apikey).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
}

#[tokio::test]
async fn an_app_logged_in_with_a_token_is_closed_when_it_expires() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.mqtt_listen = Some("127.0.0.1:0".parse().unwrap());
        c.jwt_ttl = std::time::Duration::from_secs(2);
    })
    .await;
    let alice = owner(&app, "alice@example.com").await;
    let mut by_token = connect(&app, "alice@example.com", &alice.token)
        .await
        .unwrap();
    let mut by_apikey = connect(&app, &alice.apikey, &alice.apikey).await.unwrap();
    assert!(
        by_token
            .closed_within(std::time::Duration::from_secs(5))
            .await
    );
    assert!(
        !by_apikey
            .closed_within(std::time::Duration::from_millis(200))
            .await
    );
}
