//! `nats`: how many messages a second NATS carries on this machine in the shape a cluster
//! sends pushes — `iotgo.push.<deviceid>` with the owner in a header and a payload the
//! size of a push frame, every subscriber on `iotgo.push.*` (as every node is today).
//! P publisher connections send flat out (a flush every 1,000 messages keeps the client's
//! buffer bounded); S subscriber connections count what arrives within the window.

use crate::cluster::Nats;
use crate::proc::CpuMeter;
use crate::target::Launch;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shape of a NATS run.
pub(crate) struct Shape {
    /// Publishing connections.
    pub publishers: usize,
    /// Subscribing connections (each gets every message).
    pub subscribers: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// How long publishers send.
    pub duration: Duration,
}

/// Runs the NATS benchmark against `url`, or a `nats-server` started here (pinned like
/// the servers); prints one Markdown table.
pub(crate) async fn run(launch: &Launch, url: Option<&str>, shape: Shape) -> anyhow::Result<()> {
    let own = match url {
        Some(_) => None,
        None => Some(Nats::start(launch)?),
    };
    let url = url
        .map(str::to_owned)
        .or_else(|| own.as_ref().map(|n| n.url.clone()))
        .unwrap_or_default();
    let received: Arc<Vec<AtomicU64>> =
        Arc::new((0..shape.subscribers).map(|_| AtomicU64::new(0)).collect());
    let window_open = Arc::new(AtomicBool::new(true));
    let mut subs = Vec::new();
    for i in 0..shape.subscribers {
        let client = async_nats::connect(&url).await?;
        let mut sub = client.subscribe("iotgo.push.*").await?;
        client.flush().await?;
        let (received, open) = (received.clone(), window_open.clone());
        subs.push(tokio::spawn(async move {
            while let Some(_msg) = sub.next().await {
                if open.load(Ordering::Relaxed) {
                    received[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(client);
        }));
    }
    let payload = Bytes::from(vec![b'x'; shape.size]);
    let mut headers = HeaderMap::new();
    headers.insert("Iotgo-Owner", "00000000-0000-4000-8000-000000000000");
    let sent = Arc::new(AtomicU64::new(0));
    let pids: Vec<u32> = [std::process::id()]
        .into_iter()
        .chain(own.as_ref().map(Nats::pid))
        .collect();
    let meter = CpuMeter::start(&pids);
    let start = Instant::now();
    let deadline = start + shape.duration;
    let mut pubs = Vec::new();
    for p in 0..shape.publishers {
        let client = async_nats::connect(&url).await?;
        let (payload, headers, sent) = (payload.clone(), headers.clone(), sent.clone());
        pubs.push(tokio::spawn(async move {
            let subjects: Vec<String> = (0..1000)
                .map(|i| format!("iotgo.push.00{p:02x}{i:06x}"))
                .collect();
            while Instant::now() < deadline {
                for subject in &subjects {
                    let h = headers.clone();
                    if client
                        .publish_with_headers(subject.clone(), h, payload.clone())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = client.flush().await;
                sent.fetch_add(subjects.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    window_open.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let cpu = meter.stop();
    let in_window: Vec<u64> = received.iter().map(|r| r.load(Ordering::Relaxed)).collect();
    for p in pubs {
        let _ = p.await;
    }
    for s in &subs {
        s.abort();
    }
    let sent = sent.load(Ordering::Relaxed) as f64 / secs;
    let got: f64 = in_window.iter().sum::<u64>() as f64 / secs;
    println!(
        "| publishers | subscribers | payload | published/s | delivered/s (all subscribers) | per subscriber | generator CPU | nats-server CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} B | {sent:.0} | {got:.0} | {:.0} | {:.0}% | {} |",
        shape.publishers,
        shape.subscribers,
        shape.size,
        got / shape.subscribers.max(1) as f64,
        cpu[0],
        cpu.get(1)
            .map_or_else(|| "–".to_owned(), |c| format!("{c:.0}%")),
    );
    Ok(())
}
