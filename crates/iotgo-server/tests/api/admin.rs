//! The admin API: login, roles, users, devices, licenses and their CSV.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};
use iotgo_server::config::{AdminEntry, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn field<'a>(list: &'a Value, name: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[name].as_str().unwrap())
        .collect()
}

async fn total(app: &TestApp, path: &str, token: &str) -> String {
    let res = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    res.headers()["x-total-count"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn admin_login_and_roles() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/admin/login",
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], json!({"email": ADMIN_EMAIL, "isAdmin": true}));
    let (_, bad) = app
        .post(
            "/api/admin/login",
            &json!({"email": ADMIN_EMAIL, "password": "nope nope"}),
            None,
        )
        .await;
    assert_eq!(
        bad,
        json!({"error": "Email address or password is not correct!"})
    );

    let admin = body["jwt"].as_str().unwrap();
    let (user, _) = app.register("user@example.com").await;
    assert_eq!(
        app.get("/api/admin/users", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/admin/users", Some(&user)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/user/device", Some(admin)).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, check) = app.get("/api/admin/checkUpdate", Some(admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(check["message"].as_str().unwrap().starts_with("IoTgo "));
    // A user cannot log in as admin, nor an admin as a user.
    let (_, as_admin) = app
        .post(
            "/api/admin/login",
            &json!({"email": "user@example.com", "password": crate::helpers::PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        as_admin["error"],
        "Email address or password is not correct!"
    );
}

#[tokio::test]
async fn users_list_pages_and_filters() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["ann", "bob", "cid"] {
        app.register(&format!("{name}@example.com")).await;
    }
    let (status, all) = app.get("/api/admin/users", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        field(&all, "email"),
        ["cid@example.com", "bob@example.com", "ann@example.com"]
    );
    assert!(all[0].get("password_hash").is_none() && all[0].get("password").is_none());
    assert_eq!(total(&app, "/api/admin/users?limit=1", &admin).await, "3");
    let (_, page) = app
        .get("/api/admin/users?limit=1&skip=1", Some(&admin))
        .await;
    assert_eq!(field(&page, "email"), ["bob@example.com"]);
    let (_, found) = app.get("/api/admin/users?email=B", Some(&admin)).await;
    assert_eq!(field(&found, "email"), ["bob@example.com"]);
    let bob_created = found[0]["createdAt"].as_str().unwrap();
    let (_, since) = app
        .get(
            &format!("/api/admin/users?createdAtFrom={bob_created}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        field(&since, "email"),
        ["cid@example.com", "bob@example.com"]
    );
    let (_, until) = app
        .get(
            &format!("/api/admin/users?createdAtTo={bob_created}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        field(&until, "email"),
        ["bob@example.com", "ann@example.com"]
    );
    let newest_day = &all[0]["createdAt"].as_str().unwrap()[..10];
    let (_, day) = app
        .get(
            &format!("/api/admin/users?createdAtTo={newest_day}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        day.as_array().unwrap().len(),
        3,
        "a date as upper bound takes in the whole day"
    );
    let (_, none) = app
        .get("/api/admin/users?createdAtTo=2000-01-01", Some(&admin))
        .await;
    assert_eq!(none, json!([]));
    let (status, bad) = app.get("/api/admin/users?limit=abc", Some(&admin)).await;
    assert_eq!(
        (status, bad),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "Invalid query parameter `limit`"})
        )
    );
    let (status, _) = app
        .get("/api/admin/users?createdAtFrom=someday", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deleting_a_user_deletes_their_devices() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (jwt, user) = app.register("user@example.com").await;
    let (other, _) = app.register("other@example.com").await;
    let d = app.create_device(&jwt, "Mine", "01").await;
    let kept = app.create_device(&other, "Theirs", "01").await;
    let path = format!("/api/admin/users/{}", user["apikey"].as_str().unwrap());
    assert_eq!(
        app.get(&path, Some(&admin)).await,
        (StatusCode::OK, user.clone())
    );
    assert_eq!(
        app.delete(&path, Some(&admin)).await,
        (StatusCode::OK, user.clone())
    );
    assert_eq!(
        app.get(&path, Some(&admin)).await.1,
        json!({"error": "User does not exist!"})
    );
    assert_eq!(
        app.delete(&path, Some(&admin)).await.1,
        json!({"error": "User does not exist!"})
    );
    let device = format!("/api/admin/devices/{}", d["deviceid"].as_str().unwrap());
    assert_eq!(
        app.get(&device, Some(&admin)).await.1,
        json!({"error": "Device does not exist!"})
    );
    let (_, list) = app.get("/api/admin/devices", Some(&admin)).await;
    assert_eq!(
        field(&list, "deviceid"),
        [kept["deviceid"].as_str().unwrap()]
    );
    assert_eq!(
        app.get("/api/user/device", Some(&jwt)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn devices_list_has_the_original_filters() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (alice, alice_user) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;
    // Lists are newest first; a pause keeps the creation times apart.
    let tick = || tokio::time::sleep(std::time::Duration::from_millis(3));
    app.create_device(&alice, "Kitchen Lamp", "02").await;
    tick().await;
    app.create_device(&alice, "Porch switch", "01").await;
    tick().await;
    app.create_device(&bob, "Garage LAMP", "02").await;

    let (_, all) = app.get("/api/admin/devices", Some(&admin)).await;
    assert_eq!(
        field(&all, "deviceid"),
        ["0200000002", "0100000001", "0200000001"]
    );
    assert!(all[0].get("params").is_none(), "lists leave params out");
    let query = |q: &str| format!("/api/admin/devices?{q}");
    let ids = |v: &Value| {
        field(v, "deviceid")
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&app.get(&query("name=lamp"), Some(&admin)).await.1),
        ["0200000002", "0200000001"]
    );
    assert_eq!(
        ids(&app.get(&query("type=01"), Some(&admin)).await.1),
        ["0100000001"]
    );
    assert_eq!(
        ids(&app.get(&query("deviceid=00000002"), Some(&admin)).await.1),
        ["0200000002"]
    );
    let by_owner = query(&format!(
        "apikey={}",
        alice_user["apikey"].as_str().unwrap()
    ));
    assert_eq!(
        ids(&app.get(&by_owner, Some(&admin)).await.1),
        ["0100000001", "0200000001"]
    );
    assert_eq!(
        ids(&app.get(&query("name=%25"), Some(&admin)).await.1),
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );
    assert_eq!(
        app.get(&query("createdAtFrom=2100-01-01"), Some(&admin))
            .await
            .1,
        json!([])
    );
    assert_eq!(
        app.get(&query("lastModifiedAtFrom=2000-01-01"), Some(&admin))
            .await
            .1,
        json!([]),
        "never modified"
    );
    assert_eq!(total(&app, &query("limit=1&type=02"), &admin).await, "2");
    let (_, one) = app.get("/api/admin/devices/0200000001", Some(&admin)).await;
    assert_eq!(
        (&one["name"], &one["params"]),
        (&json!("Kitchen Lamp"), &json!({}))
    );
}

#[tokio::test]
async fn licenses_are_made_in_batches_listed_and_exported() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.post("/api/admin/factorydevices/create", &body, Some(admin))
                .await
        }
    };
    let (status, first) = create(json!({"name": "ITEAD", "type": "02", "qty": 2})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(field(&first, "deviceid"), ["0280000001", "0280000002"]);
    let l = &first[0];
    let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["apikey", "batch", "createdAt", "deviceid", "name", "type"]
    );
    assert_eq!(
        (&l["name"], &l["type"], &l["batch"]),
        (&json!("ITEAD"), &json!("02"), &json!("0280000001"))
    );
    assert_ne!(first[0]["apikey"], first[1]["apikey"]);
    let (_, second) = create(json!({"name": "Sonoff", "type": "02", "qty": 3})).await;
    assert_eq!(
        field(&second, "deviceid"),
        ["0280000003", "0280000004", "0280000005"]
    );

    for (body, message) in [
        (
            json!({"name": "X", "type": "02", "qty": 0}),
            "qty must be a whole number from 1 to 1000!",
        ),
        (
            json!({"name": "X", "type": "02", "qty": 1001}),
            "qty must be a whole number from 1 to 1000!",
        ),
        (
            json!({"name": "X", "type": "02", "qty": 1.5}),
            "qty must be a whole number from 1 to 1000!",
        ),
        (
            json!({"name": "X", "type": "02", "qty": -3}),
            "qty must be a whole number from 1 to 1000!",
        ),
        (
            json!({"name": "X", "type": "2", "qty": 1}),
            "Device type 2 is forbidden!",
        ),
        (
            json!({"type": "02", "qty": 1}),
            "Factory device name, type and qty must not be empty!",
        ),
    ] {
        assert_eq!(
            create(body.clone()).await,
            (StatusCode::OK, json!({"error": message})),
            "{body}"
        );
    }
    let (_, big) = create(json!({"name": "Big", "type": "01", "qty": 1000})).await;
    assert_eq!(big.as_array().unwrap().len(), 1000);
    assert_eq!(big[999]["deviceid"], "01800003e8");

    let (_, all) = app
        .get("/api/admin/factorydevices?type=02", Some(&admin))
        .await;
    assert_eq!(
        field(&all, "deviceid"),
        [
            "0280000005",
            "0280000004",
            "0280000003",
            "0280000002",
            "0280000001"
        ]
    );
    let (_, batch) = app
        .get("/api/admin/factorydevices?batch=0280000001", Some(&admin))
        .await;
    assert_eq!(field(&batch, "deviceid"), ["0280000002", "0280000001"]);
    let (_, by_name) = app
        .get("/api/admin/factorydevices?name=sono", Some(&admin))
        .await;
    assert_eq!(by_name.as_array().unwrap().len(), 3);
    assert_eq!(
        total(&app, "/api/admin/factorydevices", &admin).await,
        "1005"
    );

    let res = app
        .client
        .get(format!(
            "{}/api/admin/factorydevices/csv?batch=0280000001",
            app.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"licenses-0280000001.csv\""
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "deviceid,apikey,type,name,batch,createdAt");
    let row = |l: &Value| {
        format!(
            "{},{},02,ITEAD,0280000001,{}",
            l["deviceid"].as_str().unwrap(),
            l["apikey"].as_str().unwrap(),
            l["createdAt"].as_str().unwrap()
        )
    };
    assert_eq!(lines[1..], [row(&first[1]), row(&first[0])]);
    let (user_token, _) = app.register("u@example.com").await;
    let csv_as_user = app
        .get("/api/admin/factorydevices/csv", Some(&user_token))
        .await;
    assert_eq!(csv_as_user.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_from_the_config_file_log_in_with_their_hash() {
    let hash = iotgo_server::auth::hash_password("file admin pw".into())
        .await
        .unwrap();
    let app = spawn_app_with(|c| {
        c.admins = vec![AdminEntry {
            email: "Ops@Example.com".into(),
            password_hash: Secret::new(hash),
        }];
    })
    .await;
    let login = |email: &str, password: &str| json!({"email": email, "password": password});
    let (_, body) = app
        .post(
            "/api/admin/login",
            &login("ops@example.com", "file admin pw"),
            None,
        )
        .await;
    assert_eq!(
        body["user"],
        json!({"email": "ops@example.com", "isAdmin": true})
    );
    let (_, env_admin) = app
        .post(
            "/api/admin/login",
            &login(ADMIN_EMAIL, ADMIN_PASSWORD),
            None,
        )
        .await;
    assert!(
        env_admin["jwt"].is_string(),
        "the environment's admin works alongside"
    );
}

#[tokio::test]
async fn the_configured_page_limit_is_the_default_page() {
    let app = spawn_app_with(|c| c.page_limit = 2).await;
    let admin = app.admin_token().await;
    let (jwt, _) = app.register("user@example.com").await;
    for i in 0..3 {
        app.create_device(&jwt, &format!("d{i}"), "01").await;
    }
    assert_eq!(
        app.get("/api/admin/devices", Some(&admin))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, three) = app.get("/api/admin/devices?limit=3", Some(&admin)).await;
    assert_eq!(three.as_array().unwrap().len(), 3);
    assert_eq!(total(&app, "/api/admin/devices", &admin).await, "3");
}

#[tokio::test]
async fn license_names_that_a_spreadsheet_would_run_are_quoted_in_the_csv() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["=HYPERLINK(\"http://x\";\"y\")", "-2+3", "Plain"] {
        let body = json!({"name": name, "type": "01", "qty": 1});
        let (status, made) = app
            .post("/api/admin/factorydevices/create", &body, Some(&admin))
            .await;
        assert_eq!(status, StatusCode::OK, "{made}");
        // The name is stored and listed as given.
        assert_eq!(made[0]["name"], name);
    }

    let res = app
        .client
        .get(format!("{}/api/admin/factorydevices/csv", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    let names: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let mut r = csv_fields(l);
            r.swap_remove(3)
        })
        .collect();
    assert_eq!(names, ["Plain", "'-2+3", "'=HYPERLINK(\"http://x\";\"y\")"]);
}

/// The fields of one CSV line (quoted fields with doubled quotes, no line breaks).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

#[tokio::test]
async fn admin_tokens_are_refused_once_every_admin_is_signed_out() {
    let app = spawn_app().await;
    let (old, other) = (app.admin_token().await, app.admin_token().await);
    assert_eq!(
        app.get("/api/admin/users", Some(&old)).await.0,
        StatusCode::OK
    );
    let (user_token, _) = app.register("a@example.com").await;
    let (status, _) = app
        .post("/api/admin/logout-all", &json!({}), Some(&user_token))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = app
        .post("/api/admin/logout-all", &json!({}), Some(&old))
        .await;

    assert_eq!((status, body), (StatusCode::OK, json!({})));
    for token in [&old, &other] {
        let (status, body) = app.get("/api/admin/users", Some(token)).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                json!({"error": "Invalid or expired token"})
            )
        );
    }
    // A new login works, and keeps working after a restart (the version is kept in the
    // data directory).
    let fresh = app.admin_token().await;
    assert_eq!(
        app.get("/api/admin/users", Some(&fresh)).await.0,
        StatusCode::OK
    );
    let app = app.restart().await;
    assert_eq!(
        app.get("/api/admin/users", Some(&fresh)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/admin/users", Some(&old)).await.0,
        StatusCode::UNAUTHORIZED
    );
}
