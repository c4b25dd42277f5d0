//! The selects of history reads: which chunks of a device's fields overlap a range, their
//! points, and how many points a device has in chunks. Each asks for every field at once
//! (the fields as a JSON array); `crate::history::Reader` adds the recent points.

use super::{RawPoint, chunk};
use crate::store::{Backend, Millis, Store, StoreResult};
use std::collections::HashMap;

/// The chunks of a device's fields (`$2`, a JSON array) that may hold points in
/// `[$3, $4)`: `FROM …` and `WHERE …` for each backend.
macro_rules! in_range {
    (sqlite) => {
        " FROM device_history_chunks \
         WHERE deviceid = $1 AND field IN (SELECT value FROM json_each($2)) \
         AND last_at >= $3 AND first_at < $4"
    };
    (postgres) => {
        " FROM device_history_chunks \
         WHERE deviceid = $1 AND field IN (SELECT json_array_elements_text($2::json)) \
         AND last_at >= $3 AND first_at < $4"
    };
}

/// The chunks in range without their points, in the order a raw read decodes them.
const SPANS: [&str; 2] = [
    concat!(
        "SELECT id, field, first_at",
        in_range!(sqlite),
        " ORDER BY first_at, id"
    ),
    concat!(
        "SELECT id, field, first_at",
        in_range!(postgres),
        " ORDER BY first_at, id"
    ),
];

/// The chunks in range with their points.
const DATA: [&str; 2] = [
    concat!("SELECT field, data", in_range!(sqlite)),
    concat!("SELECT field, data", in_range!(postgres)),
];

/// A chunk as a raw read lists it before choosing which to decode.
#[derive(Debug)]
pub(crate) struct ChunkSpan {
    /// The chunk's row.
    pub(crate) id: i64,
    /// Its series' field.
    pub(crate) field: String,
    /// The time of its first point.
    pub(crate) first_at: Millis,
}

impl Store {
    /// Which of a pair of `[SQLite, PostgreSQL]` statements this store runs.
    fn dialect(&self, pair: [&'static str; 2]) -> &'static str {
        match self.backend {
            Backend::Sqlite => pair[0],
            Backend::Postgres => pair[1],
        }
    }

    /// The chunks of `fields` of `deviceid` that may hold points in `[from, to)`, by their
    /// first point's time (then in the order they were written), without their points.
    pub(crate) async fn history_spans(
        &self,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
    ) -> StoreResult<Vec<ChunkSpan>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(self.dialect(SPANS))
            .bind(deviceid)
            .bind(fields_json(fields))
            .bind(from.0)
            .bind(to.0)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, field, first_at)| ChunkSpan {
                id,
                field,
                first_at: Millis(first_at),
            })
            .collect())
    }

    /// The points of the chunks `ids`, by id (a chunk gone meanwhile is left out).
    pub(crate) async fn history_chunks(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> StoreResult<HashMap<i64, Vec<RawPoint>>> {
        let by_ids = format!(
            "SELECT id, data FROM device_history_chunks WHERE id IN ({})",
            chunk::id_list(ids)
        );
        let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(by_ids))
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, text)| (id, chunk::decode(&text)))
            .collect())
    }

    /// Every chunk of `fields` of `deviceid` that may hold points in `[from, to)`: its
    /// field and points (all of them, also those out of range).
    pub(crate) async fn history_chunks_in_range(
        &self,
        deviceid: &str,
        fields: &[String],
        (from, to): (Millis, Millis),
    ) -> StoreResult<Vec<(String, Vec<RawPoint>)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(self.dialect(DATA))
            .bind(deviceid)
            .bind(fields_json(fields))
            .bind(from.0)
            .bind(to.0)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(field, text)| (field, chunk::decode(&text)))
            .collect())
    }

    /// How many points of `deviceid` are in chunks.
    pub(crate) async fn history_chunked_count(&self, deviceid: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM device_history_chunks \
             WHERE deviceid = $1",
        )
        .bind(deviceid)
        .fetch_one(&self.read)
        .await?)
    }
}

/// Field names as the JSON array the selects read.
fn fields_json(fields: &[String]) -> String {
    serde_json::to_string(fields).expect("field names always serialise")
}
