//! Retention: history older than `history_retention_days` is deleted, in chunks, by the
//! sweep the server runs at start-up and then hourly.

use crate::helpers::spawn_app_with;
use crate::{T0, device, owner, store_rows};
use iotgo_server::retention;
use iotgo_server::store::Millis;
use std::time::Duration;

const DAY_SECS: i64 = 24 * 3600;

#[tokio::test]
async fn the_sweep_deletes_old_rows_in_chunks() {
    let app = spawn_app_with(|c| c.history_retention_days = 0).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    // 12,000 rows a day and more before "now" (three chunks), 3 within the last day.
    let mut rows: Vec<(&str, i64, f64)> = (0..12_000).map(|i| ("temperature", i, 1.0)).collect();
    rows.extend((0..3).map(|i| ("temperature", 13_000 + DAY_SECS + i, 2.0)));
    store_rows(&app, &th, &rows).await;
    let now = Millis(T0 + (13_000 + 2 * DAY_SECS) * 1000);

    let deleted = retention::sweep(&app.state.store, app.state.devices.writer(), 1, now)
        .await
        .unwrap();
    assert_eq!(deleted, 12_000);
    assert_eq!(app.state.history.count(&th).await.unwrap(), 3);
    assert_eq!(
        retention::sweep(&app.state.store, app.state.devices.writer(), 1, now)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_server_sweeps_at_start_up() {
    let app = spawn_app_with(|c| c.history_retention_days = 30).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    let old = (Millis::now().0 - T0) / 1000 - 31 * DAY_SECS;
    let recent = (Millis::now().0 - T0) / 1000 - 29 * DAY_SECS;
    store_rows(
        &app,
        &th,
        &[("humidity", old, 1.0), ("humidity", recent, 2.0)],
    )
    .await;
    assert_eq!(app.state.history.count(&th).await.unwrap(), 2);

    let app = app.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.state.history.count(&th).await.unwrap() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old row never swept"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
