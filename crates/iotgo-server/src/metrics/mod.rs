//! Metrics in the Prometheus text format, served at `GET /metrics` ([`http`]).
//!
//! Each [`App`](crate::App) has its own [`Metrics`]: a `PrometheusRecorder` of its own
//! (never installed as the process-wide recorder, so that several servers in one process
//! — the tests — each count only their own) and the handles of every metric, resolved
//! once at start. Counting is then an atomic add on a pre-resolved handle: no lock, no
//! allocation, no lookup by name. The Device API's requests are a fixed table of handles,
//! one per action × result code.
//!
//! What is read rather than counted (database pools, the process's memory, CPU time and
//! open files) is read when Prometheus scrapes.

pub mod http;

use crate::config::Secret;
use crate::store::Store;
use axum::http::Method;
use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram, with_local_recorder,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use thread_local::ThreadLocal;

/// Who may read `GET /metrics`.
#[derive(Debug, Clone)]
pub enum Access {
    /// Nobody: the path answers 404.
    Off,
    /// Anyone who reaches the server.
    Open,
    /// Requests with `Authorization: Bearer <token>`.
    Token(Secret),
}

/// The Device API's actions, as counted (`action` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    /// `register`.
    Register,
    /// `update`.
    Update,
    /// `query`.
    Query,
    /// `date`.
    Date,
    /// `subscribe` (WebSocket only).
    Subscribe,
    /// A request refused before its action was known (bad JSON, ids or action).
    Invalid,
}

impl DeviceAction {
    const ALL: [DeviceAction; 6] = [
        DeviceAction::Register,
        DeviceAction::Update,
        DeviceAction::Query,
        DeviceAction::Date,
        DeviceAction::Subscribe,
        DeviceAction::Invalid,
    ];

    fn label(self) -> &'static str {
        match self {
            DeviceAction::Register => "register",
            DeviceAction::Update => "update",
            DeviceAction::Query => "query",
            DeviceAction::Date => "date",
            DeviceAction::Subscribe => "subscribe",
            DeviceAction::Invalid => "invalid",
        }
    }
}

/// What a throttle refused, as counted (`what` label of `iotgo_throttled_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// `POST /api/user/login`.
    Login,
    /// `POST /api/user/register`.
    Register,
    /// `POST /api/admin/login`.
    AdminLogin,
    /// A Device API request from an address blocked after failed apikeys.
    DeviceApikey,
    /// A device update over the per-device rate.
    DeviceUpdates,
    /// `POST /api/user/password/forgot` over the rate of one client address.
    PasswordForgot,
}

impl Throttled {
    const ALL: [Throttled; 6] = [
        Throttled::Login,
        Throttled::Register,
        Throttled::AdminLogin,
        Throttled::DeviceApikey,
        Throttled::DeviceUpdates,
        Throttled::PasswordForgot,
    ];

    fn label(self) -> &'static str {
        match self {
            Throttled::Login => "login",
            Throttled::Register => "register",
            Throttled::AdminLogin => "admin_login",
            Throttled::DeviceApikey => "device_apikey",
            Throttled::DeviceUpdates => "device_updates",
            Throttled::PasswordForgot => "password_forgot",
        }
    }
}

/// The Device API's result codes (`error`), as counted; anything else (an indie device
/// may answer a forwarded command with any code) is counted as `other`.
const CODES: [u16; 8] = [0, 400, 403, 404, 429, 500, 503, 504];

/// Where a code sits in a row of [`Metrics::device_requests`] (`other` last).
fn code_index(code: u16) -> usize {
    CODES.iter().position(|c| *c == code).unwrap_or(CODES.len())
}

