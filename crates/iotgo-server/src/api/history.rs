//! `/api/user/device/{deviceid}/history` (JSON) and `…/history.csv`: the values a device's
//! updates recorded, raw or as min/avg/max per time bucket, at most `history_max_points`
//! points per answer. Shapes and parameters: `docs/history.md`.
//!
//! Only the owner may read: another user's device reads as "does not exist", as everywhere
//! in `/api/user/device…`.

use super::admin::text_cell;
use super::extract::QueryMap;
use super::openapi::{HistoryPoint, HistoryQuery, OrError, QueryFailure, UserAuthFailure};
use super::query::{bad, parse_time};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::history::{Series, SeriesPoint, Shape};
use crate::store::Millis;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use iotgo_protocol::DeviceType;
use iotgo_protocol::types::lookup;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(as_json))
        .routes(routes!(as_csv))
}

/// Most fields one request may ask for.
const MAX_FIELDS: usize = 16;
/// The range when `from` is not given: the day before `to`.
const DEFAULT_SPAN_MS: i64 = 24 * 3600 * 1000;
/// The latest time a range may name: 10000-01-01T00:00:00Z, the end of year 9999 (the
/// earliest is the epoch). Bounded so that no arithmetic on a range or its buckets can
/// overflow, and every time in an answer prints as an ISO 8601 year of four digits.
pub(crate) const MAX_TIME_MS: i64 = 253_402_300_800_000;

/// What to read, from the query string.
pub(crate) struct Ask {
    /// Start of the range (inclusive).
    pub(crate) from: Millis,
    /// End of the range (exclusive).
    pub(crate) to: Millis,
    /// The params read.
    pub(crate) fields: Vec<String>,
    /// Bucket width in milliseconds (whole seconds); `None` for raw points.
    pub(crate) bucket_ms: Option<i64>,
}

/// A device's history over the asked range.
struct Read {
    deviceid: String,
    ask: Ask,
    series: Series,
}

fn text<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// `a / b` rounded up, for `a ≥ 0` and `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

fn valid_field(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Reads `from`, `to`, `fields` and `bucket`; `kind` gives the default fields.
pub(crate) fn parse_ask(
    q: &HashMap<String, String>,
    kind: &str,
    cap: i64,
) -> Result<Ask, ApiError> {
    let time = |name| {
        text(q, name)
            .map(|s| {
                parse_time(s)
                    .filter(|t| (0..=MAX_TIME_MS).contains(&t.0))
                    .ok_or_else(|| bad(name))
            })
            .transpose()
    };
    let to = time("to")?.unwrap_or(Millis(Millis::now().0 + 1));
    let from = time("from")?.unwrap_or(Millis(to.0.saturating_sub(DEFAULT_SPAN_MS).max(0)));
    if from >= to {
        return Err(bad("from"));
    }
    let fields: Vec<String> = match text(q, "fields") {
        Some(list) => list.split(',').map(|f| f.trim().to_owned()).collect(),
        None => {
            let ty = DeviceType::parse(kind).ok();
            ty.map(lookup)
                .into_iter()
                .flat_map(|t| t.params.iter().filter(|p| p.history))
                .map(|p| p.name.to_owned())
                .collect()
        }
    };
    if fields.len() > MAX_FIELDS || !fields.iter().all(|f| valid_field(f)) {
        return Err(bad("fields"));
    }
    let span = to.0.saturating_sub(from.0);
    let bucket_ms = match text(q, "bucket") {
        None => None,
        Some("auto") => Some(ceil_div(ceil_div(span, cap), 1000).max(1) * 1000),
        Some(s) => match s.parse::<i64>() {
            Ok(secs) if secs > 0 && secs <= i64::MAX / 1000 => Some(secs * 1000),
            _ => return Err(bad("bucket")),
        },
    };
    if bucket_ms.is_some_and(|b| ceil_div(span, b) > cap) {
        return Err(ApiError::BadRequest(format!(
            "Too many buckets: at most {cap} per answer (use a wider bucket or bucket=auto)"
        )));
    }
    Ok(Ask {
        from,
        to,
        fields,
        bucket_ms,
    })
}

/// Reads the asked history of the caller's device.
async fn read(
    state: &AppState,
    owner: &str,
    deviceid: &str,
    q: &HashMap<String, String>,
) -> Result<Read, ApiError> {
    let device = state
        .store
        .devices()
        .find_owned(owner, deviceid)
        .await?
        .ok_or(ApiError::business("Device does not exist!"))?;
    let cap = i64::from(state.config.history_max_points.max(1));
    let ask = parse_ask(q, &device.kind, cap)?;
    let shape = match ask.bucket_ms {
        Some(width) => Shape::Buckets { width },
        None => Shape::Raw { cap: cap as usize },
    };
    let series = state
        .history
        .series(deviceid, &ask.fields, (ask.from, ask.to), shape)
        .await?;
    Ok(Read {
        deviceid: deviceid.to_owned(),
        ask,
        series,
    })
}

/// A device's history over a range, as JSON.
#[derive(Serialize, ToSchema)]
struct History {
    /// The device.
    deviceid: String,
    /// Start of the range.
    from: Millis,
    /// End of the range (exclusive).
    to: Millis,
    /// Bucket width in seconds, `null` for raw points.
    bucket: Option<i64>,
    /// The fields read.
    fields: Vec<String>,
    /// The points, oldest first.
    #[schema(value_type = Vec<HistoryPoint>)]
    points: Vec<Value>,
    /// Raw points stopped at the cap: ask again from after the last point's time.
    more: bool,
}

/// The recorded values of one of the caller's devices: raw points or min/avg/max/count
/// per bucket, at most `history_max_points`.
#[utoipa::path(get, path = "/api/user/device/{deviceid}/history", tag = "history",
    params(("deviceid" = String, Path, description = "Ten hex digits"), HistoryQuery),
    security(("user_jwt" = [])),
    responses((status = 200, description = "The history, or a business error",
        body = OrError<History>), UserAuthFailure, QueryFailure))]
