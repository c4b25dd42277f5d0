//! The Web API: one router per area, merged here, plus health, public settings and the
//! device type registry.

mod admin;
mod device_http;
mod devices;
mod extract;
mod history;
mod query;
mod user;
pub(crate) mod validate;
mod ws;

pub(crate) use admin::{MAX_CSV_ROWS, licenses_csv};

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use iotgo_protocol::types::{TYPES, TypeInfo};
use serde_json::{Value, json};

/// Every `/api` route and `/healthz`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(user::routes())
        .merge(devices::routes())
        .merge(history::routes())
        .merge(admin::routes())
        .merge(device_http::routes())
        .merge(ws::routes())
        .route("/api/config", get(public_config))
        .route("/api/types", get(device_types))
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .route("/healthz", get(health))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// 200 when the database answers, 503 otherwise.
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.store.ping().await {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database unavailable"})),
        )
    }
}

/// What a web or mobile app needs to know before anyone signs in.
async fn public_config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "recaptchaSiteKey": state.config.recaptcha_site_key,
        "captchaRequired": state.config.recaptcha_secret.is_some(),
        "mapTileUrl": state.config.map_tile_url,
    }))
}

/// The device type registry (`iotgo_protocol::types`), for the web app's controls and charts.
async fn device_types() -> Json<&'static [TypeInfo]> {
    Json(TYPES)
}
