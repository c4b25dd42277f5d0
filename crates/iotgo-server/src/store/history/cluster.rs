//! The history log of a cluster node (migration 0008): one row per device per batch,
//! tagged with the node, so that
//!
//! - a node folds only its own rows (`Store::fold_history` with its node),
//! - a reader fetches another node's not-yet-folded points of one device cheaply (an index
//!   on `deviceid`; `read.rs`, `HistoryView::others_log`),
//! - a survivor folds a dead node's rows, and a starting node its own rows of an earlier
//!   run and a single node's untagged rows ([`Store::fold_log`]).
//!
//! Each fold moves points from log rows to chunks in one transaction, so a reader's
//! snapshot sees every point once: in a log row or in a chunk.

use super::{Chunks, HistoryRow, LogRow, chunk, from_log_row, keep_created, log_row};
use crate::store::{Backend, Store, StoreResult};
use serde::Serialize;
use sqlx::{Any, Transaction};
use std::collections::{HashMap, HashSet};

/// How many log rows a cluster node's batch of `rows` writes: one per device.
pub fn cluster_log_rows(rows: &[HistoryRow]) -> usize {
    rows.iter()
        .map(|r| r.deviceid.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// `$2` is a JSON array of `{"d": deviceid, "x": [points]}`, one per device.
const LOG_POSTGRES: &str = "INSERT INTO device_history_log (node, deviceid, data) \
     SELECT $1, j.d, j.x::text FROM json_to_recordset($2::json) AS j(d text, x json)";
const LOG_SQLITE: &str = "INSERT INTO device_history_log (node, deviceid, data) \
     SELECT $1, j.value ->> 'd', json(j.value -> 'x') FROM json_each($2) AS j";

/// One device's points of a batch, as the log insert reads them.
#[derive(Serialize)]
struct DeviceLog<'a> {
    d: &'a str,
    x: Vec<LogRow<'a>>,
}

/// Adds a batch's points to the log of cluster node `node`, one row per device, in the
/// caller's transaction (one statement).
pub(super) async fn log(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    node: &str,
    rows: &[HistoryRow],
) -> StoreResult<()> {
    let mut devices: Vec<DeviceLog> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        let i = *index.entry(&r.deviceid).or_insert_with(|| {
            devices.push(DeviceLog {
                d: &r.deviceid,
                x: Vec::new(),
            });
            devices.len() - 1
        });
        devices[i].x.push(log_row(r));
    }
    let sql = match backend {
        Backend::Sqlite => LOG_SQLITE,
        Backend::Postgres => LOG_POSTGRES,
    };
    let json = serde_json::to_string(&devices).expect("history rows always serialise");
    sqlx::query(sql)
        .bind(node)
        .bind(json)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes the rows of one node's log (`$1`), or the untagged rows of a single node: rows
/// another transaction holds are skipped, so of two folds of one log at once exactly one
/// takes each row.
const TAKE_POSTGRES: [&str; 2] = [
    "DELETE FROM device_history_log WHERE id IN (SELECT id FROM device_history_log \
     WHERE node = $1 FOR UPDATE SKIP LOCKED) RETURNING id, data",
    "DELETE FROM device_history_log WHERE id IN (SELECT id FROM device_history_log \
     WHERE node IS NULL FOR UPDATE SKIP LOCKED) RETURNING id, data",
];
/// SQLite has one writer at a time: a delete takes the rows alone.
const TAKE_SQLITE: [&str; 2] = [
    "DELETE FROM device_history_log WHERE node = $1 RETURNING id, data",
    "DELETE FROM device_history_log WHERE node IS NULL RETURNING id, data",
];

impl Store {
    /// Writes `chunks` (a cluster node's fold) and deletes the node's `logged` log rows, in
    /// one transaction; false, with nothing written, when fewer rows were left: another
    /// node folded this one's log ([`Store::fold_log`], the node's lease had ended), so
    /// part of the recent points are chunks already.
    pub(crate) async fn fold_node_history(
        &self,
        chunks: &Chunks,
        node: &str,
        logged: u64,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        chunk::insert(&mut tx, self.backend, &chunks.0).await?;
        let deleted = sqlx::query("DELETE FROM device_history_log WHERE node = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted != logged {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The points of cluster node `node`'s log rows, oldest first, and how many rows:
    /// what it has not folded (points from before their device's creation left out).
    pub(crate) async fn node_log(&self, node: &str) -> StoreResult<(Vec<HistoryRow>, u64)> {
        let logs: Vec<String> =
            sqlx::query_scalar("SELECT data FROM device_history_log WHERE node = $1 ORDER BY id")
                .bind(node)
                .fetch_all(&self.write)
                .await?;
        let mut rows = super::parse_log(&logs);
        keep_created(&self.write, self.backend, &mut rows).await?;
        Ok((rows, logs.len() as u64))
    }

    /// Folds into chunks the log rows of cluster node `node` (`None`: the untagged rows a
    /// single node left), in one transaction: the rows are taken (deleted), their points
    /// of devices that still exist and were created before the point written as chunks.
    /// How many points became chunks. Two calls at once for one log: exactly one takes
    /// each row (the other skips it), so no point is folded twice or lost.
    pub(crate) async fn fold_log(&self, node: Option<&str>) -> StoreResult<u64> {
        let mut tx = self.write.begin().await?;
        let take = match self.backend {
            Backend::Sqlite => TAKE_SQLITE,
            Backend::Postgres => TAKE_POSTGRES,
        };
        let mut taken: Vec<(i64, String)> = match node {
            Some(node) => sqlx::query_as(take[0]).bind(node),
            None => sqlx::query_as(take[1]),
        }
        .fetch_all(&mut *tx)
        .await?;
        if taken.is_empty() {
            return Ok(0);
        }
        // In the order they were written: a series' points stay in recording order.
        taken.sort_unstable_by_key(|(id, _)| *id);
        let mut rows = Vec::new();
        for (_, text) in &taken {
            match serde_json::from_str::<Vec<LogRow>>(text) {
                Ok(batch) => rows.extend(batch.into_iter().map(from_log_row)),
                Err(e) => tracing::warn!(error = %e, "history log row unreadable; skipped"),
            }
        }
        keep_created(&mut *tx, self.backend, &mut rows).await?;
        chunk::insert(&mut tx, self.backend, &Chunks::from_rows(&rows).0).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
}
