//! The `nodes` table: the nodes of a cluster and their leases (cluster mode only).
//!
//! Lease times are the database's clock (`clock_timestamp()`), so the nodes' own clocks
//! may differ. A node renews its lease; a node whose lease ended is dead, and the first
//! survivor to see it ([`Nodes::bury`]) deletes its row and marks its devices offline in
//! one transaction, so exactly one survivor does it and tells the apps.

use super::{Millis, StoreResult};
use sqlx::AnyPool;
use std::time::Duration;

/// Now, in milliseconds, by the database's clock (a macro, so that the SQL below stays
/// constant text).
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// Takes the lease of a node id whose last holder's lease ended (that run died).
const TAKE: &str = concat!(
    "UPDATE nodes SET lease_until = ",
    now_ms!(),
    " + $2, started_at = $3 WHERE node_id = $1 AND lease_until < ",
    now_ms!()
);
/// Takes the lease of a node id that nobody holds.
const FIRST: &str = concat!(
    "INSERT INTO nodes (node_id, lease_until, started_at) VALUES ($1, ",
    now_ms!(),
    " + $2, $3) ON CONFLICT (node_id) DO NOTHING"
);
/// A live lease of a node id: until when, and how long from now.
const HELD: &str = concat!(
    "SELECT lease_until, lease_until - ",
    now_ms!(),
    " FROM nodes WHERE node_id = $1"
);
/// Renews the lease of this run of the node (`started_at`), so that a run whose lease was
/// taken over learns it.
const RENEW: &str = concat!(
    "UPDATE nodes SET lease_until = ",
    now_ms!(),
    " + $2 WHERE node_id = $1 AND started_at = $3"
);
const EXPIRED: &str = concat!("SELECT node_id FROM nodes WHERE lease_until < ", now_ms!());
const BURY: &str = concat!(
    "DELETE FROM nodes WHERE node_id = $1 AND lease_until < ",
    now_ms!()
);

/// The devices a node held when it stopped or died, now offline: (deviceid, owner's
/// apikey) each.
pub type Buried = Vec<(String, String)>;

/// What [`Nodes::join`] found.
#[derive(Debug)]
pub enum Join {
    /// The lease is this run's.
    Joined(Buried),
    /// A live run holds the lease of this node id until `until` (ms, the database's clock),
    /// `left` from now.
    Held {
        /// When its lease ends unless renewed.
        until: i64,
        /// How long that is from now.
        left: Duration,
    },
}

/// The `nodes` table.
#[derive(Clone, Copy)]
pub struct Nodes<'a> {
    pub(super) write: &'a AnyPool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Nodes<'_> {
    /// The run of node `node` that started at `run` takes the lease for `lease` unless a
    /// live run holds it: what an earlier run of the same node left online goes offline at
    /// `run` (its sockets died with it).
    pub async fn join(&self, node: &str, lease: Duration, run: Millis) -> StoreResult<Join> {
        let mut tx = self.write.begin().await?;
        let mut took = false;
        for sql in [TAKE, FIRST] {
            let done = sqlx::query(sql)
                .bind(node)
                .bind(ms(lease))
                .bind(run.0)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 1 {
                took = true;
                break;
            }
        }
        if !took {
            let held: Option<(i64, i64)> = sqlx::query_as(HELD)
                .bind(node)
                .fetch_optional(&mut *tx)
                .await?;
            // Gone between the statements (a survivor buried it): free now.
            let (until, left) = held.unwrap_or((0, 0));
            let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
            return Ok(Join::Held { until, left });
        }
        let buried = offline_of(&mut tx, node, run).await?;
        tx.commit().await?;
        Ok(Join::Joined(buried))
    }

    /// Renews the lease of the run of `node` that started at `run`; false when it has none
    /// any more (another node found it dead and buried it, or another run took it).
    pub async fn renew(&self, node: &str, run: Millis, lease: Duration) -> StoreResult<bool> {
        let done = sqlx::query(RENEW)
            .bind(node)
            .bind(ms(lease))
            .bind(run.0)
            .execute(self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The nodes whose lease ended.
    pub async fn expired(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(EXPIRED).fetch_all(self.write).await?)
    }

    /// Buries the dead node `node` if its lease is still over: its row goes and its devices
    /// go offline at `at`, in one transaction. `None` when another survivor buried it
    /// first, or it renewed meanwhile.
    pub async fn bury(&self, node: &str, at: Millis) -> StoreResult<Option<Buried>> {
        let mut tx = self.write.begin().await?;
        let gone = sqlx::query(BURY).bind(node).execute(&mut *tx).await?;
        if gone.rows_affected() == 0 {
            return Ok(None);
        }
        let buried = offline_of(&mut tx, node, at).await?;
        tx.commit().await?;
        Ok(Some(buried))
    }

    /// Node `node` leaves the cluster (a clean shutdown): its row goes, and the devices
    /// it still holds go offline at `at`.
    pub async fn leave(&self, node: &str, at: Millis) -> StoreResult<Buried> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        let buried = offline_of(&mut tx, node, at).await?;
        tx.commit().await?;
        Ok(buried)
    }

    /// The cluster's shared value `name`, if it was made.
    pub async fn shared(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM cluster_shared WHERE name = $1")
                .bind(name)
                .fetch_optional(self.write)
                .await?,
        )
    }

    /// The cluster's shared value `name`, made `value` by the first node that asks (two
    /// nodes asking at once get the same one).
    pub async fn share(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO cluster_shared (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(self.write)
        .await?;
        Ok(self.shared(name).await?.unwrap_or_else(|| value.to_owned()))
    }

    /// Adds one to the shared counter `name` (0 until first bumped); its new value.
    pub async fn bump(&self, name: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO cluster_shared (name, value) VALUES ($1, '1') \
             ON CONFLICT (name) DO UPDATE \
             SET value = CAST(CAST(cluster_shared.value AS BIGINT) + 1 AS TEXT) \
             RETURNING CAST(value AS BIGINT)",
        )
        .bind(name)
        .fetch_one(self.write)
        .await?)
    }

    /// The node that holds `deviceid` while it is online.
    pub async fn holder(&self, deviceid: &str) -> StoreResult<Option<String>> {
        let node: Option<Option<String>> =
            sqlx::query_scalar("SELECT node FROM devices WHERE deviceid = $1 AND online <> 0")
                .bind(deviceid)
                .fetch_optional(self.write)
                .await?;
        Ok(node.flatten())
    }
}

/// Marks offline at `at` the devices `node` holds; they are answered.
async fn offline_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    node: &str,
    at: Millis,
) -> StoreResult<Buried> {
    Ok(sqlx::query_as(
        "UPDATE devices SET online = 0, node = NULL, last_disconnected_at = $2 \
         WHERE node = $1 RETURNING deviceid, apikey",
    )
    .bind(node)
    .bind(at.0)
    .fetch_all(&mut **tx)
    .await?)
}
