//! `/api/admin/…`: the admin panel's API — users, devices, licenses.

use super::extract::{JsonBody, QueryMap};
use super::query::{ListQuery, MAX_PAGE};
use super::validate;
use crate::app::AppState;
use crate::auth::AuthAdmin;
use crate::error::ApiError;
use crate::store::{Device, License, User};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iotgo_protocol::DeviceType;
use serde::Deserialize;
use serde_json::{Value, json};

/// The routes of this area.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/login", post(login))
        .route("/api/admin/checkUpdate", get(check_update))
        .route("/api/admin/users", get(users))
        .route("/api/admin/users/{apikey}", get(user).delete(delete_user))
        .route("/api/admin/devices", get(devices))
        .route("/api/admin/devices/{deviceid}", get(device))
        .route("/api/admin/factorydevices", get(licenses))
        .route("/api/admin/factorydevices/create", post(create_licenses))
        .route("/api/admin/factorydevices/csv", get(licenses_csv_download))
}

/// Largest batch of licenses made at once.
pub(crate) const MAX_BATCH: u32 = 1000;
/// Largest CSV download, in rows.
pub(crate) const MAX_CSV_ROWS: i64 = 100_000;

/// A list as a plain JSON array (as the original), with `X-Total-Count` for paging.
fn counted<T: serde::Serialize>(items: Vec<T>, total: i64) -> Response {
    let mut res = Json(items).into_response();
    res.headers_mut().insert(
        HeaderName::from_static("x-total-count"),
        HeaderValue::from(total),
    );
    res
}

#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<Value>, ApiError> {
    let (email, password) = match (body.email.as_deref(), body.password.as_deref()) {
        (Some(e), Some(p)) if !e.trim().is_empty() && !p.is_empty() => (e, p),
        _ => {
            return Err(ApiError::business(
                "Email address and password must not be empty!",
            ));
        }
    };
    let email = email.trim().to_lowercase();
    if !state.admins.verify(&email, password).await {
        return Err(ApiError::business(
            "Email address or password is not correct!",
        ));
    }
    let jwt = state.jwt.issue_admin(&email)?;
    Ok(Json(
        json!({"jwt": jwt, "user": {"email": email, "isAdmin": true}}),
    ))
}

/// The original admin panel asks this after login; there is no update server to ask.
async fn check_update(_admin: AuthAdmin) -> Json<Value> {
    Json(json!({"message": concat!("IoTgo ", env!("CARGO_PKG_VERSION"))}))
}

async fn users(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let filter = ListQuery::new(&q, state.config.page_limit).users()?;
    let (items, total) = state.store.list_users(&filter).await?;
    Ok(counted(items, total))
}

async fn user(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    Path(apikey): Path<String>,
) -> Result<Json<User>, ApiError> {
    let record = state.store.user_by_apikey(&apikey).await?;
    record
        .map(|r| Json(r.user))
        .ok_or(ApiError::business("User does not exist!"))
}

async fn delete_user(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    Path(apikey): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = state.store.delete_user(&apikey).await?;
    if let Some(u) = &user {
        state.devices.user_removed(&u.apikey);
    }
    user.map(Json)
        .ok_or(ApiError::business("User does not exist!"))
}

async fn devices(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let filter = ListQuery::new(&q, state.config.page_limit).devices(MAX_PAGE)?;
    let (items, total) = state.store.list_devices(&filter).await?;
    Ok(counted(items, total))
}

async fn device(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state.store.device(&deviceid).await?;
    device
        .map(Json)
        .ok_or(ApiError::business("Device does not exist!"))
}

async fn licenses(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let filter = ListQuery::new(&q, state.config.page_limit).devices(MAX_PAGE)?;
    let (items, total) = state.store.list_licenses(&filter).await?;
    Ok(counted(items, total))
}

#[derive(Deserialize)]
struct NewBatch {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    qty: Option<Value>,
}

async fn create_licenses(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    JsonBody(body): JsonBody<NewBatch>,
) -> Result<Json<Vec<License>>, ApiError> {
    let (name, kind, qty) = match (&body.name, &body.kind, &body.qty) {
        (Some(n), Some(t), Some(q)) if !n.trim().is_empty() && !t.is_empty() => (n, t, q),
        _ => {
            return Err(ApiError::business(
                "Factory device name, type and qty must not be empty!",
            ));
        }
    };
    let name = validate::name("Name", name)?;
    let ty = DeviceType::parse(kind)
        .map_err(|_| ApiError::Business(format!("Device type {kind} is forbidden!").into()))?;
    let qty = qty
        .as_u64()
        .and_then(|q| u32::try_from(q).ok())
        .filter(|q| (1..=MAX_BATCH).contains(q))
        .ok_or(ApiError::business(
            "qty must be a whole number from 1 to 1000!",
        ))?;
    Ok(Json(state.store.create_licenses(name, ty, qty).await?))
}

/// Licenses as the admin panel's CSV download (`iotgo licenses export` too): a header,
/// then one row per license.
pub(crate) fn licenses_csv(items: &[License]) -> anyhow::Result<Vec<u8>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["deviceid", "apikey", "type", "name", "batch", "createdAt"])?;
    for l in items {
        let created = l.created_at.iso();
        csv.write_record([&l.deviceid, &l.apikey, &l.kind, &l.name, &l.batch, &created])?;
    }
    csv.flush()?;
    csv.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))
}

/// The licenses matching the list's filters (a batch: `?batch=<first deviceid>`) as CSV.
async fn licenses_csv_download(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(mut q): QueryMap,
) -> Result<Response, ApiError> {
    q.entry("limit".into())
        .or_insert_with(|| MAX_CSV_ROWS.to_string());
    let filter = ListQuery::new(&q, state.config.page_limit).devices(MAX_CSV_ROWS)?;
    let (items, _) = state.store.list_licenses(&filter).await?;
    let body = licenses_csv(&items)?;
    let file = match filter.batch {
        Some(b) => format!("attachment; filename=\"licenses-{b}.csv\""),
        None => "attachment; filename=\"licenses.csv\"".to_owned(),
    };
    let disposition = HeaderValue::from_str(&file).map_err(anyhow::Error::from)?;
    Ok((
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
