//! `/api/user/device…`: a user's own devices. Every query is scoped by the caller's
//! apikey, so another user's device reads as "does not exist".

use super::extract::JsonBody;
use super::openapi::{BodyFailure, OrError, UserAuthFailure};
use super::validate::{
    self,
    Required::{NonBlank, NonEmpty, Present},
    required,
};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::store::{ClaimError, Device};
use axum::Json;
use axum::extract::{Path, State};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(claim))
        .routes(routes!(show, rename, remove))
}

pub(super) const NO_SUCH_DEVICE: ApiError = ApiError::business("Device does not exist!");

/// A new DIY device.
#[derive(Deserialize, ToSchema)]
struct NewDevice {
    /// Display name, at most 128 characters.
    name: Option<String>,
    /// Group name, at most 128 characters.
    group: Option<String>,
    /// Two hex digits (`00` custom, `01` switch, `02` light, `03` temperature & humidity).
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The caller's devices, newest first.
#[utoipa::path(get, path = "/api/user/device", tag = "devices", security(("user_jwt" = [])),
    responses((status = 200, description = "The devices, `[]` when none", body = Vec<Device>),
        UserAuthFailure))]
async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<Device>>, ApiError> {
    Ok(Json(state.store.devices().owned_by(&me.user.apikey).await?))
}

/// Creates a DIY device; its deviceid is the type and the next free serial.
#[utoipa::path(post, path = "/api/user/device", tag = "devices", request_body = NewDevice,
    security(("user_jwt" = [])),
    responses((status = 200, description = "The new device, or a business error",
        body = OrError<Device>), UserAuthFailure, BodyFailure))]
async fn create(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<NewDevice>,
) -> Result<Json<Device>, ApiError> {
    let [name, kind] = required(
        [
            NonBlank(body.name.as_deref()),
            NonEmpty(body.kind.as_deref()),
        ],
        "Device name and type must be specified!",
    )?;
    let name = validate::name("Device name", name)?;
    let group = validate::name("Group", body.group.as_deref().unwrap_or_default())?;
    let ty = DeviceType::parse(kind)
        .map_err(|_| ApiError::Business(format!("Device type {kind} is forbidden!").into()))?;
    let device = state
        .devices
        .create_device(&me.user.apikey, name, group, ty)
        .await?;
    Ok(Json(device))
}

/// A factory-made device to claim by its license.
#[derive(Deserialize, ToSchema)]
struct Claim {
    /// Display name, at most 128 characters.
    name: Option<String>,
    /// Group name, at most 128 characters.
    group: Option<String>,
    /// The license's deviceid.
    deviceid: Option<String>,
    /// The license's apikey, printed on the device.
    apikey: Option<String>,
}

/// Claims an indie (factory-made) device by its license.
#[utoipa::path(post, path = "/api/user/device/add", tag = "devices", request_body = Claim,
    security(("user_jwt" = [])),
    responses((status = 200, description = "The claimed device, or a business error",
        body = OrError<Device>), UserAuthFailure, BodyFailure))]
async fn claim(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    JsonBody(body): JsonBody<Claim>,
) -> Result<Json<Device>, ApiError> {
    let [name, id, key] = required(
        [
            NonBlank(body.name.as_deref()),
            NonBlank(body.deviceid.as_deref()),
            NonBlank(body.apikey.as_deref()),
        ],
        "Device name, id and apikey must not be empty!",
    )?;
    let name = validate::name("Device name", name)?;
    let group = validate::name("Group", body.group.as_deref().unwrap_or_default())?;
    let id =
        DeviceId::parse(id.trim()).map_err(|_| ApiError::business("Invalid device id format!"))?;
    let key = ApiKey::parse(key.trim()).map_err(|_| NO_SUCH_DEVICE)?;
    match state
        .devices
        .claim_device(&me.user.apikey, &id, key.as_str(), name, group)
        .await
    {
        Ok(device) => Ok(Json(device)),
        Err(ClaimError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Business(e.to_string().into())),
    }
}

/// One of the caller's devices, with its params.
#[utoipa::path(get, path = "/api/user/device/{deviceid}", tag = "devices",
    params(("deviceid" = String, Path, description = "Ten hex digits")), security(("user_jwt" = [])),
    responses((status = 200, description = "The device, or a business error",
        body = OrError<Device>), UserAuthFailure))]
async fn show(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state
        .store
        .devices()
        .find_owned(&me.user.apikey, &deviceid)
        .await?;
    device.map(Json).ok_or(NO_SUCH_DEVICE)
}

/// A device's new name and group.
#[derive(Deserialize, ToSchema)]
struct Rename {
    /// Display name, at most 128 characters.
    name: Option<String>,
    /// Group name (`""` for none), at most 128 characters.
    group: Option<String>,
}

/// Renames one of the caller's devices.
#[utoipa::path(post, path = "/api/user/device/{deviceid}", tag = "devices",
    params(("deviceid" = String, Path, description = "Ten hex digits")), request_body = Rename, security(("user_jwt" = [])),
    responses((status = 200, description = "The renamed device, or a business error",
        body = OrError<Device>), UserAuthFailure, BodyFailure))]
async fn rename(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
    JsonBody(body): JsonBody<Rename>,
) -> Result<Json<Device>, ApiError> {
    let [name, group] = required(
        [
            NonBlank(body.name.as_deref()),
            Present(body.group.as_deref()),
        ],
        "Device name and group must not be empty!",
    )?;
    let name = validate::name("Device name", name)?;
    let group = validate::name("Group", group)?;
    let device = state
        .store
        .devices()
        .rename(&me.user.apikey, &deviceid, name, group)
        .await?;
    device.map(Json).ok_or(NO_SUCH_DEVICE)
}

/// Deletes one of the caller's devices (a claimed one's license becomes free again).
#[utoipa::path(delete, path = "/api/user/device/{deviceid}", tag = "devices",
    params(("deviceid" = String, Path, description = "Ten hex digits")), security(("user_jwt" = [])),
    responses((status = 200, description = "The deleted device, or a business error",
        body = OrError<Device>), UserAuthFailure))]
async fn remove(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state
        .devices
        .delete_device(&me.user.apikey, &deviceid)
        .await?;
    device.map(Json).ok_or(NO_SUCH_DEVICE)
}
