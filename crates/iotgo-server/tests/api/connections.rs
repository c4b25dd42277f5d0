//! Connection hygiene: header-read and keep-alive idle timeouts, the caps on connections
//! per client address and in all, the `rate_limits` switch. (The client address behind a
//! trusted proxy is read in the real binary's log: `tests/device/proxy.rs`.)

use crate::helpers::{TestApp, spawn_app_with};
use iotgo_server::config::Config;
use reqwest::StatusCode;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n";
/// A client on another address than the test's other sockets (any 127.x is loopback).
const OTHER: &str = "127.0.0.2";

/// A server with the limits on, adjusted by `tweak`.
async fn limited(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        c.rate_limits = true;
        c.metrics = iotgo_server::config::MetricsMode::Open;
        tweak(c);
    })
    .await
}

/// A TCP connection to `app` from the source address `from`.
async fn connect_from(app: &TestApp, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    let from: IpAddr = from.parse().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(app.addr).await.unwrap()
}

/// What comes on `tcp` within `wait`: `Some(text)` up to the end of the connection
/// (empty when it closed at once), `None` when it stayed open.
async fn until_closed(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let end = tokio::time::timeout(wait, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    end.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// One request on `tcp`; the answer's head and body (read until the body is whole).
async fn request(tcp: &mut TcpStream, req: &[u8]) -> String {
    tcp.write_all(req).await.unwrap();
    let mut got = String::new();
    let mut buf = [0; 4096];
    while !got.ends_with("}\n") && !got.ends_with('}') {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed after {got:?}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    got
}

/// A client on `OTHER`.
fn other_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(OTHER.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// `/healthz` from `OTHER`: its status.
async fn healthz_from_other(app: &TestApp) -> StatusCode {
    let res = other_client()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("an answer");
    res.status()
}

/// `iotgo_connections_refused_total` by reason, scraped from `OTHER`.
async fn refused(app: &TestApp, reason: &str) -> String {
    let text = other_client()
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("iotgo_connections_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or("absent")
        .to_owned()
}

#[tokio::test]
async fn a_head_that_does_not_come_whole_in_time_closes_the_connection() {
    let app = limited(|c| c.http_header_timeout = Duration::from_millis(300)).await;
    // Slowloris: part of a request head, then nothing.
    let mut slow = connect_from(&app, "127.0.0.1").await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-a: ")
        .await
        .unwrap();
    // A connection that never sends anything.
    let mut mute = connect_from(&app, "127.0.0.1").await;
    let t0 = Instant::now();

    assert_eq!(
        until_closed(&mut slow, Duration::from_secs(2)).await,
        Some(String::new())
    );
    assert_eq!(
        until_closed(&mut mute, Duration::from_secs(2)).await,
        Some(String::new())
    );
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    // A client whose head comes in time is answered.
    let mut fine = connect_from(&app, "127.0.0.1").await;
    assert!(
        request(&mut fine, HEALTHZ)
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = limited(|c| {
        c.http_header_timeout = Duration::from_millis(200);
        c.http_idle_timeout = Duration::from_millis(1000);
    })
    .await;
    let mut tcp = connect_from(&app, "127.0.0.1").await;
    assert!(
        request(&mut tcp, HEALTHZ)
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    // Idle longer than the header timeout, shorter than the idle timeout: still open,
    // and the next request (its head sent slowly, within the header timeout) is served.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        request(&mut tcp, b"host: t\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 200 OK")
    );
    let t0 = Instant::now();

    let end = until_closed(&mut tcp, Duration::from_secs(3)).await;

    assert_eq!(
        end,
        Some(String::new()),
        "closed cleanly, nothing more sent"
    );
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
}

#[tokio::test]
async fn past_its_per_address_cap_a_client_gets_503_and_others_are_answered() {
    let app = limited(|c| c.max_connections_per_ip = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(&app, "127.0.0.1").await);
    }

    let mut fifth = connect_from(&app, "127.0.0.1").await;
    fifth.write_all(HEALTHZ).await.unwrap();
    let answer = until_closed(&mut fifth, Duration::from_secs(1)).await;

    let answer = answer.expect("answered and closed at once");
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nretry-after: 10\r\n"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\n{\"error\":\"too many connections from your address\"}\n"),
        "{answer}"
    );
    // Another address is answered while this one holds its cap.
    assert_eq!(healthz_from_other(&app).await, StatusCode::OK);
    assert_eq!(refused(&app, "per_ip").await, "1");
    assert_eq!(refused(&app, "total").await, "0");
    // A connection closed gives its place back.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut tcp = connect_from(&app, "127.0.0.1").await;
        tcp.write_all(HEALTHZ).await.unwrap();
        let answer = until_closed(&mut tcp, Duration::from_millis(300)).await;
        if answer.is_none() {
            break; // kept open: admitted (and answered, keep-alive)
        }
        assert!(
            Instant::now() < deadline,
            "never admitted again: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn past_the_total_cap_every_client_gets_503() {
    let app = limited(|c| c.max_connections = Some(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&app, "127.0.0.1").await);
    }

    let mut other = connect_from(&app, OTHER).await;
    other.write_all(HEALTHZ).await.unwrap();
    let answer = until_closed(&mut other, Duration::from_secs(1)).await;

    let answer = answer.expect("answered and closed at once");
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("\r\n\r\n{\"error\":\"the server has too many connections\"}\n"),
        "{answer}"
    );
    // An HTTP client gets the 503 too (not a reset).
    let res = other_client()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A refused connection that sends nothing is closed without an answer.
    let mut mute = connect_from(&app, OTHER).await;
    assert_eq!(
        until_closed(&mut mute, Duration::from_secs(3)).await,
        Some(String::new())
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(refused(&app, "total").await, "3");
}

#[tokio::test]
async fn rate_limits_off_lifts_the_per_address_cap() {
    for on in [true, false] {
        let app = limited(|c| {
            c.max_connections_per_ip = 2;
            c.rate_limits = on;
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(connect_from(&app, "127.0.0.1").await);
        }
        let mut answers = Vec::new();
        for tcp in &mut held {
            tcp.write_all(HEALTHZ).await.unwrap();
            let mut buf = [0; 64];
            let n = tcp.read(&mut buf).await.unwrap();
            answers.push(String::from_utf8_lossy(&buf[..n.min(12)]).into_owned());
        }
        let served = answers.iter().filter(|a| *a == "HTTP/1.1 200").count();
        let refused = answers.iter().filter(|a| *a == "HTTP/1.1 503").count();
        let expected = if on { (2, 4) } else { (6, 0) };
        assert_eq!(
            (served, refused),
            expected,
            "rate_limits = {on}: {answers:?}"
        );
    }
}
