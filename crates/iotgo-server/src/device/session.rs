//! A connection's session: one per WebSocket or MQTT connection, owned by the
//! connection's task.
//!
//! The transport (`api::ws`, `mqtt`) only moves frames: it hands each request to
//! [`Session::receive`] and polls [`Session::answer_next`]; the session applies the Device
//! API's rules itself and queues its answers on the connection's [`Peer`], the queue the
//! hub pushes into too, which the transport's writer empties onto the socket. MQTT
//! authenticates the whole connection at its CONNECT (`session/connect.rs`).
//!
//! The original's rules: a device's first successful request binds the connection to it
//! (online, `sysmsg`); an app subscribes to a device with any successful request for it;
//! answers from devices to forwarded commands (`{"error":…,"sequence":…}`) complete the
//! waiting app's request; anything else that is not a request is ignored. Added here:
//! `{"action":"subscribe", "apikey"|"jwt", …}` subscribes a connection to all of a user's
//! devices. Dropping the session unbinds and unsubscribes it, and marks the devices it held
//! offline. A connection subscribed by token is cut when the token expires (the transport
//! waits for [`Session::token_expiry`]) or is retired (the hub holds its version); one
//! whose key dies is cut by the hub (`hub/credentials.rs`).
//!
//! A session pipelines its updates: while an update waits for its group commit, the next
//! frames are taken and queued too (up to [`PIPELINE`]), so one busy device fills a batch
//! with several updates and its acks leave with one write. Answers keep the order of the
//! requests: any other request first waits for the updates before it (a `query` then reads
//! what they wrote).
//!
//! The update action itself lives here too (queue it in the group commit, then push and
//! answer once committed): the HTTP transport's [`DeviceApi::request`] completes it at once.

use super::presence::Connecting;
use super::writer::Written;
use super::{Access, DeviceApi, Outcome, Reply, answer_code};
use crate::auth::{self, TokenRefused};
use crate::hub::{Outbox, Peer};
use crate::metrics::DeviceAction;
use crate::store::{Millis, StateWrite};
use axum::extract::ws::{Message, Utf8Bytes};
use iotgo_protocol::message::{indie_answer, kind, sender};
use iotgo_protocol::{Action, Answer, ApiKey, DeviceId, Echo, ErrorCode, Kind, Request, Sender};
use serde_json::{Map, Value};
use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Most updates of one connection waiting for their commit; past it the transport stops
/// reading until the oldest is answered ([`Session::takes_frames`]).
const PIPELINE: usize = 32;

/// An update queued in the group commit, waiting for its batch to commit.
pub(super) struct Committing {
    wait: oneshot::Receiver<Written>,
    deviceid: DeviceId,
    echo: Echo,
    access: Access,
    /// The push, serialised once for every watcher.
    frame: Utf8Bytes,
    /// An app updated a DIY device: the device's own socket gets the push too, with the
    /// device key in place of the owner's apikey when it is bound by its device key.
    to_device: Option<Utf8Bytes>,
    /// The sending connection, never echoed its own update.
    except: Option<u64>,
}

impl Committing {
    /// Resolves once the update's batch ended, with what became of the update.
    /// Cancel-safe: the update stays queued and this can be awaited again.
    async fn committed(&mut self) -> Written {
        (&mut self.wait).await.unwrap_or(Written::Failed)
    }

    /// After [`Committing::committed`] said what became of the update: pushes a committed
    /// update to the device's watchers (and, when an app sent it, to the device's own
    /// socket: two-way for every device) and gives the answer; a refused or failed one
    /// is answered its error (400 "Device State Too Large", 500).
    fn complete(self, api: &DeviceApi, written: Written) -> Reply {
        let error = match written {
            Written::Committed => None,
            Written::TooLarge => Some(ErrorCode::StateTooLarge),
            Written::Failed => Some(ErrorCode::Internal),
        };
        let code = error.map_or(0, ErrorCode::code);
        api.metrics.device_request(DeviceAction::Update, code);
        if let Some(error) = error {
            return Reply::plain(self.deviceid, self.echo.error(error));
        }
        let id = self.deviceid.as_str();
        let to_device = self.to_device.as_ref();
        api.fan_out(id, self.access.owner(), &self.frame, self.except, to_device);
        Reply {
            answer: self.echo.ok().to_value(),
            deviceid: self.deviceid,
            access: Some(self.access),
        }
    }

