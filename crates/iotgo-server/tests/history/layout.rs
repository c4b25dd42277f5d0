//! The two tables of the history: rows folded into `device_history` (where the rows of
//! databases from before migration 0003 are) and rows still in `device_history_recent`
//! read as one series, in the order they were recorded.

use crate::helpers::spawn_app_with;
use crate::{T0, device, owner, store_rows};
use iotgo_server::store::Millis;
use serde_json::{Value, json};

fn at(secs: i64) -> String {
    Millis(T0 + secs * 1000).iso()
}

#[tokio::test]
async fn folded_and_recent_rows_read_as_one_series() {
    let app = spawn_app_with(|c| c.history_max_points = 4).await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    let store = &app.state.store;
    let get = |query: String| {
        let (app, me, th) = (&app, &me, &th);
        async move {
            let url = format!("/api/user/device/{th}/history?{query}");
            app.get(&url, Some(&me.token)).await.1
        }
    };
    let range = format!("from={T0}&to={}&fields=temperature", T0 + 10_000);
    let rows: Vec<(&str, i64, f64)> = (0..4).map(|i| ("temperature", i, i as f64)).collect();
    store_rows(&app, &th, &rows).await;
    let recent = get(format!("{range}&bucket=5")).await;

    // Arrange: those four folded, then two more recent ones, one at a folded row's time.
    assert_eq!(store.fold_history(1).await.unwrap(), 4);
    assert_eq!(
        store.fold_history(1).await.unwrap(),
        0,
        "nothing left to fold"
    );
    assert_eq!(get(format!("{range}&bucket=5")).await, recent);
    store_rows(
        &app,
        &th,
        &[("temperature", 3, 32.0), ("temperature", 4, 4.0)],
    )
    .await;
    assert_eq!(store.history_count(&th).await.unwrap(), 6);

    // Assert: raw pages run across both tables, folded rows first at equal times ...
    let points = |page: &Value| page["points"].clone();
    let point = |s: i64, v: f64| json!({"time": at(s), "temperature": v});
    let page = get(range.clone()).await;
    assert_eq!(
        points(&page),
        json!([point(0, 0.0), point(1, 1.0), point(2, 2.0)])
    );
    assert_eq!(page["more"], true);
    let to = T0 + 10_000;
    let page = get(format!("from={}&to={to}&fields=temperature", T0 + 2001)).await;
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