/// Bounds of the buckets of durations, in seconds (0.1 ms to 10 s).
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Bounds of the buckets of group-commit batch sizes (the writer's batch is at most 512).
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often recorded histogram samples are folded into their buckets.
const UPKEEP: Duration = Duration::from_secs(5);

/// The handles of one server's metrics, and its recorder.
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    /// Who may read them.
    pub access: Access,
    /// `iotgo_device_requests_total`, by [`DeviceAction`] × [`CODES`] (+ `other`).
    device_requests: [[Counter; CODES.len() + 1]; DeviceAction::ALL.len()],
    /// Device updates committed by the group commit.
    pub updates_committed: Counter,
    /// Writes per group commit.
    pub commit_batch_size: Histogram,
    /// How long each group commit took.
    pub commit_seconds: Histogram,
    /// Group commits that failed (their writes were answered 500).
    pub commits_failed: Counter,
    /// Messages (pushes, commands) queued for WebSockets.
    pub pushes_queued: Counter,
    /// Pushes not queued because the socket's queue was full.
    pub pushes_dropped: Counter,
    /// WebSockets cut off because they stopped reading.
    pub peers_cut_off: Counter,
    /// History points recorded.
    pub history_points: Counter,
    /// History folds (recent points written into chunks).
    pub history_folds: Counter,
    /// How long each fold took.
    pub history_fold_seconds: Histogram,
    /// Devices connected by WebSocket.
    pub devices_ws: Gauge,
    /// Devices online by HTTP polling (seen within the online window).
    pub devices_http: Gauge,
    /// App WebSockets (watching a device or subscribed to a user's devices).
    pub apps_ws: Gauge,
    /// Connections refused over `max_connections_per_ip`.
    pub connections_refused_per_ip: Counter,
    /// Connections refused over `max_connections`.
    pub connections_refused_total: Counter,
    /// MQTT connections refused at CONNECT (bad credentials, not authorised, throttled).
    pub mqtt_connects_refused: Counter,
    /// Mails handed to the SMTP server.
    pub mails_sent: Counter,
    /// Mails the SMTP server refused or that could not be sent (logged).
    pub mails_failed: Counter,
    /// Mails not sent because the account or address had enough of them already.
    pub mails_throttled: Counter,
    /// Mails dropped because the mail queue was full.
    pub mails_dropped: Counter,
    /// `iotgo_throttled_total`, by [`Throttled`].
    throttled: [Counter; Throttled::ALL.len()],
    /// Cluster mode: messages published on NATS.
    pub cluster_sent: Counter,
    /// Cluster mode: messages received from NATS.
    pub cluster_received: Counter,
    /// Cluster mode: messages not published because NATS was away and the outgoing
    /// queue full.
    pub cluster_dropped: Counter,
    /// Cluster mode: 1 while the NATS connection is up.
    pub cluster_connected: Gauge,
    /// Cluster mode: times the NATS connection was lost.
    pub cluster_disconnects: Counter,
    /// Cluster mode: dead nodes this node buried (their devices marked offline).
    pub cluster_buried: Counter,
    /// Cluster mode: times this node found its own lease taken (its devices were cut).
    pub cluster_lease_lost: Counter,
    /// HTTP requests' handles by route template, resolved as requests come, per thread
    /// (no lock when counting).
    http: ThreadLocal<RefCell<HashMap<String, http::RouteHandles>>>,
}

