//! The device writer: group commit of device state and presence.
//!
//! Handlers queue writes here; one task collects them for a short window (or until a batch
//! is full), applies them in one transaction and then wakes every waiter. A device is
//! acked only after its write committed, so an acked update survives a crash, and a burst
//! of updates from many devices costs one commit instead of one each.

use crate::store::{StateWrite, Store};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most writes applied in one transaction.
const MAX_BATCH: usize = 512;
/// Writes queued before senders wait.
const QUEUE: usize = 8192;

struct Job {
    write: StateWrite,
    done: Option<oneshot::Sender<bool>>,
}

/// The handle handlers write through; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task over `store`, collecting writes for `window`.
    pub fn spawn(store: Store, window: Duration) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Writer { tx }, tokio::spawn(run(store, window, rx)))
    }

    /// Queues a write and waits until it is committed; false when it failed.
    pub async fn commit(&self, write: StateWrite) -> bool {
        let (done, wait) = oneshot::channel();
        let job = Job {
            write,
            done: Some(done),
        };
        if self.tx.send(job).await.is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }

    /// Queues a write nobody waits for (last-seen times); dropped when the queue is full.
    pub fn record(&self, write: StateWrite) {
        let _ = self.tx.try_send(Job { write, done: None });
    }
}

async fn run(store: Store, window: Duration, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => batch.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        let writes: Vec<StateWrite> = batch.iter().map(|j| j.write.clone()).collect();
        let ok = match store.apply_state(&writes).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = ?e, writes = writes.len(), "device state write failed");
                false
            }
        };
        for job in batch.drain(..) {
            if let Some(done) = job.done {
                let _ = done.send(ok);
            }
        }
    }
}
