//! `/api/ws`: the Device API over WebSocket, one JSON object per text frame.
//!
//! The original's rules: a device's first successful request binds the socket to it
//! (online, `sysmsg`); an app subscribes to a device with any successful request for it;
//! answers from devices to forwarded commands (`{"error":…,"sequence":…}`) complete the
//! waiting app's request; anything else that is not a request is ignored. Added here:
//! `{"action":"subscribe", "apikey"|"jwt", …}` subscribes a socket to all of a user's
//! devices, and every connection has a bounded outgoing queue, a first-frame timeout and
//! an idle timeout (pings keep a healthy peer talking).
//!
//! A connection pipelines its updates: while an update waits for its group commit, the
//! next frames are read and queued too (up to `PIPELINE`), so one busy device fills a
//! batch with several updates and its acks leave with one write. Answers keep the order
//! of the requests: any other request first waits for the updates before it (a `query`
//! then reads what they wrote).
//!
//! At shutdown a connection stops reading, answers what it read (its pipelined updates
//! once committed, its forwarded commands), sends a close frame 1001 (going away) and
//! reads on to the client's close frame, so the TCP connection ends cleanly.

use crate::app::AppState;
use crate::auth::{self, TokenRefused};
use crate::device::{Committing, DeviceApi, Outcome, Reply};
use crate::hub::Peer;
use crate::metrics::DeviceAction;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use iotgo_protocol::message::{indie_answer, kind};
use iotgo_protocol::{Action, ApiKey, Echo, ErrorCode, Kind, Sender};
use serde_json::{Map, Value};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

/// The route of this transport.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/ws", get(upgrade))
}

async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    if state.devices.hub.is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let max = state.config.max_body_bytes;
    // Small buffers: the defaults (128 KiB to read, 128 KiB before a write) cost ~140 KiB
    // per idle device. The read buffer grows for a larger message when one comes.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| {
            // The socket outlives the upgrade request and its span: it gets its own.
            let span = tracing::info_span!(
                "ws",
                deviceid = tracing::field::Empty,
                user = tracing::field::Empty,
            );
            run(state, socket).instrument(span)
        })
}

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 1024;
/// Bytes gathered before a write while the writer batches queued messages.
const WRITE_BUFFER: usize = 16 * 1024;
/// Most queued messages written with one flush.
const WRITE_BATCH: usize = 64;
/// Most updates of one connection waiting for their commit; past it the socket is not
/// read until the oldest is answered.
const PIPELINE: usize = 32;
/// How long a closing connection waits for its close frame to be written, and then for
/// the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// An update of this connection waiting for its commit, with what its answer needs.
struct Pending {
    committing: Committing,
    deviceid: String,
    from_device: bool,
    /// The sender is an indie device: its answer keeps the firmware's quirks.
    indie_sender: bool,
}

/// One connection's registrations; dropping it unregisters everything, whatever way the
/// connection ends, and marks the devices it held offline.
struct Connection {
    state: AppState,
    peer: Peer,
    /// Devices this socket speaks for.
    bound: HashSet<String>,
    /// Devices this (app) socket watches.
    watching: HashSet<String>,
    /// Users whose devices this (app) socket watches.
    users: HashSet<String>,
    /// Updates waiting for their commit, oldest first.
    pending: VecDeque<Pending>,
    /// This socket watches devices: it is counted as a connected app.
    app: bool,
    /// Commands forwarded to indie devices, waiting for their answers.
    forwarded: JoinSet<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let api = &self.state.devices;
        if self.app {
            api.metrics.apps_ws.decrement(1);
        }
        api.hub.leave(self.peer.id(), &self.watching, &self.users);
        // A command the device answers later still commits its update.
        self.forwarded.detach_all();
        let (api, peer_id) = (api.clone(), self.peer.id());
        let bound: Vec<String> = self.bound.drain().collect();
        // At shutdown every device is marked offline at once, after the last commit
        // (`DeviceApi::shutdown`); no sysmsg to apps whose sockets close too.
        if !bound.is_empty() && !api.hub.is_shutting_down() {
            tokio::spawn(async move {
                for id in bound {
                    api.device_disconnected(&id, peer_id).await;
                }
            });
        }
    }
}

