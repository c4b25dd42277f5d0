//! The SQL of the history of device data: the log row of a batch, chunks written,
//! selected and purged, and the log read back at start-up.
//!
//! A point is one kept param of one accepted update: (deviceid, field, at, ts, value).
//! Points live in three places:
//!
//! - The **log** (`device_history_log`): each device-writer batch adds one row holding all
//!   its points, in the batch's transaction, so an acked update's history is committed
//!   with it at the cost of one row however many devices the batch holds.
//! - The **recent points** in memory (`crate::history`, not here): the points of the log,
//!   by series, taken in after each commit and read by queries. At start-up they are read
//!   back from the log ([`Store::history_log`]).
//! - The **chunks** (`device_history_chunks`, [`chunk`]): once enough points have
//!   gathered, the device writer folds them, one chunk per series, and empties the log in
//!   the same transaction ([`Store::fold_history`]). A chart reads the chunks of its
//!   series in range (an index on `(deviceid, field, last_at)`, [`read`]) and the recent
//!   points of that series.
//!
//! Every row written per point used to cost the realtime path a leaf page of an index
//! per device series per batch; now a batch writes one row and a fold one row per series.
//! This module holds no state: what lives in memory is `crate::history`'s.

mod chunk;
mod cluster;
mod read;

pub use cluster::cluster_log_rows;
pub(crate) use read::{ChunkSpan, HistoryView};

use super::{Backend, Millis, Store, StoreResult};
use chrono::DateTime;
use iotgo_protocol::DeviceId;
use iotgo_protocol::types::history_values;
use serde_json::{Map, Value};
use sqlx::{Any, AssertSqlSafe, Transaction};
use std::borrow::Cow;
use std::collections::HashMap;

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

/// The history rows an update of `deviceid` with `params` at `at` appends: the params its
/// type keeps in history. `ts` (epoch milliseconds, as a number or text, or RFC 3339 text)
/// is the device's time; a `ts` that reads as neither is ignored.
pub fn history_rows(deviceid: &str, params: &Map<String, Value>, at: Millis) -> Vec<HistoryRow> {
    let Ok(id) = DeviceId::parse(deviceid) else {
        return Vec::new();
    };
    let ts = params.get("ts").and_then(device_time);
    history_values(id.device_type(), params)
        // JSON has no infinities or NaN: such a value ("NaN" as text) keeps no history.
        .filter(|(_, value)| value.is_finite())
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

/// One point as the log stores it: `[deviceid, field, at, value, ts]`.
type LogRow<'a> = (
    std::borrow::Cow<'a, str>,
    std::borrow::Cow<'a, str>,
    i64,
    f64,
    Option<i64>,
);

/// Where a batch's history points go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryLog<'a> {
    /// Nowhere: history is not recorded (`history_enabled = false`).
    Off,
    /// The log of a single node: one row per batch.
    Single,
    /// The log of the cluster node named here: one row per device per batch, tagged with
    /// the node, so other nodes read one device's points and survivors fold a dead node's.
    Node(&'a str),
}

impl HistoryLog<'_> {
    /// Whether updates record history at all.
    pub fn records(self) -> bool {
        self != HistoryLog::Off
    }
}

/// A point as the log stores it.
fn log_row(r: &HistoryRow) -> LogRow<'_> {
    let (d, f) = (r.deviceid.as_str().into(), r.field.as_str().into());
    (d, f, r.at.0, r.value, r.ts.map(|t| t.0))
}

/// A point read back from the log.
fn from_log_row((d, f, at, value, ts): LogRow<'_>) -> HistoryRow {
    HistoryRow {
        deviceid: d.into_owned(),
        field: f.into_owned(),
        at: Millis(at),
        ts: ts.map(Millis),
        value,
    }
}

/// Adds a batch's points to the log inside the caller's transaction (the device writer's
/// batch): one row on a single node, one per device on a cluster node.
pub(super) async fn log(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    to: HistoryLog<'_>,
    rows: &[HistoryRow],
) -> StoreResult<()> {
    match to {
        HistoryLog::Off => Ok(()),
        HistoryLog::Single => log_single(tx, rows).await,
        HistoryLog::Node(node) => cluster::log(tx, backend, node, rows).await,
    }
}