async fn as_json(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
    QueryMap(q): QueryMap,
) -> Result<Json<History>, ApiError> {
    let s = read(&state, &me.user.apikey, &deviceid, &q).await?;
    let fields = &s.ask.fields;
    let points: Vec<Value> = s
        .series
        .points
        .iter()
        .map(|p| {
            let mut o = Map::new();
            match p {
                SeriesPoint::Raw { at, ts, values } => {
                    o.insert("time".into(), at.iso().into());
                    if let Some(ts) = ts {
                        o.insert("ts".into(), ts.iso().into());
                    }
                    for (f, v) in fields.iter().zip(values) {
                        if let Some(v) = v {
                            o.insert(f.clone(), json!(v));
                        }
                    }
                }
                SeriesPoint::Bucket { at, values } => {
                    o.insert("time".into(), at.iso().into());
                    for (f, b) in fields.iter().zip(values) {
                        if let Some(b) = b {
                            o.insert(
                                f.clone(),
                                json!({"min": b.min, "avg": b.avg, "max": b.max, "count": b.count}),
                            );
                        }
                    }
                }
            }
            Value::Object(o)
        })
        .collect();
    Ok(Json(History {
        deviceid: s.deviceid,
        from: s.ask.from,
        to: s.ask.to,
        bucket: s.ask.bucket_ms.map(|b| b / 1000),
        fields: s.ask.fields,
        points,
        more: s.series.more,
    }))
}

/// The same history as CSV: raw `time,ts,<field>…`, buckets
/// `time,<field>_min,<field>_avg,<field>_max,<field>_count…`.
#[utoipa::path(get, path = "/api/user/device/{deviceid}/history.csv", tag = "history",
    params(("deviceid" = String, Path, description = "Ten hex digits"), HistoryQuery),
    security(("user_jwt" = [])),
    responses((status = 200, description = "The history as CSV, or a business error as JSON",
        content((String = "text/csv"), (ErrorBody = "application/json")),
        headers(("x-history-more" = bool, description = "Raw points stopped at the cap"))),
        UserAuthFailure, QueryFailure))]
async fn as_csv(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let s = read(&state, &me.user.apikey, &deviceid, &q).await?;
    let csv = to_csv(&s).map_err(|e| ApiError::Internal(e.into()))?;
    let disposition = format!("attachment; filename=\"{}-history.csv\"", s.deviceid);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-history-more"),
                s.series.more.to_string(),
            ),
        ],
        csv,
    )
        .into_response())
}

/// Raw: `time,ts,<field>…`; buckets: `time,<field>_min,<field>_avg,<field>_max,<field>_count…`.
fn to_csv(s: &Read) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    // The field names are the only text from users and devices (and begin with a letter
    // or digit, `valid_field`); neutralised all the same, should that rule ever loosen.
    // The values are numbers and times, written as they are: `-5` stays a number.
    let mut head = vec!["time".to_owned()];
    if s.ask.bucket_ms.is_some() {
        for f in &s.ask.fields {
            head.extend(
                ["min", "avg", "max", "count"].map(|a| text_cell(&format!("{f}_{a}")).into_owned()),
            );
        }
    } else {
        head.push("ts".into());
        head.extend(s.ask.fields.iter().map(|f| text_cell(f).into_owned()));
    }
    w.write_record(&head)?;
    for p in &s.series.points {
        let row: Vec<String> = match p {
            SeriesPoint::Raw { at, ts, values } => {
                [at.iso(), ts.map(Millis::iso).unwrap_or_default()]
                    .into_iter()
                    .chain(values.iter().map(|v| opt(*v)))
                    .collect()
            }
            SeriesPoint::Bucket { at, values } => std::iter::once(at.iso())
                .chain(values.iter().flat_map(|b| {
                    match b {
                        Some(b) => [opt(Some(b.min)), opt(Some(b.avg)), opt(Some(b.max))]
                            .into_iter()
                            .chain([b.count.to_string()])
                            .collect::<Vec<_>>(),
                        None => vec![String::new(); 4],
                    }
                }))
                .collect(),
        };
        w.write_record(&row)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
