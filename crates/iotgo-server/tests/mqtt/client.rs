//! An MQTT client for the tests (rumqttc's event loop, polled in place), a raw socket
//! for what a well-behaved client never sends, and a server with MQTT on.

use crate::helpers::{TestApp, spawn_app_with};
use crate::support::WAIT;
use bytes::BytesMut;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, Publish, QoS, SubscribeReasonCode,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server with MQTT on a port of its own.
pub(crate) async fn mqtt_app() -> TestApp {
    spawn_app_with(|c| c.mqtt_listen = Some("127.0.0.1:0".parse().unwrap())).await
}

/// A connected client; publishes that come while it waits for something else are kept.
pub(crate) struct Client {
    pub client: AsyncClient,
    events: EventLoop,
    publishes: VecDeque<Publish>,
}

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Connects with `username` and `password`; the CONNACK's refusal code when refused.
pub(crate) async fn connect(
    app: &TestApp,
    username: &str,
    password: &str,
) -> Result<Client, ConnectReturnCode> {
    connect_with_will(app, username, password, None).await
}

/// [`connect`] leaving a Will.
pub(crate) async fn connect_with_will(
    app: &TestApp,
    username: &str,
    password: &str,
    will: Option<LastWill>,
) -> Result<Client, ConnectReturnCode> {
    let addr = app.mqtt.expect("MQTT is on");
    connect_to(addr, username, password, will).await
}

/// [`connect_with_will`] to the MQTT listener at `addr` (a node of a cluster).
pub(crate) async fn connect_to(
    addr: std::net::SocketAddr,
    username: &str,
    password: &str,
    will: Option<LastWill>,
) -> Result<Client, ConnectReturnCode> {
    let id = format!("test-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_credentials(username, password);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(2 << 20, 2 << 20);
    if let Some(will) = will {
        options.set_last_will(will);
    }
    let (client, mut events) = AsyncClient::new(options, 16);
    loop {
        let event = tokio::time::timeout(WAIT, events.poll())
            .await
            .expect("a CONNACK in time");
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                assert_eq!(ack.code, ConnectReturnCode::Success);
                assert!(!ack.session_present);
                break;
            }
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(e) => panic!("connect failed: {e}"),
        }
    }
    Ok(Client {
        client,
        events,
        publishes: VecDeque::new(),
    })
}

impl Client {
    /// The next incoming packet other than a publish (those are kept for
    /// [`Client::publish_on`]); `None` when the connection ended or nothing came in time.
    async fn next_packet(&mut self, wait: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.poll())
                .await
                .ok()?;
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => self.publishes.push_back(p),
                Ok(Event::Incoming(packet)) => return Some(packet),
                Ok(Event::Outgoing(_)) => {}
                Err(_) => return None,
            }
        }
    }

    /// Subscribes to `filter`; the SUBACK's code.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubscribeReasonCode {
        self.client.subscribe(filter, qos).await.unwrap();
        loop {
            match self.next_packet(WAIT).await.expect("a SUBACK") {
                Packet::SubAck(ack) => return ack.return_codes[0],
                _ => continue,
            }
        }
    }

    /// Publishes at QoS 1 and waits for its PUBACK.
    pub(crate) async fn publish_acked(&mut self, topic: &str, payload: &str) {
        self.publish_acked_as(topic, payload, false).await;
    }

    /// Publishes at QoS 1, retained (as Tasmota publishes its LWT), and waits for its
    /// PUBACK.
    pub(crate) async fn publish_retained_acked(&mut self, topic: &str, payload: &str) {
        self.publish_acked_as(topic, payload, true).await;
    }

    async fn publish_acked_as(&mut self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        loop {
            match self.next_packet(WAIT).await.expect("a PUBACK") {
                Packet::PubAck(_) => return,
                _ => continue,
            }
        }
    }

    /// The packet ids of the next `n` PUBACKs, in the order they came.
    pub(crate) async fn pubacks(&mut self, n: usize) -> Vec<u16> {
        let mut pkids = Vec::with_capacity(n);
        while pkids.len() < n {
            if let Packet::PubAck(ack) = self.next_packet(WAIT).await.expect("a PUBACK") {
                pkids.push(ack.pkid);
            }
        }
        pkids
    }

    /// Publishes at QoS 0, and returns once the client took it (it is written as the
    /// client is polled next: by a wait for what comes back).
    pub(crate) async fn publish(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
        loop {
            let event = tokio::time::timeout(WAIT, self.events.poll()).await;
            match event.expect("written in time") {
                Ok(Event::Outgoing(Outgoing::Publish(_))) | Err(_) => return,
                Ok(Event::Incoming(Packet::Publish(p))) => self.publishes.push_back(p),
                Ok(_) => {}
            }
        }
    }

    /// The next publish on `topic` (others are kept), which must come.
    pub(crate) async fn publish_on(&mut self, topic: &str) -> Publish {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(i) = self.publishes.iter().position(|p| p.topic == topic) {
                return self.publishes.remove(i).expect("found");
            }
            let Ok(event) = tokio::time::timeout_at(deadline, self.events.poll()).await else {
                panic!("no publish on {topic}");
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => self.publishes.push_back(p),
                Ok(_) => {}
                Err(e) => panic!("closed while waiting for {topic}: {e}"),
            }
        }
    }

    /// The next publish on `topic` as JSON.
    pub(crate) async fn json_on(&mut self, topic: &str) -> serde_json::Value {
        let p = self.publish_on(topic).await;
        serde_json::from_slice(&p.payload).unwrap()
    }

    /// Says DISCONNECT, and waits for the server to close.
    pub(crate) async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        assert!(self.closed_within(WAIT).await);
    }

    /// Whether the server closes the connection within `wait`.
    pub(crate) async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.poll()).await {
                Err(_) => return false,
                Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// A raw socket to the MQTT listener.
pub(crate) async fn raw(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.mqtt.expect("MQTT is on"))
        .await
        .unwrap()
}

/// A CONNECT of MQTT 3.1.1 with these credentials and keep-alive, encoded.
pub(crate) fn connect_packet(username: &str, password: &str, keep_alive: u16) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new("raw");
    connect.keep_alive = keep_alive;
    connect.set_login(username, password);
    let mut buf = BytesMut::new();
    Packet::Connect(connect)
        .write(&mut buf, usize::MAX)
        .unwrap();
    buf.to_vec()
}

/// Sends `bytes`, then reads what comes until the server closes; `None` when it did not
/// close within the wait.
pub(crate) async fn send_until_closed(tcp: &mut TcpStream, bytes: &[u8]) -> Option<Vec<u8>> {
    // (The server may close before all is written.)
    let _ = tcp.write_all(bytes).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}