async fn run(state: AppState, socket: WebSocket) {
    let config = state.config.clone();
    let (peer, queue) = state.devices.hub.peer(config.ws_queue_len);
    let _open = state.devices.hub.track_socket();
    let mut shutdown = state.devices.hub.shutdown_signal();
    if *shutdown.borrow() {
        // Began between the upgrade and here: close at once.
        shutdown.mark_changed();
    }
    let (mut sink, mut stream) = socket.split();
    // The writer owns the sink: a client that stops reading blocks only this task. What
    // is already queued goes out with one flush (one syscall for a burst of pushes).
    let mut writer = tokio::spawn(async move {
        'out: loop {
            let msg = queue.recv().await;
            let mut close = matches!(msg, Message::Close(_));
            let mut next = Some(msg);
            let mut batched = 0;
            while let Some(msg) = next.take() {
                if sink.feed(msg).await.is_err() {
                    break 'out;
                }
                batched += 1;
                if !close && batched < WRITE_BATCH {
                    next = queue.try_recv();
                    close = matches!(next, Some(Message::Close(_)));
                }
            }
            if sink.flush().await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut conn = Connection {
        state,
        peer: peer.clone(),
        bound: HashSet::new(),
        watching: HashSet::new(),
        users: HashSet::new(),
        pending: VecDeque::new(),
        app: false,
        forwarded: JoinSet::new(),
    };
    let idle = config.ws_idle_timeout.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(Instant::now() + idle / 2, idle / 2);
    let first_deadline = Instant::now() + config.ws_first_frame_timeout;
    let mut first_seen = false;
    let mut last_heard = Instant::now();
    let polite = loop {
        tokio::select! {
            msg = stream.next(), if conn.pending.len() < PIPELINE => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        first_seen = true;
                        // Boxed, as every rarely running await of this loop: the task of
                        // an idle connection then holds only what waiting needs.
                        Box::pin(conn.on_text(&text)).await;
                    }
                    Some(Ok(Message::Binary(_))) => first_seen = true,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
                }
            }
            ok = conn.oldest_committed(), if !conn.pending.is_empty() => {
                Box::pin(conn.complete_oldest(ok)).await;
            }
            _ = peer.killed() => break false,
            _ = shutdown.changed() => break true,
            _ = sleep_until(first_deadline), if !first_seen => break true,
            _ = sleep_until(last_heard + idle) => break true,
            _ = ping.tick() => { peer.send(Message::Ping(Default::default())); }
        }
    };
    let going_away = polite && conn.state.devices.hub.is_shutting_down();
    if going_away {
        Box::pin(conn.answer_all()).await;
    }
    drop(conn);
    let frame = going_away.then(|| CloseFrame {
        code: close_code::AWAY,
        reason: "server shutting down".into(),
    });
    if polite && peer.send(Message::Close(frame)) {
        if tokio::time::timeout(CLOSE_WAIT, &mut writer).await.is_err() {
            writer.abort();
        }
        if going_away {
            // Closing with the client's close frame unread would reset the connection.
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    } else {
        writer.abort();
    }
}

impl Connection {
    fn send(&self, value: &Value) {
        self.peer.send(Message::Text(value.to_string().into()));
    }

    async fn on_text(&mut self, text: &str) {
        // Non-JSON frames and JSON that is not an object are ignored, as in the original.
        let Ok(Value::Object(raw)) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if raw.get("action").and_then(Value::as_str) == Some("subscribe") {
            self.drain().await;
            let answer = Box::pin(self.subscribe(&raw)).await;
            return self.send(&answer);
        }
        match kind(&raw) {
            Kind::Other => {}
            Kind::Answer => self.state.devices.device_answered(&self.bound, &raw),
            Kind::Request => self.request(raw).await,
        }
    }

    /// Resolves when the oldest pending update's batch ended (true: committed).
    async fn oldest_committed(&mut self) -> bool {
        match self.pending.front_mut() {
            Some(p) => p.committing.committed().await,
            None => std::future::pending().await,
        }
    }

    /// Answers and pushes the oldest pending update, whose batch ended.
    async fn complete_oldest(&mut self, ok: bool) {
        if let Some(p) = self.pending.pop_front() {
            let reply = p.committing.complete(&self.state.devices, ok);
            self.finish(&p.deviceid, p.from_device, p.indie_sender, reply)
                .await;
        }
    }

    /// At shutdown: answers the pending updates and the forwarded commands (the hub ended
    /// their wait).
    async fn answer_all(&mut self) {
        self.drain().await;
        while self.forwarded.join_next().await.is_some() {}
    }

    /// Answers every pending update, in order.
    async fn drain(&mut self) {
        while !self.pending.is_empty() {
            let ok = self.oldest_committed().await;
            self.complete_oldest(ok).await;
        }
    }

