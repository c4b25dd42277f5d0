//! `http-update`: C keep-alive connections each sending `POST /api/http` updates one after
//! another (HTTP/1.1, no pipelining), as polling devices do; requests per second and
//! request latency.

use crate::fanout::Outcome;
use crate::proc::CpuMeter;
use crate::setup::{Fleet, update};
use crate::stats::{Clock, Counters, Latency};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};

/// Runs `fleet.devices.len()` connections, one device each, for `duration`.
pub(crate) async fn run(
    addr: SocketAddr,
    fleet: &Fleet,
    duration: Duration,
    server: Option<u32>,
) -> anyhow::Result<Outcome> {
    let clock = Clock::start();
    let counters = Arc::new(Counters::default());
    let mut conns = Vec::new();
    for _ in &fleet.devices {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        conns.push(sender);
    }
    let deadline = Instant::now() + duration;
    let meter = CpuMeter::start(&[std::process::id(), server.unwrap_or(0)]);
    let tasks: Vec<_> = conns
        .into_iter()
        .zip(&fleet.devices)
        .map(|(mut sender, id)| {
            let (c, id, key, host) = (
                counters.clone(),
                id.clone(),
                fleet.apikey.clone(),
                addr.to_string(),
            );
            tokio::spawn(async move {
                let mut lat = Latency::default();
                while Instant::now() < deadline {
                    let body = update(&id, &key, clock.now_ns());
                    let req = Request::post("/api/http")
                        .header("host", &host)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)));
                    let Ok(req) = req else { break };
                    let t0 = Instant::now();
                    c.sent.add(1);
                    let answer = match sender.send_request(req).await {
                        Ok(res) => res.into_body().collect().await.map(|b| b.to_bytes()),
                        Err(_) => {
                            c.errors.add(1);
                            break;
                        }
                    };
                    match answer {
                        Ok(b) if contains(&b, br#""error":0"#) => {
                            lat.record(t0.elapsed().as_nanos() as u64);
                            c.acked_total.add(1);
                            if Instant::now() < deadline {
                                c.acked_window.add(1);
                            }
                        }
                        _ => c.errors.add(1),
                    }
                }
                lat
            })
        })
        .collect();
    sleep_until(deadline).await;
    let cpu = meter.stop();
    let mut latency = Latency::default();
    for t in tasks {
        if let Ok(h) = t.await {
            latency.merge(&h);
        }
    }
    Ok(Outcome {
        counters,
        latency,
        secs: duration.as_secs_f64(),
        cpu: (cpu[0], cpu[1]),
        committed: None,
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