    /// Waits for the commit, then completes.
    pub(super) async fn finish(mut self, api: &DeviceApi) -> Reply {
        let written = self.committed().await;
        self.complete(api, written)
    }
}

/// An update pushed to the apps watching a device (and to a DIY device's own socket).
#[derive(serde::Serialize)]
struct Push<'a> {
    action: &'static str,
    deviceid: &'a str,
    apikey: &'a str,
    params: &'a Map<String, Value>,
}

impl DeviceApi {
    /// An update (its `params` taken out of `req`): refused, forwarded (an app's command
    /// to an indie device) or queued in the group commit. `raw` is the request as
    /// received (forwarded to indie devices), `except` the sending connection (never
    /// echoed its own update).
    pub(super) async fn update(
        self: &Arc<Self>,
        req: Request,
        params: Map<String, Value>,
        raw: &Map<String, Value>,
        except: Option<u64>,
    ) -> Outcome {
        let outcome = match self.authorise(&req).await {
            Err(answer) => Outcome::Done(Reply::plain(req.deviceid, answer)),
            // Bounded before the writer (and before a forward): one device cannot take
            // the group commit for itself.
            Ok(_) if !self.throttle.update(req.deviceid.as_str()) => {
                let answer = req.echo.error(ErrorCode::TooManyRequests);
                Outcome::Done(Reply::plain(req.deviceid, answer))
            }
            Ok(access) if req.sender == Sender::App && req.deviceid.is_indie() => {
                self.forward(req, raw, params, access, except)
            }
            Ok(access) => {
                Outcome::Committing(self.submit_update(req, params, access, except).await)
            }
        };
        // Committing and forwarded updates are counted once they are answered.
        if let Outcome::Done(reply) = &outcome {
            self.metrics
                .device_request(DeviceAction::Update, answer_code(&reply.answer));
        }
        outcome
    }

    /// Queues an update in the group commit; its push goes out once it committed.
    pub(super) async fn submit_update(
        &self,
        req: Request,
        params: Map<String, Value>,
        access: Access,
        except: Option<u64>,
    ) -> Committing {
        let id = req.deviceid.as_str();
        // Serialised straight from the params (no copy into a `Value`), then the params
        // move into the write.
        let serialise = |apikey: &str| {
            let push = Push {
                action: "update",
                deviceid: id,
                apikey,
                params: &params,
            };
            Utf8Bytes::from(serde_json::to_string(&push).expect("a JSON object always serialises"))
        };
        let frame = serialise(access.owner());
        let to_device = (req.sender == Sender::App && !req.deviceid.is_indie())
            .then(|| serialise(&access.keys.device));
        let write = StateWrite::Merge {
            deviceid: id.to_owned(),
            params,
            at: Millis::now(),
            seen: req.sender == Sender::Device,
        };
        let wait = self.writer.submit_update(write).await;
        Committing {
            wait,
            to_device,
            deviceid: req.deviceid,
            echo: req.echo,
            access,
            frame,
            except,
        }
    }
}

/// An update of this connection waiting for its commit, with what its answer needs.
struct Pending {
    update: Committing,
    from_device: bool,
    /// The sender is an indie device: its answer keeps the firmware's quirks.
    indie_sender: bool,
}

/// One connection's state in the Device API: what it is bound to and watches, and its
/// pipeline of updates. Dropping it unregisters everything, whatever way the connection
/// ends, and marks the devices it held offline.
pub struct Session {
    api: Arc<DeviceApi>,
    /// The connection as the hub knows it: its outgoing queue.
    peer: Peer,
    /// Devices this connection speaks for.
    bound: HashSet<String>,
    /// Devices this (app) connection watches.
    watching: HashSet<String>,
    /// Users whose devices this (app) connection watches.
    users: HashSet<String>,
    /// Updates waiting for their commit, oldest first.
    pending: VecDeque<Pending>,
    /// A device just bound, on its way online: finished before anything else happens.
    /// (Boxed: it lives for one commit per binding, and would otherwise widen every idle
    /// connection's task.)
    connecting: Option<Box<Connecting>>,
    /// This connection watches devices: it is counted as a connected app.
    app: bool,
    /// The earliest expiry of the tokens this (app) connection subscribed with: the
    /// connection is cut then.
    token_expiry: Option<tokio::time::Instant>,
    /// Commands forwarded to indie devices, waiting for their answers.
    forwarded: JoinSet<()>,
    /// The client address of the upgrade request, for the throttle of failed apikeys.
    client: IpAddr,
    /// This connection's own updates are pushed to it too (MQTT: a subscriber of a
    /// device's `state` sees every change, its own included); WebSocket apps are never
    /// echoed theirs.
    own_pushes: bool,
    /// Updates queued in the pipeline, and answered, since the connection opened.
    updates_queued: u64,
    updates_answered: u64,
}

