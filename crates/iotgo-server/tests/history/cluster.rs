//! History on a cluster: nodes "a", "b" (and "c") on one fresh PostgreSQL database, each a
//! store, a recorder and a reader of its own, as separate servers would have. Every node
//! reads every node's points, before and after folds on any, each once; a dead node's log
//! is folded by a survivor exactly once; a restart keeps to its own log. Skipped, with a
//! note, when `IOTGO_TEST_DATABASE_URL` is unset. Leases and retention under its lease run
//! on either backend.

use crate::helpers::{TestDatabase, postgres_database, spawn_app_with};
use crate::{T0, device, owner, store_rows};
use iotgo_protocol::DeviceType;
use iotgo_server::history::{Reader, Recorder, SeriesPoint, Shape, fold_node_log};
use iotgo_server::retention;
use iotgo_server::store::{HistoryLog, Millis, StateCache, StateLimits, StateWrite, Store};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const OWNER: &str = "00000000-0000-4000-8000-000000000001";
const ALL: (Millis, Millis) = (Millis(0), Millis(i64::MAX));

/// One node: its own store (pool), recorder and reader.
struct Node {
    store: Store,
    recorder: Recorder,
    reader: Reader,
    cache: StateCache,
}

impl Node {
    async fn start(url: &str, id: &str) -> Node {
        let store = Store::connect(url).await.expect("a store");
        let recorder = Recorder::load_as(store.clone(), true, Some(Arc::from(id)))
            .await
            .expect("a recorder");
        let reader = recorder.reader();
        Node {
            store,
            recorder,
            reader,
            cache: StateCache::new(),
        }
    }

    /// Commits a temperature update of `deviceid` at `at` as the device writer does.
    async fn record(&mut self, deviceid: &str, at: i64) {
        let write = StateWrite::Merge {
            deviceid: deviceid.to_owned(),
            params: json!({"temperature": at % 1000})
                .as_object()
                .unwrap()
                .clone(),
            at: Millis(at),
            seen: true,
        };
        let log = self.recorder.log();
        let applied = self
            .store
            .apply_state_to(&[write], &mut self.cache, log, StateLimits::NONE)
            .await
            .expect("a batch");
        self.recorder.committed(&applied.history);
    }

    async fn fold(&mut self) -> u64 {
        self.recorder.fold(1).await.expect("a fold")
    }
}

/// A fresh database with one user and one type-03 device, or `None` (with a note) when
/// no PostgreSQL is configured.
async fn cluster_database() -> Option<(TestDatabase, String, String)> {
    let Some((db, url)) = postgres_database().await else {
        eprintln!("note: cluster history tests skipped: IOTGO_TEST_DATABASE_URL is unset");
        return None;
    };
    let store = Store::connect(&url).await.expect("a store");
    store
        .users()
        .create("o@example.com", OWNER, "x", true)
        .await
        .expect("a user");
    let ty = DeviceType::parse("03").unwrap();
    let device = store.devices().create(OWNER, "th", "", ty).await.unwrap();
    Some((db, url, device.deviceid))
}

/// The times of the raw points `reader` sees of `deviceid`.
async fn times(reader: &Reader, deviceid: &str) -> Vec<i64> {
    let fields = ["temperature".to_owned()];
    let series = reader
        .series(deviceid, &fields, ALL, Shape::Raw { cap: 10_000 })
        .await
        .expect("a read");
    series
        .points
        .iter()
        .map(|p| match p {
            SeriesPoint::Raw { at, .. } => at.0,
            SeriesPoint::Bucket { .. } => panic!("raw points asked"),
        })
        .collect()
}

/// The point count of the one bucket over everything.
async fn bucket_count(reader: &Reader, deviceid: &str) -> i64 {
    let fields = ["temperature".to_owned()];
    let shape = Shape::Buckets { width: i64::MAX };
    let series = reader.series(deviceid, &fields, ALL, shape).await.unwrap();
    match series.points.as_slice() {
        [] => 0,
        [SeriesPoint::Bucket { values, .. }] => values[0].map_or(0, |b| b.count),
        other => panic!("one bucket expected: {other:?}"),
    }
}

