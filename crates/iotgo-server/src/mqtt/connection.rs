//! One MQTT connection: CONNECT and its authentication, then the packets of the client
//! handed to the connection's [`Session`], and a writer task that empties the session's
//! outgoing queue onto the socket as MQTT packets.
//!
//! What the transport itself sends (CONNACK, SUBACK, PUBACK, retained values, PINGRESP)
//! goes through the same bounded queue as the hub's messages, already encoded (a binary
//! message); the hub's messages are text (Device API JSON), published by the writer on
//! their topic when one of the connection's subscriptions matches it. A client that
//! stops reading fills the queue and is cut off, as a WebSocket is.
//!
//! A Tasmota device's publishes on `stat/<t>/…` and `tele/<t>/…` are updates mapped by
//! [`tasmota`]; its first such publish or its Will fixes `<t>` for the connection.
//!
//! A Will is a publish the client left with its CONNECT, under its ACL (else CONNACK 5):
//! it is handled as if the client had published it when the connection ends without a
//! DISCONNECT (not when the server shuts down, nor when a newer connection takes its
//! device over).
//!
//! Decisions of this slice (docs/mqtt.md): MQTT 5 is refused (CONNACK 1); a persistent
//! session (clean_session=false) is treated as a clean one (session_present=false);
//! QoS 2 publishes close the connection; what the server publishes is QoS 0; a
//! publish outside the client's ACL closes the connection, a filter outside it gets the
//! SUBACK failure code.

use super::reader::Reader;
use super::tasmota;
use super::topics::{self, APP_LEAVES, DEVICE_LEAVES, Scope};
use super::writer::write_out;
use crate::app::AppState;
use crate::device::Session;
use crate::hub::Peer;
use crate::shutdown::Counted;
use axum::extract::ws::Message;
use bytes::{Bytes, BytesMut};
use iotgo_protocol::{DeviceId, ErrorCode};
use parking_lot::Mutex;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck,
};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::time::{Instant, sleep_until};

/// How long a closing connection waits for what is queued to be written.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Who the connection speaks for, proved by its CONNECT.
#[derive(Clone)]
pub(super) enum Role {
    /// A device: its requests carry this deviceid and key.
    Device { id: DeviceId, key: String },
    /// An app of the user with this apikey.
    App { owner: String },
}

/// The subscriptions of a connection, shared by its reader and its writer.
pub(super) type Filters = Arc<Mutex<Vec<String>>>;

