//! The rules of issue 14, each over real nodes: pushes and commands across nodes, one
//! socket per device cluster-wide, presence when a node dies, lifecycle events, NATS
//! away, and the refusal on SQLite.

use crate::harness::Cluster;
use crate::helpers::{PASSWORD, device, owner};
use crate::support::{Ws, claim, license};
use serde_json::{Value, json};
use std::time::Duration;

/// Longer than a lease (3 s) plus a renewal period and a sweep.
const PAST_LEASE: Duration = Duration::from_secs(8);

pub(crate) fn query(id: &str, key: &str, app: bool) -> Value {
    let mut q = json!({"action": "query", "deviceid": id, "apikey": key, "params": []});
    if app {
        q["userAgent"] = json!("app");
    }
    q
}

pub(crate) fn update(id: &str, key: &str, app: bool, params: Value) -> Value {
    let mut u = json!({"action": "update", "deviceid": id, "apikey": key, "params": params});
    if app {
        u["userAgent"] = json!("app");
    }
    u
}

pub(crate) async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) async fn login(base: &str, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD});
    let res = reqwest::Client::new()
        .post(format!("{base}/api/user/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["jwt"].as_str().expect("a token").to_owned()
}

/// The next frame that is not a presence sysmsg.
pub(crate) async fn next_push(ws: &mut Ws) -> Value {
    loop {
        let v = ws.recv().await;
        if v["action"] != "sysmsg" {
            return v;
        }
    }
}

#[tokio::test]
async fn updates_reach_apps_on_every_node_and_commands_reach_devices_on_another() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    let (indie, fkey) = license(&c.setup, "01").await;
    claim(&c.setup, &me, &indie, &fkey).await;
    c.start(3).await;

    // A DIY device on n0; an app watching it on n1; an app subscribed to all on n2.
    let mut dev = Ws::connect_to(c.base(0)).await;
    assert_eq!(dev.call(query(&sw, &k, false)).await["error"], 0);
    let mut watcher = Ws::connect_to(c.base(1)).await;
    assert_eq!(watcher.call(query(&sw, &k, true)).await["error"], 0);
    let mut all = Ws::connect_to(c.base(2)).await;
    let sub = json!({"action": "subscribe", "apikey": k, "userAgent": "app"});
    assert_eq!(all.call(sub).await["error"], 0);

    // The device's update, committed on n0, reaches both apps.
    let a = dev
        .call(update(&sw, &k, false, json!({"switch": "on"})))
        .await;
    assert_eq!(a["error"], 0, "{a}");
    for app in [&mut watcher, &mut all] {
        let push = next_push(app).await;
        assert_eq!(
            (&push["deviceid"], &push["params"]),
            (&json!(sw), &json!({"switch": "on"}))
        );
    }
    // An app's update on n1 reaches the device on n0 and the app on n2.
    let a = watcher
        .call(update(&sw, &k, true, json!({"switch": "off"})))
        .await;
    assert_eq!(a["error"], 0, "{a}");
    assert_eq!(
        next_push(&mut dev).await["params"],
        json!({"switch": "off"})
    );
    assert_eq!(
        next_push(&mut all).await["params"],
        json!({"switch": "off"})
    );

    // An indie device on n0 gets a command from an app on n2 and answers it.
    let mut idev = Ws::connect_to(c.base(0)).await;
    let r = json!({"action": "register", "deviceid": indie, "apikey": fkey});
    assert_eq!(idev.call(r).await["error"], 0);
    // Other nodes find the device once its `online` committed, which the sysmsg follows.
    let on = json!({"action": "sysmsg", "deviceid": indie, "apikey": k,
        "params": {"online": true}});
    while all.recv().await != on {}
    let mut app = Ws::connect_to(c.base(2)).await;
    let mut command = update(&indie, &k, true, json!({"switch": "on"}));
    command["sequence"] = json!("s1");
    app.send(command.clone()).await;
    let got = next_push(&mut idev).await;
    assert_eq!(
        (&got["sequence"], &got["params"]),
        (&json!("s1"), &json!({"switch": "on"}))
    );
    idev.send(json!({"error": 0, "deviceid": indie, "apikey": k, "sequence": "s1"}))
        .await;
    let answer = next_push(&mut app).await;
    assert_eq!(
        (&answer["error"], &answer["sequence"]),
        (&json!(0), &json!("s1"))
    );

    // No answer within pending_request_timeout_ms (1.5 s): 504.
    command["sequence"] = json!("s2");
    app.send(command.clone()).await;
    assert_eq!(next_push(&mut idev).await["sequence"], "s2");
    let answer = next_push(&mut app).await;
    assert_eq!(
        (&answer["error"], &answer["sequence"]),
        (&json!(504), &json!("s2"))
    );

    // Nobody holds the device: 503.
    drop(idev);
    let off = json!({"action": "sysmsg", "deviceid": indie, "apikey": k,
        "params": {"online": false}});
    while all.recv().await != off {}
    command["sequence"] = json!("s3");
    app.send(command).await;
    let answer = next_push(&mut app).await;
    assert_eq!(
        (&answer["error"], &answer["sequence"]),
        (&json!(503), &json!("s3"))
    );
}

