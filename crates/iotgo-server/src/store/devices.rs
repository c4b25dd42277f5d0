//! The `devices` table: create with a race-free id, claim a license, look up, list,
//! rename, delete.

use super::filter::Where;
use super::licenses;
use super::{Device, DeviceFilter, Millis, StoreError, StoreResult};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType, Serial};
use serde_json::{Map, Value};
use sqlx::{Any, AnyConnection, AnyPool, Executor};

/// Every column of a [`DeviceRow`] but `params`, spliced into the SQL below at compile
/// time.
macro_rules! columns {
    () => {
        "deviceid, apikey, device_key, name, grp, type, created_at, last_modified, online, \
         last_seen_at, last_connected_at, last_disconnected_at"
    };
}

/// A device row with its params.
macro_rules! select_device {
    () => {
        concat!("SELECT ", columns!(), ", params FROM devices")
    };
}

const BY_OWNER: &str = concat!(
    select_device!(),
    " WHERE apikey = $1 ORDER BY created_at DESC, deviceid DESC"
);
const BY_ID_AND_OWNER: &str = concat!(select_device!(), " WHERE deviceid = $1 AND apikey = $2");
const BY_ID: &str = concat!(select_device!(), " WHERE deviceid = $1");
const OWNER: &str = "SELECT apikey FROM devices WHERE deviceid = $1";
const KEYS: &str = "SELECT apikey, device_key FROM devices WHERE deviceid = $1";
const SET_KEY: &str = concat!(
    "UPDATE devices SET device_key = $1 WHERE deviceid = $2 AND apikey = $3 RETURNING ",
    columns!(),
    ", params"
);
const RENAME: &str = concat!(
    "UPDATE devices SET name = $1, grp = $2 WHERE deviceid = $3 AND apikey = $4 RETURNING ",
    columns!(),
    ", params"
);
const DELETE: &str = concat!(
    "DELETE FROM devices WHERE deviceid = $1 AND apikey = $2 RETURNING ",
    columns!(),
    ", params"
);
/// The admin list leaves params out.
const LIST: &str = concat!("SELECT ", columns!(), ", NULL AS params FROM devices");
const COUNT: &str = "SELECT COUNT(*) FROM devices";
const INSERT: &str = "INSERT INTO devices \
                      (deviceid, apikey, device_key, name, grp, type, params, created_at, online) \
                      VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, 0)";
const ALLOCATE: &str = "INSERT INTO device_counters (type, half, last) VALUES ($1, $2, $3) \
                        ON CONFLICT (type, half) DO UPDATE SET last = device_counters.last + $4 \
                        RETURNING last";

#[derive(sqlx::FromRow)]
struct DeviceRow {
    deviceid: String,
    apikey: String,
    device_key: Option<String>,
    name: String,
    grp: String,
    #[sqlx(rename = "type")]
    kind: String,
    params: Option<String>,
    created_at: i64,
    last_modified: Option<i64>,
    online: i64,
    last_seen_at: Option<i64>,
    last_connected_at: Option<i64>,
    last_disconnected_at: Option<i64>,
}

impl From<DeviceRow> for Device {
    fn from(r: DeviceRow) -> Self {
        Device {
            name: r.name,
            group: r.grp,
            kind: r.kind,
            deviceid: r.deviceid,
            apikey: r.apikey,
            // Every row has one since migration 0005 (NOT NULL on PostgreSQL; SQLite
            // cannot add that constraint to an existing table).
            device_key: r.device_key.unwrap_or_default(),
            created_at: Millis(r.created_at),
            online: r.online != 0,
            params: r.params.map(|p| parse_params(&p)),
            last_modified: r.last_modified.map(Millis),
            last_seen_at: r.last_seen_at.map(Millis),
            last_connected_at: r.last_connected_at.map(Millis),
            last_disconnected_at: r.last_disconnected_at.map(Millis),
        }
    }
}

