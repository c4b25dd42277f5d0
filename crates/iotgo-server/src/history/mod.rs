//! The history of device data, live: the recent points in memory, the fold that moves
//! them into chunks, and reads over both. The SQL underneath is the store's
//! (`store/history/`); the formats and the storage design: `docs/history.md`, "Storage".
//!
//! - The [`Recorder`] owns the recent points. The device writer's task holds it: it takes
//!   in each committed batch's points, folds them at [`FOLD_POINTS`], and is told of
//!   deleted devices and retention's cutoff through the writer's queue
//!   (`crate::device::Writer`), so nothing else can change the recent points.
//! - A [`Reader`] (cloneable, from [`Recorder::reader`]) reads a device's fields over a
//!   range as one [`Series`], raw or in buckets, for the history API.
//!
//! On a cluster (several nodes on one PostgreSQL database) each node records and folds
//! its own points (its log rows carry its node id) and reads see every node's: a survivor
//! folds a dead node's log with [`fold_node_log`]. `docs/history.md`, "On a cluster".

mod reader;
mod recent;
mod recorder;

pub use reader::{Bucket, Reader, Series, SeriesPoint, Shape};
pub use recorder::Recorder;

use crate::store::{Store, StoreResult};

/// Folds into chunks what cluster node `node` logged and did not fold (a node whose lease
/// ended: it died or was cut off; the survivor that marked it dead calls this). One
/// transaction; how many points became chunks. Safe when two survivors call it at once:
/// each log row is taken by exactly one. Points of devices deleted meanwhile, or from
/// before a device's creation, are left out.
///
/// Meant for a node that no longer records. A node still running (it stalled past its
/// lease) finds its log short at its next fold, writes nothing and reads back what is
/// left of its log; until then its own reads count the folded points twice, so a node
/// that learns it lost its lease should fold at once (`Writer::fold_history(1)`).
pub async fn fold_node_log(store: &Store, node: &str) -> StoreResult<u64> {
    store.fold_log(Some(node)).await
}

/// Points in memory at which the device writer folds them into chunks: with a thousand
/// two-field devices, a fold gives each series a chunk of 64 points.
pub const FOLD_POINTS: usize = 131_072;
