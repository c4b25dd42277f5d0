//! Where points live: chunks (folded, or written straight by an import) and the recent
//! points of the history log, held in memory and read back from the log after a restart,
//! read as one series in the order they were recorded.

use crate::helpers::{TestApp, spawn_app_with};
use crate::{device, ok, owner, update};
use iotgo_server::store::{HistoryRow, Millis, StateWrite};
use serde_json::{Value, json};

/// Records `(seconds after base, value)` temperatures through the device writer (a
/// batch, its log row, then the recent points).
async fn record(app: &TestApp, deviceid: &str, base: i64, points: &[(i64, f64)]) {
    let writes: Vec<StateWrite> = points
        .iter()
        .map(|(secs, v)| StateWrite::Merge {
            deviceid: deviceid.to_owned(),
            params: json!({"temperature": v, "humidity": 50})
                .as_object()
                .cloned()
                .unwrap(),
            at: Millis(base + secs * 1000),
            seen: true,
        })
        .collect();
    let (before, expected) = (app.state.history.recent_len(), 2 * writes.len());
    let mut waits = Vec::new();
    for write in writes {
        waits.push(app.state.devices.writer().submit(write).await);
    }
    for wait in waits {
        assert_eq!(wait.await, Ok(true));
    }
    let points = app.state.history.recent_len() - before;
    assert_eq!(points, expected);
}

/// What the history API answers for the series of the first test, wherever its points are.
async fn check(app: &TestApp, token: &str, th: &str, base: i64) {
    let to = base + 10_000;
    let range = format!("from={base}&to={to}&fields=temperature");
    let at = |secs: i64| Millis(base + secs * 1000).iso();
    let point = |s: i64, v: f64| json!({"time": at(s), "temperature": v});
    let get = async |query: String| {
        let url = format!("/api/user/device/{th}/history?{query}");
        app.get(&url, Some(token)).await.1
    };
    let points = |page: &Value| page["points"].clone();
    // Raw pages run across both, chunk points first at equal times ...
    let page = get(range.clone()).await;
    assert_eq!(
        points(&page),
        json!([point(0, 0.0), point(1, 1.0), point(2, 2.0)])
    );
    assert_eq!(page["more"], true);
    let page = get(format!("from={}&to={to}&fields=temperature", base + 2001)).await;
    assert_eq!(
        points(&page),
        json!([point(3, 3.0), point(3, 32.0), point(4, 4.0)])
    );
    assert_eq!(page["more"], false);
    // ... and buckets count both.
    let buckets = get(format!("{range}&bucket=5")).await;
    assert_eq!(
        buckets["points"],
        json!([{"time": at(0),
            "temperature": {"min": 0.0, "avg": 7.0, "max": 32.0, "count": 6}}])
    );
}

#[tokio::test]
async fn chunks_and_recent_points_read_as_one_series_before_and_after_a_fold_or_restart() {
    let app = spawn_app_with(|c| c.history_max_points = 4).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    // Recent points are kept from their device's creation on: the series starts after it.
    let base = Millis::now().0 + 60_000;

    // Four points in a chunk, two recent ones, one at a chunk point's time.
    let rows: Vec<HistoryRow> = (0..4)
        .map(|i| HistoryRow {
            deviceid: th.clone(),
            field: "temperature".into(),
            at: Millis(base + i * 1000),
            ts: None,
            value: i as f64,
        })
        .collect();
    app.state.store.append_history(&rows).await.unwrap();
    record(&app, &th, base, &[(3, 32.0), (4, 4.0)]).await;
    assert_eq!(app.state.history.recent_len(), 4);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 8);

    check(&app, &me.token, &th, base).await;

    // A start after a crash reads the recent points back from the log.
    let app = app.restart_after_crash().await;
    assert_eq!(app.state.history.recent_len(), 4);
    check(&app, &me.token, &th, base).await;

    // A fold moves them into chunks and empties the log.
    assert_eq!(app.state.devices.writer().fold_history(1).await.unwrap(), 4);
    assert_eq!(app.state.devices.writer().fold_history(1).await.unwrap(), 0);
    assert_eq!(app.state.history.recent_len(), 0);
    check(&app, &me.token, &th, base).await;
    let app = app.restart().await;
    assert_eq!(app.state.history.recent_len(), 0);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 8);
    check(&app, &me.token, &th, base).await;

    // A shutdown folds the recent points: the next start has no log to read back.
    record(&app, &th, base, &[(5, 5.0)]).await;
    assert_eq!(app.state.history.recent_len(), 2);
    let app = app.restart().await;
    assert_eq!(app.state.history.recent_len(), 0);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 10);
}

#[tokio::test]
async fn a_deleted_device_leaves_no_recent_points_and_none_come_back_after_a_restart() {
    let app = spawn_app_with(|_| {}).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    let keep = device(&app, &me, "03").await;
    let base = Millis::now().0 + 60_000;
    record(&app, &th, base, &[(0, 1.0), (1, 2.0)]).await;
    record(&app, &keep, base, &[(0, 5.0)]).await;
    assert_eq!(app.state.history.recent_len(), 6);

    let (status, _) = app
        .delete(&format!("/api/user/device/{th}"), Some(&me.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.state.history.recent_len(), 2);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 0);

    let app = app.restart_after_crash().await;
    assert_eq!(app.state.history.recent_len(), 2);
    assert_eq!(app.state.history.count(&keep).await.unwrap(), 2);
    assert_eq!(app.state.devices.writer().fold_history(1).await.unwrap(), 2);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 0);
    assert_eq!(app.state.history.count(&keep).await.unwrap(), 2);
}

#[tokio::test]
async fn with_history_off_updates_are_stored_and_record_no_points() {
    let app = spawn_app_with(|c| c.history_enabled = false).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    let params = json!({"temperature": "21.5", "humidity": "40"});
    assert_eq!(update(&app, &me, &th, params).await, ok(&me, &th));

    let url = format!("/api/user/device/{th}");
    let (status, body) = app.get(&url, Some(&me.token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["params"]["temperature"], "21.5");
    assert_eq!(app.state.history.recent_len(), 0);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 0);
}
