//! `GET /metrics` behind its access rule, and the layer that gives every HTTP request a
//! span and counts it by route template and status.

use super::{Access, Metrics};
use crate::app::AppState;
use crate::net::ClientIp;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Histogram, counter, histogram, with_local_recorder};
use metrics_exporter_prometheus::PrometheusRecorder;
use std::sync::Arc;
use std::time::Instant;
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
        .is_some_and(|given| crate::secrets::same_secret(token, given.trim()))
}

/// Runs a request inside a span (method, route template, client address; the user and deviceid are
/// recorded by whoever learns them) and counts it with its status and duration. Paths
/// that match no route (the web app's files and redirects) count as route `other`.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("other", |m| m.as_str());
    let method = req.method().clone();
    let client = req.extensions().get::<ClientIp>().map(|c| c.0);
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        client = client.map(tracing::field::display),
        user = tracing::field::Empty,
        deviceid = tracing::field::Empty,
    );
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    span.in_scope(|| tracing::debug!(status, seconds, "answered"));
    metrics.http_request(&method, route, status, seconds);
    response
}

/// The `method` label: the standard methods by name, any other `other` (a client's
/// made-up methods must not make new series).
pub(super) fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

/// One route template's handles: per method, its duration histogram and a counter for
/// each status it answered. Resolved on first use (statuses and methods are few), so
/// counting a request is then a short scan and an atomic add.
#[derive(Default)]
pub(super) struct RouteHandles(Vec<MethodHandles>);

struct MethodHandles {
    method: &'static str,
    duration: Histogram,
    statuses: Vec<(u16, Counter)>,
}

impl RouteHandles {
    /// Counts one request of `method` on `route` answered `status` after `seconds`.
    pub(super) fn record(
        &mut self,
        recorder: &PrometheusRecorder,
        route: &str,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let m = match self.0.iter().position(|m| m.method == method) {
            Some(i) => &mut self.0[i],
            None => {
                let duration = with_local_recorder(recorder, || {
                    histogram!("iotgo_http_request_duration_seconds",
                        "method" => method, "route" => route.to_owned())
                });
                self.0.push(MethodHandles {
                    method,
                    duration,
                    statuses: Vec::new(),
                });
                self.0.last_mut().expect("just pushed")
            }
        };
        m.duration.record(seconds);
        match m.statuses.iter().find(|(s, _)| *s == status) {
            Some((_, count)) => count.increment(1),
            None => {
                let count = with_local_recorder(recorder, || {
                    counter!("iotgo_http_requests_total", "method" => method,
                        "route" => route.to_owned(), "status" => status.to_string())
                });
                count.increment(1);
                m.statuses.push((status, count));
            }
        }
    }
}