impl Session {
    /// A new connection from `client` with an outgoing queue of `queue_len` messages: its
    /// session, and the outbox its writer takes the messages from.
    pub fn open(api: Arc<DeviceApi>, queue_len: usize, client: IpAddr) -> (Session, Outbox) {
        let (peer, outbox) = api.hub.peer(queue_len);
        let session = Session {
            api,
            peer,
            bound: HashSet::new(),
            watching: HashSet::new(),
            users: HashSet::new(),
            pending: VecDeque::new(),
            connecting: None,
            app: false,
            token_expiry: None,
            forwarded: JoinSet::new(),
            client,
            own_pushes: false,
            updates_queued: 0,
            updates_answered: 0,
        };
        (session, outbox)
    }

    /// The connection as the hub knows it (the transport's pings and close frame go
    /// through it; it is told when the connection must close).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// When the connection must be cut because the token it subscribed with expires;
    /// `None` when it subscribed with no token.
    pub fn token_expiry(&self) -> Option<tokio::time::Instant> {
        self.token_expiry
    }

    /// Whether the transport may read the next frame: false while the most updates one
    /// connection may pipeline (32) wait for their commit.
    pub fn takes_frames(&self) -> bool {
        self.pending.len() < PIPELINE
    }

    /// Updates this connection queued in the group commit so far (the `n`th one queued
    /// is answered once [`Session::updates_answered`] reaches `n`): MQTT acknowledges a
    /// publish only after its update committed.
    pub fn updates_queued(&self) -> u64 {
        self.updates_queued
    }

    /// Updates of this connection answered so far, in the order they were queued.
    pub fn updates_answered(&self) -> u64 {
        self.updates_answered
    }

