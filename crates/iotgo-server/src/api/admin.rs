//! `/api/admin/…`: the admin panel's API — users, devices, licenses.

use super::extract::{JsonBody, QueryMap};
use super::openapi::UserListQuery;
use super::openapi::{
    AdminAuthFailure, BodyFailure, DeviceListQuery, HashingBusy, OrError, QueryFailure, Throttled,
};
use super::query::{ListQuery, MAX_PAGE};
use super::validate::{
    self,
    Required::{NonBlank, NonEmpty},
    required,
};
use crate::app::AppState;
use crate::auth::AuthAdmin;
use crate::error::ApiError;
use crate::net::ClientIp;
use crate::store::{Device, License, User};
use crate::throttle::Realm;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use iotgo_protocol::DeviceType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(check_update))
        .routes(routes!(users))
        .routes(routes!(user, delete_user))
        .routes(routes!(devices))
        .routes(routes!(device))
        .routes(routes!(licenses))
        .routes(routes!(create_licenses))
        .routes(routes!(licenses_csv_download))
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

/// An admin's e-mail address and password.
#[derive(Deserialize, ToSchema)]
#[schema(as = AdminCredentials)]
struct Credentials {
    /// The admin's e-mail address.
    email: Option<String>,
    /// The admin's password.
    password: Option<String>,
}

/// `{jwt, user: {email, isAdmin: true}}`, the answer of an admin login.
#[derive(Serialize, ToSchema)]
struct AdminSession {
    /// The admin token for `Authorization: Bearer`.
    jwt: String,
    /// The signed-in admin.
    user: Admin,
}

/// An admin as the panel sees them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Admin {
    /// The admin's e-mail address.
    email: String,
    /// Always `true`.
    is_admin: bool,
}

/// Signs an admin in.
#[utoipa::path(post, path = "/api/admin/login", tag = "admin", request_body = Credentials,
    responses((status = 200, description = "The admin session, or a business error",
        body = OrError<AdminSession>), BodyFailure, HashingBusy, Throttled))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<AdminSession>, ApiError> {
    let [email, password] = required(
        [
            NonBlank(body.email.as_deref()),
            NonEmpty(body.password.as_deref()),
        ],
        "Email address and password must not be empty!",
    )?;
    let email = email.trim().to_lowercase();
    let attempt = (state.throttles.login(Realm::Admin, client, &email))
        .map_err(|retry_after| ApiError::Throttled { retry_after })?;
    if !state
        .admins
        .verify(&state.passwords, &email, password)
        .await?
    {
        return Err(ApiError::business(
            "Email address or password is not correct!",
        ));
    }
    attempt.succeeded();
    let version = state.admins.tokens().current().await?;
    let jwt = state.jwt.issue_admin(&email, version)?;
    let user = Admin {
        email,
        is_admin: true,
    };
    Ok(Json(AdminSession { jwt, user }))
}

/// `{message}`: the server's name and version.
#[derive(Serialize, ToSchema)]
struct UpdateCheck {
    /// `IoTgo <version>`.
    message: &'static str,
}

/// The original admin panel asks this after login; there is no update server to ask.
#[utoipa::path(get, path = "/api/admin/checkUpdate", tag = "admin",
    security(("admin_jwt" = [])),
    responses((status = 200, description = "The server's version", body = UpdateCheck),
        AdminAuthFailure))]
async fn check_update(_admin: AuthAdmin) -> Json<UpdateCheck> {
    let message = concat!("IoTgo ", env!("CARGO_PKG_VERSION"));
    Json(UpdateCheck { message })
}

/// Users, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", params(UserListQuery),
    security(("admin_jwt" = [])),
    responses((status = 200, description = "A page of users", body = Vec<User>,
        headers(("x-total-count" = i64, description = "Matches before paging"))), AdminAuthFailure, QueryFailure))]
async fn users(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let filter = ListQuery::new(&q, state.config.page_limit).users()?;
    let (items, total) = state.store.users().list(&filter).await?;
    Ok(counted(items, total))
}

/// One user.
#[utoipa::path(get, path = "/api/admin/users/{apikey}", tag = "admin", params(("apikey" = String, Path, description = "The user's apikey")),
    security(("admin_jwt" = [])),
    responses((status = 200, description = "The user, or a business error",
        body = OrError<User>), AdminAuthFailure))]
async fn user(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    Path(apikey): Path<String>,
) -> Result<Json<User>, ApiError> {
    let record = state.store.users().find_by_apikey(&apikey).await?;
    record
        .map(|r| Json(r.user))
        .ok_or(ApiError::business("User does not exist!"))
}

/// Deletes a user and all their devices.
#[utoipa::path(delete, path = "/api/admin/users/{apikey}", tag = "admin", params(("apikey" = String, Path, description = "The user's apikey")),
    security(("admin_jwt" = [])),
    responses((status = 200, description = "The deleted user, or a business error",
        body = OrError<User>), AdminAuthFailure))]
async fn delete_user(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    Path(apikey): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = state.devices.delete_user(&apikey).await?;
    user.map(Json)
        .ok_or(ApiError::business("User does not exist!"))
}