#[tokio::test]
async fn a_device_that_reconnects_to_another_node_takes_over_its_socket() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(3).await;
    let mut app = Ws::connect_to(c.base(2)).await;
    assert_eq!(app.call(query(&sw, &k, true)).await["error"], 0);

    let mut old = Ws::connect_to(c.base(0)).await;
    assert_eq!(old.call(query(&sw, &k, false)).await["error"], 0);
    assert_eq!(app.recv().await["params"], json!({"online": true}));
    let mut new = Ws::connect_to(c.base(1)).await;
    assert_eq!(new.call(query(&sw, &k, false)).await["error"], 0);
    assert!(
        old.closed_within(Duration::from_secs(3)).await,
        "n0 closes the old socket"
    );
    // The move is no presence change: the app hears nothing, the device stays online.
    app.silent().await;
    let token = login(c.base(2), "a@example.com").await;
    let url = format!("{}/api/user/device/{sw}", c.base(2));
    assert_eq!(get(&url, Some(&token)).await.1["online"], true);
    // Commands go to the new socket.
    let a = app
        .call(update(&sw, &k, true, json!({"switch": "on"})))
        .await;
    assert_eq!(a["error"], 0);
    assert_eq!(next_push(&mut new).await["params"], json!({"switch": "on"}));

    drop(new);
    assert_eq!(app.recv().await["params"], json!({"online": false}));
}

#[tokio::test]
async fn a_killed_nodes_devices_go_offline_within_the_lease_and_stay_so() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(3).await;
    let mut app = Ws::connect_to(c.base(1)).await;
    assert_eq!(app.call(query(&sw, &k, true)).await["error"], 0);
    let mut dev = Ws::connect_to(c.base(0)).await;
    assert_eq!(dev.call(query(&sw, &k, false)).await["error"], 0);
    assert_eq!(app.recv().await["params"], json!({"online": true}));
    let a = dev
        .call(update(&sw, &k, false, json!({"switch": "on", "power": 7})))
        .await;
    assert_eq!(a["error"], 0);
    assert_eq!(app.recv().await["params"]["power"], 7);

    c.kill(0).await;
    let told = app
        .next(PAST_LEASE)
        .await
        .expect("a sysmsg within the lease");
    assert_eq!(told["params"], json!({"online": false}), "{told}");
    // The acked update is there.
    let q = app.call(query(&sw, &k, true)).await;
    assert_eq!(q["params"]["power"], 7, "{q}");
    // n0 comes back: what it held stays offline.
    c.restart(0).await;
    let token = login(c.base(0), "a@example.com").await;
    let url = format!("{}/api/user/device/{sw}", c.base(0));
    assert_eq!(get(&url, Some(&token)).await.1["online"], false);
    drop(dev);
    app.silent().await;
}

