//! The Device API's domain: what `register`, `update`, `query` and `date` do, for every
//! transport.
//!
//! A request's path: authorise from the [`Owners`] cache (403), then act: updates are
//! committed through the group-commit [`Writer`] and fanned out by the [`Hub`]; an app's
//! update for an indie device is forwarded to the device's socket and completes when the
//! device answers (503 offline, 504 no answer in time), as in the original.
//!
//! Throttles (`crate::throttle`), when `rate_limits` is on: a client address that sent too
//! many wrong apikeys (403s) is answered 429 before anything else, from memory; an update
//! past its device's rate is answered 429 after the ownership check, before the writer.
//!
//! A connection's transport (`api::ws`) hands its frames to the connection's [`Session`],
//! which owns what the connection is bound to and watches and its pipeline of updates,
//! and applies the binding, subscription and presence rules itself. A connectionless
//! request (`api::device_http`) is one call, [`DeviceApi::request`].

mod cluster;
mod forward;
mod owners;
mod presence;
mod registry;
mod session;
mod writer;

pub use owners::{KeyKind, Keys, Owners};
pub use registry::Lifecycle;
pub use session::Session;
pub use writer::{Writer, Written};

use crate::auth::Jwt;
use crate::cluster::Bus;
use crate::config::Config;
use crate::history::Recorder;
use crate::hub::Hub;
use crate::metrics::{DeviceAction, Metrics};
use crate::store::{Millis, StateLimits, StateWrite, Store};
use crate::throttle::DeviceThrottle;
use forward::Forwarded;
use iotgo_protocol::{Action, Answer, DeviceId, ErrorCode, Limits, Request, Sender};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use session::Committing;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::AbortOnDropHandle;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// The Device API service, shared by the transports through `AppState`.
pub struct DeviceApi {
    store: Store,
    /// Checks the tokens of `subscribe`.
    jwt: Arc<Jwt>,
    /// Connections, subscriptions and pending commands.
    hub: Hub,
    /// deviceid → owner cache.
    owners: Owners,
    writer: Writer,
    /// Devices online through HTTP polling only: deviceid → last request.
    http_seen: Mutex<HashMap<String, Instant>>,
    /// Bounds on params.
    limits: Limits,
    pending_timeout: Duration,
    /// Most commands one WebSocket may have waiting for indie devices' answers.
    max_pending_commands: usize,
    http_window: Duration,
    /// The presence sweeper.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The server's metrics.
    metrics: Arc<Metrics>,
    /// The writer's task, awaited at shutdown.
    writer_task: Mutex<Option<JoinHandle<()>>>,
    /// Failed apikeys per client address, updates per device.
    throttle: Arc<DeviceThrottle>,
    /// The other nodes, in cluster mode.
    bus: Option<Arc<Bus>>,
}

/// The result of a request that completed.
struct Reply {
    /// The answer to send.
    answer: Value,
    /// The device the request was about.
    deviceid: DeviceId,
    /// Set when the request proved it may act for the device (or, for `register`, the
    /// license of a claimed device): the device's keys and which one was given. A
    /// [`Session`] then binds a device's connection, or subscribes an app's connection,
    /// to the device; a device polling over HTTP stays online.
    access: Option<Access>,
}

/// A request's proof that it may act for a device.
#[derive(Clone)]
struct Access {
    /// The device's keys (the owner's apikey and the device key).
    keys: Arc<Keys>,
    /// Which of them the request gave (`register`: the device key it is answered).
    by: KeyKind,
}

impl Access {
    /// The owner's apikey.
    fn owner(&self) -> &Arc<str> {
        &self.keys.owner
    }
}

impl Reply {
    /// An answer that proves nothing.
    fn plain(deviceid: DeviceId, answer: Answer) -> Self {
        Reply {
            answer: answer.to_value(),
            deviceid,
            access: None,
        }
    }
}

