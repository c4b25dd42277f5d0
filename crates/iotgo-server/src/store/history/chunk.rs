//! Chunks: the points of one series over a stretch of time, stored as one row.
//!
//! A fold writes one chunk per series it holds, so a series' index entry and row are
//! written once per fold, however many points it gathered. The points are JSON text,
//! column by column: `{"a":[at…],"v":[value…],"t":[ts…]}`, `t` left out when no point
//! carries a device time, times in epoch milliseconds.

use super::RawPoint;
use crate::store::{Backend, Millis, StoreResult};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

/// The points of one chunk, column by column.
#[derive(Serialize, Deserialize, Default)]
struct Columns {
    a: Vec<i64>,
    v: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<Vec<Option<i64>>>,
}

/// Most points one chunk holds (a series with more in a fold gets several).
pub(super) const MAX_POINTS: usize = 4096;

/// A chunk row as the JSON the insert statement reads.
#[derive(Serialize)]
pub(super) struct NewChunk<'a> {
    d: &'a str,
    f: &'a str,
    /// First and last `at`.
    a0: i64,
    a1: i64,
    n: usize,
    /// The points as [`Columns`] text.
    p: String,
}

impl NewChunk<'_> {
    /// The time of its first point.
    pub(super) fn first_at(&self) -> i64 {
        self.a0
    }

    /// Its points as text.
    pub(super) fn data(&self) -> &str {
        &self.p
    }
}

/// The chunks of one series' points, in the order given (`points` sorted by time).
pub(super) fn encode<'a>(
    deviceid: &'a str,
    field: &'a str,
    points: &[RawPoint],
) -> Vec<NewChunk<'a>> {
    points
        .chunks(MAX_POINTS)
        .map(|part| {
            let any_ts = part.iter().any(|p| p.ts.is_some());
            let cols = Columns {
                a: part.iter().map(|p| p.at.0).collect(),
                v: part.iter().map(|p| p.value).collect(),
                t: any_ts.then(|| part.iter().map(|p| p.ts.map(|t| t.0)).collect()),
            };
            NewChunk {
                d: deviceid,
                f: field,
                a0: part.iter().map(|p| p.at.0).min().unwrap_or_default(),
                a1: part.iter().map(|p| p.at.0).max().unwrap_or_default(),
                n: part.len(),
                p: serde_json::to_string(&cols).expect("chunk columns always serialise"),
            }
        })
        .collect()
}

/// The points of a chunk's text; a chunk that does not read as one (never written by this
/// code) reads as no points.
pub(super) fn decode(text: &str) -> Vec<RawPoint> {
    let Ok(cols) = serde_json::from_str::<Columns>(text) else {
        tracing::warn!("history chunk unreadable; skipped");
        return Vec::new();
    };
    let ts = |i: usize| cols.t.as_ref().and_then(|t| t.get(i).copied().flatten());
    cols.a
        .iter()
        .zip(&cols.v)
        .enumerate()
        .map(|(i, (&at, &value))| RawPoint {
            at: Millis(at),
            ts: ts(i).map(Millis),
            value,
        })
        .collect()
}

/// Chunk ids as the list of an SQL `IN (…)` (numbers only, so safe to splice in).
pub(super) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Rows per insert statement.
const INSERT_CHUNK: usize = 1024;

/// `jsonb_each` hands each object over in SQLite's binary JSON, so the `->>` look-ups
/// read it without parsing text again.
const INSERT_SQLITE: &str = "INSERT INTO device_history_chunks \
     (deviceid, field, first_at, last_at, points, data) \
     SELECT j.value ->> 'd', j.value ->> 'f', j.value ->> 'a0', j.value ->> 'a1', \
     j.value ->> 'n', j.value ->> 'p' FROM jsonb_each($1) AS j \
     WHERE EXISTS (SELECT 1 FROM devices WHERE deviceid = j.value ->> 'd') ORDER BY j.key";

const INSERT_POSTGRES: &str = "INSERT INTO device_history_chunks \
     (deviceid, field, first_at, last_at, points, data) \
     SELECT c.d, c.f, c.a0, c.a1, c.n, c.p FROM ROWS FROM (json_to_recordset($1::json) \
     AS (d text, f text, a0 bigint, a1 bigint, n bigint, p text)) \
     WITH ORDINALITY AS c(d, f, a0, a1, n, p, k) \
     WHERE EXISTS (SELECT 1 FROM devices WHERE deviceid = c.d) ORDER BY c.k";

/// `chunks` as the arguments of [`insert`], one JSON array per statement.
pub(super) fn to_json(chunks: &[NewChunk<'_>]) -> Vec<String> {
    chunks
        .chunks(INSERT_CHUNK)
        .map(|part| serde_json::to_string(part).expect("new chunks always serialise"))
        .collect()
}

/// Inserts the chunks of [`to_json`] inside the caller's transaction; chunks of devices
/// that no longer exist are left out.
pub(super) async fn insert(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    json: &[String],
) -> StoreResult<()> {
    let sql = match backend {
        Backend::Sqlite => INSERT_SQLITE,
        Backend::Postgres => INSERT_POSTGRES,
    };
    for part in json {
        sqlx::query(sql).bind(part).execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_with_and_without_device_times() {
        let p = |at, ts: Option<i64>, value| RawPoint {
            at: Millis(at),
            ts: ts.map(Millis),
            value,
        };
        let plain = vec![p(5, None, 1.5), p(7, None, -2.0)];
        let chunks = encode("0300000001", "temperature", &plain);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].p, r#"{"a":[5,7],"v":[1.5,-2.0]}"#);
        assert_eq!((chunks[0].a0, chunks[0].a1, chunks[0].n), (5, 7, 2));
        assert_eq!(decode(&chunks[0].p), plain);
        let timed = vec![p(5, Some(1), 0.1), p(6, None, 0.2)];
        assert_eq!(decode(&encode("d", "f", &timed)[0].p), timed);
        let many: Vec<RawPoint> = (0..MAX_POINTS as i64 + 1)
            .map(|i| p(i, None, 0.0))
            .collect();
        assert_eq!(encode("d", "f", &many).len(), 2);
        assert!(decode("not json").is_empty());
    }
}
