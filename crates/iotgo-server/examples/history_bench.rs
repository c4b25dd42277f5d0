//! History query benchmark: fills `device_history` with N points across 1,000 devices over
//! 30 days (bulk SQL inside the database), then times the query the history API runs for
//! a one-device 30-day chart bucketed to 500 points (`bucket=auto`, `history_max_points`
//! = 500): min/avg/max per bucket of `temperature` and `humidity`.
//!
//! The points go into the series-ordered table, and the recent table (which every query
//! scans whole) is then filled to one row short of a fold: the slowest a query gets.
//!
//! ```text
//! cargo run --release -p iotgo-server --example history_bench -- [POINTS] [DATABASE_URL]
//! ```
//! POINTS defaults to 10,000,000; DATABASE_URL to a fresh SQLite file in a temp directory.
//! A PostgreSQL URL must name an empty database (its tables are created here).

use iotgo_server::store::{Backend, FOLD_ROWS, HistoryRow, Millis, Store};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe};
use std::time::{Duration, Instant};

const DEVICES: i64 = 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;
const SPAN_MS: i64 = 30 * DAY_MS;
/// Rows generated per statement.
const CHUNK: i64 = 1_000_000;
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
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let backend = store.backend();
    let start = Millis::now().0 - SPAN_MS;

    let t = Instant::now();
    fill(&pool, backend, points, start).await?;
    fill_recent(&store, start).await?;
    println!(
        "{backend:?}: filled {points} points across {DEVICES} devices in {:.1} s, \
         and {} recent ones",
        t.elapsed().as_secs_f64(),
        FOLD_ROWS - 1
    );

    // What `bucket=auto` picks for 30 days and 500 points: whole seconds.
    let bucket = (SPAN_MS / 500).div_euclid(1000) * 1000;
    let range = (Millis(start), Millis(start + SPAN_MS));
    let mut times: Vec<Duration> = Vec::with_capacity(QUERIES);
    let mut buckets = 0;
    for q in 0..QUERIES {
        let id = deviceid(q as i64 * 7919 % DEVICES);
        let t = Instant::now();
        for field in ["temperature", "humidity"] {
            buckets = store
                .history_buckets(&id, field, range, bucket)
                .await?
                .len();
        }
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{backend:?}: one device, 30 days, {} rows read, {buckets} buckets per field: \
         median {:.2} ms, p95 {:.2} ms, max {:.2} ms over {QUERIES} queries",
        points / DEVICES,
        ms(times[QUERIES / 2]),
        ms(times[QUERIES * 95 / 100]),
        ms(times[QUERIES - 1]),
    );
    store.close().await;
    pool.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("iotgo-history-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn deviceid(n: i64) -> String {
    format!("03{:08x}", n + 1)
}

/// Generates the rows inside the database: point `i` belongs to device `i / per_device`,
/// alternates between temperature and humidity, and is spread evenly over the 30 days.
/// The indexes are dropped during the fill and rebuilt after (as the migration made them).
async fn fill(pool: &AnyPool, backend: Backend, points: i64, start: i64) -> anyhow::Result<()> {
    let per_device = (points / DEVICES).max(1);
    let step = SPAN_MS / per_device;
    exec(pool, "DROP INDEX device_history_series").await?;
    exec(pool, "DROP INDEX device_history_at").await?;
    let mut done = 0;
    while done < points {
        let n = CHUNK.min(points - done);
        let rows = |i: &str, id: &str| {
            format!(
                "SELECT {id}, CASE WHEN {i} % 2 = 0 THEN 'temperature' ELSE 'humidity' END, \
                 {start} + ({i} % {per_device}) * {step}, 15.0 + ({i} % 97) * 0.1"
            )
        };
        let sql = match backend {
            Backend::Sqlite => format!(
                "INSERT INTO device_history (deviceid, field, at, value) \
                 WITH RECURSIVE n(i) AS (SELECT {done} UNION ALL SELECT i + 1 FROM n \
                 WHERE i < {last}) {} FROM n",
                rows("i", &format!("printf('03%08x', i / {per_device} + 1)")),
                last = done + n - 1,
            ),
            Backend::Postgres => format!(
                "INSERT INTO device_history (deviceid, field, at, value) {} \
                 FROM generate_series({done}::bigint, {last}::bigint) AS s(i)",
                rows(
                    "i",
                    &format!("'03' || lpad(to_hex(i / {per_device} + 1), 8, '0')")
                ),
                last = done + n - 1,
            ),
        };
        exec(pool, &sql).await?;
        done += n;
    }
    let series = match backend {
        Backend::Sqlite => {
            "CREATE INDEX device_history_series ON device_history (deviceid, field, at, value)"
        }
        Backend::Postgres => {
            "CREATE INDEX device_history_series ON device_history (deviceid, field, at) \
             INCLUDE (value)"
        }
    };
    exec(pool, series).await?;
    exec(
        pool,
        "CREATE INDEX device_history_at ON device_history (at)",
    )
    .await?;
    match backend {
        Backend::Sqlite => exec(pool, "ANALYZE").await,
        Backend::Postgres => exec(pool, "VACUUM ANALYZE device_history").await,
    }
}

/// One row short of a fold in the recent table: the devices' latest points, in the last
/// minutes of the 30 days, appended as the device writer appends them.
async fn fill_recent(store: &Store, start: i64) -> anyhow::Result<()> {
    let rows: Vec<HistoryRow> = (0..FOLD_ROWS - 1)
        .map(|i| HistoryRow {
            deviceid: deviceid(i / 2 % DEVICES),
            field: if i % 2 == 0 {
                "temperature"
            } else {
                "humidity"
            }
            .to_owned(),
            at: Millis(start + SPAN_MS - (FOLD_ROWS - i) * 10),
            ts: None,
            value: 15.0 + (i % 97) as f64 * 0.1,
        })
        .collect();
    store.append_history(&rows).await?;
    Ok(())
}

async fn exec(pool: &AnyPool, sql: &str) -> anyhow::Result<()> {
    sqlx::query(AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await?;
    Ok(())
}