/// Asserts that every reader sees exactly the points `expected` of `deviceid`.
async fn all_see(readers: &[&Reader], deviceid: &str, expected: &[i64]) {
    for reader in readers {
        assert_eq!(times(reader, deviceid).await, expected);
        assert_eq!(reader.count(deviceid).await.unwrap(), expected.len() as i64);
        assert_eq!(bucket_count(reader, deviceid).await, expected.len() as i64);
    }
}

/// Rows in the log of `node` (one per device per batch).
async fn logged(url: &str, node: &str) -> i64 {
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let rows = sqlx::query_scalar("SELECT COUNT(*) FROM device_history_log WHERE node = $1")
        .bind(node)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn every_node_reads_every_nodes_points_before_and_after_folds() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let (mut a, mut b) = (Node::start(&url, "a").await, Node::start(&url, "b").await);
    let base = Millis::now().0 + 60_000;
    let all: Vec<i64> = (0..6).map(|i| base + i).collect();
    for &at in &all[..3] {
        a.record(&id, at).await;
    }
    for &at in &all[3..] {
        b.record(&id, at).await;
    }
    all_see(&[&a.reader, &b.reader], &id, &all).await;

    assert_eq!(a.fold().await, 3);
    all_see(&[&a.reader, &b.reader], &id, &all).await;
    // Later points of a, recent again, with b's still in its log.
    a.record(&id, base + 6).await;
    let all: Vec<i64> = (0..7).map(|i| base + i).collect();
    all_see(&[&a.reader, &b.reader], &id, &all).await;

    assert_eq!(b.fold().await, 3);
    assert_eq!(a.fold().await, 1);
    all_see(&[&a.reader, &b.reader], &id, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_folds_on_either_node_see_each_point_once() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let (mut a, mut b) = (Node::start(&url, "a").await, Node::start(&url, "b").await);
    let base = Millis::now().0 + 60_000;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [a.reader.clone(), b.reader.clone()]
        .into_iter()
        .map(|reader| {
            let (id, stop) = (id.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                let mut seen: HashSet<i64> = HashSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let times = times(&reader, &id).await;
                    let now: HashSet<i64> = times.iter().copied().collect();
                    // Each point once, in order; none seen before goes missing.
                    assert_eq!(now.len(), times.len(), "a point twice: {times:?}");
                    assert!(times.is_sorted());
                    assert!(seen.is_subset(&now), "a point lost: {seen:?} {now:?}");
                    let count = reader.count(&id).await.unwrap();
                    assert!(count >= times.len() as i64);
                    seen = now;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..40 {
        let node = if i % 2 == 0 { &mut a } else { &mut b };
        node.record(&id, base + i).await;
        if i % 3 == 0 {
            node.fold().await;
        }
        if i % 7 == 0 {
            let other = if i % 2 == 0 { &mut b } else { &mut a };
            other.fold().await;
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    let all: Vec<i64> = (0..40).map(|i| base + i).collect();
    all_see(&[&a.reader, &b.reader], &id, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_log_is_folded_once_by_survivors_racing() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let mut a = Node::start(&url, "a").await;
    let (b, c) = (Node::start(&url, "b").await, Node::start(&url, "c").await);
    let base = Millis::now().0 + 60_000;
    let all: Vec<i64> = (0..50).map(|i| base + i).collect();
    for &at in &all {
        a.record(&id, at).await;
    }
    all_see(&[&b.reader, &c.reader], &id, &all).await;
    // "a" dies: dropped without a fold, its log left behind.
    drop(a);

    let (by_b, by_c) = tokio::join!(fold_node_log(&b.store, "a"), fold_node_log(&c.store, "a"));
    let (by_b, by_c) = (by_b.unwrap(), by_c.unwrap());
    assert_eq!(by_b + by_c, 50, "each point folded once: {by_b} + {by_c}");
    assert_eq!(fold_node_log(&b.store, "a").await.unwrap(), 0);
    assert_eq!(logged(&url, "a").await, 0);
    all_see(&[&b.reader, &c.reader], &id, &all).await;
}

#[tokio::test]
async fn a_node_taken_for_dead_while_running_counts_each_point_once() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let (mut a, b) = (Node::start(&url, "a").await, Node::start(&url, "b").await);
    let base = Millis::now().0 + 60_000;
    let all: Vec<i64> = (0..5).map(|i| base + i).collect();
    for &at in &all[..3] {
        a.record(&id, at).await;
    }
    // a stalled past its lease: b folds its log while a still holds the points.
    assert_eq!(fold_node_log(&b.store, "a").await.unwrap(), 3);
    for &at in &all[3..] {
        a.record(&id, at).await;
    }
    all_see(&[&b.reader], &id, &all).await;

    // a's fold finds its log short: nothing is written twice, and it keeps the rest (its
    // own reads are right from then on).
    assert_eq!(a.fold().await, 0);
    assert_eq!(a.recorder.held(), 2);
    all_see(&[&a.reader, &b.reader], &id, &all).await;
    assert_eq!(a.fold().await, 2);
    all_see(&[&a.reader, &b.reader], &id, &all).await;
}

#[tokio::test]
async fn a_restart_with_the_same_node_id_takes_only_its_own_log() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let (mut a, mut b) = (Node::start(&url, "a").await, Node::start(&url, "b").await);
    let base = Millis::now().0 + 60_000;
    let all: Vec<i64> = (0..6).map(|i| base + i).collect();
    for &at in &all[..3] {
        a.record(&id, at).await;
    }
    for &at in &all[3..] {
        b.record(&id, at).await;
    }
    drop(a);

    // "a" again: its earlier run's log becomes chunks; b's log and points stay b's.
    let a = Node::start(&url, "a").await;
    assert_eq!(a.recorder.held(), 0);
    assert_eq!(logged(&url, "a").await, 0);
    assert_eq!(logged(&url, "b").await, 3);
    assert_eq!(b.recorder.held(), 3);
    all_see(&[&a.reader, &b.reader], &id, &all).await;
    assert_eq!(b.fold().await, 3);
    all_see(&[&a.reader, &b.reader], &id, &all).await;
}

#[tokio::test]
async fn a_single_nodes_log_is_adopted_by_the_first_cluster_node() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    let at = Millis::now().0 + 60_000;
    let write = StateWrite::Merge {
        deviceid: id.clone(),
        params: json!({"temperature": 1}).as_object().unwrap().clone(),
        at: Millis(at),
        seen: true,
    };
    let mut cache = StateCache::new();
    let applied = store
        .apply_state_to(&[write], &mut cache, HistoryLog::Single, StateLimits::NONE)
        .await
        .unwrap();
    assert_eq!(applied.history.len(), 1);

    let (a, b) = (Node::start(&url, "a").await, Node::start(&url, "b").await);
    all_see(&[&a.reader, &b.reader], &id, &[at]).await;
}

#[tokio::test]
async fn a_deleted_and_reclaimed_device_shows_none_of_its_old_points_on_any_node() {
    let Some((_db, url, id)) = cluster_database().await else {
        return;
    };
    let (a, mut b) = (Node::start(&url, "a").await, Node::start(&url, "b").await);
    let old = Millis::now().0 + 60_000;
    b.record(&id, old).await;
    all_see(&[&a.reader, &b.reader], &id, &[old]).await;

    // Deleted on a (as its Web API does, one statement); b is not told and still holds
    // the point, in memory and in its log.
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM devices WHERE deviceid = $1")
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    all_see(&[&a.reader, &b.reader], &id, &[]).await;
    // Claimed again by someone (created after the old point).
    sqlx::query(
        "INSERT INTO devices (deviceid, apikey, name, type, created_at, device_key) \
         VALUES ($1, $2, 'th', '03', $3, 'k')",
    )
    .bind(&id)
    .bind(OWNER)
    .bind(old + 1)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    all_see(&[&a.reader, &b.reader], &id, &[]).await;

    // b's fold leaves the old owner's point out; the new owner's are kept.
    b.record(&id, old + 2).await;
    all_see(&[&a.reader, &b.reader], &id, &[old + 2]).await;
    b.fold().await;
    all_see(&[&a.reader, &b.reader], &id, &[old + 2]).await;
}

#[tokio::test]
async fn a_lease_is_claimed_renewed_taken_over_once_ended_and_released() {
    let app = spawn_app_with(|c| c.history_retention_days = 0).await;
    let leases = app.state.store.leases();
    let ttl = Duration::from_secs(10);
    let t = Millis(T0);
    let at = |s: i64| Millis(t.0 + s * 1000);

    assert!(leases.claim_at("job", "a", ttl, at(0)).await.unwrap());
    assert!(!leases.claim_at("job", "b", ttl, at(5)).await.unwrap());
    // Renewed by its holder: b still waits past the first lease's end.
    assert!(leases.claim_at("job", "a", ttl, at(9)).await.unwrap());
    assert!(!leases.claim_at("job", "b", ttl, at(15)).await.unwrap());
    assert_eq!(
        leases.holder("job").await.unwrap(),
        Some(("a".to_owned(), at(19)))
    );
    // Ended: b takes over; a no longer holds it.
    assert!(leases.claim_at("job", "b", ttl, at(20)).await.unwrap());
    assert!(!leases.claim_at("job", "a", ttl, at(21)).await.unwrap());
    // Other names are other leases.
    assert!(leases.claim_at("other", "a", ttl, at(21)).await.unwrap());
    // Released: free at once.
    assert!(!leases.release("job", "a").await.unwrap());
    assert!(leases.release("job", "b").await.unwrap());
    assert!(leases.claim_at("job", "a", ttl, at(22)).await.unwrap());
    assert_eq!(leases.holder("none").await.unwrap(), None);
}

#[tokio::test]
async fn retention_sweeps_the_chunks_only_under_its_lease() {
    let app = spawn_app_with(|c| c.history_retention_days = 0).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    store_rows(
        &app,
        &th,
        &[("temperature", 0, 1.0), ("temperature", 1, 2.0)],
    )
    .await;
    let now = Millis(T0 + 10 * 86_400_000);
    let (store, writer) = (&app.state.store, app.state.devices.writer());
    let ttl = Duration::from_secs(3600);
    assert!(
        store
            .leases()
            .claim(retention::LEASE, "b", ttl)
            .await
            .unwrap()
    );

    // Node a does not hold the lease: the chunks stay.
    let ran = retention::run_once(store, writer, 1, "a", now)
        .await
        .unwrap();
    assert_eq!(ran, (0, false));
    assert_eq!(app.state.history.count(&th).await.unwrap(), 2);

    // Its holder sweeps; once it gave it up, a takes it and sweeps.
    store_rows(&app, &th, &[("temperature", 2, 3.0)]).await;
    let ran = retention::run_once(store, writer, 1, "b", now)
        .await
        .unwrap();
    assert_eq!(ran, (3, true));
    store_rows(&app, &th, &[("temperature", 3, 4.0)]).await;
    assert!(store.leases().release(retention::LEASE, "b").await.unwrap());
    let ran = retention::run_once(store, writer, 1, "a", now)
        .await
        .unwrap();
    assert_eq!(ran, (1, true));
    assert_eq!(app.state.history.count(&th).await.unwrap(), 0);
}
