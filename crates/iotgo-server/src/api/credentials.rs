//! Credentials a user or an admin can retire: `POST /api/user/apikey` (a new apikey),
//! `POST /api/user/logout-all` (every token of the user dies),
//! `POST /api/user/device/{deviceid}/key` (a device's new device key) and
//! `POST /api/admin/logout-all` (every admin token dies).
//!
//! Each is a lifecycle event (`device/registry.rs`, `auth/admin_tokens.rs`): the old
//! credential stops working at once, on every transport and on the open sockets that
//! proved themselves with it.

use super::openapi::{AdminAuthFailure, Empty, OrError, UserAuthFailure};
use super::user::Session;
use crate::app::AppState;
use crate::auth::{AuthAdmin, AuthUser};
use crate::error::ApiError;
use crate::store::{Device, User, UserRecord};
use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rotate_apikey))
        .routes(routes!(logout_all))
        .routes(routes!(regenerate_device_key))
        .routes(routes!(admin_logout_all))
}

/// Gives the caller a new apikey. The old one stops working at once on every transport
/// (HTTP, new and open WebSockets: the sockets that proved themselves with it are cut);
/// every token of the caller dies, and the answer carries a fresh one. Devices using
/// their own device key are not affected; devices holding the old apikey must be given
/// the new one (or, better, their device key).
#[utoipa::path(post, path = "/api/user/apikey", tag = "accounts", security(("user_jwt" = [])),
    responses((status = 200, description = "The new session: a fresh token and the user \
        with the new apikey", body = Session), UserAuthFailure))]
async fn rotate_apikey(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Session>, ApiError> {
    let (apikey, version) = state
        .devices
        .rotate_apikey(&me.user.apikey)
        .await?
        // Deleted, or rotated by a concurrent request, since the token was checked.
        .ok_or(ApiError::Unauthorized("Invalid or expired token"))?;
    let user = User {
        apikey: apikey.as_str().to_owned(),
        ..me.user
    };
    let record = UserRecord {
        user,
        token_version: version,
        ..me
    };
    let jwt = super::account::issue_jwt(&state, &record)?;
    Ok(Json(Session {
        jwt,
        user: record.user,
    }))
}

/// Signs the caller out everywhere: every token of theirs, this one included, stops
/// working, and the WebSockets subscribed with one are cut.
#[utoipa::path(post, path = "/api/user/logout-all", tag = "accounts",
    security(("user_jwt" = [])),
    responses((status = 200, description = "`{}`", body = Empty), UserAuthFailure))]
async fn logout_all(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Empty>, ApiError> {
    state.devices.retire_tokens(&me.user.apikey).await?;
    Ok(Json(Empty {}))
}

/// Gives one of the caller's devices a new device key; the old one stops working at
/// once, and a socket the device opened with it is cut.
#[utoipa::path(post, path = "/api/user/device/{deviceid}/key", tag = "devices",
    params(("deviceid" = String, Path, description = "Ten hex digits")),
    security(("user_jwt" = [])),
    responses((status = 200, description = "The device with its new `deviceKey`, or a \
        business error", body = OrError<Device>), UserAuthFailure))]
async fn regenerate_device_key(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state
        .devices
        .regenerate_device_key(&me.user.apikey, &deviceid)
        .await?;
    device.map(Json).ok_or(super::devices::NO_SUCH_DEVICE)
}

/// Signs every admin out: every admin token issued so far, this one included, stops
/// working (as `iotgo admin revoke-tokens` does).
#[utoipa::path(post, path = "/api/admin/logout-all", tag = "admin",
    security(("admin_jwt" = [])),
    responses((status = 200, description = "`{}`", body = Empty), AdminAuthFailure))]
async fn admin_logout_all(
    State(state): State<AppState>,
    _admin: AuthAdmin,
) -> Result<Json<Empty>, ApiError> {
    state.admins.tokens().revoke().await?;
    Ok(Json(Empty {}))
}
