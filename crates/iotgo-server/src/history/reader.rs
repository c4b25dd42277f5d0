//! The [`Reader`]: a device's history over a range as one [`Series`], raw or in buckets,
//! from the chunks and the recent points together.
//!
//! One read takes the recent points of every asked field under one lock and asks the
//! chunks of every field at once; it runs again when a fold moved points between the two
//! (`recent.rs`). Raw points at an equal time come in the order they were recorded
//! (chunks in order, then recent points).
//!
//! On a cluster node the recent points of the other nodes are in their log rows, not in
//! this node's memory: a read selects them with the chunks in one snapshot
//! (`HistoryView`), where a fold on another node, one transaction, shows either its log
//! rows or its chunks. Points of a deviceid from before the device's creation (another
//! node still holding a deleted device's points) are left out.

use super::recent::Recent;
use crate::store::{ChunkSpan, HistoryView, Millis, RawPoint, Store, StoreResult};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Chunks whose points a raw read decodes between two looks at whether it has enough.
const RAW_PAGE: usize = 16;
/// Most points of one chunk (its points' places in recording order are counted in steps
/// of this).
const CHUNK_POINTS: usize = 4096;

/// What a read gives per point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Raw points, at most `cap` (a page; [`Series::more`] tells whether more follow).
    Raw {
        /// Most points.
        cap: usize,
    },
    /// Min/avg/max/count per bucket of `width` milliseconds from the range's start,
    /// buckets without values left out.
    Buckets {
        /// Bucket width in milliseconds.
        width: i64,
    },
}

/// The aggregate of one field over one time bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Bucket number counted from the range's start.
    pub index: i64,
    /// Smallest value.
    pub min: f64,
    /// Mean value.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub count: i64,
}

/// One point of a series: values by the index of the field asked.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesPoint {
    /// Raw values recorded at one time (by one update, or by several of the same time
    /// that recorded different fields).
    Raw {
        /// Server time.
        at: Millis,
        /// Device time, if sent.
        ts: Option<Millis>,
        /// The value of each field, if recorded.
        values: Vec<Option<f64>>,
    },
    /// One bucket.
    Bucket {
        /// The bucket's start.
        at: Millis,
        /// The aggregate of each field, if it has values there.
        values: Vec<Option<Bucket>>,
    },
}

/// A device's history over a range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The points.
    pub points: Vec<SeriesPoint>,
    /// Raw points stopped at the cap: ask again from after the last point's time.
    pub more: bool,
}

/// A read-only view of the history: chunks and recent points. Cheap to clone.
#[derive(Clone)]
pub struct Reader {
    store: Store,
    recent: Arc<Recent>,
    /// This cluster node's id (`None`: a single node).
    node: Option<Arc<str>>,
}

/// Raw points of one field, each with its place in recording order.
type Ordered = Vec<(usize, RawPoint)>;

impl Reader {
    pub(super) fn new(store: Store, recent: Arc<Recent>, node: Option<Arc<str>>) -> Reader {
        Reader {
            store,
            recent,
            node,
        }
    }

    /// A view for one read: a snapshot on a cluster node.
    async fn view(&self) -> StoreResult<HistoryView> {
        self.store.history_view(self.node.is_some()).await
    }

    /// The recent points of each of `fields` of `deviceid` in `range`, in the order they
    /// were recorded: this node's, from memory, and on a cluster node the other nodes'
    /// (their log rows, through `view`).
    async fn recent_points(
        &self,
        view: &mut HistoryView,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
    ) -> StoreResult<Vec<Vec<RawPoint>>> {
        let mut recent = self.recent.points(deviceid, fields, (from, to));
        let Some(me) = &self.node else {
            return Ok(recent);
        };
        let Some((created, others)) = view.others_log(deviceid, me).await? else {
            // The device is gone: none of its points.
            return Ok(vec![Vec::new(); fields.len()]);
        };
        for points in &mut recent {
            points.retain(|p| p.at >= created);
        }
        for r in others.iter().filter(|r| r.at >= from && r.at < to) {
            for (f, _) in fields.iter().enumerate().filter(|(_, n)| **n == r.field) {
                recent[f].push(RawPoint {
                    at: r.at,
                    ts: r.ts,
                    value: r.value,
                });
            }
        }
        Ok(recent)
    }

