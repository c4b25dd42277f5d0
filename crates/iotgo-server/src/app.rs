//! The application: shared state, the router, start-up and serving.

use crate::auth::{Admins, GeneratedAdmin, Jwt, Passwords};
use crate::cluster::{self, Bus};
use crate::config::{Config, MetricsMode, Secret};
use crate::device::DeviceApi;
use crate::history::{Reader, Recorder};
use crate::mail::Mail;
use crate::metrics::{Access, Metrics};
use crate::net::Http;
use crate::shutdown::Drain;
use crate::store::{Backend, Store};
use crate::throttle::Throttles;
use crate::{api, headers, metrics, mqtt, retention, secrets, web};
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// What every handler can reach: one `Arc`, so the clone that every extractor and
/// middleware makes per request is one reference count, whatever [`Shared`] holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The history of device data, read side (the writer records it).
    pub history: Reader,
    /// Token signer and checker.
    pub jwt: Arc<Jwt>,
    /// Admin accounts.
    pub admins: Arc<Admins>,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Outgoing HTTP (captcha verification).
    pub http: reqwest::Client,
    /// The Device API: ownership cache, realtime hub, group-commit writer, presence.
    pub devices: Arc<DeviceApi>,
    /// This server's metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Password hashing for requests, a bounded number at once.
    pub passwords: Arc<Passwords>,
    /// Outgoing mail: verification, password reset, e-mail change.
    pub mail: Arc<Mail>,
    /// Throttles of logins and sign-ups.
    pub throttles: Arc<Throttles>,
    /// The address the MQTT listener is bound to (the port chosen when `mqtt_listen`
    /// asked for 0); `None` when MQTT is off.
    pub mqtt_addr: Option<SocketAddr>,
}

/// A built application, ready to serve.
pub struct App {
    /// The shared state.
    pub state: AppState,
    /// The admin made at this first start, if one was (its password is shown once).
    pub generated_admin: Option<GeneratedAdmin>,
    /// The MQTT listener, bound when `mqtt_listen` is set.
    mqtt: Option<TcpListener>,
}

