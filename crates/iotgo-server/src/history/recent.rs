//! The recent points in memory: every point committed to the history log since the last
//! fold, by device and field, shared by the [`Recorder`](super::Recorder) (the only one
//! that changes them) and its [`Reader`](super::Reader)s.
//!
//! A fold changes both the chunks and the recent points, which a reader reads one after
//! the other. They meet through a fold sequence number in a `watch`: odd while a fold
//! commits, bumped again once its points have left memory. A reader waits (without
//! polling) until it is even, reads, and reads again when it changed meanwhile; so it
//! sees each point once, either still recent or already in a chunk. The writer never
//! waits for a reader.

use crate::store::{HistoryRow, Millis, RawPoint};
use parking_lot::RwLock;
use std::collections::HashMap;
use tokio::sync::watch;

/// One device's recent points, by field, in the order they were committed.
pub(super) type DevicePoints = HashMap<String, Vec<RawPoint>>;

#[derive(Default)]
struct Inner {
    devices: HashMap<String, DevicePoints>,
    points: usize,
}

/// The recent points and the fold sequence (see the module docs).
pub(super) struct Recent {
    inner: RwLock<Inner>,
    seq: watch::Sender<u64>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            inner: RwLock::default(),
            seq: watch::Sender::new(0),
        }
    }
}

