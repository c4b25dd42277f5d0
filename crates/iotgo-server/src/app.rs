//! The application: shared state, the router, start-up and serving.

use crate::auth::{Admins, GeneratedAdmin, Jwt};
use crate::config::{Config, MetricsMode};
use crate::device::DeviceApi;
use crate::metrics::{Access, Metrics};
use crate::store::Store;
use crate::{api, metrics, retention, secrets, web};
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::serve::ListenerExt;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
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
}

/// A built application, ready to serve.
pub struct App {
    /// The shared state.
    pub state: AppState,
    /// The admin made at this first start, if one was (its password is shown once).
    pub generated_admin: Option<GeneratedAdmin>,
}

impl App {
    /// Prepares the data directory, connects and migrates the database, loads secrets.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let store = Store::connect(&config.database_url())
            .await?
            .with_history(config.history_enabled);
        let jwt_secret = secrets::jwt_secret(config.jwt_secret.as_ref(), &config.data_dir)?;
        let (admins, generated_admin) = Admins::resolve(&config).await?;
        let access = match config.metrics {
            MetricsMode::Off => Access::Off,
            MetricsMode::Open => Access::Open,
            MetricsMode::Token => Access::Token(secrets::metrics_token(
                config.metrics_token.as_ref(),
                &config.data_dir,
            )?),
        };
        let metrics = Metrics::start(access)?;
        let devices = DeviceApi::start(store.clone(), &config, metrics.clone()).await?;
        let state = AppState {
            devices,
            metrics,
            store,
            jwt: Arc::new(Jwt::new(&jwt_secret, config.jwt_ttl)),
            admins: Arc::new(admins),
            http: reqwest::Client::builder().build()?,
            config: Arc::new(config),
        };
        Ok(App {
            state,
            generated_admin,
        })
    }

    /// The full router.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(api::routes())
            .merge(metrics::http::routes())
            .merge(web::routes())
            .layer(DefaultBodyLimit::max(self.state.config.max_body_bytes))
            .layer(from_fn_with_state(
                self.state.metrics.clone(),
                metrics::http::observe,
            ))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, then closes the database.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let retention = tokio::spawn(retention::run(
            self.state.store.clone(),
            self.state.config.history_retention_days,
        ));
        let devices = self.state.devices.clone();
        // WebSockets outlive hyper's graceful shutdown: close them when it starts.
        let shutdown = async move {
            shutdown.await;
            devices.close_sockets();
        };
        // Device API answers and pushes are small frames: send them at once instead of
        // letting Nagle hold them for the peer's delayed ACK (40 ms on Linux).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        retention.abort();
        self.state.devices.shutdown().await;
        self.state.store.close().await;
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
