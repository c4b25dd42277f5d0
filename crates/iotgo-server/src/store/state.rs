//! Device state and presence, written by the Device API in grouped transactions.
//!
//! The device writer (`crate::device::writer`) collects the writes of many devices and
//! hands them here as one batch: one transaction, one commit, one fsync for all of them.
//!
//! The writer is the only writer of `params`, so it keeps each device's committed params
//! in a [`StateCache`]: an update is merged in memory (keys replaced, others kept) and no
//! per-update `SELECT` is needed. A batch then costs a fixed number of statements whatever
//! its size: one `UPDATE … FROM` over a JSON array of row changes (params, `last_modified`,
//! presence and `last_seen_at` of every touched device) and one `INSERT … SELECT` of the
//! history rows, plus a `SELECT` for each device not cached yet. A batch without history
//! rows is that `UPDATE` alone, atomic by itself: one round trip to the database instead
//! of `BEGIN`, `UPDATE`, `COMMIT`.

use super::devices::parse_params;
use super::history::{self, HistoryLog, HistoryRow, history_rows};
use super::{Backend, Millis, Store, StoreResult};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Any, AnyPool, Executor};
use std::collections::{HashMap, HashSet};

/// One change to a device's row.
#[derive(Debug, Clone)]
pub enum StateWrite {
    /// Merge `params` into the stored state (keys replaced, others kept), set `last_modified`,
    /// and append the params its type keeps in history.
    Merge {
        /// The device.
        deviceid: String,
        /// The params of the update.
        params: Map<String, Value>,
        /// When the update came.
        at: Millis,
        /// The device sent it itself: also its last-seen time.
        seen: bool,
    },
    /// The device made a request.
    Seen {
        /// The device.
        deviceid: String,
        /// When.
        at: Millis,
    },
    /// The device connected (or started polling): online, connected and seen now.
    Online {
        /// The device.
        deviceid: String,
        /// When.
        at: Millis,
    },
    /// The device's connection ended (or its polling stopped).
    Offline {
        /// The device.
        deviceid: String,
        /// When.
        at: Millis,
    },
}

impl StateWrite {
    /// The device written.
    pub fn deviceid(&self) -> &str {
        match self {
            StateWrite::Merge { deviceid, .. }
            | StateWrite::Seen { deviceid, .. }
            | StateWrite::Online { deviceid, .. }
            | StateWrite::Offline { deviceid, .. } => deviceid,
        }
    }
}

/// The committed params of devices, deviceid → state; owned by the device writer.
pub type StateCache = HashMap<String, DeviceState>;

/// Bounds on a device's stored params, checked as each update merges into them: an update
/// is refused when the merged params would pass a bound they were within, or grow past a
/// bound they already passed (a state stored before the bound, or under a larger one,
/// keeps taking updates that do not make it larger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Most bytes of the params as stored (compact JSON).
    pub max_bytes: usize,
    /// Most top-level keys.
    pub max_keys: usize,
}

impl StateLimits {
    /// No bound (set-up code and tests).
    pub const NONE: StateLimits = StateLimits {
        max_bytes: usize::MAX,
        max_keys: usize::MAX,
    };
}

/// One device's committed params, with the length of their compact JSON kept up to date
/// as updates merge, so bounding them costs the size of the update, not of the state.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceState {
    params: Map<String, Value>,
    /// The sum of the entries' lengths, `"key":value` each (braces and commas apart).
    entries: usize,
}

impl DeviceState {
    /// The state holding `params`.
    pub fn new(params: Map<String, Value>) -> Self {
        let entries = params.iter().map(|(k, v)| entry_len(k, v)).sum();
        DeviceState { params, entries }
    }

    /// The params.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// The length of the params as compact JSON.
    pub fn bytes(&self) -> usize {
        object_len(self.entries, self.params.len())
    }