/// Every user's devices, newest first, filtered and paged, without their params.
#[utoipa::path(get, path = "/api/admin/devices", tag = "admin", params(DeviceListQuery),
    security(("admin_jwt" = [])),
    responses((status = 200, description = "A page of devices", body = Vec<Device>,
        headers(("x-total-count" = i64, description = "Matches before paging"))), AdminAuthFailure, QueryFailure))]
async fn devices(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let filter = ListQuery::new(&q, state.config.page_limit).devices(MAX_PAGE)?;
    let (items, total) = state.store.devices().list(&filter).await?;
    Ok(counted(items, total))
}

/// One device, with its params.
#[utoipa::path(get, path = "/api/admin/devices/{deviceid}", tag = "admin",
    params(("deviceid" = String, Path, description = "Ten hex digits")),
    security(("admin_jwt" = [])),
    responses((status = 200, description = "The device, or a business error",
        body = OrError<Device>), AdminAuthFailure))]
async fn device(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    Path(deviceid): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = state.store.devices().find(&deviceid).await?;
    device
        .map(Json)
        .ok_or(ApiError::business("Device does not exist!"))
}

/// Licenses, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/admin/factorydevices", tag = "licenses",
    params(DeviceListQuery), security(("admin_jwt" = [])),
    responses((status = 200, description = "A page of licenses", body = Vec<License>,
        headers(("x-total-count" = i64, description = "Matches before paging"))), AdminAuthFailure, QueryFailure))]
async fn licenses(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(q): QueryMap,
) -> Result<Response, ApiError> {
    let filter = ListQuery::new(&q, state.config.page_limit).devices(MAX_PAGE)?;
    let (items, total) = state.store.licenses().list(&filter).await?;
    Ok(counted(items, total))
}

/// A batch of licenses to make.
#[derive(Deserialize, ToSchema)]
struct NewBatch {
    /// Product name, at most 128 characters.
    name: Option<String>,
    /// Two hex digits.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// How many: a whole number from 1 to 1000 (anything else is a business error).
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    qty: Option<Value>,
}

/// Makes a batch of licenses, serials from `TT80000001` on.
#[utoipa::path(post, path = "/api/admin/factorydevices/create", tag = "licenses",
    request_body = NewBatch, security(("admin_jwt" = [])),
    responses((status = 200, description = "The new licenses, or a business error",
        body = OrError<Vec<License>>), AdminAuthFailure, BodyFailure))]
async fn create_licenses(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    JsonBody(body): JsonBody<NewBatch>,
) -> Result<Json<Vec<License>>, ApiError> {
    const MISSING: &str = "Factory device name, type and qty must not be empty!";
    let [name, kind] = required(
        [
            NonBlank(body.name.as_deref()),
            NonEmpty(body.kind.as_deref()),
        ],
        MISSING,
    )?;
    let qty = body.qty.as_ref().ok_or(ApiError::business(MISSING))?;
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
    Ok(Json(state.store.licenses().create(name, ty, qty).await?))
}

/// A text cell of a CSV download, safe to open in a spreadsheet: text that a spreadsheet
/// would take for a formula (it begins with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) gets a leading `'`, as OWASP recommends against CSV injection, and shows as
/// the text it is. Only for text: numbers are written as they are (`-5` is no formula).
pub(super) fn text_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Licenses as the admin panel's CSV download (`iotgo licenses export` too): a header,
/// then one row per license. The name is the admin's text: a formula is neutralised
/// ([`text_cell`]); the other cells are made by the server.
pub(crate) fn licenses_csv(items: &[License]) -> anyhow::Result<Vec<u8>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["deviceid", "apikey", "type", "name", "batch", "createdAt"])?;
    for l in items {
        let created = l.created_at.iso();
        let name = text_cell(&l.name);
        let row: [&str; 6] = [&l.deviceid, &l.apikey, &l.kind, &name, &l.batch, &created];
        csv.write_record(row)?;
    }
    csv.flush()?;
    csv.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))
}

/// The licenses matching the list's filters (a batch: `?batch=<first deviceid>`) as CSV.
#[utoipa::path(get, path = "/api/admin/factorydevices/csv", tag = "licenses",
    params(DeviceListQuery), security(("admin_jwt" = [])),
    responses((status = 200,
        description = "`deviceid,apikey,type,name,batch,createdAt` rows, at most 100,000",
        body = String, content_type = "text/csv",
        headers(("content-disposition" = String, description = "The file name"))),
        AdminAuthFailure, QueryFailure))]
async fn licenses_csv_download(
    State(state): State<AppState>,
    _admin: AuthAdmin,
    QueryMap(mut q): QueryMap,
) -> Result<Response, ApiError> {
    q.entry("limit".into())
        .or_insert_with(|| MAX_CSV_ROWS.to_string());
    let filter = ListQuery::new(&q, state.config.page_limit).devices(MAX_CSV_ROWS)?;
    let (items, _) = state.store.licenses().list(&filter).await?;
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

#[cfg(test)]
mod tests {
    use super::text_cell;

    #[test]
    fn text_a_spreadsheet_would_run_gets_a_quote_and_other_text_stays() {
        for (text, cell) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+cmd", "'+1+cmd"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("ITEAD", "ITEAD"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(text_cell(text), cell, "{text:?}");
        }
    }
}