async fn log_single(tx: &mut Transaction<'_, Any>, rows: &[HistoryRow]) -> StoreResult<()> {
    let rows: Vec<LogRow> = rows.iter().map(log_row).collect();
    let json = serde_json::to_string(&rows).expect("history rows always serialise");
    sqlx::query("INSERT INTO device_history_log (data) VALUES ($1)")
        .bind(json)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Keeps of `rows` those of devices that exist and were created at or before the point
/// (a deviceid deleted and created again starts empty).
async fn keep_created<'e>(
    exec: impl sqlx::Executor<'e, Database = Any>,
    backend: Backend,
    rows: &mut Vec<HistoryRow>,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = rows.iter().map(|r| r.deviceid.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let created = created_at(exec, backend, &ids).await?;
    rows.retain(|r| created.get(&r.deviceid).is_some_and(|c| r.at >= *c));
    Ok(())
}

/// When each of `ids` that exists was created.
async fn created_at<'e>(
    exec: impl sqlx::Executor<'e, Database = Any>,
    backend: Backend,
    ids: &[&str],
) -> StoreResult<HashMap<String, Millis>> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT deviceid, created_at FROM devices \
             WHERE deviceid IN (SELECT value FROM json_each($1))"
        }
        Backend::Postgres => {
            "SELECT deviceid, created_at FROM devices \
             WHERE deviceid IN (SELECT json_array_elements_text($1::json))"
        }
    };
    let rows: Vec<(String, i64)> = sqlx::query_as(sql)
        .bind(serde_json::to_string(ids).expect("deviceids always serialise"))
        .fetch_all(exec)
        .await?;
    Ok(rows.into_iter().map(|(d, c)| (d, Millis(c))).collect())
}

/// `points` sorted by time, those of equal time in the order given (copied only when
/// they were not in order already).
fn by_time(points: &[RawPoint]) -> Cow<'_, [RawPoint]> {
    if points.is_sorted_by_key(|p| p.at) {
        return Cow::Borrowed(points);
    }
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| p.at);
    Cow::Owned(sorted)
}

/// The chunks of a fold, ready to insert: one per series (more for a long one).
pub(crate) struct Chunks(Vec<String>);

impl Chunks {
    /// Encodes every series of `series`, `(deviceid, field, points in the order they were
    /// recorded)`.
    pub(crate) fn encode<'a>(
        series: impl IntoIterator<Item = (&'a str, &'a str, &'a [RawPoint])>,
    ) -> Chunks {
        let chunks: Vec<_> = series
            .into_iter()
            .flat_map(|(d, f, points)| chunk::encode(d, f, &by_time(points)))
            .collect();
        Chunks(chunk::to_json(&chunks))
    }

    /// The chunks of `rows`, one per series (more for a long one), the points of each in
    /// the order given.
    pub(crate) fn from_rows(rows: &[HistoryRow]) -> Chunks {
        let mut series: Vec<((&str, &str), Vec<RawPoint>)> = Vec::new();
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        for r in rows {
            let key = (r.deviceid.as_str(), r.field.as_str());
            let i = *index.entry(key).or_insert_with(|| {
                series.push((key, Vec::new()));
                series.len() - 1
            });
            series[i].1.push(RawPoint {
                at: r.at,
                ts: r.ts,
                value: r.value,
            });
        }
        Chunks::encode(series.iter().map(|((d, f), p)| (*d, *f, p.as_slice())))
    }
}