/// What handling a request produced.
// Moved once per request, never stored in bulk: boxing the update would cost an
// allocation per update on the hot path.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    /// The answer is ready.
    Done(Reply),
    /// An update is queued in the group commit; it is answered and pushed once its batch
    /// committed ([`Committing`]). A session may take the connection's next requests
    /// meanwhile: commits complete in the order updates were queued.
    Committing(Committing),
    /// A command was forwarded to an indie device; await [`Forwarded::finish`].
    Forwarded(Box<Forwarded>),
}

/// The `error` code of an answer, for counting (`u16::MAX`, counted as `other`, when it
/// is not a small number).
fn answer_code(answer: &Value) -> u16 {
    answer
        .get("error")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(u16::MAX)
}

/// The action of a request, as counted.
fn action_of(req: &Request) -> DeviceAction {
    match req.action {
        Action::Register => DeviceAction::Register,
        Action::Update(_) => DeviceAction::Update,
        Action::Query(_) => DeviceAction::Query,
        Action::Date => DeviceAction::Date,
    }
}

impl DeviceApi {
    /// Starts the writer (handing it `recorder`) and the presence sweeper; marks every
    /// device offline (nothing is connected to a server that is just starting) — in
    /// cluster mode (`bus`), only those this node held, and it joins the cluster
    /// (`crate::cluster::start`). `jwt` checks the tokens of the WebSocket's `subscribe`.
    pub async fn start(
        store: Store,
        recorder: Recorder,
        jwt: Arc<Jwt>,
        config: &Config,
        metrics: Arc<Metrics>,
        bus: Option<Arc<Bus>>,
    ) -> anyhow::Result<Arc<DeviceApi>> {
        if bus.is_none() {
            store.reset_presence(Millis::now()).await?;
        }
        let (writer, writer_task) = Writer::spawn(
            store.clone(),
            recorder,
            Duration::from_millis(config.commit_window_ms),
            // Never below what one request may carry: a server set up for large params
            // (`max_body_bytes`, `max_params_keys`) can store them.
            StateLimits {
                max_bytes: config.max_device_state_bytes.max(config.max_body_bytes),
                max_keys: config.max_device_state_keys.max(config.max_params_keys),
            },
            metrics.clone(),
        );
        let api = Arc::new(DeviceApi {
            throttle: DeviceThrottle::new(config, metrics.clone()),
            owners: Owners::new(store.clone()),
            store,
            jwt,
            hub: Hub::new(&metrics),
            metrics,
            writer,
            http_seen: Mutex::default(),
            limits: Limits {
                max_depth: config.max_params_depth,
                max_keys: config.max_params_keys,
            },
            pending_timeout: Duration::from_millis(config.pending_request_timeout_ms),
            max_pending_commands: config.max_pending_commands,
            http_window: config.http_online_window,
            tasks: Mutex::default(),
            writer_task: Mutex::new(Some(writer_task)),
            bus: bus.clone(),
        });
        api.spawn(presence::sweep(Arc::downgrade(&api)));
        if let Some(bus) = bus {
            crate::cluster::start(&api, bus).await?;
        }
        Ok(api)
    }

    /// Tells every socket to close (at shutdown): they answer what they read, then close
    /// with 1001; commands waiting for a device's answer end (503).
    pub fn close_sockets(&self) {
        self.hub.shut_down();
    }

    /// Resolves once every WebSocket connection ended (after [`DeviceApi::close_sockets`]).
    pub async fn sockets_closed(&self) {
        self.hub.sockets_closed().await
    }

    /// The group-commit writer, owner of the history's recent points (retention and
    /// tests ask it to purge or fold them).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Whether the server is shutting down (a new WebSocket is refused).
    pub fn is_shutting_down(&self) -> bool {
        self.hub.is_shutting_down()
    }

