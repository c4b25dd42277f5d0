//! Integration tests of the device type registry and the history of device data:
//! validation per type, `GET /api/types`, the history API (JSON and CSV), retention, and
//! history on a cluster with the leases (`cluster.rs`).

#[path = "../api/helpers.rs"]
mod helpers;

mod api;
mod cluster;
mod layout;
mod migration;
mod retention;
mod validation;

use helpers::TestApp;
use iotgo_server::store::{HistoryRow, Millis};
use serde_json::{Value, json};

/// 2023-11-14T22:13:20.000Z: the start of the stored test series.
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) use helpers::{Owner, device, owner};

/// A device's `update` over `POST /api/http`; the answer (HTTP 200 asserted).
pub(crate) async fn update(app: &TestApp, owner: &Owner, deviceid: &str, params: Value) -> Value {
    let body = json!({"action": "update", "deviceid": deviceid, "apikey": owner.apikey,
        "params": params});
    let (status, answer) = app.post("/api/http", &body, None).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The answer to an accepted request.
pub(crate) fn ok(owner: &Owner, deviceid: &str) -> Value {
    json!({"error": 0, "deviceid": deviceid, "apikey": owner.apikey})
}

/// The answer to a request with invalid params.
pub(crate) fn bad(owner: &Owner, deviceid: &str) -> Value {
    json!({"error": 400, "reason": "Bad Request", "deviceid": deviceid, "apikey": owner.apikey})
}

/// Stores `(field, seconds after T0, value)` rows of `deviceid` directly.
pub(crate) async fn store_rows(app: &TestApp, deviceid: &str, rows: &[(&str, i64, f64)]) {
    let rows: Vec<HistoryRow> = rows
        .iter()
        .map(|(field, secs, value)| HistoryRow {
            deviceid: deviceid.to_owned(),
            field: (*field).to_owned(),
            at: Millis(T0 + secs * 1000),
            ts: None,
            value: *value,
        })
        .collect();
    app.state.store.append_history(&rows).await.unwrap();
}
