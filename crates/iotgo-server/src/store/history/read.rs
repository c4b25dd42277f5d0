//! The selects of history reads: which chunks of a device's fields overlap a range, their
//! points, and how many points a device has in chunks; on a cluster node also the other
//! nodes' log rows of the device. Each asks for every field at once (the fields as a JSON
//! array); `crate::history::Reader` adds the recent points.
//!
//! A read runs its selects over one [`HistoryView`]: on a single node a connection, on a
//! cluster node a repeatable-read transaction, so that a fold on another node (log rows
//! to chunks, one transaction) is seen wholly or not at all.

use super::{HistoryRow, LogRow, RawPoint, chunk, from_log_row};
use crate::store::{Backend, Millis, Store, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Transaction};
use std::collections::HashMap;

/// The chunks of a device's fields (`$2`, a JSON array) that may hold points in
/// `[$3, $4)`: `FROM …` and `WHERE …` for each backend.
macro_rules! in_range {
    (sqlite) => {
        " FROM device_history_chunks \
         WHERE deviceid = $1 AND field IN (SELECT value FROM json_each($2)) \
         AND last_at >= $3 AND first_at < $4"
    };
    (postgres) => {
        " FROM device_history_chunks \
         WHERE deviceid = $1 AND field IN (SELECT json_array_elements_text($2::json)) \
         AND last_at >= $3 AND first_at < $4"
    };
}

/// The chunks in range without their points, in the order a raw read decodes them.
const SPANS: [&str; 2] = [
    concat!(
        "SELECT id, field, first_at",
        in_range!(sqlite),
        " ORDER BY first_at, id"
    ),
    concat!(
        "SELECT id, field, first_at",
        in_range!(postgres),
        " ORDER BY first_at, id"
    ),
];

/// The chunks in range with their points.
const DATA: [&str; 2] = [
    concat!("SELECT field, data", in_range!(sqlite)),
    concat!("SELECT field, data", in_range!(postgres)),
];

/// A chunk as a raw read lists it before choosing which to decode.
#[derive(Debug)]
pub(crate) struct ChunkSpan {
    /// The chunk's row.
    pub(crate) id: i64,
    /// Its series' field.
    pub(crate) field: String,
    /// The time of its first point.
    pub(crate) first_at: Millis,
}

/// What one history read selects through: one connection, or one snapshot.
pub(crate) struct HistoryView {
    conn: ViewConn,
    backend: Backend,
}

enum ViewConn {
    /// A single node's read: its own fold is met through the recent points' sequence.
    Plain(PoolConnection<Any>),
    /// A cluster node's read: one repeatable-read snapshot (rolled back when dropped).
    Snapshot(Transaction<'static, Any>),
}

impl Store {
    /// A view for one read: with `snapshot`, every select of it sees one snapshot of the
    /// database (a repeatable-read transaction; on SQLite a read transaction is one).
    pub(crate) async fn history_view(&self, snapshot: bool) -> StoreResult<HistoryView> {
        let conn = if snapshot {
            ViewConn::Snapshot(match self.backend {
                // One round trip: no `SET TRANSACTION` after the `BEGIN`.
                Backend::Postgres => {
                    let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
                    self.read.begin_with(begin).await?
                }
                Backend::Sqlite => self.read.begin().await?,
            })
        } else {
            ViewConn::Plain(self.read.acquire().await?)
        };
        Ok(HistoryView {
            conn,
            backend: self.backend,
        })
    }
}

impl HistoryView {
    fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            ViewConn::Plain(c) => c,
            ViewConn::Snapshot(tx) => tx,
        }
    }

    /// Which of a pair of `[SQLite, PostgreSQL]` statements this view runs.
    fn dialect(&self, pair: [&'static str; 2]) -> &'static str {
        match self.backend {
            Backend::Sqlite => pair[0],
            Backend::Postgres => pair[1],
        }
    }

    /// The chunks of `fields` of `deviceid` that may hold points in `[from, to)`, by their
    /// first point's time (then in the order they were written), without their points.
    pub(crate) async fn history_spans(
        &mut self,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
    ) -> StoreResult<Vec<ChunkSpan>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(self.dialect(SPANS))
            .bind(deviceid)
            .bind(fields_json(fields))
            .bind(from.0)
            .bind(to.0)
            .fetch_all(self.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, field, first_at)| ChunkSpan {
                id,
                field,
                first_at: Millis(first_at),
            })
            .collect())
    }

    /// The points of the chunks `ids`, by id (a chunk gone meanwhile is left out).
    pub(crate) async fn history_chunks(
        &mut self,
        ids: impl IntoIterator<Item = i64>,
    ) -> StoreResult<HashMap<i64, Vec<RawPoint>>> {
        let by_ids = format!(
            "SELECT id, data FROM device_history_chunks WHERE id IN ({})",
            chunk::id_list(ids)
        );
        let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(by_ids))
            .fetch_all(self.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, text)| (id, chunk::decode(&text)))
            .collect())
    }

    /// Every chunk of `fields` of `deviceid` that may hold points in `[from, to)`: its
    /// field and points (all of them, also those out of range).
    pub(crate) async fn history_chunks_in_range(
        &mut self,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
    ) -> StoreResult<Vec<(String, Vec<RawPoint>)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(self.dialect(DATA))
            .bind(deviceid)
            .bind(fields_json(fields))
            .bind(from.0)
            .bind(to.0)
            .fetch_all(self.conn())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(field, text)| (field, chunk::decode(&text)))
            .collect())
    }

    /// How many points of `deviceid` are in chunks.
    pub(crate) async fn history_chunked_count(&mut self, deviceid: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM device_history_chunks \
             WHERE deviceid = $1",
        )
        .bind(deviceid)
        .fetch_one(self.conn())
        .await?)
    }

    /// The points other cluster nodes than `me` logged for `deviceid` and have not folded
    /// yet, oldest batch first, with the device's creation time; `None` when the device
    /// does not exist. Points from before its creation (a deviceid deleted and created
    /// again) are left out.
    pub(crate) async fn others_log(
        &mut self,
        deviceid: &str,
        me: &str,
    ) -> StoreResult<Option<(Millis, Vec<HistoryRow>)>> {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT d.created_at, l.data FROM devices d \
             LEFT JOIN device_history_log l ON l.deviceid = d.deviceid AND l.node <> $2 \
             WHERE d.deviceid = $1 ORDER BY l.id",
        )
        .bind(deviceid)
        .bind(me)
        .fetch_all(self.conn())
        .await?;
        let Some(created) = rows.first().map(|(c, _)| Millis(*c)) else {
            return Ok(None);
        };
        let mut points = Vec::new();
        for text in rows.iter().filter_map(|(_, data)| data.as_deref()) {
            match serde_json::from_str::<Vec<LogRow>>(text) {
                Ok(batch) => points.extend(
                    batch
                        .into_iter()
                        .map(from_log_row)
                        .filter(|r| r.deviceid == deviceid && r.at >= created),
                ),
                Err(e) => tracing::warn!(error = %e, "history log row unreadable; skipped"),
            }
        }
        Ok(Some((created, points)))
    }
}

/// Field names as the JSON array the selects read.
fn fields_json(fields: &[String]) -> String {
    serde_json::to_string(fields).expect("field names always serialise")
}
