//! A user's devices: create, list, get, rename, delete, claim; isolation between users.

use crate::helpers::{TestApp, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const NO_SUCH_DEVICE: &str = "Device does not exist!";

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

#[tokio::test]
async fn created_devices_follow_the_id_scheme_and_shape() {
    let app = spawn_app().await;
    let (jwt, user) = app.register("user@example.com").await;
    let (status, d) = app
        .post(
            "/api/user/device",
            &json!({"name": "Switch", "group": "ITEAD", "type": "01"}),
            Some(&jwt),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&d),
        [
            "apikey",
            "createdAt",
            "deviceKey",
            "deviceid",
            "group",
            "lastConnectedAt",
            "lastDisconnectedAt",
            "lastModified",
            "lastSeenAt",
            "name",
            "online",
            "params",
            "type"
        ]
    );
    assert_eq!(
        (
            &d["name"],
            &d["group"],
            &d["type"],
            &d["deviceid"],
            &d["apikey"]
        ),
        (
            &json!("Switch"),
            &json!("ITEAD"),
            &json!("01"),
            &json!("0100000001"),
            &user["apikey"]
        )
    );
    assert_eq!((&d["online"], &d["params"]), (&json!(false), &json!({})));
    // Lists are newest first; a pause keeps the creation times apart.
    let tick = || tokio::time::sleep(std::time::Duration::from_millis(3));
    tick().await;
    assert_eq!(
        app.create_device(&jwt, "Second", "01").await["deviceid"],
        "0100000002"
    );
    tick().await;
    assert_eq!(
        app.create_device(&jwt, "Light", "02").await["deviceid"],
        "0200000001"
    );
    tick().await;
    assert_eq!(
        app.create_device(&jwt, "Odd type", "ab").await["deviceid"],
        "ab00000001"
    );
    tick().await;
    let (_, no_group) = app
        .post(
            "/api/user/device",
            &json!({"name": "N", "type": "03"}),
            Some(&jwt),
        )
        .await;
    assert_eq!(no_group["group"], "");

    let (_, list) = app.get("/api/user/device", Some(&jwt)).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deviceid"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "0300000001",
            "ab00000001",
            "0200000001",
            "0100000002",
            "0100000001"
        ]
    );
    let (_, one) = app.get("/api/user/device/0100000001", Some(&jwt)).await;
    assert_eq!(one, d);
}

#[tokio::test]
async fn bad_devices_are_refused_with_clear_errors() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("user@example.com").await;
    let long = "x".repeat(129);
    let cases = [
        (
            json!({"type": "01"}),
            "Device name and type must be specified!".to_owned(),
        ),
        (
            json!({"name": "  ", "type": "01"}),
            "Device name and type must be specified!".to_owned(),
        ),
        (
            json!({"name": "A"}),
            "Device name and type must be specified!".to_owned(),
        ),
        (
            json!({"name": "A", "type": "1"}),
            "Device type 1 is forbidden!".to_owned(),
        ),
        (
            json!({"name": "A", "type": "0G"}),
            "Device type 0G is forbidden!".to_owned(),
        ),
        (
            json!({"name": long, "type": "01"}),
            "Device name must be at most 128 characters!".to_owned(),
        ),
        (
            json!({"name": "A", "group": long, "type": "01"}),
            "Group must be at most 128 characters!".to_owned(),
        ),
    ];
    for (body, message) in cases {
        let answer = app.post("/api/user/device", &body, Some(&jwt)).await;
        assert_eq!(
            answer,
            (StatusCode::OK, json!({"error": message})),
            "{body}"
        );
    }
    let wrong_type = app
        .post(
            "/api/user/device",
            &json!({"name": 1, "type": "01"}),
            Some(&jwt),
        )
        .await;
    assert_eq!(wrong_type.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.1,
        json!([]),
        "nothing was created"
    );
}

#[tokio::test]
async fn rename_and_delete() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("user@example.com").await;
    let d = app.create_device(&jwt, "Lamp", "02").await;
    let path = format!("/api/user/device/{}", d["deviceid"].as_str().unwrap());
    let (_, renamed) = app
        .post(
            &path,
            &json!({"name": "New Name", "group": "New Group"}),
            Some(&jwt),
        )
        .await;
    assert_eq!(
        (&renamed["name"], &renamed["group"]),
        (&json!("New Name"), &json!("New Group"))
    );
    assert_eq!(renamed["deviceid"], d["deviceid"]);
    let (_, bad) = app
        .post(&path, &json!({"name": "Only name"}), Some(&jwt))
        .await;
    assert_eq!(
        bad,
        json!({"error": "Device name and group must not be empty!"})
    );
    let (status, deleted) = app.delete(&path, Some(&jwt)).await;
    assert_eq!(
        (status, &deleted["name"]),
        (StatusCode::OK, &json!("New Name"))
    );
    assert_eq!(
        app.get(&path, Some(&jwt)).await.1,
        json!({"error": NO_SUCH_DEVICE})
    );
    assert_eq!(
        app.delete(&path, Some(&jwt)).await.1,
        json!({"error": NO_SUCH_DEVICE})
    );
    let (_, unknown) = app.get("/api/user/device/not-an-id", Some(&jwt)).await;
    assert_eq!(unknown, json!({"error": NO_SUCH_DEVICE}));
}