    /// One text frame from the client: a request, a device's answer to a forwarded
    /// command, or `subscribe`. Non-JSON frames and JSON that is not an object are
    /// ignored, as in the original. Awaited to its end, never raced: an update returns
    /// once queued, any other request once answered.
    pub async fn receive(&mut self, text: &str) {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            self.receive_json(value).await;
        }
    }

    /// [`Session::receive`] of a message parsed already (MQTT builds requests from a
    /// publish's topic and payload); anything but an object is ignored.
    pub async fn receive_json(&mut self, value: Value) {
        let Value::Object(raw) = value else {
            return;
        };
        self.settle().await;
        if raw.get("action").and_then(Value::as_str) == Some("subscribe") {
            self.drain().await;
            let answer = Box::pin(self.subscribe(&raw)).await;
            return self.send(answer);
        }
        match kind(&raw) {
            Kind::Other => {}
            Kind::Answer => self.api.device_answered(&self.bound, &raw),
            Kind::Request => self.request(raw).await,
        }
    }

    /// Answers the oldest pipelined update once its batch ended, and applies what it
    /// proved (binding, subscription, presence); pending while no update waits.
    /// Cancel-safe (the transport races it with its reads and timers): a cancelled wait
    /// leaves the update queued, and a device on its way online gets there first thing
    /// next time.
    pub async fn answer_next(&mut self) {
        self.settle().await;
        let Some(oldest) = self.pending.front_mut() else {
            return std::future::pending().await;
        };
        let written = oldest.update.committed().await;
        let p = self
            .pending
            .pop_front()
            .expect("the oldest update stays queued until it is answered here");
        self.updates_answered += 1;
        let reply = p.update.complete(&self.api, written);
        self.answered(reply, p.from_device, p.indie_sender);
        self.settle().await;
    }

    /// At shutdown: answers what was read — the pipelined updates once committed, and
    /// the forwarded commands (the hub ended their wait: 503).
    pub async fn answer_all(&mut self) {
        self.drain().await;
        self.settle().await;
        while self.forwarded.join_next().await.is_some() {}
    }

    fn send(&self, answer: Value) {
        self.peer.send(Message::Text(answer.to_string().into()));
    }

    /// Finishes a device's way online, if one is under way. Boxed: it runs once per
    /// binding, and an idle connection's task then holds only a pointer for it.
    async fn settle(&mut self) {
        if let Some(connecting) = &mut self.connecting {
            Box::pin(connecting.finish(&self.api)).await;
            self.connecting = None;
        }
    }

    /// Answers every pending update, in order.
    async fn drain(&mut self) {
        while !self.pending.is_empty() {
            self.answer_next().await;
        }
    }

    /// Whether this connection may forward one more command to an indie device: fewer
    /// than `max_pending_commands` wait for their device's answer. Each waits (a task, an
    /// entry in the hub) up to the pending-request timeout; past the bound an app gets 429
    /// at once, and its command is not sent.
    fn may_forward(&mut self) -> bool {
        while self.forwarded.try_join_next().is_some() {}
        self.forwarded.len() < self.api.max_pending_commands
    }

    async fn request(&mut self, raw: Map<String, Value>) {
        let mut req = match self.api.parse(&raw) {
            Ok(req) => req,
            Err(answer) => {
                self.drain().await;
                let indie_sender = sender(&raw) == Sender::Device && names_indie(&raw);
                return self.send(for_sender(indie_sender, answer.to_value()));
            }
        };
        let from_device = req.sender == Sender::Device;
        let indie_sender = from_device && req.deviceid.is_indie();
        if let Err(answer) = self.api.admit(&req, self.client) {
            self.drain().await;
            return self.send(for_sender(indie_sender, answer));
        }
        let Action::Update(params) = &mut req.action else {
            self.drain().await;
            let reply = self.api.respond(req).await;
            self.answered(reply, from_device, indie_sender);
            return self.settle().await;
        };
        let params = std::mem::take(params);
        if req.sender == Sender::App && req.deviceid.is_indie() && !self.may_forward() {
            self.drain().await;
            let answer = req.echo.error(ErrorCode::TooManyRequests);
            self.api
                .metrics
                .device_request(DeviceAction::Update, answer.error);
            return self.send(answer.to_value());
        }
        match self
            .api
            .update(
                req,
                params,
                &raw,
                (!self.own_pushes).then(|| self.peer.id()),
            )
            .await
        {
            Outcome::Committing(update) => {
                self.updates_queued += 1;
                self.pending.push_back(Pending {
                    update,
                    from_device,
                    indie_sender,
                });
            }
            Outcome::Done(reply) => {
                self.drain().await;
                self.answered(reply, from_device, indie_sender);
                self.settle().await;
            }
            Outcome::Forwarded(forwarded) => {
                self.drain().await;
                // Only apps' commands are forwarded: subscribe now, answer when the device does.
                self.watch(forwarded.deviceid().as_str());
                let peer = self.peer.clone();
                self.forwarded.spawn(async move {
                    let reply = forwarded.finish().await;
                    peer.send(Message::Text(reply.answer.to_string().into()));
                });
            }
        }
    }

    /// Sends a reply, then applies what it proved: a device's request binds this
    /// connection to the device (see [`Session::settle`] for the rest of its way online),
    /// an app's subscribes it to the device.
    fn answered(&mut self, reply: Reply, from_device: bool, indie_sender: bool) {
        self.api.key_checked(self.client, &reply.answer);
        self.send(for_sender(indie_sender, reply.answer));
        let Some(access) = reply.access else { return };
        let id = reply.deviceid.as_str();
        if !from_device {
            return self.watch(id);
        }
        // Bound already: the hub holds this connection for the device (a newer socket
        // that took the device over has told this one to close).
        if self.bound.contains(id) {
            return;
        }
        if self.bound.is_empty() {
            tracing::Span::current().record("deviceid", id);
        }
        self.bound.insert(id.to_owned());
        self.connecting = self.api.device_bound(reply.deviceid, access, &self.peer);
    }

    /// Counts this connection as a connected app, once.
    fn is_app(&mut self) {
        if !std::mem::replace(&mut self.app, true) {
            self.api.metrics.apps_ws.increment(1);
        }
    }

    /// Watches one device (an app's request for it, or its subscription).
    pub fn watch(&mut self, deviceid: &str) {
        self.is_app();
        if !self.watching.contains(deviceid) {
            self.watching.insert(deviceid.to_owned());
            self.api.hub.watch(deviceid, &self.peer);
        }
    }

    /// `{"action":"subscribe","apikey":…}` or `{"action":"subscribe","jwt":…}`: watch every
    /// device of the user, current and future.
    async fn subscribe(&mut self, raw: &Map<String, Value>) -> Value {
        let echo = Echo::of(raw);
        let user = match self.api.throttle.admits(self.client) {
            true => self.user_of(raw).await,
            false => Err(ErrorCode::TooManyRequests),
        };
        if user == Err(ErrorCode::Forbidden) {
            self.api.throttle.key_refused(self.client);
        }
        let answer = match user {
            Ok((owner, expires)) => {
                if let Some(expires) = expires {
                    self.expires_at(expires);
                }
                self.is_app();
                self.api.hub.watch_user(&owner, &self.peer);
                let answer = Answer {
                    apikey: Some(Value::from(owner.as_str())),
                    ..echo.ok()
                };
                self.users.insert(owner);
                answer
            }
            Err(code) => echo.error(code),
        };
        self.api
            .metrics
            .device_request(DeviceAction::Subscribe, answer.error);
        answer.to_value()
    }

    /// Cuts the connection when a token expiring at `expires` (seconds since the epoch)
    /// does, if it is the first to.
    fn expires_at(&mut self, expires: i64) {
        let left = expires
            .saturating_sub(chrono::Utc::now().timestamp())
            .max(0);
        let at = tokio::time::Instant::now() + std::time::Duration::from_secs(left as u64);
        self.token_expiry = Some(self.token_expiry.map_or(at, |t| t.min(at)));
    }

    /// The apikey of the user a `subscribe` names, by a signed-in user's token (the one
    /// rule for tokens: [`auth::signed_in_user`]; then with the token's expiry, and the
    /// hub holds its version, so that retiring it cuts this connection) or by apikey. The
    /// user's e-mail address goes into the connection's span.
    async fn user_of(&self, raw: &Map<String, Value>) -> Result<(String, Option<i64>), ErrorCode> {
        let api = &self.api;
        match (raw.get("jwt"), raw.get("apikey")) {
            (Some(Value::String(token)), _) => {
                match auth::signed_in_user(&api.jwt, &api.store, token).await {
                    // Retired since it was checked: refused as if it had been then.
                    Ok(s)
                        if !api.hub.hold_token(
                            &s.user.user.apikey,
                            s.user.token_version,
                            &self.peer,
                        ) =>
                    {
                        Err(ErrorCode::Forbidden)
                    }
                    Ok(s) => Ok((s.user.user.apikey, Some(s.expires))),
                    Err(TokenRefused::Invalid | TokenRefused::Admin) => Err(ErrorCode::Forbidden),
                    Err(TokenRefused::Store(_)) => Err(ErrorCode::Internal),
                }
            }
            (_, Some(Value::String(key))) => {
                let key = ApiKey::parse(key).map_err(|_| ErrorCode::BadRequest)?;
                match api.store.users().find_by_apikey(key.as_str()).await {
                    Ok(Some(user)) => {
                        tracing::Span::current().record("user", user.user.email.as_str());
                        Ok((user.user.apikey, None))
                    }
                    Ok(None) => Err(ErrorCode::Forbidden),
                    Err(_) => Err(ErrorCode::Internal),
                }
            }
            _ => Err(ErrorCode::BadRequest),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let api = &self.api;
        if self.app {
            api.metrics.apps_ws.decrement(1);
        }
        api.hub.leave(self.peer.id(), &self.watching, &self.users);
        // A command the device answers later still commits its update.
        self.forwarded.detach_all();
        // At shutdown every device is marked offline at once, after the last commit
        // (`DeviceApi::shutdown`); no sysmsg to apps whose connections close too.
        if self.bound.is_empty() || api.hub.is_shutting_down() {
            return;
        }
        let (api, peer_id) = (api.clone(), self.peer.id());
        let bound = std::mem::take(&mut self.bound);
        let connecting = self.connecting.take();
        tokio::spawn(async move {
            // A device on its way online gets there first, as it would have had the
            // connection stayed.
            if let Some(mut connecting) = connecting {
                connecting.finish(&api).await;
            }
            for id in bound {
                api.device_disconnected(&id, peer_id).await;
            }
        });
    }
}

/// Whether a request that could not be parsed names an indie device.
fn names_indie(raw: &Map<String, Value>) -> bool {
    raw.get("deviceid")
        .and_then(Value::as_str)
        .and_then(|d| DeviceId::parse(d).ok())
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

mod connect;
#[cfg(test)]
mod tests;
