//! The recent history in memory: every point committed to the history log since the last
//! fold, by device and field.
//!
//! The device writer appends a batch's points here once the batch is committed, and folds
//! them all into chunks when enough have gathered; queries read the points of their
//! series from here and the rest from the chunks. A fold changes both at once for a
//! reader by a sequence number: odd while a fold commits, bumped again once its points
//! have left memory; a reader whose read spans a change reads again.

use super::{HistoryRow, RawPoint};
use crate::store::Millis;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

/// One device's recent points, by field, in the order they were committed.
pub(super) type DevicePoints = HashMap<String, Vec<RawPoint>>;

#[derive(Default)]
struct Inner {
    devices: HashMap<String, DevicePoints>,
    points: usize,
    /// Devices deleted since the device writer last looked: points of a batch committed
    /// just before the deletion are not taken in after it.
    deleted: HashSet<String>,
}

/// The recent points and the fold sequence (see the module docs).
#[derive(Default)]
pub(in crate::store) struct Recent {
    seq: AtomicU64,
    inner: Mutex<Inner>,
}

impl Recent {
    /// Takes in committed points.
    pub(super) fn add(&self, rows: &[HistoryRow]) {
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        for r in rows {
            if inner.deleted.contains(&r.deviceid) {
                continue;
            }
            let point = RawPoint {
                at: r.at,
                ts: r.ts,
                value: r.value,
            };
            inner.points += 1;
            // Looked up by reference first: keys are copied only for a new series.
            if let Some(series) = inner
                .devices
                .get_mut(&r.deviceid)
                .and_then(|fields| fields.get_mut(&r.field))
            {
                series.push(point);
                continue;
            }
            inner
                .devices
                .entry(r.deviceid.clone())
                .or_default()
                .insert(r.field.clone(), vec![point]);
        }
    }

    /// Points held.
    pub(super) fn len(&self) -> usize {
        self.inner.lock().points
    }

    /// Drops the points of devices just deleted, and takes no more of them until
    /// [`Recent::release`].
    pub(super) fn delete(&self, deviceids: &[String]) {
        let mut inner = self.inner.lock();
        for id in deviceids {
            if let Some(fields) = inner.devices.remove(id) {
                inner.points -= fields.values().map(Vec::len).sum::<usize>();
            }
            inner.deleted.insert(id.clone());
        }
    }

    /// The device writer has seen that `deviceid` was created or deleted: the batches it
    /// commits from now on hold only points of the device as it is now.
    pub(super) fn release(&self, deviceid: &str) {
        let mut inner = self.inner.lock();
        if !inner.deleted.is_empty() {
            inner.deleted.remove(deviceid);
        }
    }

    /// The fold sequence number; odd while a fold commits.
    pub(super) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The points of one series in `[from, to)`, in the order they were committed.
    pub(super) fn points(
        &self,
        deviceid: &str,
        field: &str,
        (from, to): (Millis, Millis),
    ) -> Vec<RawPoint> {
        let inner = self.inner.lock();
        inner
            .devices
            .get(deviceid)
            .and_then(|fields| fields.get(field))
            .map(|points| {
                points
                    .iter()
                    .filter(|p| p.at >= from && p.at < to)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many points of `deviceid` are held.
    pub(super) fn count(&self, deviceid: &str) -> usize {
        self.inner
            .lock()
            .devices
            .get(deviceid)
            .map_or(0, |fields| fields.values().map(Vec::len).sum())
    }

    /// Drops the points recorded before `cutoff`; how many went.
    pub(super) fn purge(&self, cutoff: Millis) -> usize {
        let mut inner = self.inner.lock();
        let before = inner.points;
        let mut left = 0;
        for fields in inner.devices.values_mut() {
            for points in fields.values_mut() {
                points.retain(|p| p.at >= cutoff);
                left += points.len();
            }
        }
        inner.points = left;
        before - left
    }

    /// Runs `f` over every held point by device (to write them as chunks).
    pub(super) fn with_all<T>(&self, f: impl FnOnce(&HashMap<String, DevicePoints>) -> T) -> T {
        f(&self.inner.lock().devices)
    }

    /// A fold is about to commit: readers from now on wait for [`Recent::folded`].
    pub(super) fn folding(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
    }

    /// The fold committed (`true`: its points leave memory) or failed (they stay).
    ///
    /// The device writer folds between batches, so every batch committed before a
    /// deletion has been taken in by now: the deleted devices need no watch any longer
    /// (which also bounds their set).
    pub(super) fn folded(&self, committed: bool) {
        {
            let mut inner = self.inner.lock();
            if committed {
                inner.devices.clear();
                inner.points = 0;
            }
            inner.deleted.clear();
        }
        self.seq.fetch_add(1, Ordering::AcqRel);
    }
}