    /// Merges `update` (keys replaced, others kept) unless the result would break
    /// `limits` (see [`StateLimits`]); whether it merged.
    fn merge(&mut self, update: &Map<String, Value>, limits: StateLimits) -> bool {
        let mut entries = self.entries;
        let mut keys = self.params.len();
        for (k, v) in update {
            match self.params.get(k) {
                Some(old) => entries = entries - entry_len(k, old) + entry_len(k, v),
                None => {
                    entries += entry_len(k, v);
                    keys += 1;
                }
            }
        }
        let bytes = object_len(entries, keys);
        let too_large = bytes > limits.max_bytes && bytes > self.bytes();
        let too_many = keys > limits.max_keys && keys > self.params.len();
        if too_large || too_many {
            return false;
        }
        self.params
            .extend(update.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.entries = entries;
        true
    }
}

/// The length of a compact JSON object of `keys` entries whose lengths add up to `entries`.
fn object_len(entries: usize, keys: usize) -> usize {
    2 + entries + keys.saturating_sub(1)
}

/// The length of one object entry, `"key":value`, as compact JSON.
fn entry_len(key: &str, value: &Value) -> usize {
    json_len(key) + 1 + json_len(value)
}

/// The length of `v` as compact JSON, counted without building the text.
fn json_len(v: &(impl Serialize + ?Sized)) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // A `Value` or a `str` always serialises; the counter never fails.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// What a batch did: the history points it logged, and the updates it refused.
#[derive(Debug, Default)]
pub struct Applied {
    /// The history points of its updates (for the recent points).
    pub history: Vec<HistoryRow>,
    /// The indexes (in the batch's writes, in order) of the updates refused by the
    /// [`StateLimits`] — nothing of them was written — and, in cluster mode, of the
    /// offline writes that did not apply because the device is another node's now.
    pub refused: Vec<usize>,
}

/// One device's row change in a batch, as the JSON the batch statement reads; a field
/// left out (read as `NULL`) keeps the column.
#[derive(Serialize)]
struct RowChange<'a> {
    /// deviceid.
    i: &'a str,
    /// The merged params as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    /// `last_modified`.
    #[serde(skip_serializing_if = "Option::is_none")]
    m: Option<i64>,
    /// `last_seen_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<i64>,
    /// `online` (1 or 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<i64>,
    /// `last_connected_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<i64>,
    /// `last_disconnected_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<i64>,
}

/// What a batch changes in one device's row.
#[derive(Default)]
struct Pending {
    params: bool,
    modified: Option<i64>,
    seen: Option<i64>,
    /// The last presence change: online or not.
    online: Option<bool>,
    connected: Option<i64>,
    disconnected: Option<i64>,
}

impl Pending {
    fn seen_at(&mut self, at: Millis) {
        self.seen = Some(self.seen.map_or(at.0, |s| s.max(at.0)));
    }
}

/// `jsonb_each` hands each row change over in SQLite's binary JSON, so the look-ups read it
/// without parsing text again.
const UPDATE_ROWS_SQLITE: &str = "UPDATE devices SET \
     params = COALESCE(j.value ->> 'p', params), \
     last_modified = COALESCE(j.value ->> 'm', last_modified), \
     last_seen_at = COALESCE(j.value ->> 's', last_seen_at), \
     online = COALESCE(j.value ->> 'o', online), \
     last_connected_at = COALESCE(j.value ->> 'c', last_connected_at), \
     last_disconnected_at = COALESCE(j.value ->> 'x', last_disconnected_at) \
     FROM jsonb_each($1) AS j WHERE devices.deviceid = j.value ->> 'i' \
     RETURNING devices.deviceid";

const UPDATE_ROWS_POSTGRES: &str = "UPDATE devices SET \
     params = COALESCE(j.p, devices.params), \
     last_modified = COALESCE(j.m, devices.last_modified), \
     last_seen_at = COALESCE(j.s, devices.last_seen_at), \
     online = COALESCE(j.o, devices.online), \
     last_connected_at = COALESCE(j.c, devices.last_connected_at), \
     last_disconnected_at = COALESCE(j.x, devices.last_disconnected_at) \
     FROM json_to_recordset($1::json) \
     AS j(i text, p text, m bigint, s bigint, o bigint, c bigint, x bigint) \
     WHERE devices.deviceid = j.i RETURNING devices.deviceid";

