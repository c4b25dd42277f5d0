//! The `factory_devices` table: licenses, batches of factory ("indie") devices made by an
//! admin, each waiting to be claimed with its own apikey.

use super::devices::allocate;
use super::filter::Where;
use super::{DeviceFilter, License, Millis, StoreResult};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType, Serial};
use sqlx::{Any, AnyPool, Executor};

const INSERT: &str = "INSERT INTO factory_devices \
                      (deviceid, apikey, name, type, batch, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
const FACTORY_KEY: &str = "SELECT apikey FROM factory_devices WHERE deviceid = $1";
const LIST: &str = "SELECT deviceid, apikey, name, type, batch, created_at FROM factory_devices";
const COUNT: &str = "SELECT COUNT(*) FROM factory_devices";

#[derive(sqlx::FromRow)]
struct LicenseRow {
    deviceid: String,
    apikey: String,
    name: String,
    #[sqlx(rename = "type")]
    kind: String,
    batch: String,
    created_at: i64,
}

impl From<LicenseRow> for License {
    fn from(r: LicenseRow) -> Self {
        License {
            name: r.name,
            kind: r.kind,
            deviceid: r.deviceid,
            apikey: r.apikey,
            batch: r.batch,
            created_at: Millis(r.created_at),
        }
    }
}

/// How many licenses [`Licenses::create_reporting`] inserts between two reports.
const PROGRESS_STEP: u32 = 1000;

/// Whether a license with this (deviceid, factory apikey) pair exists; on a pool or inside
/// a transaction (a claim checks it in its own).
///
/// The license is found by its deviceid (printed on the label, not a secret) and the key
/// compared in constant time, so the time of a refusal tells nothing about how much of a
/// guessed key was right (an index look-up by the key would stop at the first byte that
/// differs).
pub(super) async fn exists<'e>(
    exec: impl Executor<'e, Database = Any>,
    deviceid: &str,
    apikey: &str,
) -> Result<bool, sqlx::Error> {
    let key: Option<String> = sqlx::query_scalar(FACTORY_KEY)
        .bind(deviceid)
        .fetch_optional(exec)
        .await?;
    Ok(key.is_some_and(|key| crate::secrets::same_secret(&key, apikey)))
}

/// The `factory_devices` table (`Store::licenses`): borrows the store's pools.
#[derive(Clone, Copy)]
pub struct Licenses<'a> {
    pub(super) read: &'a AnyPool,
    pub(super) write: &'a AnyPool,
}

impl Licenses<'_> {
    /// Makes `qty` licenses of type `ty` in one batch, each with its own apikey.
    pub async fn create(&self, name: &str, ty: DeviceType, qty: u32) -> StoreResult<Vec<License>> {
        self.create_reporting(name, ty, qty, |_| {}).await
    }

    /// [`Licenses::create`], calling `progress` with the number inserted so far after
    /// every 1,000 rows (the batch still commits as one transaction).
    pub async fn create_reporting(
        &self,
        name: &str,
        ty: DeviceType,
        qty: u32,
        mut progress: impl FnMut(u32),
    ) -> StoreResult<Vec<License>> {
        let now = Millis::now();
        let mut tx = self.write.begin().await?;
        let first = allocate(&mut tx, ty, Serial::Factory, qty).await?;
        let batch = DeviceId::new(ty, first).to_string();
        let mut out = Vec::with_capacity(qty as usize);
        for serial in first..first + qty {
            let license = License {
                name: name.to_owned(),
                kind: ty.to_string(),
                deviceid: DeviceId::new(ty, serial).to_string(),
                apikey: ApiKey::generate().to_string(),
                batch: batch.clone(),
                created_at: now,
            };
            sqlx::query(INSERT)
                .bind(&license.deviceid)
                .bind(&license.apikey)
                .bind(&license.name)
                .bind(&license.kind)
                .bind(&license.batch)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            out.push(license);
            if (serial - first + 1) % PROGRESS_STEP == 0 {
                progress(serial - first + 1);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Whether a license with this (deviceid, factory apikey) pair exists.
    pub async fn exists(&self, deviceid: &str, apikey: &str) -> StoreResult<bool> {
        Ok(exists(self.read, deviceid, apikey).await?)
    }

    /// Licenses matching `filter`, newest first, and the match count.
    pub async fn list(&self, filter: &DeviceFilter) -> StoreResult<(Vec<License>, i64)> {
        let w = Where::licenses(filter);
        let (rows, total): (Vec<LicenseRow>, i64) = w
            .fetch_page(self.read, COUNT, LIST, "deviceid", filter.page)
            .await?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }
}