/// Serves one accepted connection from `client` to its end.
pub(super) async fn run(state: AppState, io: Counted, client: IpAddr) {
    let api = state.devices.clone();
    let _open = api.track_socket();
    let (read, write) = tokio::io::split(io);
    let mut reader = Reader::new(read, state.config.max_body_bytes);
    let first = tokio::time::timeout(state.config.http_header_timeout, reader.connect()).await;
    let connect = match first {
        Ok(Ok(Ok(connect))) => connect,
        Ok(Ok(Err(code))) => return refuse(write, code).await,
        // Too slow, no MQTT, or gone: closed without a word.
        Ok(Err(_)) | Err(_) => return,
    };
    let (mut session, outbox) = Session::open(api.clone(), state.config.ws_queue_len, client);
    let role = match login(&mut session, &connect).await {
        Ok(role) => role,
        Err(code) => {
            state.metrics.mqtt_connects_refused.increment(1);
            return refuse(write, code).await;
        }
    };
    let peer = session.peer().clone();
    let filters = Filters::default();
    let tasmota = Arc::new(tasmota::Learned::default());
    let mut writer = tokio::spawn(write_out(
        outbox,
        write,
        role.clone(),
        filters.clone(),
        tasmota.clone(),
    ));
    let keep_alive = match connect.keep_alive {
        // No keep-alive asked: the WebSocket's idle timeout bounds a silent connection.
        0 => state.config.ws_idle_timeout,
        secs => Duration::from_millis(u64::from(secs) * 1500),
    };
    let mut conn = Connection {
        state,
        session,
        peer: peer.clone(),
        role,
        filters,
        tasmota,
        acks: VecDeque::new(),
    };
    // The Will: a publish under the connection's ACL, made into its request now.
    let will = match &connect.last_will {
        None => Ok(None),
        Some(w) => {
            let publish = Publish::from_bytes(w.topic.clone(), QoS::AtMostOnce, w.message.clone());
            conn.request(&publish)
                .await
                .map(Some)
                .ok_or(w.topic.clone())
        }
    };
    let will = match will {
        Ok(will) => will,
        Err(topic) => {
            tracing::info!(topic, "MQTT: a Will outside the ACL, refused");
            conn.state.metrics.mqtt_connects_refused.increment(1);
            let refused = ConnAck::new(ConnectReturnCode::NotAuthorized, false);
            send(&peer, Packet::ConnAck(refused));
            drop(conn);
            peer.send(Message::Close(None));
            if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
                writer.abort();
            }
            return;
        }
    };
    // A persistent session is not kept in this slice: never "present".
    send(
        &peer,
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)),
    );
    let mut shutdown = api.shutdown_signal();
    if *shutdown.borrow() {
        shutdown.mark_changed();
    }
    let mut last_heard = Instant::now();
    let end = loop {
        let expiry = conn.session.token_expiry();
        tokio::select! {
            packet = reader.next(), if conn.session.takes_frames() => {
                last_heard = Instant::now();
                match packet {
                    Ok(packet) => {
                        if let Some(end) = Box::pin(conn.handle(packet)).await {
                            break end;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "MQTT: connection closed");
                        break End::Abrupt;
                    }
                }
            }
            () = conn.session.answer_next() => conn.ack_committed(),
            _ = peer.killed() => break End::CutOff,
            _ = shutdown.changed() => break End::Shutdown,
            _ = sleep_until(last_heard + keep_alive) => {
                tracing::debug!("MQTT: keep-alive expired");
                break End::Abrupt;
            }
            _ = sleep_until(expiry.unwrap_or(last_heard)), if expiry.is_some() => {
                break End::Abrupt;
            }
        }
    };
    let will = will.filter(|_| end == End::Abrupt && !api.is_shutting_down());
    let had_will = will.is_some();
    if let Some(will) = will {
        Box::pin(conn.session.receive_json(will)).await;
    }
    if had_will || api.is_shutting_down() {
        // What was read (and the Will) is answered: updates once committed.
        Box::pin(conn.session.answer_all()).await;
        conn.ack_committed();
    }
    drop(conn);
    // What is queued goes out first (a refusal's reason, say), then the socket closes;
    // a client cut off for not reading gets nothing more.
    if end != End::CutOff && peer.send(Message::Close(None)) {
        if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
            writer.abort();
        }
    } else {
        writer.abort();
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client sent DISCONNECT: its Will is dropped.
    Disconnect,
    /// The server shuts down: what was read is answered; no Will.
    Shutdown,
    /// An end the client did not announce (the socket closed, keep-alive expired, a
    /// broken or refused packet, its token expired): its Will is published.
    Abrupt,
    /// Cut off: its queue is full, or a newer connection took its device over. Nothing
    /// more is written to it, and no Will is published.
    CutOff,
}

/// Answers a refused CONNECT and closes.
async fn refuse(mut write: WriteHalf<Counted>, code: ConnectReturnCode) {
    let mut buf = BytesMut::new();
    if ConnAck::new(code, false).write(&mut buf).is_ok() {
        let _ = tokio::time::timeout(CLOSE_WAIT, write.write_all(&buf)).await;
    }
    let _ = write.shutdown().await;
}

/// Checks a CONNECT's credentials: a deviceid as user name makes a device, anything
/// else an app.
async fn login(session: &mut Session, connect: &Connect) -> Result<Role, ConnectReturnCode> {
    let Some(login) = &connect.login else {
        return Err(ConnectReturnCode::NotAuthorized);
    };
    let role = match DeviceId::parse(&login.username) {
        Ok(id) => session
            .connect_device(id.clone(), &login.password)
            .await
            .map(|key| Role::Device { id, key }),
        Err(_) => session
            .connect_app(&login.username, &login.password)
            .await
            .map(|owner| Role::App { owner }),
    };
    role.map_err(|code| match code {
        ErrorCode::BadRequest | ErrorCode::Forbidden => ConnectReturnCode::BadUserNamePassword,
        ErrorCode::Internal => ConnectReturnCode::ServiceUnavailable,
        _ => ConnectReturnCode::NotAuthorized,
    })
}

/// Queues a packet the transport sends (encoded: a binary message). Not queued when the
/// queue is full: the connection is being cut off then.
fn send(peer: &Peer, packet: Packet) {
    let mut buf = BytesMut::new();
    if packet.write(&mut buf, usize::MAX).is_ok() {
        peer.send(Message::Binary(buf.freeze()));
    }
}

/// The reading side's state once connected.
struct Connection {
    state: AppState,
    session: Session,
    peer: Peer,
    role: Role,
    filters: Filters,
    /// What the connection learned of its device when it is a Tasmota device.
    tasmota: Arc<tasmota::Learned>,
    /// QoS 1 publishes waiting for their PUBACK: (the updates of the connection that
    /// must be answered first, packet id), in the order they came.
    acks: VecDeque<(u64, u16)>,
}

