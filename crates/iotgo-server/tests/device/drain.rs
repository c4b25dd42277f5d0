//! Graceful shutdown of the real binary: SIGTERM while devices update flat out, and a
//! drain that a stuck client cannot hold past `shutdown_timeout`.

use crate::helpers::spawn_app;
use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use iotgo_server::store::Millis;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Devices updating over WebSocket, each with [`WINDOW`] updates in flight.
const WS_DEVICES: usize = 12;
/// Devices updating over HTTP, one request after the other on a keep-alive connection.
const HTTP_DEVICES: usize = 6;
const WINDOW: usize = 8;

/// How a client's connection ended: `Ok` cleanly, `Err` with what went wrong.
type End = Result<(), String>;

/// A device updating `{"n": 1, 2, …}` over WebSocket with `WINDOW` updates in flight;
/// `acked` follows its answers. Ends with the close frame it got (code, reason).
async fn ws_device(base: String, id: String, key: String, acked: Arc<AtomicI64>) -> End {
    let Ws(ws) = Ws::connect_to(&base).await;
    let (mut sink, mut stream) = ws.split();
    let window = Arc::new(Semaphore::new(WINDOW));
    let sending = window.clone();
    let sender = tokio::spawn(async move {
        for n in 1.. {
            let Ok(permit) = sending.acquire().await else {
                return;
            };
            permit.forget();
            let update = json!({"action": "update", "deviceid": id, "apikey": key,
                "params": {"n": n}, "sequence": n.to_string()});
            if sink.send(Message::text(update.to_string())).await.is_err() {
                return;
            }
        }
    });
    let mut close = None;
    let end = loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => {
                let answer: Value = serde_json::from_str(&t).unwrap();
                if close.is_some() || answer["error"] != 0 {
                    break Err(format!("unexpected {answer}"));
                }
                let n: i64 = answer["sequence"].as_str().unwrap().parse().unwrap();
                // Answers keep the order of the requests.
                let before = acked.swap(n, Ordering::SeqCst);
                if n != before + 1 {
                    break Err(format!("answer {n} after {before}"));
                }
                window.add_permits(1);
            }
            Some(Ok(Message::Close(frame))) => close = Some(frame),
            Some(Ok(_)) => {}
            Some(Err(e)) => break Err(format!("{e:?} (close frame seen: {close:?})")),
            None => break Ok(()),
        }
    };
    window.close();
    let _ = sender.await;
    end?;
    match close {
        Some(Some(f)) if u16::from(f.code) == 1001 && f.reason == "server shutting down" => Ok(()),
        other => Err(format!("close frame {other:?}")),
    }
}

/// A device updating over HTTP until the server refuses new connections; every request
/// it sent on an open connection must be answered.
async fn http_device(base: String, id: String, key: String, acked: Arc<AtomicI64>) -> End {
    let client = reqwest::Client::new();
    for n in 1.. {
        let body = json!({"action": "update", "deviceid": id, "apikey": key,
            "params": {"n": n}});
        match client
            .post(format!("{base}/api/http"))
            .json(&body)
            .send()
            .await
        {
            // Refused: the server stopped accepting.
            Err(e) if e.is_connect() => return Ok(()),
            Err(e) => return Err(format!("request {n}: {e:?}")),
            Ok(res) => match res.json::<Value>().await {
                Ok(answer) if answer["error"] == 0 => acked.store(n, Ordering::SeqCst),
                Ok(answer) => return Err(format!("request {n}: {answer}")),
                Err(e) => return Err(format!("answer {n}: {e:?}")),
            },
        }
    }
    Ok(())
}

/// The next frame of `ws` must be a close frame 1001, and the socket must then end
/// cleanly (the closing handshake completes, no reset).
async fn closes_going_away(ws: &mut Ws) {
    let msg = tokio::time::timeout(WAIT, ws.0.next())
        .await
        .expect("a frame");
    match msg {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("expected a close frame 1001, got {other:?}"),
    }
    let end = tokio::time::timeout(WAIT, ws.0.next())
        .await
        .expect("the end");
    assert!(end.is_none(), "after the close frame: {end:?}");
}

