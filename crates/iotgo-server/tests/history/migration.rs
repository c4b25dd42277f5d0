//! Migration 0004 on a SQLite database with history from before it (the PostgreSQL
//! migration does the same in its dialect): the rows of
//! `device_history` and `device_history_recent` become chunks, read as before.

use iotgo_server::history::{Recorder, SeriesPoint, Shape};
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
    let history = Recorder::load(store.clone(), true).await.unwrap().reader();
    assert_eq!(history.count("0300000001").await.unwrap(), 5);
    assert_eq!(history.count("0300000009").await.unwrap(), 0);
    let fields = ["temperature".to_owned()];
    let range = (Millis(0), Millis(2 * day));
    let raw = history
        .series("0300000001", &fields, range, Shape::Raw { cap: 10 })
        .await
        .unwrap();
    let got: Vec<(i64, Option<i64>, f64)> = raw
        .points
        .iter()
        .map(|p| match p {
            SeriesPoint::Raw { at, ts, values } => {
                (at.0, ts.map(|t| t.0), values[0].expect("one field"))
            }
            SeriesPoint::Bucket { .. } => panic!("raw points asked"),
        })
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
    let buckets = history
        .series("0300000001", &fields, range, Shape::Buckets { width: day })
        .await
        .unwrap();
    let got: Vec<(i64, f64, f64, i64)> = buckets
        .points
        .iter()
        .map(|p| match p {
            SeriesPoint::Bucket { values, .. } => {
                let b = values[0].expect("one field");
                (b.index, b.min, b.max, b.count)
            }
            SeriesPoint::Raw { .. } => panic!("buckets asked"),
        })
        .collect();
    assert_eq!(got, [(0, 1.5, 9.5, 3), (1, 3.5, 3.5, 1)]);
    store.close().await;
}

/// Migration 0005 on a SQLite database with devices from before it: each gets its own
/// device key, a UUID v4, different from every other one.
#[tokio::test]
async fn devices_from_before_device_keys_each_get_their_own() {
    install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = Store::sqlite_url(dir.path());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run_to(4, &pool)
        .await
        .unwrap();
    for n in 1..=50 {
        sqlx::query(
            "INSERT INTO devices (deviceid, apikey, name, type, created_at) \
             VALUES ($1, 'k', 'd', '01', 0)",
        )
        .bind(format!("01{n:08x}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = Store::connect(&url).await.unwrap();
    let mut keys = std::collections::BTreeSet::new();
    for n in 1..=50 {
        let (owner, key) = store
            .devices()
            .keys_of(&format!("01{n:08x}"))
            .await
            .unwrap()
            .expect("the device");
        assert_eq!(owner, "k");
        let uuid = uuid::Uuid::parse_str(&key).expect("a UUID");
        assert_eq!(
            (uuid.get_version_num(), uuid.hyphenated().to_string()),
            (4, key.clone())
        );
        keys.insert(key);
    }
    assert_eq!(keys.len(), 50);
    store.close().await;
}
