//! The Device API's domain: what `register`, `update`, `query` and `date` do, for both
//! transports (`api::device_http` and `api::ws`).
//!
//! A request's path: authorise from the [`Owners`] cache (403), then act: updates are
//! committed through the group-commit [`Writer`] and fanned out by the [`Hub`]; an app's
//! update for an indie device is forwarded to the device's socket and completes when the
//! device answers (503 offline, 504 no answer in time), as in the original.

mod owners;
mod presence;
mod registry;
mod writer;

pub use owners::Owners;
pub use writer::Writer;

use crate::config::Config;
use crate::history::Recorder;
use crate::hub::Hub;
use crate::metrics::{DeviceAction, Metrics};
use crate::store::{Millis, StateWrite, Store};
use axum::extract::ws::Utf8Bytes;
use iotgo_protocol::message::{indie_command, sender};
use iotgo_protocol::{Action, Answer, DeviceId, Echo, ErrorCode, Limits, Request, Sender};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::task::AbortOnDropHandle;

/// The Device API service, shared by the transports through `AppState`.
pub struct DeviceApi {
    store: Store,
    /// Connections, subscriptions and pending commands.
    pub hub: Hub,
    /// deviceid → owner cache.
    pub owners: Owners,
    writer: Writer,
    /// Devices online through HTTP polling only: deviceid → last request.
    http_seen: Mutex<HashMap<String, Instant>>,
    /// Bounds on params.
    pub limits: Limits,
    pending_timeout: Duration,
    http_window: Duration,
    /// The presence sweeper.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// The writer's task, awaited at shutdown.
    writer_task: Mutex<Option<JoinHandle<()>>>,
}

/// The result of a request that completed.
pub struct Reply {
    /// The answer to send.
    pub answer: Value,
    /// Set when the request proved ownership of the device (or, for `register`, the
    /// license of a claimed device): the owner's apikey. The transport then binds a
    /// device's socket, or subscribes an app's socket, to the device.
    pub owner: Option<Arc<str>>,
}

impl Reply {
    fn plain(answer: Answer) -> Self {
        Reply {
            answer: answer.to_value(),
            owner: None,
        }
    }
}

/// What handling a request produced.
// Moved once per request, never stored in bulk: boxing the update would cost an
// allocation per update on the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The answer is ready.
    Done(Reply),
    /// An update is queued in the group commit; it is answered and pushed once its batch
    /// committed ([`Committing`]). A transport may read the connection's next requests
    /// meanwhile: commits complete in the order updates were queued.
    Committing(Committing),
    /// A command was forwarded to an indie device; await [`Forwarded::finish`].
    Forwarded(Box<Forwarded>),
}

/// An update queued in the group commit, waiting for its batch to commit.
pub struct Committing {
    wait: oneshot::Receiver<bool>,
    deviceid: DeviceId,
    echo: Echo,
    owner: Arc<str>,
    /// The push, serialised once for every watcher.
    frame: Utf8Bytes,
    /// An app updated a DIY device: the device's own socket gets the push too.
    to_device: bool,
    /// The sending socket, never echoed its own update.
    except: Option<u64>,
}

impl Committing {
    /// Resolves once the update's batch ended: true when it committed. Cancel-safe: the
    /// update stays queued and this can be awaited again.
    pub async fn committed(&mut self) -> bool {
        (&mut self.wait).await.unwrap_or(false)
    }

    /// After [`Committing::committed`] said `ok`: pushes a committed update to the
    /// device's watchers (and, when an app sent it, to the device's own socket: two-way
    /// for every device) and gives the answer.
    pub fn complete(self, api: &DeviceApi, ok: bool) -> Reply {
        let code = if ok { 0 } else { ErrorCode::Internal.code() };
        api.metrics.device_request(DeviceAction::Update, code);
        if !ok {
            return Reply::plain(self.echo.error(ErrorCode::Internal));
        }
        let id = self.deviceid.as_str();
        api.hub.push(id, &self.owner, &self.frame, self.except);
        if self.to_device {
            api.hub.send_to_device(id, &self.frame);
        }
        Reply {
            answer: self.echo.ok().to_value(),
            owner: Some(self.owner),
        }
    }