/// A node of a cluster (`$2`): `online` sets the device's `node`, and an offline write
/// applies only while the device is still this node's — a device that moved to another
/// node stays online there, and one that went offline already (buried, or gone offline
/// through another node) is not told so twice. Whether it applied is in what it answers:
/// `last_disconnected_at` is the write's time only then.
const UPDATE_ROWS_CLUSTER: &str = "UPDATE devices SET \
     params = COALESCE(j.p, devices.params), \
     last_modified = COALESCE(j.m, devices.last_modified), \
     last_seen_at = COALESCE(j.s, devices.last_seen_at), \
     online = CASE WHEN j.o = 0 AND devices.node IS DISTINCT FROM $2 THEN devices.online \
       ELSE COALESCE(j.o, devices.online) END, \
     last_connected_at = COALESCE(j.c, devices.last_connected_at), \
     last_disconnected_at = CASE WHEN j.o = 0 AND devices.node IS DISTINCT FROM $2 \
       THEN devices.last_disconnected_at ELSE COALESCE(j.x, devices.last_disconnected_at) END, \
     node = CASE WHEN j.o = 1 THEN $2 \
       WHEN j.o = 0 AND devices.node IS NOT DISTINCT FROM $2 THEN NULL ELSE devices.node END \
     FROM json_to_recordset($1::json) \
     AS j(i text, p text, m bigint, s bigint, o bigint, c bigint, x bigint) \
     WHERE devices.deviceid = j.i RETURNING devices.deviceid, devices.last_disconnected_at";

/// Cluster mode: the params of a batch's devices, read under row locks (in deviceid
/// order, so two nodes' batches never deadlock), since other nodes write them too.
const LOCK_PARAMS: &str = "SELECT deviceid, params FROM devices \
     WHERE deviceid IN (SELECT json_array_elements_text($1::json)) \
     ORDER BY deviceid FOR UPDATE";

/// On a single node: nothing is connected to a server that is starting or stopping.
const RESET_PRESENCE: &str = "UPDATE devices SET online = 0, node = NULL, \
     last_disconnected_at = $1 WHERE online <> 0";

impl Store {
    /// Applies `writes` in order, in one transaction, merging updates into the params in
    /// `cache` (devices not in it are read first); an update that would take a device's
    /// params past `limits` is refused, and the rest of the batch is written.
    ///
    /// With `history`, the history points of its updates go into the history log in the
    /// same transaction; answers them, for the recent points (`crate::history::Recorder`).
    ///
    /// When the batch fails, the devices it touched are dropped from `cache`, so their
    /// params are read again from what was committed.
    pub async fn apply_state(
        &self,
        writes: &[StateWrite],
        cache: &mut StateCache,
        history: bool,
        limits: StateLimits,
    ) -> StoreResult<Applied> {
        let log = if history {
            HistoryLog::Single
        } else {
            HistoryLog::Off
        };
        self.apply_state_to(writes, cache, log, limits).await
    }

    /// [`Store::apply_state`] with the history points going to `log` (a cluster node's
    /// log: one row per device, tagged with the node).
    pub async fn apply_state_to(
        &self,
        writes: &[StateWrite],
        cache: &mut StateCache,
        log: HistoryLog<'_>,
        limits: StateLimits,
    ) -> StoreResult<Applied> {
        let result = self.apply_batch(writes, cache, log, limits).await;
        if result.is_err() {
            for w in writes {
                cache.remove(w.deviceid());
            }
        }
        result
    }

