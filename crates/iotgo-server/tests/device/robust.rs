//! Bad input, limits, timeouts and slow clients on `/api/ws`.

use crate::helpers::spawn_app_with;
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn junk_is_ignored_and_bad_requests_answer_400() {
    let app = spawn_app_with(|c| c.max_body_bytes = 4096).await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let k = me.apikey.clone();
    let mut ws = Ws::connect(&app).await;
    ws.send_text("hello, not json").await;
    ws.send(json!([1, 2])).await;
    ws.send(json!({"hello": "world"})).await;
    ws.send(json!({"error": 0, "sequence": "nobody waits"}))
        .await;
    ws.silent().await;
    let a = ws
        .call(json!({"action": "dance", "deviceid": id, "apikey": k, "sequence": 5}))
        .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "deviceid": id, "apikey": k, "sequence": 5})
    );
    let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}});
    let a = ws
        .call(json!({"action": "update", "deviceid": id, "apikey": k, "params": deep}))
        .await;
    assert_eq!(a["error"], 400);
    let a = ws
        .call(json!({"action": "query", "deviceid": id, "apikey": k, "params": []}))
        .await;
    assert_eq!(a["error"], 0, "the socket still works");
    // A message over the size limit closes the connection.
    ws.send(json!({"action": "update", "deviceid": id, "apikey": k,
        "params": {"x": "y".repeat(5000)}}))
        .await;
    assert!(ws.closed_within(WAIT).await);
}

#[tokio::test]
async fn silent_sockets_are_closed_and_pinged_ones_stay() {
    let app = spawn_app_with(|c| {
        c.ws_first_frame_timeout = Duration::from_millis(200);
        // Pings go out every half of it: wide enough that a loaded CI machine answers in time.
        c.ws_idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut mute = Ws::connect(&app).await;
    let started = Instant::now();
    assert!(mute.closed_within(WAIT).await);
    assert!(started.elapsed() < Duration::from_secs(2));

    // A client that reads answers the server's pings and stays connected past the timeout.
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let mut ws = Ws::connect(&app).await;
    let q = json!({"action": "query", "deviceid": id, "apikey": me.apikey, "params": []});
    assert_eq!(ws.call(q.clone()).await["error"], 0);
    assert!(!ws.closed_within(Duration::from_millis(2500)).await);
    assert_eq!(ws.call(q).await["error"], 0);
}

#[tokio::test]
async fn an_app_that_never_reads_is_cut_off_and_others_keep_up() {
    const PUSHES: usize = 40;
    let app = spawn_app_with(|c| {
        c.ws_queue_len = 4;
        c.max_body_bytes = 1 << 20;
        c.max_params_keys = 1 << 20;
    })
    .await;
    let me = owner(&app, "a@example.com").await;
    let id = device(&app, &me, "00").await;
    let k = me.apikey.clone();
    let sub = json!({"action": "subscribe", "apikey": k, "userAgent": "app"});
    let mut stuck = Ws::connect(&app).await;
    assert_eq!(stuck.call(sub.clone()).await["error"], 0);
    let mut reader = Ws::connect(&app).await;
    assert_eq!(reader.call(sub).await["error"], 0);

    let big = "z".repeat(512 * 1024);
    let mut dev = Ws::connect(&app).await;
    let read_all = async {
        let mut got = 0;
        while got < PUSHES {
            let m = reader
                .next(WAIT)
                .await
                .expect("the reader gets every push in time");
            if m["action"] == "update" {
                got += 1;
            }
        }
        got
    };
    let send_all = async {
        for i in 0..PUSHES {
            let a = dev
                .call(json!({"action": "update", "deviceid": id, "apikey": k,
                    "params": {"n": i, "blob": big}}))
                .await;
            assert_eq!(a["error"], 0);
        }
    };
    let (got, ()) = tokio::join!(read_all, send_all);
    assert_eq!(got, PUSHES);

    // The stuck app was disconnected: it finds fewer pushes than were sent, then the end.
    let mut seen = 0;
    loop {
        match tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut stuck.0)).await {
            Ok(Some(Ok(Message::Text(_)))) => seen += 1,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            _ => break,
        }
    }
    assert!(seen < PUSHES, "the stuck app got {seen} of {PUSHES}");
    // Counted: one socket cut off, the pushes it could not take dropped.
    let s = app.scrape().await;
    assert_eq!(s.value("iotgo_peers_cut_off_total", &[]), 1.0);
    assert!(s.value("iotgo_pushes_dropped_total", &[]) >= 1.0, "{}", s.0);
}
