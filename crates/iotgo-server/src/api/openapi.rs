//! The OpenAPI 3.1 document of the Web API and its interactive docs page.
//!
//! The document is generated from the code: every Web API handler carries a
//! `#[utoipa::path]` annotation and is registered with utoipa-axum's `routes!`, which adds
//! the route to the router and the operation to the document in one step (see
//! [`super::routes`]); the types the handlers answer derive `ToSchema`. It is served at
//! `GET /api/openapi.json`, and Swagger UI at `/api/docs/` (utoipa-swagger-ui with its
//! `vendored` feature: the page's files are inside the binary, so it works offline).
//!
//! The types below describe what the handlers do not state in their signatures: the
//! 200-or-business-error answers of the IoTgo convention, the 4xx failures the extractors
//! answer, query parameters read from a plain map, and the device type registry (which
//! lives in `iotgo-protocol`, kept free of OpenAPI). `scripts/api-check` runs schemathesis
//! against a started server to keep them true. The Device API (`/api/http`, `/api/ws`) is
//! described by the JSON Schemas under `docs/schemas/device-api/` instead.

use crate::error::ErrorBody;
use axum::Router;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, OpenApi as Document};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the document is served.
pub const DOC_PATH: &str = "/api/openapi.json";
/// Where the docs page is served (`/api/docs` redirects to `/api/docs/`).
pub const UI_PATH: &str = "/api/docs";

/// The document's frame: title, tags, security schemes; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "IoTgo Web API",
        description = "Accounts, devices, history, admin and licenses of an IoTgo server. \
            Business failures answer HTTP 200 with `{\"error\": \"<message>\"}`: clients test \
            for the `error` property. The Device API (`POST /api/http`, `/api/ws`) is described \
            in docs/device-api.md."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "accounts", description = "Sign-up, login, password change, API key \
            rotation, signing out everywhere; e-mail verification, password reset and e-mail \
            change by mailed links"),
        (name = "devices", description = "A user's own devices"),
        (name = "history", description = "The recorded values of a user's device"),
        (name = "admin", description = "The admin panel: login, users, devices"),
        (name = "licenses", description = "Factory-made devices waiting to be claimed"),
        (name = "server", description = "Health, public settings, device types"),
    )
)]
pub struct ApiDoc;

/// Adds the two bearer schemes: a user's token (`user_jwt`) and an admin's (`admin_jwt`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let bearer = |who: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(format!(
                        "The `jwt` of `POST /api/{who}/login`: `Authorization: Bearer <jwt>`"
                    )))
                    .build(),
            )
        };
        let mut components = doc
            .components
            .take()
            .unwrap_or_else(|| ComponentsBuilder::new().build());
        components.add_security_scheme("user_jwt", bearer("user"));
        components.add_security_scheme("admin_jwt", bearer("admin"));
        doc.components = Some(components);
    }
}

/// The document and Swagger UI, configured to fetch it and nothing else (no validator
/// badge: that would call an external service).
pub fn routes<S: Clone + Send + Sync + 'static>(doc: Document) -> Router<S> {
    let ui = SwaggerUi::new(UI_PATH)
        .url(DOC_PATH, doc)
        .config(Config::new([DOC_PATH]).validator_url("none"));
    Router::from(ui).layer(crate::headers::docs_layer())
}

/// An answer with HTTP 200: the value asked for, or a business failure.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum OrError<T> {
    /// Success.
    Ok(T),
    /// A business failure, such as a wrong password or an unknown device.
    Error(ErrorBody),
}

/// An empty object, `{}`: the answer of a password change.
#[derive(Serialize, ToSchema)]
#[schema(max_properties = 0)]
pub struct Empty {}

