//! The device writer: group commit of device state and presence, and the one owner of the
//! history's recent points.
//!
//! Handlers queue writes here; one task takes every write queued (while the previous
//! commit ran, or within an optional window), up to a full batch ([`Collector`]), applies
//! them in one transaction and then wakes every waiter ([`Committer`]). A device is
//! acked only after its write committed, so an acked update survives a crash, and a burst
//! of updates from many devices costs one commit instead of one each.
//!
//! A batch's history points go into the history log with it (one row) and then into the
//! [`Recorder`] the task owns; after a batch's acks the recorder folds them into chunks
//! once enough have gathered. Whatever else changes the recent points is an order queued
//! behind the writes ([`Writer::deleted`], [`Writer::purge_history`],
//! [`Writer::fold_history`]): it runs between batches, so it never races one.
//!
//! The task owns the only writes of device params, so it keeps their committed values in
//! a [`StateCache`] and merges updates in memory. The Web API tells it when a device is
//! created, claimed or deleted ([`Writer::forget`]); forgotten devices are read again
//! from the store before the next batch touches them.
//! As it merges, it bounds each device's stored params ([`StateLimits`]): an update that
//! would take them past a bound is refused ([`Written::TooLarge`], nothing of it written)
//! and the rest of its batch commits.
//!
//! At shutdown [`Writer::close`] stops new writes; the task commits and acks every write
//! already queued, folds the recent history into chunks (the next start then has no log
//! to read back), then ends.

use crate::history::Recorder;
use crate::metrics::Metrics;
use crate::store::{Millis, StateCache, StateLimits, StateWrite, Store, StoreResult};
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

/// What became of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// It is committed.
    Committed,
    /// An update refused by the bounds on a device's stored params ([`StateLimits`]):
    /// nothing of it was written; the rest of its batch was.
    TooLarge,
    /// Its batch failed (or the writer is gone): nothing of it was written.
    Failed,
}

/// Who waits for a write.
enum Waiter {
    /// Told whether it committed ([`Writer::submit`]).
    Committed(oneshot::Sender<bool>),
    /// Told what became of it ([`Writer::submit_update`]).
    Written(oneshot::Sender<Written>),
}

impl Waiter {
    fn send(self, written: Written) {
        // A waiter that went away has nothing left to be told.
        let _ = match self {
            Waiter::Committed(done) => done.send(written == Written::Committed).is_ok(),
            Waiter::Written(done) => done.send(written).is_ok(),
        };
    }
}

/// What the task's queue carries.
enum Job {
    /// A write, with its waiter (none for last-seen times).
    Write {
        write: StateWrite,
        done: Option<Waiter>,
    },
    /// Work on the recent history, run after the writes queued before it.
    Order(Order),
}

/// Work on the recent history, each answered once done.
enum Order {
    /// Devices were deleted (committed): their recent points go.
    Deleted {
        deviceids: Vec<String>,
        done: oneshot::Sender<()>,
    },
    /// Retention: the recent points before `cutoff` go; how many.
    Purge {
        cutoff: Millis,
        done: oneshot::Sender<usize>,
    },
    /// A fold now, when at least `min_points` are held; how many points moved.
    Fold {
        min_points: usize,
        done: oneshot::Sender<StoreResult<u64>>,
    },
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
    /// Starts the writer task over `store`, collecting writes for `window`, with
    /// `recorder` (the history's recent points, from now on the task's alone), refusing
    /// updates that would take a device's params past `limits`; it counts its batches,
    /// commits and history folds in `metrics`.
    pub fn spawn(
        store: Store,
        recorder: Recorder,
        window: Duration,
        limits: StateLimits,
        metrics: Arc<Metrics>,
    ) -> (Writer, JoinHandle<()>) {
        let (collector, tx, close) = Collector::new(window);
        let stale = Arc::new(Mutex::new(Vec::new()));
        let committer = Committer {
            store,
            recorder,
            cache: StateCache::new(),
            limits,
            stale: stale.clone(),
            metrics,
        };
        let task = tokio::spawn(run(collector, committer));
        (Writer { tx, stale, close }, task)
    }

    /// Refuses further writes (they fail); the task commits what is queued, folds the
    /// recent history, then ends.
    pub fn close(&self) {
        self.close.notify_one();
    }

    /// Writes queued and not yet taken into a batch.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Queues a write (waiting while the queue is full); the receiver resolves with true
    /// once the write is committed, false (or an error) when it was not.
    pub async fn submit(&self, write: StateWrite) -> oneshot::Receiver<bool> {
        let (done, wait) = oneshot::channel();
        self.queue(write, Waiter::Committed(done)).await;
        wait
    }

