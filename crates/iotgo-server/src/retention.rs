//! History retention: a background task deletes history older than
//! `history_retention_days`, in bounded chunks so the device writer never waits long; the
//! recent points in memory are the writer's, which drops the old ones when asked.

use crate::device::Writer;
use crate::store::{Millis, Store, StoreResult};
use std::time::Duration;

/// History chunks deleted or trimmed per transaction.
const CHUNKS: i64 = 256;
/// How often the sweep runs (the first run is at start-up).
const EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 24 * 3600 * 1000;

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

/// Runs [`sweep`] now and then every hour, forever; does nothing when `days` is 0.
pub async fn run(store: Store, writer: Writer, days: u32) {
    if days == 0 {
        return;
    }
    loop {
        match sweep(&store, &writer, days, Millis::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(points = n, "history retention: old points deleted"),
            Err(e) => tracing::error!(error = ?e, "history retention sweep failed"),
        }
        tokio::time::sleep(EVERY).await;
    }
}
