//! The history API: recording through the Device API, ranges, fields, buckets, the point
//! cap, CSV, ownership, and history deleted with its device or user.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::{Owner, T0, device, ok, owner, store_rows, update};
use iotgo_server::store::Millis;
use serde_json::{Value, json};

/// ISO time `secs` seconds after [`T0`].
fn at(secs: i64) -> String {
    Millis(T0 + secs * 1000).iso()
}

/// `GET /api/user/device/{id}/history?{query}` as `who`.
async fn history(app: &TestApp, who: &Owner, id: &str, query: &str) -> (u16, Value) {
    let (status, body) = app
        .get(
            &format!("/api/user/device/{id}/history?{query}"),
            Some(&who.token),
        )
        .await;
    (status.as_u16(), body)
}

/// A `03` device with temperature 10…19 at T0+0…9 s and humidity 50…58 at even seconds.
async fn series(app: &TestApp, me: &Owner) -> String {
    let th = device(app, me, "03").await;
    let mut rows: Vec<(&str, i64, f64)> = (0..10)
        .map(|i| ("temperature", i, 10.0 + i as f64))
        .collect();
    rows.extend((0..10).step_by(2).map(|i| ("humidity", i, 50.0 + i as f64)));
    store_rows(app, &th, &rows).await;
    th
}

fn range(from: i64, to: i64) -> String {
    format!("from={}&to={}", T0 + from * 1000, T0 + to * 1000)
}

#[tokio::test]
async fn accepted_updates_are_recorded() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    let li = device(&app, &me, "02").await;
    let params = json!({"temperature": "21.5", "humidity": 40, "ts": "2024-01-01T00:00:00Z"});
    assert_eq!(update(&app, &me, &th, params).await, ok(&me, &th));
    let params = json!({"light": "on", "brightness": "40", "color": "#ff0000"});
    assert_eq!(update(&app, &me, &li, params).await, ok(&me, &li));
    let params = json!({"light": "off", "brightness": 101});
    assert_ne!(update(&app, &me, &li, params).await, ok(&me, &li));

    let (_, d) = app
        .get(&format!("/api/user/device/{th}"), Some(&me.token))
        .await;
    let (status, body) = history(&app, &me, &th, "").await;
    assert_eq!(status, 200);
    assert_eq!(body["fields"], json!(["temperature", "humidity"]));
    assert_eq!(body["bucket"], Value::Null);
    assert_eq!(body["more"], false);
    assert_eq!(
        body["points"],
        json!([{"time": d["lastModified"], "ts": "2024-01-01T00:00:00.000Z",
            "temperature": 21.5, "humidity": 40.0}])
    );
    let (_, d) = app
        .get(&format!("/api/user/device/{li}"), Some(&me.token))
        .await;
    let (_, body) = history(&app, &me, &li, "").await;
    assert_eq!(body["fields"], json!(["light", "brightness"]));
    assert_eq!(
        body["points"],
        json!([{"time": d["lastModified"], "light": 1.0, "brightness": 40.0}])
    );
}

#[tokio::test]
async fn raw_points_by_range_and_field() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = series(&app, &me).await;

    let (status, body) = history(&app, &me, &th, &range(0, 3)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"deviceid": th, "from": at(0), "to": at(3), "bucket": null,
            "fields": ["temperature", "humidity"], "points": [
                {"time": at(0), "temperature": 10.0, "humidity": 50.0},
                {"time": at(1), "temperature": 11.0},
                {"time": at(2), "temperature": 12.0, "humidity": 52.0},
            ], "more": false})
    );
    let query = format!("from={}&to={}&fields=humidity", at(2), at(6));
    let (_, body) = history(&app, &me, &th, &query).await;
    assert_eq!(
        body["points"],
        json!([{"time": at(2), "humidity": 52.0}, {"time": at(4), "humidity": 54.0}])
    );
    let (_, body) = history(&app, &me, &th, &format!("{}&fields=pressure", range(0, 10))).await;
    assert_eq!(body["points"], json!([]));
}