    /// Queues a device's update like [`Writer::submit`]; the receiver resolves with what
    /// became of it once its batch ended (an error: it failed): an update that would take
    /// the device's params past the bounds is refused.
    pub async fn submit_update(&self, write: StateWrite) -> oneshot::Receiver<Written> {
        let (done, wait) = oneshot::channel();
        self.queue(write, Waiter::Written(done)).await;
        wait
    }

    async fn queue(&self, write: StateWrite, done: Waiter) {
        let job = Job::Write {
            write,
            done: Some(done),
        };
        // When the writer is gone the job, and with it `done`, is dropped: the waiter
        // then gets an error, which reads as a failed write.
        let _ = self.tx.send(job).await;
    }

    /// Queues a write and waits until its batch ended; whether it was committed.
    pub async fn commit(&self, write: StateWrite) -> bool {
        self.submit(write).await.await.unwrap_or(false)
    }

    /// Queues a write nobody waits for (last-seen times); dropped when the queue is full.
    pub fn record(&self, write: StateWrite) {
        let _ = self.tx.try_send(Job::Write { write, done: None });
    }

    /// A device's row was created, claimed or deleted outside the writer: its cached
    /// params are dropped before the next batch.
    pub fn forget(&self, deviceid: &str) {
        self.stale.lock().push(deviceid.to_owned());
    }

    /// Devices were deleted (committed): resolves once their recent history points are
    /// gone. Every batch committed before the deletion has been taken in by then, and
    /// every later one finds no such device, so none of their points comes back.
    pub async fn deleted(&self, deviceids: &[String]) {
        let deviceids = deviceids.to_vec();
        self.order(|done| Order::Deleted { deviceids, done }).await;
    }

    /// Drops the recent history points recorded before `cutoff` (retention); how many
    /// went (none once the writer has ended).
    pub async fn purge_history(&self, cutoff: Millis) -> usize {
        let purged = self.order(|done| Order::Purge { cutoff, done }).await;
        purged.unwrap_or(0)
    }

    /// Folds the recent history into chunks now when at least `min_points` are held; how
    /// many points moved (none once the writer has ended: it folds as it ends).
    pub async fn fold_history(&self, min_points: usize) -> StoreResult<u64> {
        let folded = self.order(|done| Order::Fold { min_points, done }).await;
        folded.unwrap_or(Ok(0))
    }

    /// Queues an order behind the writes queued so far and waits for its answer; `None`
    /// when the writer has ended.
    async fn order<T>(&self, order: impl FnOnce(oneshot::Sender<T>) -> Order) -> Option<T> {
        let (done, answer) = oneshot::channel();
        self.tx.send(Job::Order(order(done))).await.ok()?;
        answer.await.ok()
    }
}

/// The writer task: a batch collected, then applied, until the queue is closed and
/// empty; after a close, a last fold.
async fn run(mut collector: Collector, mut committer: Committer) {
    let mut batch = Batch::default();
    while collector.collect(&mut batch).await {
        committer.apply(&mut batch).await;
    }
    // Only at a shutdown: a writer whose handles were dropped (a crash, in tests) leaves
    // the log as it is.
    if collector.closing {
        match committer.fold(1).await {
            Ok(0) => {}
            Ok(points) => tracing::info!(points, "recent history folded into chunks"),
            Err(e) => tracing::error!(error = ?e, "history fold at shutdown failed"),
        }
    }
}

/// What one round of the task applies. Its vectors keep their room from round to round.
#[derive(Default)]
struct Batch {
    writes: Vec<StateWrite>,
    /// The waiters, with the index of their write in `writes`.
    waiters: Vec<(usize, Waiter)>,
    /// An order queued after the writes: run once they are committed.
    order: Option<Order>,
}

/// The receiving end of the queue: takes writes into batches.
struct Collector {
    rx: mpsc::Receiver<Job>,
    close: Arc<Notify>,
    /// How long a batch waits for more writes after its first (zero: only what is queued).
    window: Duration,
    /// [`Writer::close`] was called: the queue takes nothing new.
    closing: bool,
}

impl Collector {
    /// A queue end collecting for `window`, the queue's sending side and the close signal.
    fn new(window: Duration) -> (Collector, mpsc::Sender<Job>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let close = Arc::new(Notify::new());
        let collector = Collector {
            rx,
            close: close.clone(),
            window,
            closing: false,
        };
        (collector, tx, close)
    }