impl App {
    /// Prepares the data directory, connects and migrates the database, loads secrets.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        secrets::private_data_dir(&config)?;
        // Bound first: a port that is taken fails the start before anything else.
        let mqtt = match config.mqtt_listen {
            Some(addr) => Some(mqtt::bind(addr).await?),
            None => None,
        };
        let mut store = Store::connect(&config.database_url()).await?;
        let node = match &config.nats_url {
            None => None,
            Some(_) => {
                anyhow::ensure!(
                    store.backend() == Backend::Postgres,
                    "cluster mode (nats_url) needs a postgres:// database_url: the nodes \
                     share it, and SQLite lives inside one node's data directory"
                );
                let node = cluster::node_id(&config)?;
                store = store.in_cluster(node.clone());
                Some(node)
            }
        };
        let recorder = Recorder::load_as(store.clone(), config.history_enabled, node.clone())
            .await
            .context("cannot read the history log")?;
        let history = recorder.reader();
        let jwt_secret = match (&node, &config.jwt_secret) {
            // A token signed by one node is good on every node: the key is the cluster's.
            (Some(_), None) => {
                let made = secrets::random_token(64);
                Secret::new(store.nodes().share("jwt", &made).await?)
            }
            _ => secrets::jwt_secret(config.jwt_secret.as_ref(), &config.data_dir)?,
        };
        let shared = node.is_some().then_some(&store);
        let (admins, generated_admin) = Admins::resolve(&config, shared).await?;
        let access = match config.metrics {
            MetricsMode::Off => Access::Off,
            MetricsMode::Open => Access::Open,
            MetricsMode::Token => Access::Token(secrets::metrics_token(
                config.metrics_token.as_ref(),
                &config.data_dir,
            )?),
        };
        let metrics = Metrics::start(access)?;
        let bus = match node {
            Some(node) => Some(Bus::connect(&config, node, &metrics).await?),
            None => None,
        };
        let jwt = Arc::new(Jwt::new(&jwt_secret, config.jwt_ttl));
        let devices = DeviceApi::start(
            store.clone(),
            recorder,
            jwt.clone(),
            &config,
            metrics.clone(),
            bus,
        )
        .await?;
        let passwords = Arc::new(Passwords::new(
            config.password_hash_concurrency,
            config.password_hash_queue_timeout,
        )?);
        let mail = Arc::new(Mail::start(&config, store.clone(), metrics.clone())?);
        let throttles = Throttles::new(&config, metrics.clone());
        let state = AppState(Arc::new(Shared {
            mail,
            throttles,
            passwords,
            history,
            devices,
            metrics,
            store,
            jwt,
            admins: Arc::new(admins),
            http: reqwest::Client::builder().build()?,
            config: Arc::new(config),
            mqtt_addr: mqtt.as_ref().map(TcpListener::local_addr).transpose()?,
        }));
        Ok(App {
            state,
            generated_admin,
            mqtt,
        })
    }

    /// The full router.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .merge(api::routes())
            .merge(metrics::http::routes())
            .merge(web::routes());
        headers::layer(routes, &self.state.config)
            .merge(api::device_routes())
            .layer(DefaultBodyLimit::max(self.state.config.max_body_bytes))
            .layer(from_fn_with_state(
                self.state.metrics.clone(),
                metrics::http::observe,
            ))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then drains (see [`App::drain`])
    /// and closes the database.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let drain = Drain::new();
        let router = self.router().layer(drain.layer());
        let http = Arc::new(Http::new(&self.state.config, &self.state.metrics));
        let retention = tokio::spawn(retention::run(
            self.state.store.clone(),
            self.state.devices.writer().clone(),
            self.state.config.history_retention_days,
            // The holder of the retention lease: this node.
            self.state.store.node().map(Arc::from),
        ));
        if let Some(listener) = self.mqtt.take() {
            let state = self.state.clone();
            tokio::spawn(mqtt::serve(listener, state, http.clone(), drain.clone()));
        }
        let mut server = pin!(http.serve(
            drain.listener(listener),
            drain.clone(),
            router,
            drain.clone().idle_closing(),
        ));
        tokio::select! {
            served = server.as_mut() => return Ok(served?),
            () = shutdown => {}
        }
        retention.abort();
        self.drain(&drain, server).await
    }

    /// The drain, bounded by `shutdown_timeout`: no new connections; requests in flight
    /// are answered; WebSockets answer what they read and close with 1001 (going away);
    /// the writer commits and acks every queued update; the recent history is folded (the
    /// next start then has no log to read back); devices are marked offline at this time.
    /// Past the timeout, whatever is left is cut and logged (nothing cut was ever acked).
    async fn drain(
        &self,
        drain: &Drain,
        server: impl Future<Output = std::io::Result<()>>,
    ) -> anyhow::Result<()> {
        let timeout = self.state.config.shutdown_timeout;
        tracing::info!(
            "draining: no new connections, answering requests in flight, closing \
             WebSockets (timeout {})",
            humantime::format_duration(timeout)
        );
        let started = Instant::now();
        let devices = &self.state.devices;
        drain.begin();
        devices.close_sockets();
        let drained = tokio::time::timeout(timeout, async {
            let (served, ()) = tokio::join!(server, devices.sockets_closed());
            devices.shutdown().await;
            served
        })
        .await;
        match drained {
            Ok(served) => {
                served?;
                self.state.store.close().await;
                tracing::info!(elapsed = ?started.elapsed(), "drained; exiting");
            }
            // The database is left to the process exit: SQLite's WAL and PostgreSQL's
            // transactions drop what did not commit, and nothing uncommitted was acked.
            Err(_) => tracing::warn!(
                connections = drain.open_connections(),
                websockets = devices.open_sockets(),
                queued_writes = devices.queued_writes(),
                "shutdown timeout ({}) reached: cutting the connections still open and \
                 the device writes not yet committed (none of them was acked)",
                humantime::format_duration(timeout)
            ),
        }
        Ok(())
    }
}

/// Builds the application from `config` and serves it on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    App::build(config).await?.serve(listener, shutdown).await
}
