//! The [`Recorder`]: the one owner of the recent points. The device writer's task holds it
//! (`crate::device::Writer`), so only that task adds, deletes, purges or folds them;
//! everything else reads through a [`Reader`] or asks the writer.

use super::Reader;
use super::recent::Recent;
use crate::store::{
    Chunks, HistoryLog, HistoryRow, Millis, RawPoint, Store, StoreResult, cluster_log_rows,
};
use std::sync::Arc;
use std::time::Instant;

/// The live part of the history: the points committed to the log since the last fold,
/// in memory, and the fold that moves them into chunks. Not `Clone`: whoever holds it
/// is the only one that changes the recent points.
pub struct Recorder {
    store: Store,
    recent: Arc<Recent>,
    /// Whether device updates record history.
    enabled: bool,
    /// This cluster node's id (`None`: a single node).
    node: Option<Arc<str>>,
    /// A cluster node's log rows since its last fold (its fold checks it deletes as many).
    logged: u64,
}

impl Recorder {
    /// A recorder over `store` holding what its history log holds (read back at start-up,
    /// leaving out devices deleted since); with `enabled` false, updates record nothing.
    pub async fn load(store: Store, enabled: bool) -> StoreResult<Recorder> {
        Recorder::load_as(store, enabled, None).await
    }

    /// A recorder of the cluster node `node` (`None`: a single node, as [`Recorder::load`]).
    ///
    /// A cluster node starts with no recent points: what its own earlier run logged, and
    /// what a single node left in the log, is folded into chunks first ([`fold_node_log`](super::fold_node_log):
    /// safe while another node folds the same rows), so its memory never holds points that
    /// a survivor may fold meanwhile. The other nodes' logs are theirs; reads see them.
    pub async fn load_as(
        store: Store,
        enabled: bool,
        node: Option<Arc<str>>,
    ) -> StoreResult<Recorder> {
        let recent = Arc::new(Recent::default());
        match node.as_deref() {
            None => recent.add(&store.history_log().await?),
            Some(me) => {
                let points = store.fold_log(Some(me)).await? + store.fold_log(None).await?;
                if points > 0 {
                    tracing::info!(points, node = me, "history log of the last run folded");
                }
            }
        }
        Ok(Recorder {
            store,
            recent,
            enabled,
            node,
            logged: 0,
        })
    }

    /// A read-only view of the recent points and the chunks, for queries.
    pub fn reader(&self) -> Reader {
        Reader::new(self.store.clone(), self.recent.clone(), self.node.clone())
    }

