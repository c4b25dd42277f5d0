//! The `leases` table: the one place to claim work that must run once per cluster
//! (history retention today; schedules and other periodic work later).
//!
//! A lease is a name held by one holder (a node id) until a time. [`Leases::claim`] takes
//! it in one statement: inserted when new, renewed when already ours, taken over when it
//! ended; otherwise refused. A holder runs the work while it holds the lease and claims
//! again (renews) before it ends; when the holder dies, another takes over once the lease
//! ran out. On a single node the same SQL always succeeds: there is one holder.
//!
//! Times are the claiming node's clock (epoch ms): the nodes of a cluster keep their
//! clocks in step (NTP); a skew shortens or lengthens a lease by as much.

use super::{Millis, StoreResult};
use sqlx::AnyPool;
use std::time::Duration;

/// Inserts, renews (ours) or takes over (ended) the lease `$1` for holder `$2` until `$3`;
/// `$4` is now. Both backends read `excluded` and `ON CONFLICT … DO UPDATE … WHERE` alike.
const CLAIM: &str = "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
     WHERE leases.until_ms < $4 OR leases.holder = excluded.holder";

/// The `leases` table.
pub struct Leases<'a> {
    pub(super) write: &'a AnyPool,
}

impl Leases<'_> {
    /// Claims the lease `name` for `holder` for `ttl` from now: true when `holder` holds
    /// it now (it was free, ended, or already `holder`'s and is renewed), false when
    /// another holder's lease still runs.
    pub async fn claim(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        self.claim_at(name, holder, ttl, Millis::now()).await
    }

    /// [`Leases::claim`] as if the time were `now` (tests of expiry).
    pub async fn claim_at(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: Millis,
    ) -> StoreResult<bool> {
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let done = sqlx::query(CLAIM)
            .bind(name)
            .bind(holder)
            .bind(now.0.saturating_add(ttl))
            .bind(now.0)
            .execute(self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease `name` up when `holder` holds it (a node stopping), so another
    /// takes it at once; whether it was `holder`'s.
    pub async fn release(&self, name: &str, holder: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Who holds the lease `name` and until when (epoch ms), ended or not.
    pub async fn holder(&self, name: &str) -> StoreResult<Option<(String, Millis)>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT holder, until_ms FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(self.write)
                .await?;
        Ok(row.map(|(holder, until)| (holder, Millis(until))))
    }
}
