//! Reading the history: the chunks of a series in range and its recent points, as one
//! series in the order the points were recorded (chunks first at equal times).

use super::{Bucket, RawPoint, chunk};
use crate::store::{Millis, Store, StoreResult};
use std::collections::BTreeMap;
use std::time::Duration;

/// Chunks whose points a raw read decodes between two looks at whether it has enough.
const RAW_PAGE: usize = 16;

/// Chunks of one series that may hold points in `[$3, $4)`.
const IN_RANGE: &str = "FROM device_history_chunks \
     WHERE deviceid = $1 AND field = $2 AND last_at >= $3 AND first_at < $4";

impl Store {
    /// The fold sequence number once no fold is committing. A read that finds it
    /// unchanged afterwards saw each point once: either still recent or already in a chunk.
    async fn fold_seq(&self) -> u64 {
        loop {
            let seq = self.recent.seq();
            if seq.is_multiple_of(2) {
                return seq;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The first `limit` points of one field in `[from, to)`, oldest first (in the order
    /// they were recorded when their times are equal).
    pub async fn history_raw(
        &self,
        deviceid: &str,
        field: &str,
        range: (Millis, Millis),
        limit: i64,
    ) -> StoreResult<Vec<RawPoint>> {
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        loop {
            let seq = self.fold_seq().await;
            let recent = self.recent.points(deviceid, field, range);
            let mut points = self.raw_from_chunks(deviceid, field, range, limit).await?;
            if self.recent.seq() != seq {
                continue;
            }
            // Recent points come after every chunk point of the same time.
            let order = usize::MAX - recent.len();
            points.extend(recent.into_iter().enumerate().map(|(i, p)| (order + i, p)));
            points.sort_by_key(|(order, p)| (p.at, *order));
            points.truncate(limit);
            return Ok(points.into_iter().map(|(_, p)| p).collect());
        }
    }

    /// The chunk points of a raw read, each with its place in recording order: chunk by
    /// chunk from the oldest, until the points found are enough and the next chunk starts
    /// after the last of the first `limit`.
    async fn raw_from_chunks(
        &self,
        deviceid: &str,
        field: &str,
        (from, to): (Millis, Millis),
        limit: usize,
    ) -> StoreResult<Vec<(usize, RawPoint)>> {
        let chunks: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, first_at {IN_RANGE} ORDER BY first_at, id"
        )))
        .bind(deviceid)
        .bind(field)
        .bind(from.0)
        .bind(to.0)
        .fetch_all(&self.read)
        .await?;
        let mut points: Vec<(usize, RawPoint)> = Vec::new();
        for (page_no, page) in chunks.chunks(RAW_PAGE).enumerate() {
            if points.len() >= limit {
                points.sort_by_key(|(order, p)| (p.at, *order));
                if page[0].1 >= points[limit - 1].1.at.0 {
                    break;
                }
            }
            let by_ids = format!(
                "SELECT id, data FROM device_history_chunks WHERE id IN ({})",
                chunk::id_list(page.iter().map(|(id, _)| *id))
            );
            let data: BTreeMap<i64, String> = sqlx::query_as(sqlx::AssertSqlSafe(by_ids))
                .fetch_all(&self.read)
                .await?
                .into_iter()
                .collect();
            for (i, (id, _)) in page.iter().enumerate() {
                let Some(text) = data.get(id) else { continue };
                let base = (page_no * RAW_PAGE + i) * chunk::MAX_POINTS;
                points.extend(
                    chunk::decode(text)
                        .into_iter()
                        .enumerate()
                        .filter(|(_, p)| p.at >= from && p.at < to)
                        .map(|(j, p)| (base + j, p)),
                );
            }
        }
        Ok(points)
    }

    /// Min/avg/max/count of one field per `bucket_ms` from `from` (bucket 0) to `to`,
    /// buckets without values left out.
    pub async fn history_buckets(
        &self,
        deviceid: &str,
        field: &str,
        (from, to): (Millis, Millis),
        bucket_ms: i64,
    ) -> StoreResult<Vec<Bucket>> {
        let bucket_ms = bucket_ms.max(1);
        loop {
            let seq = self.fold_seq().await;
            let mut buckets: BTreeMap<i64, (f64, f64, f64, i64)> = BTreeMap::new();
            let mut add = |p: RawPoint| {
                if p.at >= from && p.at < to {
                    let b = buckets.entry((p.at.0 - from.0) / bucket_ms).or_insert((
                        f64::INFINITY,
                        0.0,
                        f64::NEG_INFINITY,
                        0,
                    ));
                    b.0 = b.0.min(p.value);
                    b.1 += p.value;
                    b.2 = b.2.max(p.value);
                    b.3 += 1;
                }
            };
            self.recent
                .points(deviceid, field, (from, to))
                .into_iter()
                .for_each(&mut add);
            let chunks: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT data {IN_RANGE}")))
                    .bind(deviceid)
                    .bind(field)
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.read)
                    .await?;
            if self.recent.seq() != seq {
                continue;
            }
            for text in &chunks {
                chunk::decode(text).into_iter().for_each(&mut add);
            }
            return Ok(buckets
                .into_iter()
                .map(|(index, (min, sum, max, count))| Bucket {
                    index,
                    min,
                    avg: sum / count as f64,
                    max,
                    count,
                })
                .collect());
        }
    }

    /// How many history points a device has (diagnostics and tests).
    pub async fn history_count(&self, deviceid: &str) -> StoreResult<i64> {
        loop {
            let seq = self.fold_seq().await;
            let recent = self.recent.count(deviceid) as i64;
            let chunked: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM device_history_chunks \
                 WHERE deviceid = $1",
            )
            .bind(deviceid)
            .fetch_one(&self.read)
            .await?;
            if self.recent.seq() == seq {
                return Ok(chunked + recent);
            }
        }
    }
}