    /// Where a batch's history points go: nowhere when history is off, else this node's
    /// log ([`Store::apply_state_to`]).
    pub fn log(&self) -> HistoryLog<'_> {
        match (self.enabled, self.node.as_deref()) {
            (false, _) => HistoryLog::Off,
            (true, None) => HistoryLog::Single,
            (true, Some(node)) => HistoryLog::Node(node),
        }
    }

    /// Whether device updates record history (`history_enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Recent points held (the device writer folds at [`FOLD_POINTS`](super::FOLD_POINTS)).
    pub fn held(&self) -> usize {
        self.recent.len()
    }

    /// Takes in the points of a committed batch (what `Store::apply_state` answered).
    pub fn committed(&mut self, rows: &[HistoryRow]) {
        if self.node.is_some() {
            self.logged += cluster_log_rows(rows) as u64;
        }
        self.recent.add(rows);
    }

    /// Devices were deleted (committed; their chunks went with them): their recent points
    /// go. Called between batches, after every batch committed before the deletion was
    /// taken in; a batch after it finds no such device and records none of its points.
    pub fn delete(&mut self, deviceids: &[String]) {
        self.recent.delete(deviceids);
    }

    /// Drops the recent points recorded before `cutoff` (retention); how many went.
    pub fn purge(&mut self, cutoff: Millis) -> usize {
        self.recent.purge(cutoff)
    }

    /// When at least `min_points` (1 or more) recent points are held, writes them all as
    /// chunks (one per series) and empties the log (a cluster node: its own rows), in one
    /// transaction; how many points left memory (on a cluster node, points of devices
    /// deleted or created again elsewhere are among them but not written). Readers meanwhile see each point once (the fold sequence, `recent.rs`).
    pub async fn fold(&mut self, min_points: usize) -> StoreResult<u64> {
        let held = self.recent.len();
        if held < min_points.max(1) {
            return Ok(0);
        }
        let t0 = Instant::now();
        let chunks = match self.node {
            None => self.recent.with_all(|devices| {
                Chunks::encode(devices.iter().flat_map(|(d, fields)| {
                    fields
                        .iter()
                        .map(move |(f, points)| (d.as_str(), f.as_str(), points.as_slice()))
                }))
            }),
            Some(_) => self.encode_created().await?,
        };
        self.recent.folding();
        let node = self.node.clone();
        let result = match node.as_deref() {
            None => self.store.fold_history(&chunks, None).await,
            Some(me) => match self.store.fold_node_history(&chunks, me, self.logged).await {
                Ok(true) => Ok(()),
                Ok(false) => return self.taken_over(me).await,
                Err(e) => Err(e),
            },
        };
        if result.is_ok() {
            self.logged = 0;
        }
        self.recent.folded(result.is_ok());
        result?;
        tracing::debug!(
            points = held,
            ms = t0.elapsed().as_millis(),
            "history folded"
        );
        Ok(held as u64)
    }

    /// Another node folded part of this node's log (this node's lease had ended, so it was
    /// taken for dead): those points are chunks already. The recent points become what is
    /// left of the log, with readers waiting (the fold sequence is odd), and none is
    /// folded now; nothing moved.
    async fn taken_over(&mut self, me: &str) -> StoreResult<u64> {
        tracing::error!(
            node = me,
            "history: this node's log did not hold what it logged (another node folded \
             it: its lease had ended); the recent points are read back from what is left"
        );
        let reloaded = self.store.node_log(me).await;
        if let Ok((rows, logged)) = &reloaded {
            self.recent.replace(rows);
            self.logged = *logged;
        }
        self.recent.folded(false);
        reloaded.map(|_| 0)
    }

    /// The chunks of a cluster node's fold: its points of devices that exist, from their
    /// creation on. Another node may have deleted a device, or deleted it and created it
    /// again, without this node being told yet: its old points must not come back.
    async fn encode_created(&self) -> StoreResult<Chunks> {
        let ids: Vec<String> = self
            .recent
            .with_all(|devices| devices.keys().cloned().collect());
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let created = self.store.history_created(&ids).await?;
        Ok(self.recent.with_all(|devices| {
            let kept: Vec<(&str, &str, Vec<RawPoint>)> = devices
                .iter()
                .filter_map(|(d, fields)| Some((d, fields, *created.get(d)?)))
                .flat_map(|(d, fields, since)| {
                    fields.iter().map(move |(f, points)| {
                        let kept = points.iter().filter(|p| p.at >= since).copied();
                        (d.as_str(), f.as_str(), kept.collect())
                    })
                })
                .collect();
            Chunks::encode(kept.iter().map(|(d, f, p)| (*d, *f, p.as_slice())))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Series, SeriesPoint, Shape};
    use super::*;
    use crate::store::{StateCache, StateLimits, StateWrite};
    use iotgo_protocol::{DeviceId, DeviceType};
    use serde_json::json;

    use crate::store::testing::{OWNER, store_with_devices};
    const ALL: (Millis, Millis) = (Millis(0), Millis(i64::MAX));

    /// A recorder over a fresh SQLite file with one user and `n` temperature/humidity
    /// devices (type 03).
    async fn recorder_with_devices(n: usize) -> (tempfile::TempDir, Recorder, Vec<String>) {
        let (dir, store, ids) = store_with_devices("03", n).await;
        let recorder = Recorder::load(store, true).await.expect("recorder");
        (dir, recorder, ids)
    }

    /// An update of `deviceid` at `at` with `params`.
    fn update(deviceid: &str, at: i64, params: serde_json::Value) -> StateWrite {
        StateWrite::Merge {
            deviceid: deviceid.to_owned(),
            params: params.as_object().expect("params are an object").clone(),
            at: Millis(at),
            seen: true,
        }
    }

    /// Commits `writes` as the device writer does: one batch, its log row, then its points
    /// into memory.
    async fn record(recorder: &mut Recorder, writes: &[StateWrite]) {
        let mut cache = StateCache::new();
        let applied = recorder
            .store
            .apply_state(writes, &mut cache, true, StateLimits::NONE)
            .await;
        recorder.committed(&applied.expect("batch").history);
    }

    fn fields() -> Vec<String> {
        vec!["temperature".into(), "humidity".into()]
    }

    async fn raw(reader: &Reader, deviceid: &str) -> Series {
        let shape = Shape::Raw { cap: 100 };
        reader
            .series(deviceid, &fields(), ALL, shape)
            .await
            .expect("read")
    }

    fn values(series: &Series) -> Vec<(i64, Vec<Option<f64>>)> {
        series
            .points
            .iter()
            .map(|p| match p {
                SeriesPoint::Raw { at, values, .. } => (at.0, values.clone()),
                SeriesPoint::Bucket { .. } => panic!("raw points asked"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_fold_moves_the_points_into_chunks_and_reads_see_the_same_series() {
        let (_dir, mut recorder, ids) = recorder_with_devices(2).await;
        let reader = recorder.reader();
        let (a, b) = (&ids[0], &ids[1]);
        record(
            &mut recorder,
            &[update(a, 1, json!({"temperature": 1, "humidity": 50}))],
        )
        .await;
        record(
            &mut recorder,
            &[
                update(a, 2, json!({"temperature": 2})),
                update(b, 2, json!({"temperature": 9})),
            ],
        )
        .await;
        let before = raw(&reader, a).await;
        let buckets = Shape::Buckets { width: 10 };
        let before_buckets = reader.series(a, &fields(), ALL, buckets).await.unwrap();
        assert_eq!(
            values(&before),
            [(1, vec![Some(1.0), Some(50.0)]), (2, vec![Some(2.0), None])]
        );
        assert_eq!((recorder.held(), reader.count(a).await.unwrap()), (4, 3));

        assert_eq!(recorder.fold(5).await.unwrap(), 0, "below the threshold");
        assert_eq!(recorder.fold(1).await.unwrap(), 4);

        assert_eq!((recorder.held(), reader.recent_len()), (0, 0));
        assert_eq!(reader.count(a).await.unwrap(), 3);
        assert_eq!(values(&raw(&reader, a).await), values(&before));
        let after_buckets = reader.series(a, &fields(), ALL, buckets).await.unwrap();
        assert_eq!(after_buckets.points, before_buckets.points);
        // The log was emptied with the fold: a restart reads nothing back.
        let again = Recorder::load(recorder.store.clone(), true).await.unwrap();
        assert_eq!(again.held(), 0);
    }

    #[tokio::test]
    async fn a_deleted_device_loses_its_points_also_after_a_restart_or_fold() {
        let (_dir, mut recorder, ids) = recorder_with_devices(2).await;
        let reader = recorder.reader();
        let (gone, kept) = (&ids[0], &ids[1]);
        // After the devices' creation: a restart keeps only such points.
        let at = Millis::now().0 + 60_000;
        record(
            &mut recorder,
            &[
                update(gone, at, json!({"temperature": 1})),
                update(kept, at, json!({"temperature": 2})),
            ],
        )
        .await;

        let store = recorder.store.clone();
        store.devices().delete(OWNER, gone).await.unwrap().unwrap();
        recorder.delete(std::slice::from_ref(gone));

        assert_eq!((recorder.held(), reader.count(gone).await.unwrap()), (1, 0));
        assert!(raw(&reader, gone).await.points.is_empty());
        // The log still holds the deleted device's point: a restart leaves it out.
        let restarted = Recorder::load(store.clone(), true).await.unwrap();
        assert_eq!(restarted.reader().count(gone).await.unwrap(), 0);
        assert_eq!(restarted.reader().count(kept).await.unwrap(), 1);
        // A fold writes no chunk for it either.
        assert_eq!(recorder.fold(1).await.unwrap(), 1);
        assert_eq!(reader.count(gone).await.unwrap(), 0);
        assert_eq!(reader.count(kept).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_deviceid_claimed_again_starts_empty() {
        let (_dir, mut recorder, _) = recorder_with_devices(0).await;
        let reader = recorder.reader();
        let store = recorder.store.clone();
        let ty = DeviceType::parse("03").expect("type 03");
        let license = store.licenses().create("l", ty, 1).await.unwrap().remove(0);
        let id = DeviceId::parse(&license.deviceid).expect("a deviceid");
        let claim = async || {
            let devices = store.devices();
            let claimed = devices.claim(OWNER, &id, &license.apikey, "th", "");
            claimed.await.expect("claimed");
        };
        claim().await;
        let at = Millis::now().0 + 60_000;
        let first = [update(id.as_str(), at, json!({"temperature": 1}))];
        record(&mut recorder, &first).await;
        assert_eq!(reader.count(id.as_str()).await.unwrap(), 1);

        store
            .devices()
            .delete(OWNER, id.as_str())
            .await
            .unwrap()
            .unwrap();
        recorder.delete(std::slice::from_ref(&license.deviceid));
        claim().await;

        assert_eq!(reader.count(id.as_str()).await.unwrap(), 0);
        let next = [update(id.as_str(), at + 1, json!({"temperature": 2}))];
        record(&mut recorder, &next).await;
        let series = raw(&reader, id.as_str()).await;
        assert_eq!(values(&series), [(at + 1, vec![Some(2.0), None])]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_racing_folds_see_each_point_once() {
        let (_dir, mut recorder, ids) = recorder_with_devices(1).await;
        let reader = recorder.reader();
        let id = ids[0].clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Readers run while the points move, batch by batch, from memory to chunks.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (reader, id, stop) = (reader.clone(), id.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut reads = 0;
                    let mut last = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let series = raw(&reader, &id).await;
                        let count = reader.count(&id).await.unwrap();
                        let times: Vec<i64> = values(&series).iter().map(|(t, _)| *t).collect();
                        // Each time once, none missing: 1, 2, … n, and counts never shrink.
                        let n = times.len() as i64;
                        assert_eq!(times, (1..=n).collect::<Vec<_>>());
                        assert!(n >= last && count >= n, "{n} after {last}, count {count}");
                        last = n;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for at in 1..=40 {
            record(
                &mut recorder,
                &[update(&id, at, json!({"temperature": at}))],
            )
            .await;
            if at % 3 == 0 {
                recorder.fold(1).await.unwrap();
            }
            tokio::task::yield_now().await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.await.unwrap() > 0);
        }
        assert_eq!(values(&raw(&reader, &id).await).len(), 40);
    }

    #[tokio::test]
    async fn cluster_nodes_on_one_sqlite_file_read_each_others_points_once() {
        // Cluster mode runs on PostgreSQL (tests/history/cluster.rs); the same schema and
        // its SQLite statements are checked here.
        let (_dir, store, ids) = store_with_devices("03", 1).await;
        let node = |id: &str| Recorder::load_as(store.clone(), true, Some(Arc::from(id)));
        let (mut a, mut b) = (node("a").await.unwrap(), node("b").await.unwrap());
        let id = &ids[0];
        let at = Millis::now().0 + 60_000;
        let mut cache = StateCache::new();
        for (on_a, at) in [(true, at), (false, at + 1), (true, at + 2)] {
            let recorder = if on_a { &mut a } else { &mut b };
            let writes = [update(id, at, json!({"temperature": 1}))];
            let log = recorder.log();
            let applied = store
                .apply_state_to(&writes, &mut cache, log, StateLimits::NONE)
                .await
                .expect("batch");
            recorder.committed(&applied.history);
        }
        let times = async |reader: &Reader| -> Vec<i64> {
            values(&raw(reader, id).await)
                .iter()
                .map(|(t, _)| *t)
                .collect()
        };
        let all = vec![at, at + 1, at + 2];
        assert_eq!(times(&a.reader()).await, all);
        assert_eq!(times(&b.reader()).await, all);

        assert_eq!(a.fold(1).await.unwrap(), 2);
        assert_eq!(times(&b.reader()).await, all);
        // b dies; a survivor folds its log once.
        drop(b);
        assert_eq!(super::super::fold_node_log(&store, "b").await.unwrap(), 1);
        assert_eq!(super::super::fold_node_log(&store, "b").await.unwrap(), 0);
        assert_eq!(times(&a.reader()).await, all);
        assert_eq!(a.reader().count(id).await.unwrap(), 3);
    }
}
