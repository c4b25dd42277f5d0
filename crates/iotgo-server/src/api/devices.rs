//! `/api/user/device…`: a user's own devices. Every query is scoped by the caller's
//! apikey, so another user's device reads as "does not exist".

use super::extract::JsonBody;
use super::validate;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::store::{ClaimError, Device};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType};
use serde::Deserialize;

/// The routes of this area.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/user/device", get(list).post(create))
        .route("/api/user/device/add", post(claim))
        .route(
            "/api/user/device/{deviceid}",
            get(show).post(rename).delete(remove),
        )
}

const NO_SUCH_DEVICE: ApiError = ApiError::business("Device does not exist!");

#[derive(Deserialize)]
struct NewDevice {
    name: Option<String>,
    group: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<Device>>, ApiError> {
    Ok(Json(state.store.devices_of(&me.user.apikey).await?))
}

async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<NewDevice>,
) -> Result<Json<Device>, ApiError> {
    let (name, kind) = match (body.name.as_deref(), body.kind.as_deref()) {
        (Some(n), Some(t)) if !n.trim().is_empty() && !t.is_empty() => (n, t),
        _ => {
            return Err(ApiError::business(
                "Device name and type must be specified!",
            ));
        }
    };
    let name = validate::name("Device name", name)?;
    let group = validate::name("Group", body.group.as_deref().unwrap_or_default())?;
    let ty = DeviceType::parse(kind)
        .map_err(|_| ApiError::Business(format!("Device type {kind} is forbidden!").into()))?;
    let device = state
        .store
        .create_device(&me.user.apikey, name, group, ty)
        .await?;
    state.devices.device_added(&device.deviceid, &device.apikey);
    Ok(Json(device))
}

#[derive(Deserialize)]
struct Claim {
    name: Option<String>,
    group: Option<String>,
    deviceid: Option<String>,
    apikey: Option<String>,
}

async fn claim(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<Claim>,
) -> Result<Json<Device>, ApiError> {
    let (name, id, key) = match (&body.name, &body.deviceid, &body.apikey) {
        (Some(n), Some(d), Some(k)) if ![n, d, k].iter().any(|s| s.trim().is_empty()) => (n, d, k),
        _ => {
            return Err(ApiError::business(
                "Device name, id and apikey must not be empty!",
            ));
        }
    };
    let name = validate::name("Device name", name)?;
    let group = validate::name("Group", body.group.as_deref().unwrap_or_default())?;
    let id =
        DeviceId::parse(id.trim()).map_err(|_| ApiError::business("Invalid device id format!"))?;
    let key = ApiKey::parse(key.trim()).map_err(|_| NO_SUCH_DEVICE)?;
    match state
        .store
        .claim_device(&me.user.apikey, &id, key.as_str(), name, group)
        .await
    {
        Ok(device) => {
            state.devices.device_added(&device.deviceid, &device.apikey);
            Ok(Json(device))
        }
        Err(ClaimError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Business(e.to_string().into())),
    }
}

async fn show(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state.store.device_of(&me.user.apikey, &deviceid).await?;
    device.map(Json).ok_or(NO_SUCH_DEVICE)
}

#[derive(Deserialize)]
struct Rename {
    name: Option<String>,
    group: Option<String>,
}

async fn rename(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
    JsonBody(body): JsonBody<Rename>,
) -> Result<Json<Device>, ApiError> {
    let (name, group) = match (body.name.as_deref(), body.group.as_deref()) {
        (Some(n), Some(g)) if !n.trim().is_empty() => (n, g),
        _ => {
            return Err(ApiError::business(
                "Device name and group must not be empty!",
            ));
        }
    };
    let name = validate::name("Device name", name)?;
    let group = validate::name("Group", group)?;
    let device = state
        .store
        .rename_device(&me.user.apikey, &deviceid, name, group)
        .await?;
    device.map(Json).ok_or(NO_SUCH_DEVICE)
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state
        .store
        .delete_device(&me.user.apikey, &deviceid)
        .await?;
    if let Some(d) = &device {
        state.devices.device_removed(&d.deviceid);
    }
    device.map(Json).ok_or(NO_SUCH_DEVICE)
}