impl Connection {
    /// Handles one packet; how the connection ends when it is to close.
    async fn handle(&mut self, packet: Packet) -> Option<End> {
        match packet {
            Packet::Publish(publish) => (!self.publish(publish).await).then_some(End::Abrupt),
            Packet::Subscribe(subscribe) => {
                self.subscribe(subscribe).await;
                None
            }
            Packet::Unsubscribe(unsubscribe) => {
                let mut filters = self.filters.lock();
                filters.retain(|f| !unsubscribe.topics.contains(f));
                drop(filters);
                send(
                    &self.peer,
                    Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)),
                );
                None
            }
            Packet::PingReq => {
                send(&self.peer, Packet::PingResp);
                None
            }
            // What the server publishes is QoS 0: nothing to acknowledge.
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => None,
            Packet::Disconnect => Some(End::Disconnect),
            other => {
                tracing::debug!(packet = ?other, "MQTT: unexpected packet, closing");
                Some(End::Abrupt)
            }
        }
    }

    /// A client's publish: a Device API request on its own topic; anything else closes
    /// the connection.
    async fn publish(&mut self, publish: Publish) -> bool {
        if publish.qos == QoS::ExactlyOnce {
            tracing::info!("MQTT: QoS 2 publish refused (not supported), closing");
            return false;
        }
        let Some(request) = self.request(&publish).await else {
            tracing::info!(
                topic = publish.topic,
                "MQTT: publish outside the ACL, closing"
            );
            return false;
        };
        self.session.receive_json(request).await;
        if publish.qos == QoS::AtLeastOnce {
            // Acknowledged once every update queued so far is answered (this one, when
            // it was an update: after its commit), in the order the publishes came.
            self.acks
                .push_back((self.session.updates_queued(), publish.pkid));
            self.ack_committed();
        }
        true
    }

    /// The Device API request a publish makes, when the connection may publish there:
    /// a device on its own `up` (its deviceid and key filled in when left out), an app
    /// on `set` of one of its user's devices (the payload: the params).
    async fn request(&self, publish: &Publish) -> Option<Value> {
        if let Role::Device { id, key } = &self.role
            && let Some((prefix, t, leaf)) = tasmota::split(&publish.topic)
        {
            return self
                .tasmota_update(id, key, (prefix, t, leaf), publish)
                .await;
        }
        let (id, leaf) = topics::published(&publish.topic)?;
        let payload = serde_json::from_slice::<Value>(&publish.payload);
        match &self.role {
            Role::Device { id: own, key } => {
                if leaf != "up" || id != *own {
                    return None;
                }
                let Ok(Value::Object(mut req)) = payload else {
                    // Not an object: ignored, as on WebSocket.
                    return Some(Value::Null);
                };
                match req.get("deviceid") {
                    None => {
                        req.insert("deviceid".into(), Value::from(id.as_str()));
                    }
                    Some(named) if named.as_str() != Some(id.as_str()) => return None,
                    Some(_) => {}
                }
                req.entry("apikey")
                    .or_insert_with(|| Value::from(key.as_str()));
                Some(Value::Object(req))
            }
            Role::App { owner } => {
                if leaf != "set" || !self.session.owns(id.as_str(), owner).await {
                    return None;
                }
                let mut req = Map::new();
                req.insert("action".into(), Value::from("update"));
                req.insert("deviceid".into(), Value::from(id.as_str()));
                req.insert("apikey".into(), Value::from(owner.as_str()));
                req.insert("userAgent".into(), Value::from("app"));
                req.insert("params".into(), payload.unwrap_or(Value::Null));
                Some(Value::Object(req))
            }
        }
    }

    /// The update a Tasmota device's publish on `stat/<t>/…` or `tele/<t>/…` makes
    /// (`null`, ignored, when nothing maps). Its first such publish (or its Will) fixes the
    /// connection's Tasmota topic; one under another topic, or on `cmnd/…`, is outside
    /// the ACL. An on/off param the type requires and the message lacks is the last one
    /// the connection saw, else the stored one.
    async fn tasmota_update(
        &self,
        id: &DeviceId,
        key: &str,
        (prefix, t, leaf): (&str, &str, &str),
        publish: &Publish,
    ) -> Option<Value> {
        if prefix == "cmnd" || !self.tasmota.is_topic(t) {
            return None;
        }
        let ty = id.device_type();
        let Some(mut params) = tasmota::params_in(ty, prefix, leaf, &publish.payload) else {
            return Some(Value::Null);
        };
        if let Some(name) = tasmota::missing_on_off(ty, &params) {
            // The last value this connection saw (no read, and never behind an update
            // of this device still being committed), else the stored one.
            let known = match self.tasmota.on_off() {
                Some(v) => Some(v),
                None => match self.state.store.devices().find(id.as_str()).await {
                    Ok(d) => d.and_then(|d| d.params?.remove(name)),
                    Err(e) => {
                        tracing::error!(error = ?e, "MQTT: reading a Tasmota device's state failed");
                        None
                    }
                },
            };
            let Some(known) = known else {
                return Some(Value::Null);
            };
            params.insert(name.into(), known);
        }
        self.tasmota.remember(ty, &params);
        let req = json!({
            "action": "update",
            "deviceid": id.as_str(),
            "apikey": key,
            "params": params,
        });
        Some(req)
    }

    /// Sends the PUBACKs whose updates are answered.
    fn ack_committed(&mut self) {
        let answered = self.session.updates_answered();
        while let Some(&(after, pkid)) = self.acks.front() {
            if after > answered {
                break;
            }
            self.acks.pop_front();
            send(&self.peer, Packet::PubAck(PubAck::new(pkid)));
        }
    }

    /// Grants each filter within the ACL (at most QoS 1), refuses the others (0x80),
    /// then sends the current values of what the granted ones reach, retained.
    async fn subscribe(&mut self, subscribe: Subscribe) {
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut granted = Vec::new();
        for f in subscribe.filters {
            match self.grant(&f.path).await {
                Some(scope) => {
                    let qos = if f.qos == QoS::AtMostOnce {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    };
                    codes.push(SubscribeReasonCode::Success(qos));
                    // The same filter again replaces the first (one copy of each).
                    let mut filters = self.filters.lock();
                    if !filters.contains(&f.path) {
                        filters.push(f.path.clone());
                    }
                    drop(filters);
                    granted.push((scope, f.path));
                }
                None => codes.push(SubscribeReasonCode::Failure),
            }
        }
        send(
            &self.peer,
            Packet::SubAck(SubAck::new(subscribe.pkid, codes)),
        );
        if let Role::App { owner } = &self.role {
            for (scope, filter) in granted {
                self.retained(owner, scope, &filter).await;
            }
        }
    }

    /// The devices a filter reaches when the connection may subscribe to it; an app
    /// starts watching them (the hub then queues their pushes and presence).
    async fn grant(&mut self, filter: &str) -> Option<Scope> {
        match &self.role {
            // A Tasmota device's own, group and fallback topics (only its own ever
            // carries anything: its commands).
            Role::Device { id, .. }
                if self.tasmota.topic().is_some() && tasmota::may_subscribe(filter) =>
            {
                Some(Scope::Device(id.clone()))
            }
            Role::Device { id, .. } => match topics::scope(filter, DEVICE_LEAVES)? {
                Scope::Device(d) if d == *id => Some(Scope::Device(d)),
                _ => None,
            },
            Role::App { owner } => {
                let owner = owner.clone();
                let scope = topics::scope(filter, APP_LEAVES)?;
                match &scope {
                    Scope::All => self.session.watch_all(&owner),
                    Scope::Device(id) if self.session.owns(id.as_str(), &owner).await => {
                        self.session.watch(id.as_str())
                    }
                    Scope::Device(_) => return None,
                }
                Some(scope)
            }
        }
    }

    /// Publishes, retained, the current `state` and `online` of the devices `scope`
    /// reaches that `filter` matches, as the store has them.
    async fn retained(&self, owner: &str, scope: Scope, filter: &str) {
        let devices = self.state.store.devices();
        let found = match scope {
            Scope::Device(id) => devices
                .find(id.as_str())
                .await
                .map(|d| d.into_iter().collect()),
            Scope::All => devices.owned_by(owner).await,
        };
        let found = match found {
            Ok(found) => found,
            Err(e) => return tracing::error!(error = ?e, "MQTT: reading retained values failed"),
        };
        let filters = [filter.to_owned()];
        for d in found.into_iter().filter(|d| d.apikey == owner) {
            let state = Value::Object(d.params.unwrap_or_default()).to_string();
            let values = [("state", state), ("online", json!(d.online).to_string())];
            for (leaf, payload) in values {
                let topic = format!("iotgo/{}/{leaf}", d.deviceid);
                if topics::wanted(&topic, &filters) {
                    let mut publish =
                        Publish::from_bytes(topic, QoS::AtMostOnce, Bytes::from(payload));
                    publish.retain = true;
                    send(&self.peer, Packet::Publish(publish));
                }
            }
        }
    }
}