    /// The history of `fields` of `deviceid` in `[from, to)`, as `shape` asks.
    pub async fn series(
        &self,
        deviceid: &str,
        fields: &[String],
        range: (Millis, Millis),
        shape: Shape,
    ) -> StoreResult<Series> {
        match shape {
            Shape::Raw { cap } => self.raw(deviceid, fields, range, cap.max(1)).await,
            Shape::Buckets { width } => self.buckets(deviceid, fields, range, width.max(1)).await,
        }
    }

    /// How many history points a device has (diagnostics and tests).
    pub async fn count(&self, deviceid: &str) -> StoreResult<i64> {
        loop {
            let seq = self.recent.settled().await;
            let mut view = self.view().await?;
            let recent = match &self.node {
                None => self.recent.count(deviceid),
                Some(me) => match view.others_log(deviceid, me).await? {
                    None => 0,
                    Some((created, others)) => {
                        self.recent.count_since(deviceid, created) + others.len()
                    }
                },
            };
            let chunked = view.history_chunked_count(deviceid).await?;
            if !self.recent.changed_since(seq) {
                return Ok(chunked + recent as i64);
            }
        }
    }

    /// Recent points held in memory (diagnostics and tests).
    pub fn recent_len(&self) -> usize {
        self.recent.len()
    }

    /// A raw page: the first `cap + 1` points of each field are read; a field that has
    /// more than `cap` may have more at its last time, so points from the earliest such
    /// time on are left for the next page (`more`), and the page holds at most `cap`.
    async fn raw(
        &self,
        deviceid: &str,
        fields: &[String],
        range: (Millis, Millis),
        cap: usize,
    ) -> StoreResult<Series> {
        let limit = cap + 1;
        let per_field = loop {
            let seq = self.recent.settled().await;
            let mut view = self.view().await?;
            let recent = self
                .recent_points(&mut view, deviceid, fields, range)
                .await?;
            let chunked = Self::raw_from_chunks(&mut view, deviceid, fields, range, limit);
            let chunked = chunked.await?;
            if self.recent.changed_since(seq) {
                continue;
            }
            break chunked
                .into_iter()
                .zip(recent)
                .map(|(mut points, recent)| {
                    // Recent points come after every chunk point of the same time.
                    let order = usize::MAX - recent.len();
                    points.extend(recent.into_iter().enumerate().map(|(i, p)| (order + i, p)));
                    first(&mut points, limit);
                    points
                })
                .collect::<Vec<_>>();
        };
        let mut horizon: Option<Millis> = None;
        for points in &per_field {
            if points.len() > cap
                && let Some((_, last)) = points.last()
            {
                horizon = Some(horizon.map_or(last.at, |h| h.min(last.at)));
            }
        }
        let mut rows: Vec<(usize, RawPoint)> = per_field
            .into_iter()
            .enumerate()
            .flat_map(|(i, points)| points.into_iter().map(move |(_, p)| (i, p)))
            .filter(|(_, p)| horizon.is_none_or(|h| p.at < h))
            .collect();
        rows.sort_by_key(|(i, p)| (p.at, *i));
        let mut points: Vec<SeriesPoint> = Vec::new();
        for (i, p) in rows {
            if let Some(SeriesPoint::Raw { at, values, .. }) = points.last_mut()
                && *at == p.at
                && values[i].is_none()
            {
                values[i] = Some(p.value);
                continue;
            }
            let mut values = vec![None; fields.len()];
            values[i] = Some(p.value);
            points.push(SeriesPoint::Raw {
                at: p.at,
                ts: p.ts,
                values,
            });
        }
        let more = horizon.is_some() || points.len() > cap;
        points.truncate(cap);
        Ok(Series { points, more })
    }