/// The params column as a map: stored params are always a JSON object, anything else
/// reads as empty.
pub(super) fn parse_params(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The owner's apikey of a device, `None` when there is no such device; on a pool or
/// inside a transaction.
async fn find_owner<'e>(
    exec: impl Executor<'e, Database = Any>,
    deviceid: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(OWNER)
        .bind(deviceid)
        .fetch_optional(exec)
        .await
}

/// Takes the next `qty` serials of `ty` in `half`; returns the first one.
///
/// The counter row is bumped inside the caller's transaction, so concurrent creators
/// serialise on it and a rolled-back create gives its serials back.
pub(super) async fn allocate(
    conn: &mut AnyConnection,
    ty: DeviceType,
    half: Serial,
    qty: u32,
) -> StoreResult<u32> {
    let last: i64 = sqlx::query_scalar(ALLOCATE)
        .bind(ty.as_str())
        .bind(matches!(half, Serial::Factory) as i64)
        .bind(i64::from(half.base()) + i64::from(qty))
        .bind(i64::from(qty))
        .fetch_one(&mut *conn)
        .await?;
    if last > i64::from(half.last()) {
        return Err(StoreError::IdsExhausted);
    }
    // In range: `last` is at most `half.last()` and at least `qty`.
    Ok((last - i64::from(qty) + 1) as u32)
}

/// What a claim of a license can run into.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// No license has this (deviceid, apikey) pair.
    #[error("Device does not exist!")]
    UnknownLicense,
    /// The caller claimed it already.
    #[error("Device has already been added!")]
    AlreadyYours,
    /// Someone else claimed it.
    #[error("Device belongs to other user!")]
    OtherOwner,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ClaimError {
    fn from(e: sqlx::Error) -> Self {
        ClaimError::Store(StoreError::Db(e))
    }
}

/// The `devices` table (`Store::devices`): borrows the store's pools.
#[derive(Clone, Copy)]
pub struct Devices<'a> {
    pub(super) read: &'a AnyPool,
    pub(super) write: &'a AnyPool,
}