impl Recent {
    /// Takes in committed points.
    pub(super) fn add(&self, rows: &[HistoryRow]) {
        if rows.is_empty() {
            return;
        }
        let mut inner = self.inner.write();
        let inner = &mut *inner;
        for r in rows {
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

    /// Holds `rows` instead of every point held (a cluster node whose log another node
    /// folded, between [`Recent::folding`] and [`Recent::folded`]).
    pub(super) fn replace(&self, rows: &[HistoryRow]) {
        {
            let mut inner = self.inner.write();
            inner.devices.clear();
            inner.points = 0;
        }
        self.add(rows);
    }

    /// Points held.
    pub(super) fn len(&self) -> usize {
        self.inner.read().points
    }

    /// Drops the points of `deviceids`.
    pub(super) fn delete(&self, deviceids: &[String]) {
        let mut inner = self.inner.write();
        for id in deviceids {
            if let Some(fields) = inner.devices.remove(id) {
                inner.points -= fields.values().map(Vec::len).sum::<usize>();
            }
        }
    }

    /// The points of each of `fields` of `deviceid` in `[from, to)`, in the order they were
    /// committed.
    pub(super) fn points(
        &self,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
    ) -> Vec<Vec<RawPoint>> {
        let inner = self.inner.read();
        let device = inner.devices.get(deviceid);
        fields
            .iter()
            .map(|field| {
                device
                    .and_then(|fields| fields.get(field))
                    .map(|points| {
                        points
                            .iter()
                            .filter(|p| p.at >= from && p.at < to)
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// How many points of `deviceid` are held.
    pub(super) fn count(&self, deviceid: &str) -> usize {
        self.inner
            .read()
            .devices
            .get(deviceid)
            .map_or(0, |fields| fields.values().map(Vec::len).sum())
    }

    /// How many points of `deviceid` recorded at or after `since` are held.
    pub(super) fn count_since(&self, deviceid: &str, since: Millis) -> usize {
        self.inner.read().devices.get(deviceid).map_or(0, |fields| {
            fields
                .values()
                .map(|points| points.iter().filter(|p| p.at >= since).count())
                .sum()
        })
    }

    /// Drops the points recorded before `cutoff`; how many went.
    pub(super) fn purge(&self, cutoff: Millis) -> usize {
        let mut inner = self.inner.write();
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

    /// Runs `f` over every held point by device (to write them as chunks). Readers go on
    /// meanwhile.
    pub(super) fn with_all<T>(&self, f: impl FnOnce(&HashMap<String, DevicePoints>) -> T) -> T {
        f(&self.inner.read().devices)
    }

    /// A fold is about to commit: readers from now on wait for [`Recent::folded`].
    pub(super) fn folding(&self) {
        self.seq.send_modify(|s| *s += 1);
    }

    /// The fold committed (`true`: its points leave memory) or failed (they stay); the
    /// readers waiting go on.
    pub(super) fn folded(&self, committed: bool) {
        if committed {
            let mut inner = self.inner.write();
            inner.devices.clear();
            inner.points = 0;
        }
        self.seq.send_modify(|s| *s += 1);
    }

    /// The fold sequence number once no fold is committing (waited for, not polled).
    pub(super) async fn settled(&self) -> u64 {
        let mut seq = self.seq.subscribe();
        seq.wait_for(|s| s.is_multiple_of(2))
            .await
            .map(|s| *s)
            // The sender lives as long as `self`: `wait_for` cannot see it closed.
            .expect("the fold sequence outlives its readers")
    }

    /// Whether a fold began since [`Recent::settled`] answered `seq`: a read between
    /// them may have seen points twice or not at all.
    pub(super) fn changed_since(&self, seq: u64) -> bool {
        *self.seq.borrow() != seq
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

    fn one(recent: &Recent, deviceid: &str, field: &str, range: (Millis, Millis)) -> Vec<RawPoint> {
        recent
            .points(deviceid, &[field.to_owned()], range)
            .pop()
            .expect("one field asked, one answered")
    }

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
        let fields = ["temperature".to_owned(), "humidity".to_owned()];
        assert_eq!(
            recent.points("d1", &fields, ALL),
            [
                vec![
                    RawPoint {
                        at: Millis(30),
                        ts: Some(Millis(7)),
                        value: 21.5
                    },
                    point(10, 22.0)
                ],
                vec![point(20, 40.0)]
            ]
        );
        assert_eq!(one(&recent, "d2", "temperature", ALL), [point(50, 18.0)]);
        // The range is [from, to).
        assert_eq!(
            one(&recent, "d1", "temperature", (Millis(10), Millis(30))),
            [point(10, 22.0)]
        );
        assert!(one(&recent, "d2", "humidity", ALL).is_empty());
        assert!(one(&recent, "d3", "temperature", ALL).is_empty());
        assert_eq!(
            (recent.count("d1"), recent.count("d2"), recent.count("d3")),
            (3, 1, 0)
        );
    }

    #[test]
    fn deleted_devices_lose_their_points() {
        let recent = Recent::default();
        recent.add(&[
            row("d1", "temperature", 1, 1.0),
            row("d1", "humidity", 1, 2.0),
            row("d2", "temperature", 1, 3.0),
        ]);

        recent.delete(&["d1".to_owned(), "d3".to_owned()]);

        assert_eq!((recent.len(), recent.count("d1")), (1, 0));
        assert!(one(&recent, "d1", "temperature", ALL).is_empty());
        assert_eq!(one(&recent, "d2", "temperature", ALL), [point(1, 3.0)]);
    }

    #[tokio::test]
    async fn a_fold_makes_readers_wait_and_tells_them_it_happened() {
        let recent = Recent::default();
        recent.add(&[row("d1", "temperature", 1, 1.0)]);
        let seq = recent.settled().await;
        assert!(!recent.changed_since(seq));

        recent.folding();
        assert!(recent.changed_since(seq));
        // A reader arriving now waits until the fold is over.
        let waiting = recent.settled();
        tokio::pin!(waiting);
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        recent.folded(true);

        assert_eq!(waiting.await, seq + 2);
        assert_eq!((recent.len(), recent.count("d1")), (0, 0));
        recent.with_all(|devices| assert!(devices.is_empty()));
    }

    #[test]
    fn a_failed_fold_keeps_the_points() {
        let recent = Recent::default();
        recent.add(&[row("d1", "temperature", 1, 1.0)]);

        recent.folding();
        recent.folded(false);

        assert_eq!(recent.len(), 1);
        assert_eq!(one(&recent, "d1", "temperature", ALL), [point(1, 1.0)]);
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
        assert_eq!(one(&recent, "d1", "temperature", ALL), [point(10, 2.0)]);
        assert_eq!(recent.count("d2"), 0);
        assert_eq!(recent.purge(Millis(10)), 0);
    }
}
