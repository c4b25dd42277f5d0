//! History retention: a background task deletes history older than
//! `history_retention_days`, in bounded chunks so the device writer never waits long; the
//! recent points in memory are the writer's, which drops the old ones when asked.
//!
//! The chunks are shared by a cluster's nodes: the sweep of them runs on the one node
//! holding the lease [`LEASE`] (`store.leases()`), renewed at every run; the others only
//! drop their own old recent points. On a single node the lease is always its own.

use crate::device::Writer;
use crate::store::{Millis, Store, StoreResult};
use std::sync::Arc;
use std::time::Duration;

/// History chunks deleted or trimmed per transaction.
const CHUNKS: i64 = 256;
/// How often the sweep runs (the first run is at start-up).
const EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 24 * 3600 * 1000;
/// The lease the sweep of the chunks runs under, once per cluster.
pub const LEASE: &str = "retention";
/// How long a claim of [`LEASE`] holds: past the next run, so its holder renews it, and
/// another node takes over within the hour after the holder died.
const LEASE_TTL: Duration = Duration::from_secs(2 * 3600);
/// The holder name of a single node.
const SINGLE: &str = "single";

/// Deletes the history recorded more than `days` days before `now`, in chunks through
/// `store` and in memory through `writer`; how many points went.
pub async fn sweep(store: &Store, writer: &Writer, days: u32, now: Millis) -> StoreResult<u64> {
    let cutoff = Millis(now.0 - i64::from(days) * DAY_MS);
    let mut total = 0;
    loop {
        let (n, done) = store.purge_history(cutoff, CHUNKS).await?;
        total += n;
        if done {
            break;
        }
        // Let queued device writes in between chunks.
        tokio::task::yield_now().await;
    }
    Ok(total + writer.purge_history(cutoff).await as u64)
}

/// One run of the task: [`sweep`] when `holder` holds (or takes) the lease [`LEASE`]; else
/// only this node's old recent points go. How many points went, and whether the sweep ran.
pub async fn run_once(
    store: &Store,
    writer: &Writer,
    days: u32,
    holder: &str,
    now: Millis,
) -> StoreResult<(u64, bool)> {
    if store.leases().claim(LEASE, holder, LEASE_TTL).await? {
        return Ok((sweep(store, writer, days, now).await?, true));
    }
    let cutoff = Millis(now.0 - i64::from(days) * DAY_MS);
    Ok((writer.purge_history(cutoff).await as u64, false))
}

/// Runs [`run_once`] now and then every hour, forever, as cluster node `node` (`None`: a
/// single node); does nothing when `days` is 0.
pub async fn run(store: Store, writer: Writer, days: u32, node: Option<Arc<str>>) {
    if days == 0 {
        return;
    }
    let holder = node.as_deref().unwrap_or(SINGLE);
    loop {
        match run_once(&store, &writer, days, holder, Millis::now()).await {
            Ok((0, _)) => {}
            Ok((n, _)) => tracing::info!(points = n, "history retention: old points deleted"),
            Err(e) => tracing::error!(error = ?e, "history retention sweep failed"),
        }
        tokio::time::sleep(EVERY).await;
    }
}