    async fn apply_batch(
        &self,
        writes: &[StateWrite],
        cache: &mut StateCache,
        log: HistoryLog<'_>,
        limits: StateLimits,
    ) -> StoreResult<Applied> {
        // Cluster mode: other nodes write params too, so they are read afresh under row
        // locks inside the batch's transaction. Otherwise the writer is the only writer of
        // params, and devices not cached yet are read first, outside the transaction.
        let mut tx = match self.node {
            Some(_) => {
                let mut tx = self.write.begin().await?;
                lock_states(&mut tx, writes, cache).await?;
                Some(tx)
            }
            None => {
                for w in writes {
                    if let StateWrite::Merge { deviceid, .. } = w {
                        load_state(&self.write, cache, deviceid).await?;
                    }
                }
                None
            }
        };
        let mut rows: HashMap<&str, Pending> = HashMap::new();
        let mut history: Vec<HistoryRow> = Vec::new();
        let mut refused = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            match w {
                StateWrite::Merge {
                    deviceid,
                    params,
                    at,
                    seen,
                } => {
                    let Some(state) = cache.get_mut(deviceid.as_str()) else {
                        continue; // gone: nothing to merge into, no history
                    };
                    if !state.merge(params, limits) {
                        refused.push(i);
                        continue;
                    }
                    let row = rows.entry(deviceid).or_default();
                    row.params = true;
                    row.modified = Some(at.0);
                    if *seen {
                        row.seen_at(*at);
                    }
                    if log.records() {
                        history.extend(history_rows(deviceid, params, *at));
                    }
                }
                StateWrite::Seen { deviceid, at } => {
                    rows.entry(deviceid).or_default().seen_at(*at);
                }
                StateWrite::Online { deviceid, at } => {
                    let row = rows.entry(deviceid).or_default();
                    row.online = Some(true);
                    row.connected = Some(at.0);
                    row.seen_at(*at);
                }
                StateWrite::Offline { deviceid, at } => {
                    let row = rows.entry(deviceid).or_default();
                    row.online = Some(false);
                    row.disconnected = Some(at.0);
                }
            }
        }
        let mut tx = match tx.take() {
            Some(tx) => tx,
            None if history.is_empty() => {
                // One statement, atomic by itself: one round trip instead of three.
                let updated = self.update_rows(&self.write, &rows, cache).await?;
                forget_gone(&rows, &updated, cache);
                return Ok(Applied { history, refused });
            }
            None => self.write.begin().await?,
        };
        let updated = self.update_rows(&mut *tx, &rows, cache).await?;
        forget_gone(&rows, &updated, cache);
        // No history for a device deleted since it was cached.
        history.retain(|r| updated.contains_key(r.deviceid.as_str()));
        history::log(&mut tx, self.backend, log, &history).await?;
        tx.commit().await?;
        if self.node.is_some() {
            superseded(writes, &rows, &updated, &mut refused);
        }
        Ok(Applied { history, refused })
    }

    /// Writes every row change of a batch in one statement; the deviceids that exist, each
    /// with (cluster mode) its `last_disconnected_at` as written.
    async fn update_rows<'e>(
        &self,
        exec: impl Executor<'e, Database = Any>,
        rows: &HashMap<&str, Pending>,
        cache: &StateCache,
    ) -> StoreResult<HashMap<String, Option<i64>>> {
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        let changes: Vec<RowChange> = rows
            .iter()
            .map(|(id, row)| RowChange {
                i: id,
                p: row
                    .params
                    .then(|| {
                        let state = cache.get(*id)?;
                        let text = serde_json::to_string(&state.params)
                            .expect("a map of JSON values always serialises");
                        // The length the bounds were checked against is the one written.
                        debug_assert_eq!(text.len(), state.bytes());
                        Some(text)
                    })
                    .flatten(),
                m: row.modified,
                s: row.seen,
                o: row.online.map(i64::from),
                c: row.connected,
                x: row.disconnected,
            })
            .collect();
        let json = serde_json::to_string(&changes).expect("row changes always serialise");
        if let Some(node) = self.node.as_deref() {
            let rows: Vec<(String, Option<i64>)> = sqlx::query_as(UPDATE_ROWS_CLUSTER)
                .bind(json)
                .bind(node)
                .fetch_all(exec)
                .await?;
            return Ok(rows.into_iter().collect());
        }
        let sql = match self.backend {
            Backend::Sqlite => UPDATE_ROWS_SQLITE,
            Backend::Postgres => UPDATE_ROWS_POSTGRES,
        };
        let ids: Vec<String> = sqlx::query_scalar(sql).bind(json).fetch_all(exec).await?;
        Ok(ids.into_iter().map(|id| (id, None)).collect())
    }

    /// A single node starting or stopping: nothing is connected to it, so every device
    /// that was online goes offline. (A node of a cluster marks only its own devices, in
    /// [`Nodes::join`](super::Nodes::join) and [`Nodes::bury`](super::Nodes::bury).)
    pub async fn reset_presence(&self, at: Millis) -> StoreResult<()> {
        sqlx::query(RESET_PRESENCE)
            .bind(at.0)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

/// Cluster mode: reads the params of the batch's updated devices into `cache` under row
/// locks held until `tx` ends; a device that does not exist leaves it.
async fn lock_states(
    tx: &mut sqlx::Transaction<'_, Any>,
    writes: &[StateWrite],
    cache: &mut StateCache,
) -> StoreResult<()> {
    let ids: HashSet<&str> = writes
        .iter()
        .filter(|w| matches!(w, StateWrite::Merge { .. }))
        .map(StateWrite::deviceid)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(&ids).expect("a set of strings always serialises");
    let rows: Vec<(String, String)> = sqlx::query_as(LOCK_PARAMS)
        .bind(json)
        .fetch_all(&mut **tx)
        .await?;
    for id in &ids {
        cache.remove(*id);
    }
    for (id, text) in rows {
        cache.insert(id, DeviceState::new(parse_params(&text)));
    }
    Ok(())
}

/// Adds to `refused` (kept sorted) the offline writes that did not apply: in cluster mode,
/// the device is another node's now (it moved while its old connection here closed), or
/// it is offline already.
fn superseded(
    writes: &[StateWrite],
    rows: &HashMap<&str, Pending>,
    updated: &HashMap<String, Option<i64>>,
    refused: &mut Vec<usize>,
) {
    let before = refused.len();
    for (i, w) in writes.iter().enumerate() {
        // The write's time is in the row only when it applied.
        if let StateWrite::Offline { deviceid, .. } = w
            && let Some(row) = rows.get(deviceid.as_str())
            && row.online == Some(false)
            && updated
                .get(deviceid)
                .is_some_and(|&at| at != row.disconnected)
        {
            refused.push(i);
        }
    }
    if refused.len() > before {
        refused.sort_unstable();
    }
}

/// Reads the params of `deviceid` into `cache` unless they are there; a device that does
/// not exist stays out of it.
async fn load_state(pool: &AnyPool, cache: &mut StateCache, deviceid: &str) -> StoreResult<()> {
    if cache.contains_key(deviceid) {
        return Ok(());
    }
    let text: Option<String> = sqlx::query_scalar("SELECT params FROM devices WHERE deviceid = $1")
        .bind(deviceid)
        .fetch_optional(pool)
        .await?;
    if let Some(text) = text {
        cache.insert(deviceid.to_owned(), DeviceState::new(parse_params(&text)));
    }
    Ok(())
}

/// A device deleted since it was cached is forgotten.
fn forget_gone(
    rows: &HashMap<&str, Pending>,
    existing: &HashMap<String, Option<i64>>,
    cache: &mut StateCache,
) {
    for id in rows.keys() {
        if !existing.contains_key(*id) {
            cache.remove(*id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::store::testing::{OWNER, store_with_devices};

    fn merge(deviceid: &str, params: Value, at: i64) -> StateWrite {
        let Value::Object(params) = params else {
            panic!("params must be an object")
        };
        StateWrite::Merge {
            deviceid: deviceid.to_owned(),
            params,
            at: Millis(at),
            seen: true,
        }
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn a_batch_merges_each_devices_updates_in_their_order() {
        let (_dir, store, ids) = store_with_devices("00", 2).await;
        let (a, b) = (&ids[0], &ids[1]);
        let mut cache = StateCache::new();
        let writes = [
            merge(a, json!({"x": 1, "y": 1}), 1_000),
            merge(b, json!({"x": "b"}), 1_001),
            merge(a, json!({"y": 2}), 1_002),
            merge(a, json!({"x": 3, "z": true}), 1_003),
        ];
        store
            .apply_state(&writes, &mut cache, true, StateLimits::NONE)
            .await
            .unwrap();

        let want = object(json!({"x": 3, "y": 2, "z": true}));
        let stored = store.devices().find(a).await.unwrap().unwrap();
        assert_eq!(stored.params.as_ref(), Some(&want));
        assert_eq!(stored.last_modified, Some(Millis(1_003)));
        assert_eq!(cache.get(a.as_str()).map(DeviceState::params), Some(&want));
        let other = store.devices().find(b).await.unwrap().unwrap();
        assert_eq!(other.params, Some(object(json!({"x": "b"}))));

        // The next batch merges into what the cache holds, keys kept.
        store
            .apply_state(
                &[merge(a, json!({"y": 9}), 1_004)],
                &mut cache,
                true,
                StateLimits::NONE,
            )
            .await
            .unwrap();
        let stored = store.devices().find(a).await.unwrap().unwrap();
        assert_eq!(
            stored.params,
            Some(object(json!({"x": 3, "y": 9, "z": true})))
        );
    }

    #[tokio::test]
    async fn a_device_deleted_since_it_was_cached_is_skipped_and_forgotten() {
        let (_dir, store, ids) = store_with_devices("00", 2).await;
        let (kept, gone) = (&ids[0], &ids[1]);
        let mut cache = StateCache::new();
        let first = [
            merge(kept, json!({"n": 1}), 1),
            merge(gone, json!({"n": 1}), 1),
        ];
        store
            .apply_state(&first, &mut cache, true, StateLimits::NONE)
            .await
            .unwrap();
        assert!(cache.contains_key(gone.as_str()));

        store.devices().delete(OWNER, gone).await.unwrap().unwrap();
        let next = [
            merge(gone, json!({"n": 2}), 2),
            merge(kept, json!({"n": 2}), 2),
        ];
        store
            .apply_state(&next, &mut cache, true, StateLimits::NONE)
            .await
            .unwrap();

        let stored = store.devices().find(kept).await.unwrap().unwrap();
        assert_eq!(stored.params, Some(object(json!({"n": 2}))));
        assert!(store.devices().find(gone).await.unwrap().is_none());
        assert!(!cache.contains_key(gone.as_str()));
    }

    #[tokio::test]
    async fn a_refused_update_writes_nothing_and_the_rest_of_its_batch_commits() {
        let (_dir, store, ids) = store_with_devices("00", 2).await;
        let (a, b) = (&ids[0], &ids[1]);
        let mut cache = StateCache::new();
        let limits = StateLimits {
            max_bytes: 1024,
            max_keys: 2,
        };
        let writes = [
            merge(a, json!({"x": 1, "y": 1}), 1_000),
            merge(a, json!({"z": 1}), 1_001),
            merge(b, json!({"x": 2}), 1_002),
            merge(a, json!({"y": 3}), 1_003),
        ];

        let applied = store
            .apply_state(&writes, &mut cache, true, limits)
            .await
            .unwrap();

        assert_eq!(applied.refused, [1]);
        let times: Vec<_> = applied.history.iter().map(|r| r.at.0).collect();
        assert!(!times.contains(&1_001), "no history of the refused update");
        let stored = store.devices().find(a).await.unwrap().unwrap();
        assert_eq!(stored.params, Some(object(json!({"x": 1, "y": 3}))));
        assert_eq!(stored.last_modified, Some(Millis(1_003)));
        let other = store.devices().find(b).await.unwrap().unwrap();
        assert_eq!(other.params, Some(object(json!({"x": 2}))));
    }

    #[test]
    fn the_tracked_length_is_the_length_of_the_compact_json() {
        let mut state = DeviceState::new(Map::new());
        assert_eq!(state.bytes(), "{}".len());
        let updates = [
            json!({"a": 1, "é\"q": "x\ny", "n": null}),
            json!({"a": [1, 2, {"b": true}], "c": -1.5}),
            json!({"n": "longer than before", "a": 0}),
        ];
        for u in updates {
            assert!(state.merge(&object(u), StateLimits::NONE));
            let text = serde_json::to_string(state.params()).unwrap();
            assert_eq!(state.bytes(), text.len(), "{text}");
        }
    }

    #[test]
    fn an_update_past_a_bound_is_refused_and_leaves_the_state_as_it_was() {
        let limits = StateLimits {
            max_bytes: 32,
            max_keys: 3,
        };
        let mut state = DeviceState::new(object(json!({"a": 1, "b": 2})));
        assert!(state.merge(&object(json!({"c": 3})), limits));
        let full = state.clone();
        // A fourth key.
        assert!(!state.merge(&object(json!({"d": 4})), limits));
        // Past 32 bytes with three keys.
        assert!(!state.merge(&object(json!({"a": "a long text value"})), limits));
        assert_eq!(state, full);
        // Replacing keys within the bounds still works.
        assert!(state.merge(&object(json!({"a": "short", "b": 0})), limits));

        // A state already past the bounds takes updates that do not make it larger.
        let tight = StateLimits {
            max_bytes: 8,
            max_keys: 1,
        };
        assert!(state.merge(&object(json!({"a": "SHORT"})), tight));
        assert!(!state.merge(&object(json!({"a": "LONGER"})), tight));
        assert!(!state.merge(&object(json!({"z": 1})), tight));
    }
}