#[tokio::test]
async fn sigterm_answers_commits_and_closes_everything_then_exits_0() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..WS_DEVICES + HTTP_DEVICES {
        ids.push(device(&app, &me, "00").await);
    }
    let (indie, fkey) = license(&app, "01").await;
    claim(&app, &me, &indie, &fkey).await;
    let config = app.state.config.clone();
    let db = config.database_url.as_ref().map(|s| s.expose().to_owned());
    let env = [
        ("IOTGO_SHUTDOWN_TIMEOUT", "10s"),
        // Only the shutdown ends the commands below.
        ("IOTGO_PENDING_REQUEST_TIMEOUT_MS", "60000"),
    ];
    let mut server = start_binary(&config.data_dir, db.as_deref(), &env).await;
    let base = server.base.clone();

    // Arrange: devices updating flat out over both transports.
    let mut clients = Vec::new();
    let mut acked = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let last = Arc::new(AtomicI64::new(0));
        acked.push(last.clone());
        let (base, id, key) = (base.clone(), id.clone(), me.apikey.clone());
        clients.push(if i < WS_DEVICES {
            tokio::spawn(ws_device(base, id, key, last))
        } else {
            tokio::spawn(http_device(base, id, key, last))
        });
    }
    // An indie device that never answers, and two apps waiting for it: over WebSocket
    // and in an HTTP request.
    let mut dev = Ws::connect_to(&base).await;
    let a = dev
        .call(json!({"action": "register", "deviceid": indie, "apikey": fkey}))
        .await;
    assert_eq!(a["error"], 0, "{a}");
    let command = |seq: &str| {
        json!({"action": "update", "deviceid": indie, "apikey": me.apikey,
            "userAgent": "app", "params": {"switch": "on"}, "sequence": seq})
    };
    let mut web = Ws::connect_to(&base).await;
    web.send(command("ws")).await;
    assert_eq!(dev.recv().await["sequence"], "ws");
    let in_flight = tokio::spawn({
        let (url, body) = (format!("{base}/api/http"), command("http"));
        async move {
            let res = reqwest::Client::new().post(url).json(&body).send().await?;
            res.json::<Value>().await
        }
    });
    assert_eq!(dev.recv().await["sequence"], "http");
    // An idle keep-alive connection.
    let mut idle = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("{\"status\":\"ok\"}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while acked.iter().any(|a| a.load(Ordering::SeqCst) < 3) {
        assert!(tokio::time::Instant::now() < deadline, "too few acks");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act: SIGTERM while they run.
    let at = Millis::now();
    let t0 = Instant::now();
    let (status, log) = terminate(&mut server, Duration::from_secs(15)).await;
    let took = t0.elapsed();

    // Assert: exit 0 within the timeout, with nothing cut.
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(10), "{took:?}\n{log}");
    assert!(log.contains("drained; exiting"), "{log}");
    assert!(!log.contains("shutdown timeout"), "{log}");
    for (i, c) in clients.into_iter().enumerate() {
        let end = c.await.unwrap();
        assert_eq!(end, Ok(()), "client {i} ({})", ids[i]);
    }
    // The apps waiting for the indie device are told it went offline, then WebSockets
    // get 1001.
    let answer = in_flight.await.unwrap().expect("an answer, not a reset");
    assert_eq!(answer["error"], 503, "{answer}");
    assert_eq!(answer["sequence"], "http");
    let mut answer = web.recv().await;
    // (The indie device's sysmsg online may come first: the app watches it since its
    // command.)
    if answer["action"] == "sysmsg" {
        answer = web.recv().await;
    }
    assert_eq!(
        (&answer["error"], &answer["sequence"]),
        (&json!(503), &json!("ws")),
        "{answer}"
    );
    closes_going_away(&mut web).await;
    closes_going_away(&mut dev).await;
    // The idle keep-alive connection was closed, not reset.
    let eof = tokio::time::timeout(WAIT, idle.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(eof.map_err(|e| e.kind()), Ok(0));
    // Every device was marked offline at the shutdown.
    for id in ids.iter().chain([&indie]) {
        let d = app.state.store.devices().find(id).await.unwrap().unwrap();
        assert!(!d.online, "{id}");
        let off = d.last_disconnected_at.expect("disconnected").0;
        assert!(off >= at.0, "{id}: offline at {off}, SIGTERM at {}", at.0);
    }

    // Every acked update is there after a restart, and nothing unacked: the drain
    // answered every update it committed.
    let Binary {
        child: _restarted,
        base,
        ..
    } = start_binary(&config.data_dir, db.as_deref(), &env).await;
    for (id, last) in ids.iter().zip(&acked) {
        let n = query_n(&base, id, &me.apikey).await;
        assert_eq!(n, last.load(Ordering::SeqCst), "device {id}");
    }
}

#[tokio::test]
async fn a_stuck_client_cannot_hold_the_exit_past_the_timeout() {
    let app = spawn_app().await;
    let config = app.state.config.clone();
    let db = config.database_url.as_ref().map(|s| s.expose().to_owned());
    let env = [("IOTGO_SHUTDOWN_TIMEOUT", "1s")];
    let mut server = start_binary(&config.data_dir, db.as_deref(), &env).await;
    let base = server.base.clone();
    let addr = base.trim_start_matches("http://").to_owned();
    // A request whose body never comes: hyper waits for it to answer.
    let mut stuck = TcpStream::connect(&addr).await.unwrap();
    stuck
        .write_all(
            b"POST /api/http HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"action\":",
        )
        .await
        .unwrap();
    // A WebSocket that never reads nor answers the close frame.
    let mut mute = Ws::connect_to(&base).await;
    mute.send(json!({"action": "date", "deviceid": "0100000001", "apikey": "x"}))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let t0 = Instant::now();
    let (status, log) = terminate(&mut server, Duration::from_secs(10)).await;
    let took = t0.elapsed();

    assert!(status.success(), "{status:?}\n{log}");
    // It waited for the stuck request, then cut it.
    assert!(took >= Duration::from_millis(900), "{took:?}\n{log}");
    assert!(took < Duration::from_secs(2), "{took:?}\n{log}");
    assert!(log.contains("shutdown timeout (1s) reached"), "{log}");
    drop((stuck, mute));
}