    /// A receiver that sees `true` when the server shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.hub.shutdown_signal()
    }

    /// Counts a WebSocket connection as open while the token lives, so that a shutdown
    /// waits for it ([`DeviceApi::sockets_closed`]).
    pub fn track_socket(&self) -> TaskTrackerToken {
        self.hub.track_socket()
    }

    /// WebSocket connections open now.
    pub fn open_sockets(&self) -> usize {
        self.hub.open_sockets()
    }

    /// Device writes queued and not yet in a batch.
    pub fn queued_writes(&self) -> usize {
        self.writer.queued()
    }

    /// Ends the background work, once the connections are gone: the presence sweeper
    /// stops; the writer commits (and acks) every write queued, folds the recent history
    /// into chunks (the next start has no log to read back) and ends; every
    /// device still marked online is marked offline now (its socket closed with the
    /// server; HTTP pollers would be marked so at the next start anyway). Dropped before
    /// the end (the shutdown timeout), the writer is stopped: a write cut short is rolled
    /// back and was never acked.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().drain(..).collect();
        for t in tasks {
            t.abort();
        }
        self.writer.close();
        let writer = self.writer_task.lock().take();
        if let Some(writer) = writer {
            let _ = AbortOnDropHandle::new(writer).await;
        }
        let Some(bus) = &self.bus else {
            if let Err(e) = self.store.reset_presence(Millis::now()).await {
                tracing::error!(error = ?e, "marking devices offline at shutdown failed");
            }
            return;
        };
        match self.store.nodes().leave(bus.node(), Millis::now()).await {
            Ok(buried) => self.announce_offline(&buried),
            Err(e) => tracing::error!(error = ?e, "leaving the cluster at shutdown failed"),
        }
        bus.flush().await;
    }

    /// One request of a connectionless transport (HTTP) from `client`, answered once it
    /// completed: an update once committed, a forwarded command once the device answered.
    /// A device's successful request keeps it online while it polls.
    pub async fn request(self: &Arc<Self>, raw: &Map<String, Value>, client: IpAddr) -> Value {
        let mut req = match self.parse(raw) {
            Ok(req) => req,
            Err(answer) => return answer.to_value(),
        };
        if let Err(answer) = self.admit(&req, client) {
            return answer;
        }
        tracing::Span::current().record("deviceid", req.deviceid.as_str());
        let from_device = req.sender == Sender::Device;
        let reply = match &mut req.action {
            Action::Update(params) => {
                let params = std::mem::take(params);
                match self.update(req, params, raw, None).await {
                    Outcome::Done(reply) => reply,
                    Outcome::Committing(update) => update.finish(self).await,
                    // The device's own answer: whatever its code, the key was right.
                    Outcome::Forwarded(forwarded) => return forwarded.finish().await.answer,
                }
            }
            _ => self.respond(req).await,
        };
        if let (true, Some(access)) = (from_device, &reply.access) {
            self.device_polled(reply.deviceid.as_str(), access.owner())
                .await;
        }
        self.key_checked(client, &reply.answer);
        reply.answer
    }

    /// Whether a request from `client` is served: not while the address is blocked after
    /// failed apikeys (429, answered from memory: no database read).
    fn admit(&self, req: &Request, client: IpAddr) -> Result<(), Value> {
        if self.throttle.admits(client) {
            return Ok(());
        }
        let answer = req.echo.error(ErrorCode::TooManyRequests);
        self.metrics.device_request(action_of(req), answer.error);
        Err(answer.to_value())
    }

    /// Counts an answer 403 (a wrong apikey, token or factory key) against `client`.
    fn key_checked(&self, client: IpAddr, answer: &Value) {
        if answer_code(answer) == ErrorCode::Forbidden.code() {
            self.throttle.key_refused(client);
        }
    }

    /// Parses a request object for this server's limits; a refused one is counted (as
    /// action `invalid`) and its answer given back.
    fn parse(&self, raw: &Map<String, Value>) -> Result<Request, Box<Answer>> {
        Request::parse(raw, &self.limits).inspect_err(|answer| {
            self.metrics
                .device_request(DeviceAction::Invalid, answer.error);
        })
    }

    /// Answers a request other than `update` (see [`DeviceApi::update`]) at once.
    async fn respond(&self, mut req: Request) -> Reply {
        let (action, (answer, access)) = match &mut req.action {
            Action::Update(_) => unreachable!("an update is answered once it committed"),
            Action::Date => {
                let date = Some(Millis::now().iso());
                let answer = Answer {
                    date,
                    ..req.echo.ok()
                };
                (DeviceAction::Date, (answer, None))
            }
            // The rare requests that read the database are boxed, so a connection's task
            // stays small while idle (see `api::ws`).
            Action::Register => (DeviceAction::Register, Box::pin(self.register(&req)).await),
            Action::Query(names) => {
                let names = std::mem::take(names);
                let done = match self.authorise(&req).await {
                    Err(answer) => (answer, None),
                    Ok(access) => Box::pin(self.query(&req, &names, access)).await,
                };
                (DeviceAction::Query, done)
            }
        };
        self.metrics.device_request(action, answer.error);
        // (A device's own update writes its last-seen time with the merge.)
        if req.sender == Sender::Device && access.is_some() {
            self.writer.record(StateWrite::Seen {
                deviceid: req.deviceid.as_str().to_owned(),
                at: Millis::now(),
            });
        }
        Reply {
            answer: answer.to_value(),
            deviceid: req.deviceid,
            access,
        }
    }

    /// The request's access when its apikey is the owner's, or the device's own key sent
    /// by the device itself; else the 403 (or 500) answer. A device key acts only as its
    /// device: an app (`userAgent` app/web) cannot use it.
    async fn authorise(&self, req: &Request) -> Result<Access, Answer> {
        let keys = match self.owners.get(req.deviceid.as_str()).await {
            Ok(Some(keys)) => keys,
            Ok(None) => return Err(req.echo.error(ErrorCode::Forbidden)),
            Err(e) => {
                tracing::error!(error = ?e, "owner lookup failed");
                return Err(req.echo.error(ErrorCode::Internal));
            }
        };
        match keys.which(req.apikey.as_str()) {
            Some(by) if by == KeyKind::Owner || req.sender == Sender::Device => {
                Ok(Access { keys, by })
            }
            _ => Err(req.echo.error(ErrorCode::Forbidden)),
        }
    }

    /// `register`: an indie device's factory apikey is a license; the answer gives the
    /// device key of the device its owner claimed (the original gave the owner's apikey;
    /// the firmware stores whatever `apikey` comes back and uses it from then on, so a
    /// license label no longer hands out the owner's apikey).
    async fn register(&self, req: &Request) -> (Answer, Option<Access>) {
        let id = req.deviceid.as_str();
        let owner = match self.store.licenses().exists(id, req.apikey.as_str()).await {
            Ok(true) => self.owners.get(id).await,
            Ok(false) => return (req.echo.error(ErrorCode::Forbidden), None),
            Err(e) => Err(e),
        };
        match owner {
            Ok(Some(keys)) => (
                Answer {
                    apikey: Some(Value::from(&*keys.device)),
                    ..req.echo.ok()
                },
                Some(Access {
                    keys,
                    by: KeyKind::Device,
                }),
            ),
            Ok(None) => (req.echo.error(ErrorCode::NotFound), None),
            Err(e) => {
                tracing::error!(error = ?e, "register lookup failed");
                (req.echo.error(ErrorCode::Internal), None)
            }
        }
    }

    /// `query`: the device's stored params (all, or the ones named).
    async fn query(
        &self,
        req: &Request,
        names: &[String],
        access: Access,
    ) -> (Answer, Option<Access>) {
        let device = match self.store.devices().find(req.deviceid.as_str()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = ?e, "query failed");
                return (req.echo.error(ErrorCode::Internal), None);
            }
        };
        let state = device.and_then(|d| d.params).unwrap_or_default();
        let params = if names.is_empty() {
            state
        } else {
            names
                .iter()
                .filter_map(|n| state.get(n).map(|v| (n.clone(), v.clone())))
                .collect()
        };
        let answer = Answer {
            params: Some(params),
            ..req.echo.ok()
        };
        (answer, Some(access))
    }
}