impl Store {
    /// Writes `rows` straight into chunks, in one transaction; rows of devices that do not
    /// exist are left out (imports, tests and benchmarks: the Device API records through
    /// the device writer's batches).
    pub async fn append_history(&self, rows: &[HistoryRow]) -> StoreResult<()> {
        let chunks = Chunks::from_rows(rows);
        let mut tx = self.write.begin().await?;
        chunk::insert(&mut tx, self.backend, &chunks.0).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes `chunks` (a fold of the recent points) and empties the log (on a cluster
    /// node, its own rows of the log), in one transaction: the points move from the log
    /// to the chunks at once.
    pub(crate) async fn fold_history(
        &self,
        chunks: &Chunks,
        node: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        chunk::insert(&mut tx, self.backend, &chunks.0).await?;
        match node {
            None => sqlx::query("DELETE FROM device_history_log"),
            Some(node) => sqlx::query("DELETE FROM device_history_log WHERE node = $1").bind(node),
        }
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// When each of `ids` that exists was created (a cluster node's fold leaves out the
    /// points it holds from before, of a deviceid deleted and created again elsewhere).
    pub(crate) async fn history_created(
        &self,
        ids: &[&str],
    ) -> StoreResult<HashMap<String, Millis>> {
        created_at(&self.write, self.backend, ids).await
    }

    /// The points of the log, oldest batch first (read back into memory at start-up),
    /// leaving out points of devices deleted since, or recorded before their device was
    /// created (a deviceid deleted and created again).
    pub(crate) async fn history_log(&self) -> StoreResult<Vec<HistoryRow>> {
        let logs: Vec<String> =
            sqlx::query_scalar("SELECT data FROM device_history_log ORDER BY id")
                .fetch_all(&self.write)
                .await?;
        let mut rows = parse_log(&logs);
        keep_created(&self.write, self.backend, &mut rows).await?;
        Ok(rows)
    }

    /// Deletes the chunked history recorded before `cutoff`, a bounded step at a time:
    /// chunks wholly before it first, then chunks holding points on both sides of it are
    /// rewritten without the old ones. Answers the points deleted and whether all is done;
    /// the retention sweep calls it until it is, so no single transaction holds the write
    /// lock for long (the recent points are the device writer's to purge).
    pub async fn purge_history(&self, cutoff: Millis, limit: i64) -> StoreResult<(u64, bool)> {
        let limit = limit.max(1);
        let old: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, points FROM device_history_chunks WHERE last_at < $1 \
             ORDER BY last_at LIMIT $2",
        )
        .bind(cutoff.0)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        if !old.is_empty() {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM device_history_chunks WHERE id IN ({})",
                chunk::id_list(old.iter().map(|(id, _)| *id))
            )))
            .execute(&self.write)
            .await?;
            return Ok((old.iter().map(|(_, n)| *n as u64).sum(), false));
        }
        let across: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, data FROM device_history_chunks WHERE last_at >= $1 AND first_at < $1 \
             LIMIT $2",
        )
        .bind(cutoff.0)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        if across.is_empty() {
            return Ok((0, true));
        }
        let mut gone = 0;
        let mut tx = self.write.begin().await?;
        for (id, data) in &across {
            let points = chunk::decode(data);
            let kept: Vec<RawPoint> = points.iter().filter(|p| p.at >= cutoff).copied().collect();
            gone += (points.len() - kept.len()) as u64;
            let Some(new) = chunk::encode("", "", &kept).pop() else {
                // Nothing readable is left (a chunk ends at or after the cutoff).
                sqlx::query("DELETE FROM device_history_chunks WHERE id = $1")
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                continue;
            };
            sqlx::query(
                "UPDATE device_history_chunks SET first_at = $1, points = $2, data = $3 \
                 WHERE id = $4",
            )
            .bind(new.first_at())
            .bind(kept.len() as i64)
            .bind(new.data())
            .bind(*id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((gone, false))
    }
}

/// The points of log rows (their JSON text), in order; an unreadable row is logged and
/// skipped.
pub(super) fn parse_log(logs: &[String]) -> Vec<HistoryRow> {
    let mut rows = Vec::new();
    for text in logs {
        match serde_json::from_str::<Vec<LogRow>>(text) {
            Ok(batch) => rows.extend(batch.into_iter().map(from_log_row)),
            Err(e) => tracing::warn!(error = %e, "history log row unreadable; skipped"),
        }
    }
    rows
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