impl Metrics {
    /// A fresh set of metrics with its own recorder; histograms are folded every few
    /// seconds by a task that ends when the metrics are dropped.
    pub fn start(access: Access) -> anyhow::Result<Arc<Metrics>> {
        let recorder = Arc::new(
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)?
                .set_buckets_for_metric(
                    Matcher::Full("iotgo_commit_batch_size".into()),
                    BATCH_SIZES,
                )?
                .build_recorder(),
        );
        let metrics = with_local_recorder(&*recorder, || {
            describe();
            let process = metrics_process::Collector::default();
            process.describe();
            let device_requests = DeviceAction::ALL.map(|action| {
                std::array::from_fn(|i| {
                    let code = CODES.get(i).map_or("other".into(), u16::to_string);
                    counter!("iotgo_device_requests_total",
                        "action" => action.label(), "code" => code)
                })
            });
            Arc::new(Metrics {
                recorder: recorder.clone(),
                handle: recorder.handle(),
                process,
                access,
                device_requests,
                updates_committed: counter!("iotgo_updates_committed_total"),
                commit_batch_size: histogram!("iotgo_commit_batch_size"),
                commit_seconds: histogram!("iotgo_commit_duration_seconds"),
                commits_failed: counter!("iotgo_commits_failed_total"),
                pushes_queued: counter!("iotgo_pushes_queued_total"),
                pushes_dropped: counter!("iotgo_pushes_dropped_total"),
                peers_cut_off: counter!("iotgo_peers_cut_off_total"),
                history_points: counter!("iotgo_history_points_total"),
                history_folds: counter!("iotgo_history_folds_total"),
                history_fold_seconds: histogram!("iotgo_history_fold_duration_seconds"),
                devices_ws: gauge!("iotgo_connected_devices", "transport" => "ws"),
                devices_http: gauge!("iotgo_connected_devices", "transport" => "http"),
                apps_ws: gauge!("iotgo_connected_apps", "transport" => "ws"),
                connections_refused_per_ip: counter!("iotgo_connections_refused_total",
                    "reason" => "per_ip"),
                connections_refused_total: counter!("iotgo_connections_refused_total",
                    "reason" => "total"),
                mqtt_connects_refused: counter!("iotgo_mqtt_connects_refused_total"),
                mails_sent: counter!("iotgo_mails_total", "result" => "sent"),
                mails_failed: counter!("iotgo_mails_total", "result" => "failed"),
                mails_throttled: counter!("iotgo_mails_total", "result" => "throttled"),
                mails_dropped: counter!("iotgo_mails_total", "result" => "dropped"),
                throttled: Throttled::ALL
                    .map(|what| counter!("iotgo_throttled_total", "what" => what.label())),
                cluster_sent: counter!("iotgo_cluster_messages_total", "direction" => "sent"),
                cluster_received: counter!("iotgo_cluster_messages_total",
                    "direction" => "received"),
                cluster_dropped: counter!("iotgo_cluster_messages_total",
                    "direction" => "dropped"),
                cluster_connected: gauge!("iotgo_cluster_nats_connected"),
                cluster_disconnects: counter!("iotgo_cluster_nats_disconnects_total"),
                cluster_buried: counter!("iotgo_cluster_nodes_buried_total"),
                cluster_lease_lost: counter!("iotgo_cluster_lease_lost_total"),
                http: ThreadLocal::new(),
            })
        });
        tokio::spawn(upkeep(Arc::downgrade(&metrics)));
        Ok(metrics)
    }

    /// Counts a Device API request by its action and the `error` code of its answer.
    pub fn device_request(&self, action: DeviceAction, code: u16) {
        self.device_requests[action as usize][code_index(code)].increment(1);
    }

    /// Counts a request refused by a throttle.
    pub fn throttled(&self, what: Throttled) {
        self.throttled[what as usize].increment(1);
    }

    /// Records an HTTP request: `route` is the matched path template, never the raw path.
    /// The handles of a (route, method, status) are resolved once per thread
    /// ([`http::RouteHandles`]); after that, counting is an atomic add.
    pub fn http_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = http::method_label(method);
        let mut routes = self.http.get_or_default().borrow_mut();
        if let Some(handles) = routes.get_mut(route) {
            return handles.record(&self.recorder, route, method, status, seconds);
        }
        let handles = routes.entry(route.to_owned()).or_default();
        handles.record(&self.recorder, route, method, status, seconds);
    }

    /// Everything in the Prometheus text format, with the database pools and the
    /// process read now.
    pub fn render(&self, store: &Store) -> String {
        with_local_recorder(&*self.recorder, || {
            self.process.collect();
            for (pool, size, idle) in store.pool_use() {
                gauge!("iotgo_db_pool_connections", "pool" => pool).set(size as f64);
                gauge!("iotgo_db_pool_idle_connections", "pool" => pool).set(idle as f64);
            }
        });
        self.handle.render()
    }
}

