//! The device writer: group commit of device state and presence.
//!
//! Handlers queue writes here; one task takes every write queued (while the previous
//! commit ran, or within an optional window), up to a full batch, applies them in one
//! transaction and then wakes every waiter. A device is
//! acked only after its write committed, so an acked update survives a crash, and a burst
//! of updates from many devices costs one commit instead of one each.
//!
//! A batch's history points go into the history log with it (one row); after a batch's
//! acks the task folds them into chunks once enough have gathered (`Store::fold_history`).
//!
//! The task owns the only writes of device params, so it keeps their committed values in
//! a [`StateCache`] and merges updates in memory. The Web API tells it when a device is
//! created, claimed or deleted ([`Writer::forget`]); forgotten devices are read again
//! from the store before the next batch touches them.
//!
//! At shutdown [`Writer::close`] stops new writes; the task commits and acks every write
//! already queued, then ends.

use crate::metrics::Metrics;
use crate::store::{FOLD_POINTS, StateCache, StateWrite, Store};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 512;
/// Writes queued before senders wait.
const QUEUE: usize = 8192;
/// Most devices whose params are cached; past it the cache starts over (a bound on
/// memory: the devices still active are read again, once each).
const MAX_CACHED: usize = 100_000;

struct Job {
    write: StateWrite,
    done: Option<oneshot::Sender<bool>>,
}

/// The handle handlers write through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// Devices whose cached params must be dropped before the next batch.
    stale: Arc<Mutex<Vec<String>>>,
    /// Told once, at shutdown.
    close: Arc<Notify>,
}

impl Writer {
    /// Starts the writer task over `store`, collecting writes for `window`; it counts its
    /// batches, commits and history folds in `metrics`.
    pub fn spawn(
        store: Store,
        window: Duration,
        metrics: Arc<Metrics>,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stale = Arc::new(Mutex::new(Vec::new()));
        let close = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            store,
            window,
            rx,
            stale.clone(),
            metrics,
            close.clone(),
        ));
        (Writer { tx, stale, close }, task)
    }

    /// Refuses further writes (they fail); the task commits what is queued, then ends.
    pub fn close(&self) {
        self.close.notify_one();
    }

    /// Writes queued and not yet taken into a batch.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Queues a write (waiting while the queue is full); the receiver resolves with true
    /// once the write is committed, false (or an error) when it failed.
    pub async fn submit(&self, write: StateWrite) -> oneshot::Receiver<bool> {
        let (done, wait) = oneshot::channel();
        let job = Job {
            write,
            done: Some(done),
        };
        // When the writer is gone the job, and with it `done`, is dropped: `wait` then
        // resolves with an error, which reads as a failed write.
        let _ = self.tx.send(job).await;
        wait
    }

    /// Queues a write and waits until it is committed; false when it failed.
    pub async fn commit(&self, write: StateWrite) -> bool {
        self.submit(write).await.await.unwrap_or(false)
    }

    /// Queues a write nobody waits for (last-seen times); dropped when the queue is full.
    pub fn record(&self, write: StateWrite) {
        let _ = self.tx.try_send(Job { write, done: None });
    }

    /// A device's row was created, claimed or deleted outside the writer: its cached
    /// params are dropped before the next batch.
    pub fn forget(&self, deviceid: &str) {
        self.stale.lock().push(deviceid.to_owned());
    }
}

async fn run(
    store: Store,
    window: Duration,
    mut rx: mpsc::Receiver<Job>,
    stale: Arc<Mutex<Vec<String>>>,
    metrics: Arc<Metrics>,
    close: Arc<Notify>,
) {
    let mut cache = StateCache::new();
    let mut writes: Vec<StateWrite> = Vec::with_capacity(MAX_BATCH);
    let mut waiters: Vec<oneshot::Sender<bool>> = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            job = rx.recv() => match job {
                Some(job) => job,
                // Closed and empty: every queued write was committed.
                None => break,
            },
            // What is queued stays receivable; new sends fail.
            () = close.notified() => {
                rx.close();
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + window;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            writes.push(job.write);
            waiters.extend(job.done);
            if writes.len() < MAX_BATCH {
                next = match rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(_) if window.is_zero() => None,
                    Err(_) => tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten(),
                };
            }
        }
        for id in stale.lock().drain(..) {
            cache.remove(&id);
            store.history_release(&id);
        }
        if cache.len() > MAX_CACHED {
            cache.clear();
        }
        let updates = writes
            .iter()
            .filter(|w| matches!(w, StateWrite::Merge { .. }))
            .count();
        metrics.commit_batch_size.record(writes.len() as f64);
        let start = Instant::now();
        let ok = match store.apply_state(&writes, &mut cache).await {
            Ok(points) => {
                metrics.updates_committed.increment(updates as u64);
                metrics.history_points.increment(points as u64);
                true
            }
            Err(e) => {
                metrics.commits_failed.increment(1);
                tracing::error!(error = ?e, writes = writes.len(), "device state write failed");
                false
            }
        };
        metrics.commit_seconds.record(start.elapsed().as_secs_f64());
        writes.clear();
        for done in waiters.drain(..) {
            let _ = done.send(ok);
        }
        // After the acks, so the batch that fills the recent history does not wait for it.
        let start = Instant::now();
        match store.fold_history(FOLD_POINTS).await {
            Ok(0) => {}
            Ok(_) => {
                metrics.history_folds.increment(1);
                metrics
                    .history_fold_seconds
                    .record(start.elapsed().as_secs_f64());
            }
            Err(e) => tracing::error!(error = ?e, "history fold failed"),
        }
    }
}
