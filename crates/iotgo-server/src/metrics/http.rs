//! `GET /metrics` behind its access rule, and the layer that gives every HTTP request a
//! span and counts it by route template and status.

use super::{Access, Metrics};
use crate::app::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Instant;
use subtle::ConstantTimeEq;
use tracing::Instrument;

/// The Prometheus text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let metrics = &state.metrics;
    match &metrics.access {
        Access::Off => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        Access::Open => {}
        Access::Token(token) if bearer_matches(&headers, token.expose()) => {}
        Access::Token(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(WWW_AUTHENTICATE, "Bearer")],
                "metrics need Authorization: Bearer <metrics token>\n",
            )
                .into_response();
        }
    }
    let body = metrics.render(&state.store);
    ([(CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
        .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

/// Runs a request inside a span (method, route template; the user and deviceid are
/// recorded by whoever learns them) and counts it with its status and duration. Paths
/// that match no route (the web app's files and redirects) count as route `other`.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |m| m.as_str())
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        user = tracing::field::Empty,
        deviceid = tracing::field::Empty,
    );
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    span.in_scope(|| tracing::debug!(status, seconds, "answered"));
    metrics.http_request(method.as_str(), &route, status, seconds);
    response
}
