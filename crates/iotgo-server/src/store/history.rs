//! The history of device data: appended with the state writes, read by range or bucket,
//! trimmed by the retention sweep.
//!
//! One row per kept param per update (deviceid, field, at, ts, value), in two tables:
//!
//! - `device_history_recent` takes the device writer's batches. Rows go in by id (rowid
//!   order on SQLite, a heap append on PostgreSQL), so a batch writes a few pages however
//!   many devices it holds. The table has no other index: queries scan it whole, which is
//!   why it is kept small.
//! - `device_history` holds the rest, with an index on `(deviceid, field, at)` carrying
//!   `value`, so a chart of one field is one range scan and min/avg/max per bucket a
//!   `GROUP BY` over it. An insert there lands on the leaf page of its series; one point
//!   per device per batch wrote a leaf page per device series per batch, most of what
//!   recording history used to cost the realtime path.
//!
//! Once the recent table holds [`FOLD_ROWS`] rows, the writer [folds](Store::fold_history)
//! them into `device_history` in one run sorted by series: a series' leaf page is then
//! written once for all its points of the run. Every query reads both tables.

use super::{Backend, Millis, Store, StoreResult};
use chrono::DateTime;
use iotgo_protocol::DeviceId;
use iotgo_protocol::types::history_values;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Any, Transaction};

/// One recorded value.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The device.
    pub deviceid: String,
    /// The param's name.
    pub field: String,
    /// Server time of the update.
    pub at: Millis,
    /// The device's own time, when its params carried `ts`.
    pub ts: Option<Millis>,
    /// The value (on/off as 1/0).
    pub value: f64,
}

/// A raw point of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawPoint {
    /// Server time.
    pub at: Millis,
    /// Device time, if sent.
    pub ts: Option<Millis>,
    /// The value.
    pub value: f64,
}

/// The aggregate of one field over one time bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Bucket number counted from the range's start.
    pub index: i64,
    /// Smallest value.
    pub min: f64,
    /// Mean value.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub count: i64,
}

/// The history rows an update of `deviceid` with `params` at `at` appends: the params its
/// type keeps in history. `ts` (epoch milliseconds, as a number or text, or RFC 3339 text)
/// is the device's time; a `ts` that reads as neither is ignored.
pub fn history_rows(deviceid: &str, params: &Map<String, Value>, at: Millis) -> Vec<HistoryRow> {
    let Ok(id) = DeviceId::parse(deviceid) else {
        return Vec::new();
    };
    let ts = params.get("ts").and_then(device_time);
    history_values(id.device_type(), params)
        .map(|(field, value)| HistoryRow {
            deviceid: deviceid.to_owned(),
            field: field.to_owned(),
            at,
            ts,
            value,
        })
        .collect()
}

fn device_time(v: &Value) -> Option<Millis> {
    match v {
        Value::Number(n) => n.as_i64().map(Millis),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().map(Millis).or_else(|| {
                DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| Millis(t.timestamp_millis()))
            })
        }
        _ => None,
    }
}

/// Rows per `INSERT` statement (one JSON array each, so the statement text never changes).
const INSERT_CHUNK: usize = 4096;

/// One history row as the JSON the insert statement reads.
#[derive(Serialize)]
struct RowJson<'a> {
    d: &'a str,
    f: &'a str,
    a: i64,
    t: Option<i64>,
    v: f64,
}

const INSERT_SQLITE: &str = "INSERT INTO device_history_recent (deviceid, field, at, ts, value) \
     SELECT json_extract(j.value, '$.d'), json_extract(j.value, '$.f'), \
     json_extract(j.value, '$.a'), json_extract(j.value, '$.t'), json_extract(j.value, '$.v') \
     FROM json_each($1) AS j ORDER BY j.key";

const INSERT_POSTGRES: &str = "INSERT INTO device_history_recent (deviceid, field, at, ts, value) \
     SELECT h.d, h.f, h.a, h.t, h.v FROM ROWS FROM (json_to_recordset($1::json) \
     AS (d text, f text, a bigint, t bigint, v double precision)) \
     WITH ORDINALITY AS h(d, f, a, t, v, n) ORDER BY h.n";