    /// Waits for the next job, then takes into `batch` every write queued after it (and
    /// those that come within the window), up to [`MAX_BATCH`]; an order ends the batch.
    /// False once the queue is closed and empty: every queued write has been taken.
    async fn collect(&mut self, batch: &mut Batch) -> bool {
        let first = loop {
            tokio::select! {
                job = self.rx.recv() => match job {
                    Some(job) => break job,
                    None => return false,
                },
                // What is queued stays receivable; new sends fail.
                () = self.close.notified(), if !self.closing => {
                    self.closing = true;
                    self.rx.close();
                }
            }
        };
        let deadline = tokio::time::Instant::now() + self.window;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write { write, done } => {
                    let index = batch.writes.len();
                    batch.writes.push(write);
                    batch.waiters.extend(done.map(|done| (index, done)));
                }
                Job::Order(order) => {
                    batch.order = Some(order);
                    break;
                }
            }
            if batch.writes.len() < MAX_BATCH {
                next = match self.rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(_) if self.window.is_zero() => None,
                    Err(_) => tokio::time::timeout_at(deadline, self.rx.recv())
                        .await
                        .ok()
                        .flatten(),
                };
            }
        }
        true
    }
}

/// What the task applies batches with: the store, the params cache and the recorder.
struct Committer {
    store: Store,
    recorder: Recorder,
    cache: StateCache,
    /// Bounds on a device's stored params.
    limits: StateLimits,
    stale: Arc<Mutex<Vec<String>>>,
    metrics: Arc<Metrics>,
}

impl Committer {
    /// Commits the batch's writes, takes in their history points and acks them; then,
    /// with the acks out, folds when enough points are held, and runs the batch's order.
    async fn apply(&mut self, batch: &mut Batch) {
        if !batch.writes.is_empty() {
            let refused = self.commit(&batch.writes).await;
            batch.writes.clear();
            for (index, done) in batch.waiters.drain(..) {
                let written = match &refused {
                    None => Written::Failed,
                    // Sorted: the writes' indexes in order.
                    Some(refused) if refused.binary_search(&index).is_ok() => Written::TooLarge,
                    Some(_) => Written::Committed,
                };
                done.send(written);
            }
            // After the acks, so the batch that fills the recent history does not wait.
            if let Err(e) = self.fold(crate::history::FOLD_POINTS).await {
                tracing::error!(error = ?e, "history fold failed");
            }
        }
        match batch.order.take() {
            None => {}
            Some(Order::Deleted { deviceids, done }) => {
                self.recorder.delete(&deviceids);
                let _ = done.send(());
            }
            Some(Order::Purge { cutoff, done }) => {
                let _ = done.send(self.recorder.purge(cutoff));
            }
            Some(Order::Fold { min_points, done }) => {
                let _ = done.send(self.fold(min_points).await);
            }
        }
    }

    /// Applies `writes` in one transaction: once committed, the indexes of the updates
    /// refused by the bounds (in order); `None` when the batch failed.
    async fn commit(&mut self, writes: &[StateWrite]) -> Option<Vec<usize>> {
        for id in self.stale.lock().drain(..) {
            self.cache.remove(&id);
        }
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        }
        let metrics = &self.metrics;
        let updates = writes
            .iter()
            .filter(|w| matches!(w, StateWrite::Merge { .. }))
            .count();
        metrics.commit_batch_size.record(writes.len() as f64);
        let start = Instant::now();
        let log = self.recorder.log();
        let refused = match self
            .store
            .apply_state_to(writes, &mut self.cache, log, self.limits)
            .await
        {
            Ok(applied) => {
                self.recorder.committed(&applied.history);
                let refused = applied.refused.iter();
                let refused = refused.filter(|&&i| matches!(writes[i], StateWrite::Merge { .. }));
                let committed = updates - refused.count();
                metrics.updates_committed.increment(committed as u64);
                metrics
                    .history_points
                    .increment(applied.history.len() as u64);
                Some(applied.refused)
            }
            Err(e) => {
                metrics.commits_failed.increment(1);
                tracing::error!(error = ?e, writes = writes.len(), "device state write failed");
                None
            }
        };
        metrics.commit_seconds.record(start.elapsed().as_secs_f64());
        refused
    }

    /// Folds the recent history when at least `min_points` are held, counting it.
    async fn fold(&mut self, min_points: usize) -> StoreResult<u64> {
        let start = Instant::now();
        let folded = self.recorder.fold(min_points).await?;
        if folded > 0 {
            self.metrics.history_folds.increment(1);
            self.metrics
                .history_fold_seconds
                .record(start.elapsed().as_secs_f64());
        }
        Ok(folded)
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
