//! `POST /api/http`: actions, errors, transport details and HTTP-only presence.

use crate::helpers::{spawn_app, spawn_app_with};
use crate::support::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn update_query_and_date_answer_compact_json() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let key = &me.apikey;

    let (status, text) = http_raw(
        &app,
        &json!({"action": "update", "deviceid": id, "apikey": key, "params": {"switch": "on"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        text,
        format!(r#"{{"error":0,"deviceid":"{id}","apikey":"{key}"}}"#)
    );

    let (_, text) = http_raw(
        &app,
        &json!({"action": "query", "deviceid": id, "apikey": key, "params": ["switch", "nope"],
            "sequence": "42"}),
    )
    .await;
    assert_eq!(
        text,
        format!(
            r#"{{"error":0,"params":{{"switch":"on"}},"deviceid":"{id}","apikey":"{key}","sequence":"42"}}"#
        )
    );

    let a = http(
        &app,
        json!({"action": "query", "deviceid": id, "apikey": key, "params": []}),
    )
    .await;
    assert_eq!(a["params"], json!({"switch": "on"}));

    let a = http(
        &app,
        json!({"action": "date", "deviceid": id, "apikey": key}),
    )
    .await;
    assert_eq!(a["error"], 0);
    assert!(a["date"].as_str().unwrap().ends_with('Z'), "{a}");
}

#[tokio::test]
async fn updates_merge_into_the_stored_params() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let k = &me.apikey;
    let up = |p| json!({"action": "update", "deviceid": id, "apikey": k, "params": p});
    assert_eq!(
        http(&app, up(json!({"a": 1, "b": {"x": 1}}))).await["error"],
        0
    );
    assert_eq!(
        http(&app, up(json!({"b": 2, "c": [true]}))).await["error"],
        0
    );
    let d = web_device(&app, &me, &id).await;
    assert_eq!(d["params"], json!({"a": 1, "b": 2, "c": [true]}));
    assert!(d["lastModified"].is_string(), "{d}");
}

#[tokio::test]
async fn bad_requests_get_400_and_foreign_devices_403() {
    let app = spawn_app_with(|c| {
        c.max_params_depth = 4;
        c.max_params_keys = 8;
    })
    .await;
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let sw = device(&app, &me, "01").await;
    let th = device(&app, &me, "03").await;
    let free = device(&app, &me, "00").await;
    let k = me.apikey.clone();
    let bad = |id: &str, key: &str| {
        format!(r#"{{"error":400,"reason":"Bad Request","deviceid":"{id}","apikey":"{key}"}}"#)
    };
    let cases = [
        (
            json!({"action": "fly", "deviceid": sw, "apikey": k}),
            bad(&sw, &k),
        ),
        (
            json!({"action": "update", "deviceid": sw, "apikey": k, "params": {"switch": "up"}}),
            bad(&sw, &k),
        ),
        (
            json!({"action": "update", "deviceid": th, "apikey": k,
                "params": {"temperature": "hot", "humidity": 3}}),
            bad(&th, &k),
        ),
        (
            json!({"action": "update", "deviceid": free, "apikey": k,
                "params": {"a": {"b": {"c": {"d": {"e": 1}}}}}}),
            bad(&free, &k),
        ),
        (
            json!({"action": "update", "deviceid": free, "apikey": k,
                "params": {"a": [1, 2, 3, 4, 5, 6, 7, 8]}}),
            bad(&free, &k),
        ),
        (
            json!({"action": "query", "deviceid": sw, "apikey": k, "params": "switch"}),
            bad(&sw, &k),
        ),
        (
            json!({"action": "query", "deviceid": "01000001", "apikey": k, "params": []}),
            bad("01000001", &k),
        ),
        (
            json!({"action": "query", "deviceid": sw, "apikey": other.apikey, "params": []}),
            format!(
                r#"{{"error":403,"reason":"Forbidden","deviceid":"{sw}","apikey":"{}"}}"#,
                other.apikey
            ),
        ),
        (
            json!({"action": "update", "deviceid": "0100abcdef", "apikey": k,
                "params": {"switch": "on"}}),
            format!(
                r#"{{"error":403,"reason":"Forbidden","deviceid":"0100abcdef","apikey":"{k}"}}"#
            ),
        ),
    ];
    for (req, want) in cases {
        let (status, text) = http_raw(&app, &req).await;
        assert_eq!((status, text), (200, want), "{req}");
    }
    // Timers replace the switch state in a switch's update.
    let timers =
        json!([{"enabled": true, "type": "repeat", "at": "0 8 * * *", "do": {"switch": "on"}}]);
    let a = http(
        &app,
        json!({"action": "update", "deviceid": sw, "apikey": k, "params": {"timers": timers}}),
    )
    .await;
    assert_eq!(a["error"], 0, "{a}");
}

#[tokio::test]
async fn transport_rules_content_type_body_and_methods() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let body = json!({"action": "query", "deviceid": id, "apikey": me.apikey, "params": []});
    let url = format!("{}/api/http", app.base);
    let post = |ct: &'static str, b: String| {
        app.client
            .post(&url)
            .header("content-type", ct)
            .body(b)
            .send()
    };
    let res = post("application/json; charset=utf-8", body.to_string())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = post("text/plain", body.to_string()).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = post("application/json", "{not json".into()).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"error":400,"reason":"Bad Request"}"#
    );
    let res = post(
        "application/json",
        format!(r#"{{"x":"{}"}}"#, "a".repeat(70_000)),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 413);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let res = app.client.request(method, &url).send().await.unwrap();
        assert_eq!(res.status(), 405);
    }
}