#[tokio::test]
async fn users_never_see_or_touch_each_others_devices() {
    let app = spawn_app().await;
    let (alice, _) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;
    let d = app.create_device(&alice, "Alice's", "01").await;
    let path = format!("/api/user/device/{}", d["deviceid"].as_str().unwrap());
    assert_eq!(app.get("/api/user/device", Some(&bob)).await.1, json!([]));
    let gone = (StatusCode::OK, json!({"error": NO_SUCH_DEVICE}));
    assert_eq!(app.get(&path, Some(&bob)).await, gone);
    assert_eq!(
        app.post(&path, &json!({"name": "Mine", "group": ""}), Some(&bob))
            .await,
        gone
    );
    assert_eq!(app.delete(&path, Some(&bob)).await, gone);
    let (_, still) = app.get(&path, Some(&alice)).await;
    assert_eq!(still["name"], "Alice's", "bob changed nothing");
}

async fn licenses(app: &TestApp, kind: &str, qty: u32) -> Vec<Value> {
    let admin = app.admin_token().await;
    let body = json!({"name": "ITEAD", "type": kind, "qty": qty});
    let (_, made) = app
        .post("/api/admin/factorydevices/create", &body, Some(&admin))
        .await;
    made.as_array().unwrap_or_else(|| panic!("{made}")).clone()
}

#[tokio::test]
async fn indie_devices_are_claimed_with_their_license() {
    let app = spawn_app().await;
    let made = licenses(&app, "02", 2).await;
    let (alice, user) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;
    let claim = |l: &Value, key: &Value| json!({"name": "Lamp", "group": "Indie", "deviceid": l["deviceid"], "apikey": key});
    let (status, d) = app
        .post(
            "/api/user/device/add",
            &claim(&made[0], &made[0]["apikey"]),
            Some(&alice),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &d["deviceid"],
            &d["type"],
            &d["apikey"],
            &d["group"],
            &d["params"]
        ),
        (
            &json!("0280000001"),
            &json!("02"),
            &user["apikey"],
            &json!("Indie"),
            &json!({})
        )
    );
    let again = app
        .post(
            "/api/user/device/add",
            &claim(&made[0], &made[0]["apikey"]),
            Some(&alice),
        )
        .await;
    assert_eq!(again.1, json!({"error": "Device has already been added!"}));
    let other = app
        .post(
            "/api/user/device/add",
            &claim(&made[0], &made[0]["apikey"]),
            Some(&bob),
        )
        .await;
    assert_eq!(other.1, json!({"error": "Device belongs to other user!"}));
    let wrong_key = app
        .post(
            "/api/user/device/add",
            &claim(&made[1], &made[0]["apikey"]),
            Some(&bob),
        )
        .await;
    assert_eq!(wrong_key.1, json!({"error": NO_SUCH_DEVICE}));
    let not_uuid = app
        .post(
            "/api/user/device/add",
            &claim(&made[1], &json!("nope")),
            Some(&bob),
        )
        .await;
    assert_eq!(not_uuid.1, json!({"error": NO_SUCH_DEVICE}));
    let bad_id = json!({"name": "L", "deviceid": "02800000", "apikey": made[1]["apikey"]});
    let (_, body) = app.post("/api/user/device/add", &bad_id, Some(&bob)).await;
    assert_eq!(body, json!({"error": "Invalid device id format!"}));
    let empty = json!({"name": "", "deviceid": made[1]["deviceid"], "apikey": made[1]["apikey"]});
    let (_, body) = app.post("/api/user/device/add", &empty, Some(&bob)).await;
    assert_eq!(
        body,
        json!({"error": "Device name, id and apikey must not be empty!"})
    );

    // Deleting a claimed device frees its license for a new owner.
    app.delete("/api/user/device/0280000001", Some(&alice))
        .await;
    let (_, d) = app
        .post(
            "/api/user/device/add",
            &claim(&made[0], &made[0]["apikey"]),
            Some(&bob),
        )
        .await;
    assert_eq!(d["deviceid"], "0280000001");
}

#[tokio::test]
async fn concurrent_creates_never_share_an_id() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("user@example.com").await;
    let creates = (0..24).map(|i| {
        let body = json!({"name": format!("d{i}"), "type": "01"});
        let (app, jwt) = (&app, &jwt);
        async move { app.post("/api/user/device", &body, Some(jwt)).await.1["deviceid"].clone() }
    });
    let ids: BTreeSet<String> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("{v}")).to_owned())
        .collect();
    let expected: BTreeSet<String> = (1..=24).map(|n| format!("01{n:08x}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn ids_keep_counting_after_a_restart() {
    let app = spawn_app().await;
    let (jwt, _) = app.register("user@example.com").await;
    app.create_device(&jwt, "one", "01").await;
    let app = app.restart().await;
    let (_, body) = app
        .post(
            "/api/user/login",
            &json!({"email": "user@example.com", "password": crate::helpers::PASSWORD}),
            None,
        )
        .await;
    let jwt2 = body["jwt"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.0,
        StatusCode::OK,
        "tokens survive"
    );
    assert_eq!(
        app.create_device(&jwt2, "two", "01").await["deviceid"],
        "0100000002"
    );
    let made = licenses(&app, "01", 1).await;
    assert_eq!(made[0]["deviceid"], "0180000001");
}
