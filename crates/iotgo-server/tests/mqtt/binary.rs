//! The real binary: its start-up log says whether and where MQTT listens, and a taken
//! address is a start error.

use crate::client::connect_packet;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::support::{Binary, start_binary};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The first log line containing `text`, waited for.
async fn line_with(server: &Binary, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = server.log.lock().unwrap().iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line with {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_start_up_log_says_whether_and_where_mqtt_listens() {
    let dir = tempfile::tempdir().unwrap();
    let off = start_binary(&dir.path().join("off"), None, &[]).await;
    line_with(&off, "MQTT: off (set mqtt_listen, e.g. 0.0.0.0:1883)").await;

    let on = start_binary(
        &dir.path().join("on"),
        None,
        &[("IOTGO_MQTT_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let line = line_with(&on, "MQTT: listening on ").await;
    let addr = line
        .split("MQTT: listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address");
    let addr: std::net::SocketAddr = addr.parse().expect("a socket address");
    assert_ne!(addr.port(), 0);
    // It speaks MQTT there: a device nobody created is refused.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connect = connect_packet("0100000001", "00000000-0000-4000-8000-000000000000", 30);
    tcp.write_all(&connect).await.unwrap();
    let mut connack = [0u8; 4];
    tcp.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 2, 0, 4]);
}

#[tokio::test]
async fn an_mqtt_address_that_cannot_be_bound_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_iotgo"))
            .arg("serve")
            .env("IOTGO_LISTEN", "127.0.0.1:0")
            .env("IOTGO_MQTT_LISTEN", &addr)
            .env("IOTGO_DATA_DIR", dir.path())
            .env("IOTGO_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("IOTGO_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("NO_COLOR", "1")
            .output(),
    )
    .await
    .expect("it exits")
    .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "MQTT: cannot listen on {addr} (mqtt_listen / IOTGO_MQTT_LISTEN)"
        )),
        "{text}"
    );
}