/// The HELP and unit of every metric.
fn describe() {
    describe_counter!(
        "iotgo_cluster_messages_total",
        "Cluster mode: NATS messages sent, received, and dropped (NATS away, queue full)"
    );
    describe_gauge!(
        "iotgo_cluster_nats_connected",
        "Cluster mode: 1 while this node is connected to NATS"
    );
    describe_counter!(
        "iotgo_cluster_nats_disconnects_total",
        "Cluster mode: times the NATS connection was lost"
    );
    describe_counter!(
        "iotgo_cluster_nodes_buried_total",
        "Cluster mode: dead nodes (lease ended) whose devices this node marked offline"
    );
    describe_counter!(
        "iotgo_cluster_lease_lost_total",
        "Cluster mode: times this node found its lease taken and cut its devices' sockets"
    );
    describe_counter!(
        "iotgo_mails_total",
        "Mails by result: sent, failed (logged), throttled (per account or address), \
         dropped (queue full)"
    );
    describe_counter!(
        "iotgo_device_requests_total",
        "Device API requests (HTTP and WebSocket) by action and result code"
    );
    describe_counter!(
        "iotgo_updates_committed_total",
        "Device updates committed by the group commit"
    );
    describe_histogram!(
        "iotgo_commit_batch_size",
        "Writes (updates, presence, last-seen) per group commit"
    );
    describe_histogram!(
        "iotgo_commit_duration_seconds",
        Unit::Seconds,
        "Duration of each group commit"
    );
    describe_counter!(
        "iotgo_commits_failed_total",
        "Group commits that failed (their updates were answered 500)"
    );
    describe_counter!(
        "iotgo_pushes_queued_total",
        "Pushes and commands queued for WebSockets"
    );
    describe_counter!(
        "iotgo_pushes_dropped_total",
        "Pushes not queued because the WebSocket's queue was full"
    );
    describe_counter!(
        "iotgo_peers_cut_off_total",
        "WebSockets disconnected because they stopped reading"
    );
    describe_counter!("iotgo_history_points_total", "History points recorded");
    describe_counter!(
        "iotgo_history_folds_total",
        "History folds of recent points into chunks"
    );
    describe_histogram!(
        "iotgo_history_fold_duration_seconds",
        Unit::Seconds,
        "Duration of each history fold"
    );
    describe_gauge!(
        "iotgo_connected_devices",
        "Devices connected, by transport (http: polling within the online window)"
    );
    describe_gauge!(
        "iotgo_connected_apps",
        "App WebSockets watching devices, by transport"
    );
    describe_counter!(
        "iotgo_http_requests_total",
        "HTTP requests by method, route template and status"
    );
    describe_histogram!(
        "iotgo_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request durations by method and route template"
    );
    describe_gauge!(
        "iotgo_db_pool_connections",
        "Open database connections, by pool"
    );
    describe_gauge!(
        "iotgo_db_pool_idle_connections",
        "Idle database connections, by pool"
    );
    describe_counter!(
        "iotgo_connections_refused_total",
        "Connections answered 503 and closed, by reason: per_ip (max_connections_per_ip) \
         or total (max_connections)"
    );
    describe_counter!(
        "iotgo_mqtt_connects_refused_total",
        "MQTT connections refused at CONNECT (CONNACK 4 bad user name or password, 5 not \
         authorised, 3 server unavailable)"
    );
    describe_counter!(
        "iotgo_throttled_total",
        "Requests refused by a throttle (429), by what: login, register, admin_login, \
         device_apikey (an address blocked after failed apikeys), device_updates"
    );
}

/// Folds recorded histogram samples into their buckets now and then (what the exporter's
/// own server would do), so that memory stays bounded between scrapes.
async fn upkeep(metrics: Weak<Metrics>) {
    let mut tick = tokio::time::interval(UPKEEP);
    loop {
        tick.tick().await;
        let Some(metrics) = metrics.upgrade() else {
            return;
        };
        metrics.handle.run_upkeep();
    }
}