impl Devices<'_> {
    /// Creates a DIY device of type `ty` owned by `owner`, with the next free serial.
    /// A running server creates devices through `DeviceApi::create_device`, which clears
    /// the caches too; this is public for set-up code with no server (an example).
    pub async fn create(
        &self,
        owner: &str,
        name: &str,
        group: &str,
        ty: DeviceType,
    ) -> StoreResult<Device> {
        let mut tx = self.write.begin().await?;
        let serial = allocate(&mut tx, ty, Serial::Diy, 1).await?;
        let id = DeviceId::new(ty, serial);
        let device = insert(&mut tx, &id, owner, name, group).await?;
        tx.commit().await?;
        Ok(device)
    }

    /// Claims the license (`deviceid`, `factory_apikey`) for `owner`
    /// (`DeviceApi::claim_device` calls it, then clears the caches).
    pub(crate) async fn claim(
        &self,
        owner: &str,
        id: &DeviceId,
        factory_apikey: &str,
        name: &str,
        group: &str,
    ) -> Result<Device, ClaimError> {
        let mut tx = self.write.begin().await?;
        if !licenses::exists(&mut *tx, id.as_str(), factory_apikey).await? {
            return Err(ClaimError::UnknownLicense);
        }
        match find_owner(&mut *tx, id.as_str()).await? {
            Some(h) if h == owner => return Err(ClaimError::AlreadyYours),
            Some(_) => return Err(ClaimError::OtherOwner),
            None => {}
        }
        let device = match insert(&mut tx, id, owner, name, group).await {
            // Two claims raced past the check above; the other one won.
            Err(StoreError::Conflict) => return Err(ClaimError::OtherOwner),
            other => other?,
        };
        tx.commit().await?;
        Ok(device)
    }

    /// The devices of `owner`, newest first, with params.
    pub async fn owned_by(&self, owner: &str) -> StoreResult<Vec<Device>> {
        let rows: Vec<DeviceRow> = sqlx::query_as(BY_OWNER)
            .bind(owner)
            .fetch_all(self.read)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One device of `owner`; `None` when it does not exist or belongs to someone else.
    pub async fn find_owned(&self, owner: &str, id: &str) -> StoreResult<Option<Device>> {
        let row: Option<DeviceRow> = sqlx::query_as(BY_ID_AND_OWNER)
            .bind(id)
            .bind(owner)
            .fetch_optional(self.read)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Any device by id, whoever owns it.
    pub async fn find(&self, id: &str) -> StoreResult<Option<Device>> {
        let row: Option<DeviceRow> = sqlx::query_as(BY_ID)
            .bind(id)
            .fetch_optional(self.read)
            .await?;
        Ok(row.map(Into::into))
    }

    /// The owner's apikey of a device, `None` when there is no such device.
    pub async fn owner_of(&self, id: &str) -> StoreResult<Option<String>> {
        Ok(find_owner(self.read, id).await?)
    }

    /// The owner's apikey and the device key of a device, `None` when there is no such
    /// device.
    pub async fn keys_of(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(KEYS)
            .bind(id)
            .fetch_optional(self.read)
            .await?;
        Ok(row.map(|(owner, key)| (owner, key.unwrap_or_default())))
    }

    /// Gives a device of `owner` a new device key; the device as it is now
    /// (`DeviceApi::regenerate_device_key` calls it, then updates the caches).
    pub(crate) async fn set_device_key(
        &self,
        owner: &str,
        id: &str,
        key: &str,
    ) -> StoreResult<Option<Device>> {
        let row: Option<DeviceRow> = sqlx::query_as(SET_KEY)
            .bind(key)
            .bind(id)
            .bind(owner)
            .fetch_optional(self.write)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Renames and regroups a device of `owner`.
    pub async fn rename(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        group: &str,
    ) -> StoreResult<Option<Device>> {
        let row: Option<DeviceRow> = sqlx::query_as(RENAME)
            .bind(name)
            .bind(group)
            .bind(id)
            .bind(owner)
            .fetch_optional(self.write)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Deletes a device of `owner` and its history; returns the device as it was
    /// (`DeviceApi::delete_device` calls it, then clears the caches).
    pub(crate) async fn delete(&self, owner: &str, id: &str) -> StoreResult<Option<Device>> {
        // One statement: the history's chunks go with the row (foreign key, cascade).
        let row: Option<DeviceRow> = sqlx::query_as(DELETE)
            .bind(id)
            .bind(owner)
            .fetch_optional(self.write)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Devices matching `filter` (admin), newest first, without params, and the match count.
    pub async fn list(&self, filter: &DeviceFilter) -> StoreResult<(Vec<Device>, i64)> {
        let w = Where::devices(filter);
        let (rows, total): (Vec<DeviceRow>, i64) = w
            .fetch_page(self.read, COUNT, LIST, "deviceid", filter.page)
            .await?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }
}

/// Inserts a new device row inside the caller's transaction.
async fn insert(
    conn: &mut AnyConnection,
    id: &DeviceId,
    owner: &str,
    name: &str,
    group: &str,
) -> StoreResult<Device> {
    let now = Millis::now();
    let device_key = ApiKey::generate();
    sqlx::query(INSERT)
        .bind(id.as_str())
        .bind(owner)
        .bind(device_key.as_str())
        .bind(name)
        .bind(group)
        .bind(id.device_type().as_str())
        .bind(now.0)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_db)?;
    Ok(Device {
        name: name.to_owned(),
        group: group.to_owned(),
        kind: id.device_type().as_str().to_owned(),
        deviceid: id.as_str().to_owned(),
        apikey: owner.to_owned(),
        device_key: device_key.as_str().to_owned(),
        created_at: now,
        online: false,
        params: Some(Map::new()),
        last_modified: None,
        last_seen_at: None,
        last_connected_at: None,
        last_disconnected_at: None,
    })
}
