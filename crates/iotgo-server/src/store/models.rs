//! What the store hands out, serialised in the IoTgo JSON shapes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A point in time, milliseconds since the epoch; serialised as ISO 8601 (`…T…Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub i64);

impl Millis {
    /// The current time.
    pub fn now() -> Self {
        Millis(Utc::now().timestamp_millis())
    }

    /// ISO 8601 with milliseconds, as the original (JavaScript's `toISOString`).
    pub fn iso(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.iso())
    }
}

/// In the OpenAPI document: a `date-time` string, as serialised.
impl PartialSchema for Millis {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples(["2014-11-24T06:49:20.822Z"])
            .into()
    }
}

impl ToSchema for Millis {}

/// A user as clients see it: never with the password.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Lowercased e-mail address.
    pub email: String,
    /// UUID v4; also the owner key of the user's devices. The user can rotate it
    /// (`POST /api/user/apikey`).
    pub apikey: String,
    /// When the account was made.
    pub created_at: Millis,
}

/// A user with what only the server may see.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The public part.
    pub user: User,
    /// Argon2id (or imported bcrypt) PHC string.
    pub password_hash: String,
    /// Bumped on every password change, apikey rotation and "sign out everywhere";
    /// JWTs carry it.
    pub token_version: i64,
    /// Whether the address is verified (always true unless `email_verification` is on
    /// and the account has not followed its link yet).
    pub email_verified: bool,
}

/// A device as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Display name.
    pub name: String,
    /// Group name, `""` when none.
    pub group: String,
    /// Two hex digits.
    #[serde(rename = "type")]
    pub kind: String,
    /// Ten hex digits.
    pub deviceid: String,
    /// The owner's apikey.
    pub apikey: String,
    /// The device's own key (UUID v4): it acts as this one device on the Device API
    /// (update, query, register of this deviceid), and nothing else. Give it to the
    /// device's firmware instead of the owner's apikey.
    pub device_key: String,
    /// When the device was created or claimed.
    pub created_at: Millis,
    /// Whether the device is connected now.
    pub online: bool,
    /// Last known state; left out of admin lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub params: Option<Map<String, Value>>,
    /// Time of the last params change.
    #[schema(required = true)]
    pub last_modified: Option<Millis>,
    /// Last request from the device on any transport.
    #[schema(required = true)]
    pub last_seen_at: Option<Millis>,
    /// Last time the device opened a connection.
    #[schema(required = true)]
    pub last_connected_at: Option<Millis>,
    /// Last time the device's connection closed.
    #[schema(required = true)]
    pub last_disconnected_at: Option<Millis>,
}

/// A license: a factory-made device with its own apikey, waiting to be claimed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct License {
    /// Batch (product) name.
    pub name: String,
    /// Two hex digits.
    #[serde(rename = "type")]
    pub kind: String,
    /// Ten hex digits, upper half of the serial space.
    pub deviceid: String,
    /// The factory apikey printed on the device.
    pub apikey: String,
    /// The first deviceid of the batch it was made in.
    pub batch: String,
    /// When the batch was made.
    pub created_at: Millis,
}
