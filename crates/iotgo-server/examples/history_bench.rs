//! History query benchmark: records N points from 1,000 temperature & humidity devices over
//! 30 days, then times the query the history API runs for a one-device 30-day chart
//! bucketed to 500 points (`bucket=auto`, `history_max_points` = 500): min/avg/max per
//! bucket of `temperature` and `humidity`.
//!
//! The points are written as the device writer's folds write them: updates round robin
//! over the devices, a fold's worth ([`FOLD_POINTS`]) at a time, one chunk per series and
//! fold. Then one point short of a fold is recorded through the device writer's path, so
//! the query also reads the most recent points a server can hold in memory.
//!
//! ```text
//! cargo run --release -p iotgo-server --example history_bench -- [POINTS] [DATABASE_URL]
//! ```
//! POINTS defaults to 10,000,000; DATABASE_URL to a fresh SQLite file in a temp directory.
//! A PostgreSQL URL must name an empty database (its tables are created here).

use iotgo_protocol::DeviceType;
use iotgo_server::history::{FOLD_POINTS, Recorder, Shape};
use iotgo_server::store::{HistoryRow, Millis, StateCache, StateLimits, StateWrite, Store};
use serde_json::json;
use std::time::{Duration, Instant};

const DEVICES: usize = 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;
const SPAN_MS: i64 = 30 * DAY_MS;
const QUERIES: usize = 200;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let points: i64 = match args.next() {
        Some(n) => n.replace('_', "").parse()?,
        None => 10_000_000,
    };
    let dir = tempfile_dir()?;
    let url = args
        .next()
        .unwrap_or_else(|| Store::sqlite_url(&dir).replace("iotgo.db", "bench.db"));
    let store = Store::connect(&url).await?;
    let backend = store.backend();
    let start = Millis::now().0 - SPAN_MS;
    let ids = devices(&store).await?;

    let t = Instant::now();
    fill(&store, &ids, points, start).await?;
    let mut recorder = Recorder::load(store.clone(), true).await?;
    let recent = fill_recent(&store, &mut recorder, &ids, start).await?;
    let history = recorder.reader();
    println!(
        "{backend:?}: recorded {points} points across {DEVICES} devices in {:.1} s, \
         and {recent} recent ones",
        t.elapsed().as_secs_f64(),
    );

    // What `bucket=auto` picks for 30 days and 500 points: whole seconds.
    let bucket = (SPAN_MS / 500).div_euclid(1000) * 1000;
    let range = (Millis(start), Millis(start + SPAN_MS));
    let mut times: Vec<Duration> = Vec::with_capacity(QUERIES);
    let fields = ["temperature".to_owned(), "humidity".to_owned()];
    let mut buckets = 0;
    for q in 0..QUERIES {
        let id = &ids[q * 7919 % DEVICES];
        let t = Instant::now();
        let shape = Shape::Buckets { width: bucket };
        buckets = history
            .series(id, &fields, range, shape)
            .await?
            .points
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{backend:?}: one device, 30 days, {} points read, {buckets} buckets per field: \
         median {:.2} ms, p95 {:.2} ms, max {:.2} ms over {QUERIES} queries",
        points / DEVICES as i64,
        ms(times[QUERIES / 2]),
        ms(times[QUERIES * 95 / 100]),
        ms(times[QUERIES - 1]),
    );
    store.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("iotgo-history-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A user with [`DEVICES`] temperature & humidity devices; their deviceids.
async fn devices(store: &Store) -> anyhow::Result<Vec<String>> {
    let apikey = "00000000-0000-4000-8000-000000000001";
    store
        .users()
        .create("bench@example.com", apikey, "x", true)
        .await?;
    let mut ids = Vec::with_capacity(DEVICES);
    for _ in 0..DEVICES {
        let d = store
            .devices()
            .create(apikey, "th", "", DeviceType::parse("03")?)
            .await?;
        ids.push(d.deviceid);
    }
    Ok(ids)
}

/// Records `points` points as folds write them: update `u` comes from device
/// `u % DEVICES` with a temperature and a humidity, the updates spread evenly over the 30
/// days; each fold's worth of points becomes one chunk per series.
async fn fill(store: &Store, ids: &[String], points: i64, start: i64) -> anyhow::Result<()> {
    let updates = (points / 2).max(1);
    let step = SPAN_MS / updates;
    let per_fold = (FOLD_POINTS / 2) as i64;
    let mut u = 0;
    while u < updates {
        let rows: Vec<HistoryRow> = (u..updates.min(u + per_fold))
            .flat_map(|u| point_pair(&ids[u as usize % DEVICES], start + u * step, u))
            .collect();
        store.append_history(&rows).await?;
        u += per_fold;
    }
    Ok(())
}

/// One point short of a fold, through the device writer's path (batches of 512 updates,
/// their points then into `recorder`), in the last minutes of the 30 days; how many points.
async fn fill_recent(
    store: &Store,
    recorder: &mut Recorder,
    ids: &[String],
    start: i64,
) -> anyhow::Result<usize> {
    let updates = (FOLD_POINTS - 1) / 2;
    let mut cache = StateCache::new();
    let writes: Vec<StateWrite> = (0..updates)
        .map(|u| StateWrite::Merge {
            deviceid: ids[u % DEVICES].clone(),
            params: json!({"temperature": 15.0 + (u % 97) as f64 * 0.1, "humidity": 40})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            at: Millis(start + SPAN_MS - (updates - u) as i64 * 10),
            seen: true,
        })
        .collect();
    for batch in writes.chunks(512) {
        let applied = store
            .apply_state(batch, &mut cache, true, StateLimits::NONE)
            .await?;
        recorder.committed(&applied.history);
    }
    Ok(recorder.held())
}

/// Update `u`'s two points.
fn point_pair(deviceid: &str, at: i64, u: i64) -> [HistoryRow; 2] {
    let row = |field: &str, value: f64| HistoryRow {
        deviceid: deviceid.to_owned(),
        field: field.to_owned(),
        at: Millis(at),
        ts: None,
        value,
    };
    [
        row("temperature", 15.0 + (u % 97) as f64 * 0.1),
        row("humidity", 40.0 + (u % 31) as f64),
    ]
}
