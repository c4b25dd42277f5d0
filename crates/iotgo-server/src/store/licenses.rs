//! Licenses: batches of factory ("indie") devices made by an admin.

use super::devices::allocate;
use super::filter::Where;
use super::{DeviceFilter, License, Millis, Store, StoreResult};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType, Serial};
use sqlx::AssertSqlSafe;

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

/// How many licenses [`Store::create_licenses_reporting`] inserts between two reports.
const PROGRESS_STEP: u32 = 1000;

impl Store {
    /// Makes `qty` licenses of type `ty` in one batch, each with its own apikey.
    pub async fn create_licenses(
        &self,
        name: &str,
        ty: DeviceType,
        qty: u32,
    ) -> StoreResult<Vec<License>> {
        self.create_licenses_reporting(name, ty, qty, |_| {}).await
    }

    /// [`Store::create_licenses`], calling `progress` with the number inserted so far
    /// after every 1,000 rows (the batch still commits as one transaction).
    pub async fn create_licenses_reporting(
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
            sqlx::query(
                "INSERT INTO factory_devices (deviceid, apikey, name, type, batch, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
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

    /// Licenses matching `filter`, newest first, and the match count.
    pub async fn list_licenses(&self, filter: &DeviceFilter) -> StoreResult<(Vec<License>, i64)> {
        let mut w = Where::default();
        w.range("created_at", &filter.created)
            .contains("name", &filter.name)
            .eq("type", &filter.kind)
            .contains("deviceid", &filter.deviceid)
            .eq("apikey", &filter.apikey)
            .eq("batch", &filter.batch);
        let total = w
            .count(&self.read, "SELECT COUNT(*) FROM factory_devices")
            .await?;
        let sql = w.sql(
            "SELECT deviceid, apikey, name, type, batch, created_at FROM factory_devices",
            "deviceid",
        );
        let rows: Vec<LicenseRow> = w
            .bind(sqlx::query_as(AssertSqlSafe(sql)), filter.page)
            .fetch_all(&self.read)
            .await?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }
}