#[tokio::test]
async fn buckets_give_exact_min_avg_max() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = series(&app, &me).await;

    let (status, body) = history(&app, &me, &th, &format!("{}&bucket=5", range(0, 10))).await;
    assert_eq!(status, 200);
    assert_eq!(body["bucket"], 5);
    assert_eq!(
        body["points"],
        json!([
            {"time": at(0),
                "temperature": {"min": 10.0, "avg": 12.0, "max": 14.0, "count": 5},
                "humidity": {"min": 50.0, "avg": 52.0, "max": 54.0, "count": 3}},
            {"time": at(5),
                "temperature": {"min": 15.0, "avg": 17.0, "max": 19.0, "count": 5},
                "humidity": {"min": 56.0, "avg": 57.0, "max": 58.0, "count": 2}},
        ])
    );
}

#[tokio::test]
async fn answers_stay_under_the_point_cap() {
    let app = spawn_app_with(|c| c.history_max_points = 4).await;
    let me = owner(&app, "a@example.com").await;
    let th = series(&app, &me).await;

    // Raw: the first 4 points, and `more` to ask again from after the last one.
    let (_, body) = history(
        &app,
        &me,
        &th,
        &format!("{}&fields=temperature", range(0, 10)),
    )
    .await;
    let times: Vec<Value> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["time"].clone())
        .collect();
    assert_eq!(times, [at(0), at(1), at(2), at(3)]);
    assert_eq!(body["more"], true);
    let (_, body) = history(&app, &me, &th, &range(8, 10)).await;
    assert_eq!(body["more"], false);

    // Auto: 10 s over at most 4 buckets is 3 s each.
    let (_, body) = history(&app, &me, &th, &format!("{}&bucket=auto", range(0, 10))).await;
    assert_eq!(body["bucket"], 3);
    assert_eq!(
        body["points"],
        json!([
            {"time": at(0),
                "temperature": {"min": 10.0, "avg": 11.0, "max": 12.0, "count": 3},
                "humidity": {"min": 50.0, "avg": 51.0, "max": 52.0, "count": 2}},
            {"time": at(3),
                "temperature": {"min": 13.0, "avg": 14.0, "max": 15.0, "count": 3},
                "humidity": {"min": 54.0, "avg": 54.0, "max": 54.0, "count": 1}},
            {"time": at(6),
                "temperature": {"min": 16.0, "avg": 17.0, "max": 18.0, "count": 3},
                "humidity": {"min": 56.0, "avg": 57.0, "max": 58.0, "count": 2}},
            {"time": at(9),
                "temperature": {"min": 19.0, "avg": 19.0, "max": 19.0, "count": 1}},
        ])
    );
    let (status, body) = history(&app, &me, &th, &format!("{}&bucket=2", range(0, 10))).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "Too many buckets: at most 4 per answer (use a wider bucket or bucket=auto)"})
        )
    );
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    for (query, name) in [
        ("from=yesterday", "from"),
        (&range(5, 5) as &str, "from"),
        ("to=soon", "to"),
        ("fields=a,b%20c", "fields"),
        ("fields=a,,b", "fields"),
        ("bucket=0", "bucket"),
        ("bucket=-5", "bucket"),
        ("bucket=wide", "bucket"),
    ] {
        let (status, body) = history(&app, &me, &th, query).await;
        let want = json!({"error": format!("Invalid query parameter `{name}`")});
        assert_eq!((status, body), (400, want), "{query}");
    }
}