/// Appends `rows` to the recent table inside the caller's transaction (the device writer's
/// batch), in order: one statement per [`INSERT_CHUNK`] rows, the rows passed as one JSON
/// array.
pub(super) async fn insert(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[HistoryRow],
) -> StoreResult<()> {
    let sql = match backend {
        Backend::Sqlite => INSERT_SQLITE,
        Backend::Postgres => INSERT_POSTGRES,
    };
    for chunk in rows.chunks(INSERT_CHUNK) {
        let json: Vec<RowJson> = chunk
            .iter()
            .map(|r| RowJson {
                d: &r.deviceid,
                f: &r.field,
                a: r.at.0,
                t: r.ts.map(|t| t.0),
                v: r.value,
            })
            .collect();
        let json = serde_json::to_string(&json).unwrap_or_else(|_| "[]".into());
        sqlx::query(sql).bind(json).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Recent rows at which the device writer folds them into `device_history`. Every query
/// scans the recent table whole, so this bounds what a query pays for it (a few
/// milliseconds per chart: `bench/README.md`, "History"); each fold writes the leaf pages
/// of the series it holds once, so a larger run costs less per row (with a thousand
/// two-field devices, a fold brings each series 16 points).
pub const FOLD_ROWS: i64 = 32_768;

/// Rows in the recent table, as far as ids tell (deleted rows in between still count,
/// which only makes a fold come early); two index look-ups on both backends.
const RECENT_ROWS: &str = "SELECT COALESCE(\
     (SELECT MAX(id) FROM device_history_recent) - \
     (SELECT MIN(id) FROM device_history_recent) + 1, 0)";

/// SQLite: the fold's copy; the table is then emptied in the same transaction (one
/// writer connection: nothing else inserts in between).
const FOLD_SQLITE: &str = "INSERT INTO device_history (deviceid, field, at, ts, value) \
     SELECT deviceid, field, at, ts, value FROM device_history_recent \
     ORDER BY deviceid, field, at, id";

/// PostgreSQL: the rows deleted are exactly the rows copied, even with other writers (the
/// nodes of a cluster) appending or folding at the same time.
const FOLD_POSTGRES: &str = "WITH moved AS (DELETE FROM device_history_recent \
     RETURNING deviceid, field, at, ts, value, id) \
     INSERT INTO device_history (deviceid, field, at, ts, value) \
     SELECT deviceid, field, at, ts, value FROM moved ORDER BY deviceid, field, at, id";

/// Deletes the history of `deviceid` inside the caller's transaction.
///
/// The recent rows go first: on PostgreSQL a fold running at the same time then either
/// waits for this delete (and moves nothing of the device) or commits first, and the next
/// statement, reading anew, deletes what it moved.
pub(super) async fn delete_of_device(
    tx: &mut Transaction<'_, Any>,
    deviceid: &str,
) -> StoreResult<()> {
    for sql in [
        "DELETE FROM device_history_recent WHERE deviceid = $1",
        "DELETE FROM device_history WHERE deviceid = $1",
    ] {
        sqlx::query(sql).bind(deviceid).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Deletes the history of every device of the user `apikey` inside the caller's
/// transaction (before the devices themselves go); recent rows first, as in
/// [`delete_of_device`].
pub(super) async fn delete_of_owner(
    tx: &mut Transaction<'_, Any>,
    apikey: &str,
) -> StoreResult<()> {
    for sql in [
        "DELETE FROM device_history_recent WHERE deviceid IN \
         (SELECT deviceid FROM devices WHERE apikey = $1)",
        "DELETE FROM device_history WHERE deviceid IN \
         (SELECT deviceid FROM devices WHERE apikey = $1)",
    ] {
        sqlx::query(sql).bind(apikey).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Appends `rows` in one transaction, then folds if the recent table is full (imports,
    /// tests and benchmarks; the Device API appends through the device writer's batches).
    pub async fn append_history(&self, rows: &[HistoryRow]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        insert(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        self.fold_history(FOLD_ROWS).await?;
        Ok(())
    }

    /// When the recent table holds at least `min_rows` rows, moves them all into
    /// `device_history` in one transaction, sorted by series; how many moved. The device
    /// writer calls it after each batch is acked, with [`FOLD_ROWS`].
    pub async fn fold_history(&self, min_rows: i64) -> StoreResult<u64> {
        let recent: i64 = sqlx::query_scalar(RECENT_ROWS)
            .fetch_one(&self.write)
            .await?;
        if recent < min_rows.max(1) {
            return Ok(0);
        }
        let mut tx = self.write.begin().await?;
        let moved = match self.backend {
            Backend::Sqlite => {
                let moved = sqlx::query(FOLD_SQLITE).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM device_history_recent")
                    .execute(&mut *tx)
                    .await?;
                moved
            }
            Backend::Postgres => sqlx::query(FOLD_POSTGRES).execute(&mut *tx).await?,
        };
        tx.commit().await?;
        if self.backend == Backend::Postgres {
            // The deleted rows stay in the heap until vacuumed, and queries scan it whole;
            // autovacuum would come only after a minute or more of folds.
            sqlx::raw_sql("VACUUM device_history_recent")
                .execute(&self.write)
                .await?;
        }
        Ok(moved.rows_affected())
    }

    /// The first `limit` points of one field in `[from, to)`, oldest first (in the order
    /// they were recorded when their times are equal).
    pub async fn history_raw(
        &self,
        deviceid: &str,
        field: &str,
        (from, to): (Millis, Millis),
        limit: i64,
    ) -> StoreResult<Vec<RawPoint>> {
        // Each table gives its first `limit` points; folded rows are older than recent ones.
        let rows: Vec<(i64, Option<i64>, f64)> = sqlx::query_as(
            "SELECT at, ts, value FROM (\
             SELECT * FROM (SELECT at, ts, value, 0 AS tier, id FROM device_history \
             WHERE deviceid = $1 AND field = $2 AND at >= $3 AND at < $4 \
             ORDER BY at, id LIMIT $5) AS folded \
             UNION ALL \
             SELECT * FROM (SELECT at, ts, value, 1 AS tier, id FROM device_history_recent \
             WHERE deviceid = $1 AND field = $2 AND at >= $3 AND at < $4 \
             ORDER BY at, id LIMIT $5) AS recent\
             ) AS h ORDER BY at, tier, id LIMIT $5",
        )
        .bind(deviceid)
        .bind(field)
        .bind(from.0)
        .bind(to.0)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, ts, value)| RawPoint {
                at: Millis(at),
                ts: ts.map(Millis),
                value,
            })
            .collect())
    }

    /// Min/avg/max/count of one field per `bucket_ms` from `from` (bucket 0) to `to`,
    /// buckets without values left out.
    pub async fn history_buckets(
        &self,
        deviceid: &str,
        field: &str,
        (from, to): (Millis, Millis),
        bucket_ms: i64,
    ) -> StoreResult<Vec<Bucket>> {
        let rows: Vec<(i64, f64, f64, f64, i64)> = sqlx::query_as(
            "SELECT (at - $3) / $5 AS b, MIN(value), AVG(value), MAX(value), COUNT(*) FROM (\
             SELECT at, value FROM device_history \
             WHERE deviceid = $1 AND field = $2 AND at >= $3 AND at < $4 \
             UNION ALL \
             SELECT at, value FROM device_history_recent \
             WHERE deviceid = $1 AND field = $2 AND at >= $3 AND at < $4\
             ) AS h GROUP BY b ORDER BY b",
        )
        .bind(deviceid)
        .bind(field)
        .bind(from.0)
        .bind(to.0)
        .bind(bucket_ms)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(index, min, avg, max, count)| Bucket {
                index,
                min,
                avg,
                max,
                count,
            })
            .collect())
    }

    /// Deletes up to `limit` rows recorded before `cutoff`, the folded ones first, oldest
    /// first; how many went. The retention sweep calls it until it deletes fewer than
    /// `limit`, so no single transaction holds the write lock for long.
    pub async fn purge_history(&self, cutoff: Millis, limit: i64) -> StoreResult<u64> {
        let mut done = 0;
        for sql in [
            "DELETE FROM device_history WHERE id IN \
             (SELECT id FROM device_history WHERE at < $1 ORDER BY at LIMIT $2)",
            "DELETE FROM device_history_recent WHERE id IN \
             (SELECT id FROM device_history_recent WHERE at < $1 ORDER BY id LIMIT $2)",
        ] {
            let left = limit - done as i64;
            if left <= 0 {
                break;
            }
            let deleted = sqlx::query(sql)
                .bind(cutoff.0)
                .bind(left)
                .execute(&self.write)
                .await?;
            done += deleted.rows_affected();
        }
        Ok(done)
    }

    /// How many history rows a device has (diagnostics and tests).
    pub async fn history_count(&self, deviceid: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM device_history WHERE deviceid = $1) + \
             (SELECT COUNT(*) FROM device_history_recent WHERE deviceid = $1)",
        )
        .bind(deviceid)
        .fetch_one(&self.read)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_follow_the_registry_and_read_the_device_time() {
        let p = json!({"temperature": "21.5", "humidity": 40, "ts": "1970-01-01T00:00:01Z"});
        let rows = history_rows("0300000001", p.as_object().unwrap(), Millis(5));
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].field.as_str(), rows[0].value, rows[0].ts),
            ("temperature", 21.5, Some(Millis(1000)))
        );
        let p = json!({"x": 1, "ts": true});
        assert!(history_rows("0000000001", p.as_object().unwrap(), Millis(5)).is_empty());
        assert_eq!(device_time(&json!("1700")), Some(Millis(1700)));
        assert_eq!(device_time(&json!(true)), None);
    }
}
