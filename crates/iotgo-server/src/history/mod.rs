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
//! One server writes a database's history: the log and the recent points are its own.

mod reader;
mod recent;
mod recorder;

pub use reader::{Bucket, Reader, Series, SeriesPoint, Shape};
pub use recorder::Recorder;

/// Points in memory at which the device writer folds them into chunks: with a thousand
/// two-field devices, a fold gives each series a chunk of 64 points.
pub const FOLD_POINTS: usize = 131_072;
