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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(deviceid: &str, field: &str, at: i64, value: f64) -> HistoryRow {
        HistoryRow {
            deviceid: deviceid.to_owned(),
            field: field.to_owned(),
            at: Millis(at),
            ts: None,
            value,
        }
    }

    fn point(at: i64, value: f64) -> RawPoint {
        RawPoint {
            at: Millis(at),
            ts: None,
            value,
        }
    }

    const ALL: (Millis, Millis) = (Millis(i64::MIN), Millis(i64::MAX));

    #[test]
    fn points_are_kept_by_series_in_the_order_they_were_committed() {
        let recent = Recent::default();
        let mut with_ts = row("d1", "temperature", 30, 21.5);
        with_ts.ts = Some(Millis(7));

        recent.add(&[
            with_ts,
            row("d1", "humidity", 20, 40.0),
            row("d2", "temperature", 50, 18.0),
        ]);
        recent.add(&[row("d1", "temperature", 10, 22.0)]);

        assert_eq!(recent.len(), 4);
        assert_eq!(
            recent.points("d1", "temperature", ALL),
            [
                RawPoint {
                    at: Millis(30),
                    ts: Some(Millis(7)),
                    value: 21.5
                },
                point(10, 22.0)
            ]
        );
        assert_eq!(recent.points("d1", "humidity", ALL), [point(20, 40.0)]);
        assert_eq!(recent.points("d2", "temperature", ALL), [point(50, 18.0)]);
        // The range is [from, to).
        assert_eq!(
            recent.points("d1", "temperature", (Millis(10), Millis(30))),
            [point(10, 22.0)]
        );
        assert!(recent.points("d2", "humidity", ALL).is_empty());
        assert!(recent.points("d3", "temperature", ALL).is_empty());
        assert_eq!(
            (recent.count("d1"), recent.count("d2"), recent.count("d3")),
            (3, 1, 0)
        );
    }

    #[test]
    fn deleted_devices_lose_their_points_and_take_no_more_until_released() {
        let recent = Recent::default();
        recent.add(&[
            row("d1", "temperature", 1, 1.0),
            row("d1", "humidity", 1, 2.0),
            row("d2", "temperature", 1, 3.0),
        ]);

        // d3 has no points yet; its deletion still holds back a batch committed before.
        recent.delete(&["d1".to_owned(), "d3".to_owned()]);
        assert_eq!((recent.len(), recent.count("d1")), (1, 0));
        assert!(recent.points("d1", "temperature", ALL).is_empty());

        recent.add(&[
            row("d1", "temperature", 2, 4.0),
            row("d2", "temperature", 2, 5.0),
            row("d3", "temperature", 2, 6.0),
        ]);
        assert_eq!(
            (recent.len(), recent.count("d1"), recent.count("d3")),
            (2, 0, 0)
        );
        assert_eq!(
            recent.points("d2", "temperature", ALL),
            [point(1, 3.0), point(2, 5.0)]
        );

        // Released one at a time: d3 stays held back.
        recent.release("d1");
        recent.add(&[
            row("d1", "temperature", 3, 7.0),
            row("d3", "temperature", 3, 8.0),
        ]);
        assert_eq!(
            (recent.len(), recent.count("d1"), recent.count("d3")),
            (3, 1, 0)
        );
        assert_eq!(recent.points("d1", "temperature", ALL), [point(3, 7.0)]);
    }

    #[test]
    fn a_committed_fold_empties_memory_and_ends_the_deletion_watch() {
        let recent = Recent::default();
        recent.add(&[
            row("d1", "temperature", 1, 1.0),
            row("d2", "temperature", 1, 2.0),
        ]);
        recent.delete(&["d2".to_owned()]);
        assert_eq!(recent.seq(), 0);

        recent.folding();
        assert_eq!(recent.seq(), 1);
        recent.folded(true);

        assert_eq!(recent.seq(), 2);
        assert_eq!(recent.len(), 0);
        assert_eq!(recent.count("d1"), 0);
        assert!(recent.points("d1", "temperature", ALL).is_empty());
        recent.with_all(|devices| assert!(devices.is_empty()));
        // Every batch committed before the deletion was taken in before the fold.
        recent.add(&[row("d2", "temperature", 2, 3.0)]);
        assert_eq!((recent.len(), recent.count("d2")), (1, 1));
    }

    #[test]
    fn a_failed_fold_keeps_the_points() {
        let recent = Recent::default();
        recent.add(&[
            row("d1", "temperature", 1, 1.0),
            row("d2", "temperature", 1, 2.0),
        ]);
        recent.delete(&["d2".to_owned()]);

        recent.folding();
        recent.folded(false);

        assert_eq!(recent.seq(), 2);
        assert_eq!(recent.len(), 1);
        assert_eq!(recent.points("d1", "temperature", ALL), [point(1, 1.0)]);
        recent.add(&[row("d2", "temperature", 2, 3.0)]);
        assert_eq!((recent.len(), recent.count("d2")), (2, 1));
    }

    #[test]
    fn a_purge_drops_only_the_points_before_the_cutoff() {
        let recent = Recent::default();
        recent.add(&[
            row("d1", "temperature", 5, 1.0),
            row("d1", "temperature", 10, 2.0),
            row("d2", "humidity", 9, 3.0),
        ]);

        assert_eq!(recent.purge(Millis(10)), 2);

        assert_eq!(recent.len(), 1);
        assert_eq!(recent.points("d1", "temperature", ALL), [point(10, 2.0)]);
        assert_eq!(recent.count("d2"), 0);
        assert_eq!(recent.purge(Millis(10)), 0);
    }
}