    async fn request(&mut self, raw: Map<String, Value>) {
        let api = self.state.devices.clone();
        let req = match api.parse(&raw) {
            Ok(req) => req,
            Err(answer) => {
                self.drain().await;
                let indie_sender = DeviceApi::from_device(&raw) && is_indie(&raw);
                return self.send(&for_sender(indie_sender, answer.to_value()));
            }
        };
        let from_device = req.sender == Sender::Device;
        let indie_sender = from_device && req.deviceid.is_indie();
        if !matches!(req.action, Action::Update(_)) {
            self.drain().await;
        }
        let deviceid = req.deviceid.as_str().to_owned();
        match api.handle(req, &raw, Some(self.peer.id())).await {
            Outcome::Committing(committing) => self.pending.push_back(Pending {
                committing,
                deviceid,
                from_device,
                indie_sender,
            }),
            Outcome::Done(reply) => {
                self.drain().await;
                self.finish(&deviceid, from_device, indie_sender, reply)
                    .await
            }
            Outcome::Forwarded(forwarded) => {
                self.drain().await;
                // Only apps' commands are forwarded: subscribe now, answer when the device does.
                self.watch(&deviceid);
                let peer = self.peer.clone();
                while self.forwarded.try_join_next().is_some() {}
                self.forwarded.spawn(async move {
                    let reply = forwarded.finish().await;
                    peer.send(Message::Text(reply.answer.to_string().into()));
                });
            }
        }
    }

    async fn finish(
        &mut self,
        deviceid: &str,
        from_device: bool,
        indie_sender: bool,
        reply: Reply,
    ) {
        self.send(&for_sender(indie_sender, reply.answer));
        let Some(owner) = reply.owner else { return };
        if from_device {
            if self.bound.is_empty() {
                tracing::Span::current().record("deviceid", deviceid);
            }
            self.bound.insert(deviceid.to_owned());
            let api = self.state.devices.clone();
            api.device_connected(deviceid, &owner, &self.peer).await;
        } else {
            self.watch(deviceid);
        }
    }

    /// Counts this socket as a connected app, once.
    fn is_app(&mut self) {
        if !std::mem::replace(&mut self.app, true) {
            self.state.metrics.apps_ws.increment(1);
        }
    }

    fn watch(&mut self, deviceid: &str) {
        self.is_app();
        if self.watching.insert(deviceid.to_owned()) {
            self.state.devices.hub.watch(deviceid, &self.peer);
        }
    }

    /// `{"action":"subscribe","apikey":…}` or `{"action":"subscribe","jwt":…}`: watch every
    /// device of the user, current and future.
    async fn subscribe(&mut self, raw: &Map<String, Value>) -> Value {
        let echo = Echo::of(raw);
        let answer = self.subscribe_owner(raw, echo).await;
        let code = crate::device::answer_code(&answer);
        self.state
            .metrics
            .device_request(DeviceAction::Subscribe, code);
        answer
    }

    async fn subscribe_owner(&mut self, raw: &Map<String, Value>, echo: Echo) -> Value {
        let owner = match (raw.get("jwt"), raw.get("apikey")) {
            (Some(Value::String(token)), _) => self.user_of_token(token).await,
            (_, Some(Value::String(key))) => match ApiKey::parse(key) {
                Ok(key) => match self.state.store.users().find_by_apikey(key.as_str()).await {
                    Ok(user) => user
                        .map(|u| user_apikey(u.user))
                        .ok_or(ErrorCode::Forbidden),
                    Err(_) => Err(ErrorCode::Internal),
                },
                Err(_) => Err(ErrorCode::BadRequest),
            },
            _ => Err(ErrorCode::BadRequest),
        };
        match owner {
            Ok(owner) => {
                self.is_app();
                self.state.devices.hub.watch_user(&owner, &self.peer);
                let answer = iotgo_protocol::Answer {
                    apikey: Some(Value::from(owner.clone())),
                    ..echo.ok()
                };
                self.users.insert(owner);
                answer.to_value()
            }
            Err(code) => echo.error(code).to_value(),
        }
    }

    async fn user_of_token(&self, token: &str) -> Result<String, ErrorCode> {
        match auth::signed_in_user(&self.state, token).await {
            Ok(user) => Ok(user.user.apikey),
            Err(TokenRefused::Invalid | TokenRefused::Admin) => Err(ErrorCode::Forbidden),
            Err(TokenRefused::Store(_)) => Err(ErrorCode::Internal),
        }
    }
}

/// The apikey of a socket's user, whose e-mail address goes into the socket's span.
fn user_apikey(user: crate::store::User) -> String {
    tracing::Span::current().record("user", user.email.as_str());
    user.apikey
}

/// Whether a request that could not be parsed names an indie device.
fn is_indie(raw: &Map<String, Value>) -> bool {
    raw.get("deviceid")
        .and_then(Value::as_str)
        .and_then(|d| iotgo_protocol::DeviceId::parse(d).ok())
        .is_some_and(|d| d.is_indie())
}

/// Answers to indie devices keep the original's firmware quirks.
fn for_sender(indie_sender: bool, answer: Value) -> Value {
    if indie_sender {
        indie_answer(answer)
    } else {
        answer
    }
}
