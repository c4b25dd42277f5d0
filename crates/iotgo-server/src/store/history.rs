//! The history of device data: appended with the state writes, read by range or bucket,
//! trimmed by the retention sweep.
//!
//! One row per kept param per update (`device_history`: deviceid, field, at, ts, value),
//! so a chart of one field is one range scan of the `(deviceid, field, at, value)` index,
//! and min/avg/max per bucket are a `GROUP BY` over it on both backends.

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

const INSERT_SQLITE: &str = "INSERT INTO device_history (deviceid, field, at, ts, value) \
     SELECT json_extract(j.value, '$.d'), json_extract(j.value, '$.f'), \
     json_extract(j.value, '$.a'), json_extract(j.value, '$.t'), json_extract(j.value, '$.v') \
     FROM json_each($1) AS j ORDER BY j.key";

const INSERT_POSTGRES: &str = "INSERT INTO device_history (deviceid, field, at, ts, value) \
     SELECT h.d, h.f, h.a, h.t, h.v FROM ROWS FROM (json_to_recordset($1::json) \
     AS (d text, f text, a bigint, t bigint, v double precision)) \
     WITH ORDINALITY AS h(d, f, a, t, v, n) ORDER BY h.n";

/// Appends `rows` inside the caller's transaction (the device writer's batch), in order:
/// one statement per [`INSERT_CHUNK`] rows, the rows passed as one JSON array.
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

impl Store {
    /// Appends `rows` in one transaction (imports, tests and benchmarks; the Device API
    /// appends through the device writer's batches instead).
    pub async fn append_history(&self, rows: &[HistoryRow]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        insert(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The first `limit` points of one field in `[from, to)`, oldest first.
    pub async fn history_raw(
        &self,
        deviceid: &str,
        field: &str,
        (from, to): (Millis, Millis),
        limit: i64,
    ) -> StoreResult<Vec<RawPoint>> {
        let rows: Vec<(i64, Option<i64>, f64)> = sqlx::query_as(
            "SELECT at, ts, value FROM device_history \
             WHERE deviceid = $1 AND field = $2 AND at >= $3 AND at < $4 \
             ORDER BY at, id LIMIT $5",
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
            "SELECT (at - $3) / $5 AS b, MIN(value), AVG(value), MAX(value), COUNT(*) \
             FROM device_history \
             WHERE deviceid = $1 AND field = $2 AND at >= $3 AND at < $4 \
             GROUP BY b ORDER BY b",
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

    /// Deletes up to `limit` rows recorded before `cutoff`, oldest first; how many went.
    /// The retention sweep calls it until it deletes fewer than `limit`, so no single
    /// transaction holds the write lock for long.
    pub async fn purge_history(&self, cutoff: Millis, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM device_history WHERE id IN \
             (SELECT id FROM device_history WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind(cutoff.0)
        .bind(limit)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// How many history rows a device has (diagnostics and tests).
    pub async fn history_count(&self, deviceid: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM device_history WHERE deviceid = $1")
                .bind(deviceid)
                .fetch_one(&self.read)
                .await?,
        )
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