#[tokio::test]
async fn times_outside_the_epoch_to_the_year_9999_are_400_and_nothing_overflows() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = series(&app, &me).await;
    for (query, name) in [
        ("from=-9223372036854775808", "from"),
        ("from=-9223372036854775808&bucket=auto", "from"),
        (
            "from=-9223372036854775808&to=9223372036854775807&bucket=1",
            "to",
        ),
        ("from=-1", "from"),
        ("from=-0001-12-31T00:00:00Z", "from"),
        ("to=9223372036854775807", "to"),
        ("from=0&to=9223372036854775807&bucket=auto", "to"),
        ("to=253402300800001", "to"),
    ] {
        let (status, body) = history(&app, &me, &th, query).await;
        let want = json!({"error": format!("Invalid query parameter `{name}`")});
        assert_eq!((status, body), (400, want), "{query}");
    }

    // The widest range allowed is read, raw and in buckets of any width.
    let widest = "from=0&to=253402300800000";
    let widest_bucket = format!("{widest}&bucket={}", i64::MAX / 1000);
    for query in [widest, &format!("{widest}&bucket=auto"), &widest_bucket] {
        let (status, body) = history(&app, &me, &th, query).await;
        assert_eq!(status, 200, "{query} → {body}");
        assert_eq!(body["from"], "1970-01-01T00:00:00.000Z", "{query}");
        assert!(!body["points"].as_array().unwrap().is_empty(), "{query}");
    }
    let (_, body) = history(&app, &me, &th, &widest_bucket).await;
    assert_eq!(body["points"][0]["time"], "1970-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn csv_export() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = series(&app, &me).await;
    let get = |query: String| {
        let req = app
            .client
            .get(format!(
                "{}/api/user/device/{th}/history.csv?{query}",
                app.base
            ))
            .bearer_auth(&me.token);
        async move {
            let res = req.send().await.unwrap();
            let head = |h: &str| res.headers()[h].to_str().unwrap().to_owned();
            let heads = (
                head("content-type"),
                head("content-disposition"),
                head("x-history-more"),
            );
            (res.status().as_u16(), heads, res.text().await.unwrap())
        }
    };
    let (status, heads, text) = get(range(0, 3)).await;
    assert_eq!(status, 200);
    assert_eq!(
        heads,
        (
            "text/csv; charset=utf-8".to_owned(),
            format!("attachment; filename=\"{th}-history.csv\""),
            "false".to_owned()
        )
    );
    assert_eq!(
        text,
        format!(
            "time,ts,temperature,humidity\n{},,10,50\n{},,11,\n{},,12,52\n",
            at(0),
            at(1),
            at(2)
        )
    );
    let (_, _, text) = get(format!("{}&bucket=5", range(0, 10))).await;
    assert_eq!(
        text,
        format!(
            "time,temperature_min,temperature_avg,temperature_max,temperature_count,\
             humidity_min,humidity_avg,humidity_max,humidity_count\n\
             {},10,12,14,5,50,52,54,3\n{},15,17,19,5,56,57,58,2\n",
            at(0),
            at(5)
        )
    );
}

#[tokio::test]
async fn csv_values_stay_numbers_and_formula_field_names_are_refused() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let th = device(&app, &me, "03").await;
    store_rows(
        &app,
        &th,
        &[("temperature", 0, -5.5), ("humidity", 0, 40.0)],
    )
    .await;
    let csv = |query: String| {
        let req = app
            .client
            .get(format!(
                "{}/api/user/device/{th}/history.csv?{query}",
                app.base
            ))
            .bearer_auth(&me.token);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    // A negative number is a number, not a formula: written as it is.
    let (status, text) = csv(range(0, 1)).await;
    assert_eq!(status, 200);
    assert_eq!(
        text,
        format!("time,ts,temperature,humidity\n{},,-5.5,40\n", at(0))
    );
    // Field names, the only text from users in this CSV, cannot begin a formula.
    for field in ["%3DHYPERLINK(1)", "-1", "%2Bx", "%40x"] {
        let (status, text) = csv(format!("{}&fields={field}", range(0, 1))).await;
        assert_eq!(
            (status, text.as_str()),
            (400, r#"{"error":"Invalid query parameter `fields`"}"#),
            "{field}"
        );
    }
}

#[tokio::test]
async fn only_the_owner_reads_the_history() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let th = series(&app, &me).await;
    let refused = json!({"error": "Device does not exist!"});
    assert_eq!(history(&app, &other, &th, "").await, (200, refused.clone()));
    let (status, body) = app
        .get(
            &format!("/api/user/device/{th}/history.csv"),
            Some(&other.token),
        )
        .await;
    assert_eq!((status.as_u16(), body), (200, refused.clone()));
    let (status, _) = app
        .get(&format!("/api/user/device/{th}/history"), None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(history(&app, &me, "0300000999", "").await, (200, refused));
}

#[tokio::test]
async fn deleting_a_device_or_its_user_deletes_its_history() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let (a, b) = (series(&app, &me).await, series(&app, &me).await);
    let history = &app.state.history;
    assert_eq!(history.count(&a).await.unwrap(), 15);
    let (status, _) = app
        .delete(&format!("/api/user/device/{a}"), Some(&me.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(history.count(&a).await.unwrap(), 0);
    assert_eq!(history.count(&b).await.unwrap(), 15);

    let admin = app.admin_token().await;
    let (status, _) = app
        .delete(&format!("/api/admin/users/{}", me.apikey), Some(&admin))
        .await;
    assert_eq!(status, 200);
    assert_eq!(history.count(&b).await.unwrap(), 0);
}
