//! `POST /api/http`: the Device API over HTTP.
//!
//! Answers are compact JSON with HTTP 200 whatever the Device API error, as the original:
//! the Arduino library reads them into a 512-byte buffer and searches for `"error":0`.
//! HTTP/1.1 keep-alive and HTTP/1.0 are hyper's business. Any other method answers 405.

use crate::app::AppState;
use crate::metrics::DeviceAction;
use crate::net::ClientIp;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use iotgo_protocol::{Echo, ErrorCode};
use serde_json::Value;

/// The route of this transport.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/http", post(handle))
}

fn answer(status: StatusCode, body: &Value) -> Response {
    let text = serde_json::to_string(body).expect("a JSON value always serialises");
    let json = HeaderValue::from_static("application/json");
    (status, [(CONTENT_TYPE, json)], text).into_response()
}

/// `application/json`, with or without parameters such as a charset.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn handle(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = || {
        let code = ErrorCode::BadRequest.code();
        state.metrics.device_request(DeviceAction::Invalid, code);
        let refused = Echo::default().error(ErrorCode::BadRequest);
        answer(StatusCode::BAD_REQUEST, &refused.to_value())
    };
    // The original refused requests whose Host is not its configured host name.
    if let Some(host) = &state.config.host {
        let given = headers.get(HOST).and_then(|v| v.to_str().ok());
        if given != Some(host.as_str()) {
            return bad();
        }
    }
    if !is_json(&headers) {
        return bad();
    }
    let raw = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(raw)) => raw,
        _ => return bad(),
    };
    answer(StatusCode::OK, &state.devices.request(&raw, client).await)
}