/// Failures of every path that needs a user's token.
#[derive(IntoResponses)]
pub enum UserAuthFailure {
    /// No, invalid or expired token (a password change retires older tokens).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// An admin token on a user path; or, on device and history paths while
    /// `email_verification` is on, an account that has not verified its address.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// Failures of every path that needs an admin's token.
#[derive(IntoResponses)]
pub enum AdminAuthFailure {
    /// No, invalid or expired token, or an admin no longer configured.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// A user token on an admin path.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// Failures of a JSON request body.
#[derive(IntoResponses)]
pub enum BodyFailure {
    /// Malformed JSON or a field of the wrong JSON type.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is over `max_body_bytes`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `Content-Type: application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody),
}

/// The answer of a path that hashes a password when hashing is saturated.
#[derive(IntoResponses)]
pub enum HashingBusy {
    /// Every hashing slot stayed taken for `password_hash_queue_timeout`: retry after
    /// `Retry-After` seconds.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Busy(ErrorBody),
}

/// The answer of a throttled path (logins, sign-ups).
#[derive(IntoResponses)]
pub enum Throttled {
    /// Too many attempts from this client address or for this account: retry after
    /// `Retry-After` seconds (docs/security.md, "Throttling").
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    TooMany(ErrorBody),
}

/// Failures of the query string.
#[derive(IntoResponses)]
pub enum QueryFailure {
    /// A query parameter that does not read (a bad number, time or field list).
    #[response(status = 400)]
    BadRequest(ErrorBody),
}

/// The filters of `GET /api/admin/users`. Times: RFC 3339, a date (`2024-05-01`; as a
/// `…To` bound the end of that day) or epoch milliseconds.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct UserListQuery {
    /// Page size (default `page_limit`; at most 1000; 0 means the default).
    pub limit: Option<i64>,
    /// Matches to skip.
    pub skip: Option<i64>,
    /// Made at or after.
    pub created_at_from: Option<String>,
    /// Made at or before.
    pub created_at_to: Option<String>,
    /// Part of the e-mail address.
    pub email: Option<String>,
}

/// The filters of `GET /api/admin/devices`, `/api/admin/factorydevices` and its CSV
/// (`lastModifiedAt…` and `batch` apply to the lists they name). Times as for users.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct DeviceListQuery {
    /// Page size (default `page_limit`; at most 1000, 100,000 for the CSV).
    pub limit: Option<i64>,
    /// Matches to skip.
    pub skip: Option<i64>,
    /// Made at or after.
    pub created_at_from: Option<String>,
    /// Made at or before.
    pub created_at_to: Option<String>,
    /// Params changed at or after (devices).
    pub last_modified_at_from: Option<String>,
    /// Params changed at or before (devices).
    pub last_modified_at_to: Option<String>,
    /// Part of the name, any case.
    pub name: Option<String>,
    /// Part of the type.
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Part of the deviceid.
    pub deviceid: Option<String>,
    /// The owner's apikey (devices) or the license's apikey.
    pub apikey: Option<String>,
    /// The first deviceid of a license batch (licenses).
    pub batch: Option<String>,
}

/// The parameters of a device's history (`docs/history.md`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Start of the range (RFC 3339, a date or epoch milliseconds; default: a day before `to`).
    pub from: Option<String>,
    /// End of the range, exclusive (default: now).
    pub to: Option<String>,
    /// Comma-separated field names, at most 16 (default: the type's history params).
    pub fields: Option<String>,
    /// Bucket width in seconds, or `auto`; absent for raw points.
    pub bucket: Option<String>,
}

/// One point of a history answer: its `time`, a raw point's device time `ts`, and per
/// field a number (raw) or a bucket's statistics.
#[derive(Serialize, ToSchema)]
pub struct HistoryPoint {
    /// The point's time, or the bucket's start.
    pub time: String,
    /// The time the device gave, for raw points that had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// The values, by field name.
    #[serde(flatten)]
    pub values: std::collections::HashMap<String, PointValue>,
}

/// A field's value in a history point.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PointValue {
    /// A raw value.
    Raw(f64),
    /// A bucket's statistics.
    Bucket(BucketStats),
}

/// A bucket's statistics of one field.
#[derive(Serialize, ToSchema)]
pub struct BucketStats {
    /// Smallest value.
    pub min: f64,
    /// Mean value.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub count: i64,
}

/// A device type of `GET /api/types` (`iotgo_protocol::types::TypeInfo`).
#[derive(ToSchema)]
pub struct DeviceTypeInfo {
    /// Two lowercase hex digits.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Whether an update may carry `timers` instead of its state.
    pub timers: bool,
    /// Its params; others are free JSON.
    pub params: Vec<TypeParam>,
}

/// One param of a device type.
#[derive(ToSchema)]
pub struct TypeParam {
    /// The key in `params`.
    pub name: String,
    /// Its values: `onoff` (`"on"`/`"off"`), `number`, `color` (`#rrggbb`) or `text`.
    #[schema(pattern = "^(onoff|number|color|text)$")]
    pub kind: String,
    /// Unit symbol of a number, `null` when unitless (numbers only).
    #[schema(required = false)]
    pub unit: Option<String>,
    /// Smallest accepted number (numbers only).
    #[schema(required = false)]
    pub min: Option<f64>,
    /// Largest accepted number (numbers only).
    #[schema(required = false)]
    pub max: Option<f64>,
    /// Every update must carry it.
    pub required: bool,
    /// Apps may set it.
    pub writable: bool,
    /// Each accepted value is kept in the history.
    pub history: bool,
}