    /// The chunk points of a raw read, by field, each with its place in recording order:
    /// chunk by chunk from the oldest, a field's chunks until its points found are enough
    /// and its next chunk starts after the last of its first `limit`.
    async fn raw_from_chunks(
        view: &mut HistoryView,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
        limit: usize,
    ) -> StoreResult<Vec<Ordered>> {
        let spans = view.history_spans(deviceid, fields, (from, to)).await?;
        let mut per_field: Vec<Ordered> = vec![Vec::new(); fields.len()];
        let mut done = vec![false; fields.len()];
        let mut next = 0;
        while next < spans.len() {
            // The next chunks some field still needs.
            let mut page: Vec<(usize, &ChunkSpan)> = Vec::with_capacity(RAW_PAGE);
            while next < spans.len() && page.len() < RAW_PAGE {
                let span = &spans[next];
                let mut wanted = false;
                for (f, _) in fields.iter().enumerate().filter(|(_, n)| **n == span.field) {
                    let points = &per_field[f];
                    if points.len() >= limit && span.first_at >= points[limit - 1].1.at {
                        done[f] = true;
                    }
                    wanted |= !done[f];
                }
                if wanted {
                    page.push((next, span));
                }
                next += 1;
            }
            if page.is_empty() {
                break;
            }
            let data = view.history_chunks(page.iter().map(|(_, s)| s.id)).await?;
            for (place, span) in &page {
                let Some(points) = data.get(&span.id) else {
                    continue;
                };
                let base = place * CHUNK_POINTS;
                for (f, _) in fields.iter().enumerate().filter(|(_, n)| **n == span.field) {
                    if done[f] {
                        continue;
                    }
                    per_field[f].extend(
                        points
                            .iter()
                            .enumerate()
                            .filter(|(_, p)| p.at >= from && p.at < to)
                            .map(|(j, p)| (base + j, *p)),
                    );
                }
            }
            for points in &mut per_field {
                if points.len() >= limit {
                    first(points, limit);
                }
            }
        }
        Ok(per_field)
    }

    /// Buckets of every field, by bucket.
    async fn buckets(
        &self,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
        width: i64,
    ) -> StoreResult<Series> {
        let per_field = loop {
            let seq = self.recent.settled().await;
            let mut view = self.view().await?;
            let recent = self
                .recent_points(&mut view, deviceid, fields, (from, to))
                .await?;
            let chunks = view
                .history_chunks_in_range(deviceid, fields, (from, to))
                .await?;
            if self.recent.changed_since(seq) {
                continue;
            }
            let mut per_field: Vec<Sums> = recent
                .into_iter()
                .map(|points| {
                    let mut sums = Sums::default();
                    points.iter().for_each(|p| sums.add(p, from, width));
                    sums
                })
                .collect();
            for (field, points) in &chunks {
                for (f, _) in fields.iter().enumerate().filter(|(_, n)| *n == field) {
                    points
                        .iter()
                        .filter(|p| p.at >= from && p.at < to)
                        .for_each(|p| per_field[f].add(p, from, width));
                }
            }
            break per_field;
        };
        let mut by_index: BTreeMap<i64, Vec<Option<Bucket>>> = BTreeMap::new();
        for (f, sums) in per_field.into_iter().enumerate() {
            for (index, (min, sum, max, count)) in sums.0 {
                by_index
                    .entry(index)
                    .or_insert_with(|| vec![None; fields.len()])[f] = Some(Bucket {
                    index,
                    min,
                    avg: sum / count as f64,
                    max,
                    count,
                });
            }
        }
        let points = by_index
            .into_iter()
            .map(|(index, values)| SeriesPoint::Bucket {
                // Within the range: `index * width` is at most the point's offset.
                at: Millis(from.0.saturating_add(index.saturating_mul(width))),
                values,
            })
            .collect();
        Ok(Series {
            points,
            more: false,
        })
    }
}

/// `points` sorted by time, then recording order, cut to the first `limit`.
fn first(points: &mut Ordered, limit: usize) {
    points.sort_by_key(|(order, p)| (p.at, *order));
    points.truncate(limit);
}

/// One field's min, sum, max and count per bucket index.
#[derive(Default)]
struct Sums(BTreeMap<i64, (f64, f64, f64, i64)>);

impl Sums {
    fn add(&mut self, p: &RawPoint, from: Millis, width: i64) {
        // Points are read within the range (at ≥ from); saturating all the same.
        let b = self
            .0
            .entry(p.at.0.saturating_sub(from.0) / width)
            .or_insert((f64::INFINITY, 0.0, f64::NEG_INFINITY, 0));
        b.0 = b.0.min(p.value);
        b.1 += p.value;
        b.2 = b.2.max(p.value);
        b.3 += 1;
    }
}
