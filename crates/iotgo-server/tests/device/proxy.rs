//! Behind a trusted reverse proxy, a request's client is the address the proxy forwards
//! (`X-Forwarded-For`), as the request's log span shows; from anyone else the header
//! proves nothing. Read in the real binary's log (its own process: a log subscriber
//! in the test process would be shared with the tests running beside it).

use crate::helpers::spawn_app;
use crate::support::*;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// `POST /api/http` (a `date` request) from the source address `from` with
/// `X-Forwarded-For: xff`; the answer's status line.
async fn date_from(addr: SocketAddr, from: &str, xff: &str) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let body = r#"{"action":"date","deviceid":"0100000001","apikey":"x"}"#;
    let req = format!(
        "POST /api/http HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-forwarded-for: {xff}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_forwarded_address() {
    let app = spawn_app().await;
    let config = app.state.config.clone();
    let db = config.database_url.as_ref().map(|s| s.expose().to_owned());
    let env = [
        ("IOTGO_TRUSTED_PROXIES", "127.0.0.1"),
        ("RUST_LOG", "info,iotgo_server::metrics::http=debug"),
    ];
    let Binary {
        child: _server,
        base,
        log,
        ..
    } = start_binary(&config.data_dir, db.as_deref(), &env).await;
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    // The left entry was written by the client, the right one by the proxy.
    let xff = "6.6.6.6, 198.51.100.7";

    // From the proxy, then from another address (any 127.x is loopback).
    assert_eq!(date_from(addr, "127.0.0.1", xff).await, "HTTP/1.1 200 OK");
    assert_eq!(date_from(addr, "127.0.0.2", xff).await, "HTTP/1.1 200 OK");

    let deadline = tokio::time::Instant::now() + WAIT;
    let clients = loop {
        let clients: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("route=/api/http") && l.contains("answered"))
            .filter_map(|l| {
                Some(
                    l.split("client=")
                        .nth(1)?
                        .split(['}', ' '])
                        .next()?
                        .to_owned(),
                )
            })
            .collect();
        if clients.len() >= 2 || tokio::time::Instant::now() > deadline {
            break clients;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(clients, ["198.51.100.7", "127.0.0.2"]);
}
