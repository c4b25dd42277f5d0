//! The Web API: one router per area, merged here, plus health, public settings and the
//! device type registry.

mod account;
mod admin;
mod credentials;
mod device_http;
mod devices;
mod extract;
mod history;
pub mod openapi;
mod query;
mod user;
pub(crate) mod validate;
mod ws;

pub(crate) use admin::{MAX_CSV_ROWS, licenses_csv};
pub(crate) use history::{MAX_TIME_MS, parse_ask};
pub(crate) use query::{ListQuery, MAX_PAGE};

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use iotgo_protocol::types::{TYPES, TypeInfo};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every `/api` route but the Device API's, and `/healthz`.
pub fn routes() -> Router<AppState> {
    let (documented, doc) = web_api().split_for_parts();
    documented
        .merge(openapi::routes(doc))
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
}

/// The Device API's transports: `POST /api/http` and the WebSocket `/api/ws`. Kept apart
/// from [`routes`] so that the web's security headers stay off them: their clients are
/// devices, some reading a whole answer into a 512-byte buffer (the Arduino library).
pub fn device_routes() -> Router<AppState> {
    device_http::routes().merge(ws::routes())
}

/// The Web API: each route registered together with its OpenAPI operation.
fn web_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(user::routes())
        .merge(account::routes())
        .merge(devices::routes())
        .merge(history::routes())
        .merge(admin::routes())
        .merge(credentials::routes())
        .routes(routes!(public_config))
        .routes(routes!(device_types))
        .routes(routes!(health))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The answer of `/healthz`.
#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`; `degraded` when this node of a cluster has lost NATS (it serves its own
    /// devices; other nodes' pushes and commands wait); `database unavailable`.
    status: &'static str,
    /// In cluster mode: this node and its NATS connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterHealth>,
}

/// A cluster node's part of `/healthz`.
#[derive(Serialize, ToSchema)]
struct ClusterHealth {
    /// This node's id.
    node: String,
    /// `connected` or `disconnected`.
    nats: &'static str,
}

/// 200 when the database answers (`degraded` without NATS), 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "server",
    responses(
        (status = 200, description = "The server and its database answer", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    ))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let cluster = state.devices.bus().map(|bus| ClusterHealth {
        node: bus.node().to_string(),
        nats: if bus.connected() {
            "connected"
        } else {
            "disconnected"
        },
    });
    if !state.store.ping().await {
        let status = "database unavailable";
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status, cluster }),
        );
    }
    let degraded = cluster.as_ref().is_some_and(|c| c.nats != "connected");
    let status = if degraded { "degraded" } else { "ok" };
    (StatusCode::OK, Json(Health { status, cluster }))
}

/// Public settings: what a web or mobile app needs to know before anyone signs in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PublicConfig {
    /// The server's version.
    version: &'static str,
    /// The captcha's public site key, `null` when none is configured.
    recaptcha_site_key: Option<String>,
    /// Whether sign-up needs a solved captcha.
    captcha_required: bool,
    /// Map tile URL template (`{z}/{x}/{y}`) for GPS devices.
    map_tile_url: String,
    /// Whether the server sends mail (password reset and e-mail change links).
    mail_enabled: bool,
    /// The port of the MQTT listener (docs/mqtt.md), `null` when MQTT is off.
    mqtt_port: Option<u16>,
}

/// What a web or mobile app needs to know before anyone signs in.
#[utoipa::path(get, path = "/api/config", tag = "server",
    responses((status = 200, description = "Public settings", body = PublicConfig)))]
async fn public_config(State(state): State<AppState>) -> Json<PublicConfig> {
    Json(PublicConfig {
        version: env!("CARGO_PKG_VERSION"),
        recaptcha_site_key: state.config.recaptcha_site_key.clone(),
        captcha_required: state.config.recaptcha_secret.is_some(),
        map_tile_url: state.config.map_tile_url.clone(),
        mail_enabled: state.mail.enabled(),
        mqtt_port: state.mqtt_addr.map(|a| a.port()),
    })
}

/// The device type registry (`iotgo_protocol::types`), for the web app's controls and charts.
#[utoipa::path(get, path = "/api/types", tag = "server",
    responses((status = 200, description = "Every known device type",
        body = Vec<openapi::DeviceTypeInfo>)))]
async fn device_types() -> Json<&'static [TypeInfo]> {
    Json(TYPES)
}