#[tokio::test]
async fn deletions_and_credentials_take_effect_on_every_node() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(3).await;
    let token = login(c.base(0), "a@example.com").await;
    // A device socket on n1, and an app subscribed by token on n2.
    let mut dev = Ws::connect_to(c.base(1)).await;
    assert_eq!(dev.call(query(&sw, &k, false)).await["error"], 0);
    let mut app = Ws::connect_to(c.base(2)).await;
    let sub = json!({"action": "subscribe", "jwt": token});
    assert_eq!(app.call(sub).await["error"], 0);

    // A password change on n0 cuts the token's socket on n2.
    let change = json!({"oldPassword": PASSWORD, "newPassword": "another horse"});
    let res = reqwest::Client::new()
        .post(format!("{}/api/user/password", c.base(0)))
        .bearer_auth(&token)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(app.closed_within(Duration::from_secs(2)).await, "cut on n2");

    // A deletion on n0 closes the device's socket on n1; nobody accepts its updates.
    let token = {
        let body = json!({"email": "a@example.com", "password": "another horse"});
        let res = reqwest::Client::new()
            .post(format!("{}/api/user/login", c.base(0)))
            .json(&body)
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        v["jwt"].as_str().unwrap().to_owned()
    };
    let res = reqwest::Client::new()
        .delete(format!("{}/api/user/device/{sw}", c.base(0)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        dev.closed_within(Duration::from_secs(1)).await,
        "closed on n1"
    );
    for i in 0..3 {
        let res = reqwest::Client::new()
            .post(format!("{}/api/http", c.base(i)))
            .json(&update(&sw, &k, false, json!({"switch": "on"})))
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], 403, "node {i}: {v}");
    }
}

#[tokio::test]
async fn without_nats_a_node_serves_its_own_devices_and_says_it_is_degraded() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(2).await;
    let health = format!("{}/healthz", c.base(0));
    assert_eq!(
        get(&health, None).await,
        (
            200,
            json!({"status": "ok", "cluster": {"node": "n0", "nats": "connected"}})
        )
    );

    c.nats.stop().await;
    let mut dev = Ws::connect_to(c.base(0)).await;
    let mut app = Ws::connect_to(c.base(0)).await;
    assert_eq!(app.call(query(&sw, &k, true)).await["error"], 0);
    let a = dev
        .call(update(&sw, &k, false, json!({"switch": "on"})))
        .await;
    assert_eq!(a["error"], 0, "served without NATS");
    assert_eq!(next_push(&mut app).await["params"], json!({"switch": "on"}));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(&health, None).await;
        if body["status"] == "degraded" {
            assert_eq!(status, 200);
            assert_eq!(body["cluster"]["nats"], "disconnected");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never degraded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // NATS back: the nodes reconnect by themselves, and pushes cross again.
    c.nats.restart().await;
    let mut far = Ws::connect_to(c.base(1)).await;
    assert_eq!(far.call(query(&sw, &k, true)).await["error"], 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let a = dev
            .call(update(&sw, &k, false, json!({"switch": "on", "power": n})))
            .await;
        assert_eq!(a["error"], 0);
        if let Some(push) = far.next(Duration::from_millis(300)).await
            && push["params"]["power"].is_number()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pushes never crossed again"
        );
    }
    assert_eq!(get(&health, None).await.1["status"], "ok");
}

#[tokio::test]
async fn cluster_mode_is_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iotgo"))
        .arg("serve")
        .env("IOTGO_LISTEN", "127.0.0.1:0")
        .env("IOTGO_DATA_DIR", dir.path())
        .env("IOTGO_NATS_URL", "nats://127.0.0.1:4222")
        .env_remove("IOTGO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster mode (nats_url) needs a postgres:// database_url"),
        "{err}"
    );
}