#[tokio::test]
async fn configured_host_must_match_the_host_header() {
    let app = spawn_app_with(|c| c.host = Some("iotgo.example.com".into())).await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let body = json!({"action": "query", "deviceid": id, "apikey": me.apikey, "params": []});
    let url = format!("{}/api/http", app.base);
    let res = app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .post(&url)
        .header("host", "iotgo.example.com")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Reads one HTTP response (headers + Content-Length body) from a raw socket.
async fn read_response(sock: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = tokio::time::timeout(WAIT, sock.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("content-length");
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return (head, body);
            }
        }
    }
}

fn arduino_request(version: &str, body: &str) -> String {
    format!(
        "POST /api/http {version}\r\nHost: iotgo.example.com\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn arduino_library_bytes_two_requests_on_one_connection_and_http_1_0() {
    let app = spawn_app_with(|c| c.host = Some("iotgo.example.com".into())).await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let k = &me.apikey;
    let update = format!(
        r#"{{"apikey":"{k}","deviceid":"{id}","action":"update","params":{{"switch":"on"}}}}"#
    );
    let query =
        format!(r#"{{"apikey":"{k}","deviceid":"{id}","action":"query","params":["switch"]}}"#);

    let mut sock = TcpStream::connect(app.addr).await.unwrap();
    sock.write_all(arduino_request("HTTP/1.1", &update).as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut sock).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(
        body,
        format!(r#"{{"error":0,"deviceid":"{id}","apikey":"{k}"}}"#)
    );
    sock.write_all(arduino_request("HTTP/1.1", &query).as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut sock).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let want =
        format!(r#"{{"error":0,"params":{{"switch":"on"}},"deviceid":"{id}","apikey":"{k}"}}"#);
    assert_eq!(body, want);
    assert!(
        head.len() + 4 + body.len() < 512,
        "answer must fit the library's buffer"
    );
    assert!(body.contains(r#""error":0"#) && body.contains(r#""switch":"on""#));

    let mut sock = TcpStream::connect(app.addr).await.unwrap();
    sock.write_all(arduino_request("HTTP/1.0", &query).as_bytes())
        .await
        .unwrap();
    let (head, body) = read_response(&mut sock).await;
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{head}");
    assert_eq!(body, want);
}

#[tokio::test]
async fn register_gives_indie_devices_their_device_key() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let (id, fkey) = license(&app, "01").await;
    let reg = json!({"action": "register", "deviceid": id, "apikey": fkey});
    let a = http(&app, reg.clone()).await;
    assert_eq!(
        a,
        json!({"error": 404, "reason": "Not Found", "deviceid": id, "apikey": fkey})
    );
    let wrong = json!({"action": "register", "deviceid": id, "apikey": me.apikey});
    assert_eq!(http(&app, wrong).await["error"], 403);
    claim(&app, &me, &id, &fkey).await;
    // The answer is the device's own key (the original gave the owner's apikey): a
    // license label does not hand out the owner's apikey.
    let dk = device_key(&app, &me, &id).await;
    assert_ne!(dk, me.apikey);
    let a = http(&app, reg).await;
    assert_eq!(a, json!({"error": 0, "deviceid": id, "apikey": dk}));
    let q = json!({"action": "query", "deviceid": id, "apikey": dk, "params": []});
    assert_eq!(http(&app, q).await["error"], 0);
}

/// The factory key is compared in constant time (docs/security.md): every wrong key of a
/// claimed license answers the same 403 as before, and the right one still registers.
#[tokio::test]
async fn register_refuses_every_wrong_factory_key_alike() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let (id, fkey) = license(&app, "01").await;
    let (other_id, other_key) = license(&app, "01").await;
    claim(&app, &me, &id, &fkey).await;
    // The right key but its last character; another license's key; the owner's apikey.
    let last = if fkey.ends_with('0') { "1" } else { "0" };
    let near = format!("{}{last}", &fkey[..fkey.len() - 1]);
    for key in [near.as_str(), other_key.as_str(), me.apikey.as_str()] {
        let reg = json!({"action": "register", "deviceid": id, "apikey": key, "sequence": "7"});
        assert_eq!(
            http(&app, reg).await,
            json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": key,
                   "sequence": "7"}),
            "{key}"
        );
    }
    // A right key for another deviceid is no better.
    let reg = json!({"action": "register", "deviceid": other_id, "apikey": fkey});
    assert_eq!(
        http(&app, reg).await,
        json!({"error": 403, "reason": "Forbidden", "deviceid": other_id, "apikey": fkey})
    );
    // The right key registers, and the device is given its own key.
    let reg = json!({"action": "register", "deviceid": id, "apikey": fkey});
    let (_, list) = app.get("/api/user/device", Some(&me.token)).await;
    let key = list[0]["deviceKey"].clone();
    assert!(key.is_string(), "{list}");
    assert_eq!(
        http(&app, reg).await,
        json!({"error": 0, "deviceid": id, "apikey": key})
    );
}

#[tokio::test]
async fn http_only_devices_are_online_while_they_poll() {
    let app = spawn_app_with(|c| c.http_online_window = Duration::from_millis(400)).await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "01").await;
    let d = web_device(&app, &me, &id).await;
    assert_eq!(
        (d["online"].clone(), d["lastSeenAt"].clone()),
        (json!(false), json!(null))
    );
    let q = json!({"action": "query", "deviceid": id, "apikey": me.apikey, "params": []});
    assert_eq!(http(&app, q).await["error"], 0);
    let d = web_device_until(&app, &me, &id, |d| d["lastSeenAt"].is_string()).await;
    assert_eq!(d["online"], true);
    assert!(d["lastConnectedAt"].is_string(), "{d}");
    let d = web_device_until(&app, &me, &id, |d| d["online"] == false).await;
    assert!(d["lastDisconnectedAt"].is_string(), "{d}");
}

#[tokio::test]
async fn a_deleted_polling_device_leaves_the_window_and_its_next_owner_hears_nothing() {
    let app = spawn_app_with(|c| c.http_online_window = Duration::from_millis(300)).await;
    let (a, b) = (
        owner(&app, "a@example.com").await,
        owner(&app, "b@example.com").await,
    );
    let (id, fkey) = license(&app, "02").await;
    claim(&app, &a, &id, &fkey).await;
    // The device polls over HTTP: online for A.
    let q = json!({"action": "query", "deviceid": id, "apikey": a.apikey, "params": []});
    assert_eq!(http(&app, q).await["error"], 0);
    let http_devices =
        |s: &crate::helpers::Scrape| s.value("iotgo_connected_devices", &[("transport", "http")]);
    assert_eq!(http_devices(&app.scrape().await), 1.0);

    // A deletes it and B claims the same license within the window.
    let (status, _) = app
        .delete(&format!("/api/user/device/{id}"), Some(&a.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(http_devices(&app.scrape().await), 0.0);
    claim(&app, &b, &id, &fkey).await;
    let mut watcher = Ws::connect(&app).await;
    let sub = json!({"action": "subscribe", "apikey": b.apikey, "userAgent": "app"});
    assert_eq!(watcher.call(sub).await["error"], 0);

    // A's polling ended with the deletion: when its window passes, B is not told that
    // the device went offline, and B's device record was never marked online.
    tokio::time::sleep(Duration::from_millis(600)).await;
    watcher.silent().await;
    let d = web_device(&app, &b, &id).await;
    assert_eq!(
        (d["online"].clone(), d["lastDisconnectedAt"].clone()),
        (json!(false), json!(null))
    );
}