    /// Waits for the commit, then completes.
    pub async fn finish(mut self, api: &DeviceApi) -> Reply {
        let ok = self.committed().await;
        self.complete(api, ok)
    }
}

/// An app's update forwarded to an indie device, waiting for the device's answer.
pub struct Forwarded {
    api: Arc<DeviceApi>,
    wait: oneshot::Receiver<Value>,
    key: String,
    req: Request,
    params: Map<String, Value>,
    owner: Arc<str>,
    except: Option<u64>,
}

impl Forwarded {
    /// Waits for the device: its success stores and pushes the update; its error is passed
    /// on as is; no answer within the pending-request timeout is 504; a shutdown while it
    /// waits is 503 (the device's socket closes with the server).
    pub async fn finish(self) -> Reply {
        let api = self.api.clone();
        let answer = match tokio::time::timeout(api.pending_timeout, self.wait).await {
            Ok(Ok(answer)) => answer,
            // The server shuts down: the device's socket closes with it.
            Ok(Err(_)) if api.hub.is_shutting_down() => {
                api.metrics
                    .device_request(DeviceAction::Update, ErrorCode::DeviceOffline.code());
                return Reply::plain(self.req.echo.error(ErrorCode::DeviceOffline));
            }
            _ => {
                api.hub.cancel_answer(self.req.deviceid.as_str(), &self.key);
                api.metrics
                    .device_request(DeviceAction::Update, ErrorCode::Timeout.code());
                return Reply::plain(self.req.echo.error(ErrorCode::Timeout));
            }
        };
        if answer.get("error").and_then(Value::as_i64) != Some(0) {
            api.metrics
                .device_request(DeviceAction::Update, answer_code(&answer));
            return Reply {
                answer,
                owner: Some(self.owner),
            };
        }
        let owner = self.owner.clone();
        let mut reply = api
            .submit_update(self.req, self.params, owner, self.except)
            .await
            .finish(&api)
            .await;
        reply.owner = Some(self.owner);
        reply
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

/// The `error` code of an answer, for counting (`u16::MAX`, counted as `other`, when it
/// is not a small number).
pub fn answer_code(answer: &Value) -> u16 {
    answer
        .get("error")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(u16::MAX)
}

/// The text form of a sequence, for matching a device's answer to its command.
pub fn sequence_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl DeviceApi {
    /// Starts the writer (handing it `recorder`) and the presence sweeper; marks every
    /// device offline (nothing is connected to a server that is just starting).
    pub async fn start(
        store: Store,
        recorder: Recorder,
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<DeviceApi>> {
        store.reset_presence(Millis::now()).await?;
        let (writer, writer_task) = Writer::spawn(
            store.clone(),
            recorder,
            Duration::from_millis(config.commit_window_ms),
            metrics.clone(),
        );
        let api = Arc::new(DeviceApi {
            owners: Owners::new(store.clone()),
            store,
            hub: Hub::new(&metrics),
            metrics,
            writer,
            http_seen: Mutex::default(),
            limits: Limits {
                max_depth: config.max_params_depth,
                max_keys: config.max_params_keys,
            },
            pending_timeout: Duration::from_millis(config.pending_request_timeout_ms),
            http_window: config.http_online_window,
            tasks: Mutex::default(),
            writer_task: Mutex::new(Some(writer_task)),
        });
        let sweeper = tokio::spawn(presence::sweep(Arc::downgrade(&api)));
        api.tasks.lock().push(sweeper);
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
        if let Err(e) = self.store.reset_presence(Millis::now()).await {
            tracing::error!(error = ?e, "marking devices offline at shutdown failed");
        }
    }

    /// Parses a request object for this server's limits; a refused one is counted (as
    /// action `invalid`) and its answer given back.
    pub fn parse(&self, raw: &Map<String, Value>) -> Result<Request, Box<Answer>> {
        Request::parse(raw, &self.limits).inspect_err(|answer| {
            self.metrics
                .device_request(DeviceAction::Invalid, answer.error);
        })
    }

    /// Handles a parsed request; `raw` is the request object as received (forwarded to
    /// indie devices), `except` the sending socket (never echoed its own update).
    pub async fn handle(
        self: &Arc<Self>,
        mut req: Request,
        raw: &Map<String, Value>,
        except: Option<u64>,
    ) -> Outcome {
        let action = match &req.action {
            Action::Register => DeviceAction::Register,
            Action::Update(_) => DeviceAction::Update,
            Action::Query(_) => DeviceAction::Query,
            Action::Date => DeviceAction::Date,
        };
        let reply = match &mut req.action {
            Action::Update(params) => {
                let params = std::mem::take(params);
                // Committing and forwarded updates are counted once they are answered.
                let outcome = self.update(req, params, raw, except).await;
                if let Outcome::Done(reply) = &outcome {
                    self.metrics
                        .device_request(action, answer_code(&reply.answer));
                }
                return outcome;
            }
            Action::Date => Reply::plain(Answer {
                date: Some(Millis::now().iso()),
                ..req.echo.ok()
            }),
            // The rare requests that read the database are boxed, so a connection's task
            // stays small while idle (see `api::ws`).
            Action::Register => Box::pin(self.register(&req)).await,
            Action::Query(names) => {
                let names = std::mem::take(names);
                match self.authorise(&req).await {
                    Err(answer) => Reply::plain(answer),
                    Ok(owner) => Box::pin(self.query(&req, &names, owner)).await,
                }
            }
        };
        self.metrics
            .device_request(action, answer_code(&reply.answer));
        // (A device's own update writes its last-seen time with the merge.)
        if req.sender == Sender::Device && reply.owner.is_some() {
            self.writer.record(StateWrite::Seen {
                deviceid: req.deviceid.as_str().to_owned(),
                at: Millis::now(),
            });
        }
        Outcome::Done(reply)
    }

    /// An update: refused, forwarded (an app's command to an indie device) or queued.
    async fn update(
        self: &Arc<Self>,
        req: Request,
        params: Map<String, Value>,
        raw: &Map<String, Value>,
        except: Option<u64>,
    ) -> Outcome {
        match self.authorise(&req).await {
            Err(answer) => Outcome::Done(Reply::plain(answer)),
            Ok(owner) if req.sender == Sender::App && req.deviceid.is_indie() => {
                self.forward(req, raw, params, owner, except)
            }
            Ok(owner) => Outcome::Committing(self.submit_update(req, params, owner, except).await),
        }
    }

    /// The owner when the request's apikey owns the device, else the 403 (or 500) answer.
    async fn authorise(&self, req: &Request) -> Result<Arc<str>, Answer> {
        match self.owners.get(req.deviceid.as_str()).await {
            Ok(Some(owner)) if *owner == *req.apikey.as_str() => Ok(owner),
            Ok(_) => Err(req.echo.error(ErrorCode::Forbidden)),
            Err(e) => {
                tracing::error!(error = ?e, "owner lookup failed");
                Err(req.echo.error(ErrorCode::Internal))
            }
        }
    }

    async fn register(&self, req: &Request) -> Reply {
        let id = req.deviceid.as_str();
        let owner = match self.store.licenses().exists(id, req.apikey.as_str()).await {
            Ok(true) => self.owners.get(id).await,
            Ok(false) => return Reply::plain(req.echo.error(ErrorCode::Forbidden)),
            Err(e) => Err(e),
        };
        match owner {
            Ok(Some(owner)) => Reply {
                answer: Answer {
                    apikey: Some(Value::from(&*owner)),
                    ..req.echo.ok()
                }
                .to_value(),
                owner: Some(owner),
            },
            Ok(None) => Reply::plain(req.echo.error(ErrorCode::NotFound)),
            Err(e) => {
                tracing::error!(error = ?e, "register lookup failed");
                Reply::plain(req.echo.error(ErrorCode::Internal))
            }
        }
    }

    async fn query(&self, req: &Request, names: &[String], owner: Arc<str>) -> Reply {
        let device = match self.store.devices().find(req.deviceid.as_str()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = ?e, "query failed");
                return Reply::plain(req.echo.error(ErrorCode::Internal));
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
        Reply {
            answer: Answer {
                params: Some(params),
                ..req.echo.ok()
            }
            .to_value(),
            owner: Some(owner),
        }
    }

    /// Queues an update in the group commit; its push goes out once it committed.
    async fn submit_update(
        &self,
        req: Request,
        params: Map<String, Value>,
        owner: Arc<str>,
        except: Option<u64>,
    ) -> Committing {
        let id = req.deviceid.as_str();
        // Serialised straight from the params (no copy into a `Value`), then the params
        // move into the write.
        let push = Push {
            action: "update",
            deviceid: id,
            apikey: &owner,
            params: &params,
        };
        let frame =
            Utf8Bytes::from(serde_json::to_string(&push).expect("a JSON object always serialises"));
        let write = StateWrite::Merge {
            deviceid: id.to_owned(),
            params,
            at: Millis::now(),
            seen: req.sender == Sender::Device,
        };
        let wait = self.writer.submit(write).await;
        Committing {
            wait,
            to_device: req.sender == Sender::App && !req.deviceid.is_indie(),
            deviceid: req.deviceid,
            echo: req.echo,
            owner,
            frame,
            except,
        }
    }

    fn forward(
        self: &Arc<Self>,
        mut req: Request,
        raw: &Map<String, Value>,
        params: Map<String, Value>,
        owner: Arc<str>,
        except: Option<u64>,
    ) -> Outcome {
        let id = req.deviceid.as_str().to_owned();
        if !self.hub.is_connected(&id) {
            return Outcome::Done(Reply {
                owner: Some(owner),
                ..Reply::plain(req.echo.error(ErrorCode::DeviceOffline))
            });
        }
        let sequence = req
            .echo
            .sequence
            .clone()
            .unwrap_or_else(|| Value::from(Millis::now().0.to_string()));
        req.echo.sequence = Some(sequence.clone());
        let key = sequence_key(&sequence);
        let mut command = raw.clone();
        command.insert("sequence".into(), sequence);
        let frame = Utf8Bytes::from(Value::Object(indie_command(command)).to_string());
        let wait = self.hub.expect_answer(&id, &key);
        if !self.hub.send_to_device(&id, &frame) {
            self.hub.cancel_answer(&id, &key);
            return Outcome::Done(Reply::plain(req.echo.error(ErrorCode::DeviceOffline)));
        }
        Outcome::Forwarded(Box::new(Forwarded {
            api: self.clone(),
            wait,
            key,
            req,
            params,
            owner,
            except,
        }))
    }

    /// An answer from a device's socket to a forwarded command; `bound` are the devices
    /// that socket speaks for.
    pub fn device_answered<'a>(
        &self,
        bound: impl IntoIterator<Item = &'a String>,
        answer: &Map<String, Value>,
    ) {
        let Some(seq) = answer.get("sequence") else {
            return;
        };
        let key = sequence_key(seq);
        for id in bound {
            if self.hub.answer(id, &key, Value::Object(answer.clone())) {
                return;
            }
        }
    }

    /// The JSON of a request's echo when the request could not even be parsed.
    pub fn bad_request(raw: &Map<String, Value>) -> Value {
        Echo::of(raw).error(ErrorCode::BadRequest).to_value()
    }

    /// Whether a raw request says it comes from the device itself.
    pub fn from_device(raw: &Map<String, Value>) -> bool {
        sender(raw) == Sender::Device
    }
}