/// Logs in as admin at node `base`: the status and the token.
async fn admin_login(base: &str, email: &str, password: &str) -> (u16, Option<String>) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/admin/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["jwt"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn the_generated_admin_and_its_revocation_are_the_clusters() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    c.generated_admin = true;
    c.start(2).await;
    // The first node made the admin and showed its password once; the second did not.
    let shown: Vec<String> = (0..2)
        .map(|i| c.nodes[i].log.lock().unwrap().join("\n"))
        .collect();
    let password = |log: &str| {
        log.lines()
            .find_map(|l| l.trim().strip_prefix("password: ").map(str::to_owned))
    };
    let made: Vec<Option<String>> = shown.iter().map(|l| password(l)).collect();
    assert_eq!(made.iter().filter(|p| p.is_some()).count(), 1, "{made:?}");
    let pw = made.into_iter().flatten().next().unwrap();
    let email = "admin@iotgo.local";
    // One admin, good on both nodes; a token from one is good on the other.
    let (status, t0) = admin_login(c.base(0), email, &pw).await;
    assert_eq!(status, 200);
    let (status, t1) = admin_login(c.base(1), email, &pw).await;
    assert_eq!(status, 200);
    let (t0, t1) = (t0.unwrap(), t1.unwrap());
    let users = |i: usize| format!("{}/api/admin/users", c.base(i));
    assert_eq!(get(&users(1), Some(&t0)).await.0, 200);
    // Revoked on n0: dead on n1 too.
    let res = reqwest::Client::new()
        .post(format!("{}/api/admin/logout-all", c.base(0)))
        .bearer_auth(&t0)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(get(&users(1), Some(&t1)).await.0, 401);
    assert_eq!(get(&users(0), Some(&t1)).await.0, 401);
}

/// A Device API request over HTTP to `base`.
pub(crate) async fn http(base: &str, body: &Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/http"))
        .json(body)
        .send()
        .await
        .unwrap();
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_device_polling_through_several_nodes_comes_online_and_goes_offline_once() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(3).await;
    let mut app = Ws::connect_to(c.base(2)).await;
    assert_eq!(app.call(query(&sw, &k, true)).await["error"], 0);
    let sysmsg = |on: bool| json!({"action": "sysmsg", "deviceid": sw, "apikey": k, "params": {"online": on}});

    // Polls through n0, then n1 (a load balancer's round robin): online once.
    assert_eq!(http(c.base(0), &query(&sw, &k, false)).await["error"], 0);
    assert_eq!(app.recv().await, sysmsg(true));
    assert_eq!(http(c.base(1), &query(&sw, &k, false)).await["error"], 0);
    app.silent().await;
    // It stops polling: both windows (5 s) pass; offline once.
    let off = app.next(Duration::from_secs(12)).await;
    assert_eq!(off, Some(sysmsg(false)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.silent().await;
}

#[tokio::test]
async fn a_license_claimed_again_takes_effect_on_every_node() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let first = owner(&c.setup, "a@example.com").await;
    let second = owner(&c.setup, "b@example.com").await;
    let (indie, fkey) = license(&c.setup, "01").await;
    claim(&c.setup, &first, &indie, &fkey).await;
    c.start(3).await;
    let q = |key: &str| query(&indie, key, true);
    // Every node knows the first owner (each caches the device's keys).
    for i in 0..3 {
        assert_eq!(
            http(c.base(i), &q(&first.apikey)).await["error"],
            0,
            "node {i}"
        );
    }
    // Deleted on n0, claimed by the second user on n1.
    let t1 = login(c.base(0), "a@example.com").await;
    let res = reqwest::Client::new()
        .delete(format!("{}/api/user/device/{indie}", c.base(0)))
        .bearer_auth(&t1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let t2 = login(c.base(1), "b@example.com").await;
    let body = json!({"name": "mine", "deviceid": indie, "apikey": fkey});
    let res = reqwest::Client::new()
        .post(format!("{}/api/user/device/add", c.base(1)))
        .bearer_auth(&t2)
        .json(&body)
        .send()
        .await
        .unwrap();
    let claimed: Value = res.json().await.unwrap();
    assert_eq!(claimed["deviceid"], indie, "{claimed}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        assert_eq!(
            http(c.base(i), &q(&first.apikey)).await["error"],
            403,
            "node {i}"
        );
        assert_eq!(
            http(c.base(i), &q(&second.apikey)).await["error"],
            0,
            "node {i}"
        );
    }
}
