//! Migration 0004 on a SQLite database with history from before it (the PostgreSQL
//! migration does the same in its dialect): the rows of
//! `device_history` and `device_history_recent` become chunks, read as before.

use iotgo_server::store::{Millis, Store};
use sqlx::any::{AnyPoolOptions, install_default_drivers};

#[tokio::test]
async fn rows_from_before_chunks_read_the_same_after_the_migration() {
    install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = Store::sqlite_url(dir.path());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run_to(3, &pool)
        .await
        .unwrap();
    let day = 86_400_000;
    for sql in [
        "INSERT INTO users (apikey, email, password_hash, created_at) VALUES ('k', 'a@b.c', 'x', 0)",
        "INSERT INTO devices (deviceid, apikey, name, type, created_at) \
         VALUES ('0300000001', 'k', 'th', '03', 0)",
        // Two days of one series, a time shared by both tables, a device time, and a row
        // of a device that no longer exists.
        "INSERT INTO device_history (deviceid, field, at, ts, value) VALUES \
         ('0300000001', 'temperature', 1000, NULL, 1.5), \
         ('0300000001', 'temperature', 2000, 1500, 2.5), \
         ('0300000001', 'temperature', 86401000, NULL, 3.5), \
         ('0300000001', 'humidity', 1000, NULL, 40), \
         ('0300000009', 'humidity', 1000, NULL, 41)",
        "INSERT INTO device_history_recent (deviceid, field, at, ts, value) VALUES \
         ('0300000001', 'temperature', 2000, NULL, 9.5)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.history_count("0300000001").await.unwrap(), 5);
    assert_eq!(store.history_count("0300000009").await.unwrap(), 0);
    let raw = store
        .history_raw(
            "0300000001",
            "temperature",
            (Millis(0), Millis(2 * day)),
            10,
        )
        .await
        .unwrap();
    let got: Vec<(i64, Option<i64>, f64)> = raw
        .iter()
        .map(|p| (p.at.0, p.ts.map(|t| t.0), p.value))
        .collect();
    assert_eq!(
        got,
        [
            (1000, None, 1.5),
            (2000, Some(1500), 2.5),
            (2000, None, 9.5),
            (86_401_000, None, 3.5)
        ]
    );
    let buckets = store
        .history_buckets(
            "0300000001",
            "temperature",
            (Millis(0), Millis(2 * day)),
            day,
        )
        .await
        .unwrap();
    let got: Vec<(i64, f64, f64, i64)> = buckets
        .iter()
        .map(|b| (b.index, b.min, b.max, b.count))
        .collect();
    assert_eq!(got, [(0, 1.5, 9.5, 3), (1, 3.5, 3.5, 1)]);
    store.close().await;
}
