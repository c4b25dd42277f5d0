//! The recent history in memory: every point committed to the history log since the last
//! fold, by partition (of deviceids, as in the log), device and field.
//!
//! The device writer appends a batch's points here once the batch is committed, and folds
//! a partition into chunks when enough have gathered in it; queries read the points of
//! their series from here and the rest from the chunks. A fold changes both at once for a
//! reader by a sequence number: odd while a fold commits, bumped again once its points
//! have left memory; a reader whose read spans a change reads again.

use super::{HistoryRow, RawPoint};
use crate::store::Millis;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// One device's recent points, by field, in the order they were committed.
pub(super) type DevicePoints = HashMap<String, Vec<RawPoint>>;

/// Partitions of the recent points and of the log: a fold takes one, so it holds the
/// device writer an eighth as long as a fold of all.
pub(super) const PARTS: usize = 8;

/// The partition of a deviceid: its last hex digit (deviceids are serial numbers), modulo
/// [`PARTS`].
pub(super) fn part_of(deviceid: &str) -> usize {
    let last = deviceid.bytes().last().unwrap_or(b'0');
    (last as char).to_digit(16).unwrap_or(0) as usize % PARTS
}

/// The recent points of one partition.
#[derive(Default)]
struct Part {
    devices: HashMap<String, DevicePoints>,
    points: usize,
}

#[derive(Default)]
struct Inner {
    parts: [Part; PARTS],
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
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in committed points.
    pub(super) fn add(&self, rows: &[HistoryRow]) {
        let mut inner = self.lock();
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
            let part = &mut inner.parts[part_of(&r.deviceid)];
            part.points += 1;
            // Looked up by reference first: keys are copied only for a new series.
            if let Some(series) = part
                .devices
                .get_mut(&r.deviceid)
                .and_then(|fields| fields.get_mut(&r.field))
            {
                series.push(point);
                continue;
            }
            part.devices
                .entry(r.deviceid.clone())
                .or_default()
                .insert(r.field.clone(), vec![point]);
        }
    }

    /// Points held.
    pub(super) fn len(&self) -> usize {
        self.lock().parts.iter().map(|p| p.points).sum()
    }

    /// The partition holding the most points, with their number.
    pub(super) fn fullest(&self) -> (usize, usize) {
        let inner = self.lock();
        (0..PARTS)
            .map(|i| (i, inner.parts[i].points))
            .max_by_key(|(_, n)| *n)
            .unwrap_or((0, 0))
    }

    /// Drops the points of devices just deleted, and takes no more of them until
    /// [`Recent::release`].
    pub(super) fn delete(&self, deviceids: &[String]) {
        let mut inner = self.lock();
        for id in deviceids {
            let part = &mut inner.parts[part_of(id)];
            if let Some(fields) = part.devices.remove(id) {
                part.points -= fields.values().map(Vec::len).sum::<usize>();
            }
            inner.deleted.insert(id.clone());
        }
    }

    /// The device writer has seen that `deviceid` was created or deleted: the batches it
    /// commits from now on hold only points of the device as it is now.
    pub(super) fn release(&self, deviceid: &str) {
        let mut inner = self.lock();
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
        let inner = self.lock();
        inner.parts[part_of(deviceid)]
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
        self.lock().parts[part_of(deviceid)]
            .devices
            .get(deviceid)
            .map_or(0, |fields| fields.values().map(Vec::len).sum())
    }

    /// Drops the points recorded before `cutoff`; how many went.
    pub(super) fn purge(&self, cutoff: Millis) -> usize {
        let mut inner = self.lock();
        let mut gone = 0;
        for part in &mut inner.parts {
            let mut left = 0;
            for fields in part.devices.values_mut() {
                for points in fields.values_mut() {
                    points.retain(|p| p.at >= cutoff);
                    left += points.len();
                }
            }
            gone += part.points - left;
            part.points = left;
        }
        gone
    }

    /// Runs `f` over the points of partition `part` by device (to write them as chunks).
    pub(super) fn with_part<T>(
        &self,
        part: usize,
        f: impl FnOnce(&HashMap<String, DevicePoints>) -> T,
    ) -> T {
        f(&self.lock().parts[part].devices)
    }

    /// A fold is about to commit: readers from now on wait for [`Recent::folded`].
    pub(super) fn folding(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
    }

    /// The fold of partition `part` committed (`true`: its points leave memory) or failed
    /// (they stay).
    ///
    /// The device writer folds between batches, so every batch committed before a
    /// deletion has been taken in by now: the deleted devices need no watch any longer
    /// (which also bounds their set).
    pub(super) fn folded(&self, part: usize, committed: bool) {
        {
            let mut inner = self.lock();
            if committed {
                inner.parts[part] = Part::default();
            }
            inner.deleted.clear();
        }
        self.seq.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_deviceids_spread_over_the_partitions() {
        let parts: Vec<usize> = (1..=16).map(|n| part_of(&format!("03{n:08x}"))).collect();
        assert_eq!(parts, [1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0]);
        assert_eq!(part_of(""), 0);
    }
}
