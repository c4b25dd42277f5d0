//! `idle`: N connected, bound WebSocket devices that say nothing more; the server's
//! resident memory before and after gives its cost per connection. Mosquitto holding N
//! idle MQTT clients is the reference.

use crate::setup::{Fleet, update};
use crate::ws::{self, Ws};
use anyhow::bail;
use futures_util::{StreamExt, stream};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Connections per source address before moving to the next 127.0.0.x (the ephemeral
/// port range holds about 28,000 per address pair).
const PER_SOURCE: usize = 20_000;

/// The source address of connection `i` when spreading.
fn source(i: usize, spread: bool) -> Option<IpAddr> {
    spread.then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / PER_SOURCE) as u8)))
}

/// What an idle run measured.
pub(crate) struct Outcome {
    /// Connections held.
    pub conns: usize,
    /// Server RSS before connecting, bytes.
    pub before: u64,
    /// Server RSS with every connection open, bytes.
    pub after: u64,
}

impl Outcome {
    /// Bytes per connection.
    pub(crate) fn per_conn(&self) -> f64 {
        (self.after as f64 - self.before as f64) / self.conns.max(1) as f64
    }
}

/// Connects every device of `fleet` to `addr`, binds it with one update, measures the
/// RSS of `pid`, then closes them all.
pub(crate) async fn run(
    addr: SocketAddr,
    fleet: &Fleet,
    pid: u32,
    spread: bool,
) -> anyhow::Result<Outcome> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::proc::rss_bytes(pid).unwrap_or(0);
    let opened: Vec<anyhow::Result<Ws>> = stream::iter(fleet.devices.iter().enumerate())
        .map(|(i, id)| async move {
            let mut ws = ws::connect(addr, source(i, spread)).await?;
            let answer = ws::call(&mut ws, update(id, &fleet.apikey, 0)).await?;
            if !answer.contains(r#""error":0"#) {
                bail!("update answered {answer}");
            }
            Ok(ws)
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let sockets = opened.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    // Let the server settle (presence writes, allocator).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = crate::proc::rss_bytes(pid).unwrap_or(0);
    let conns = sockets.len();
    drop(sockets);
    Ok(Outcome {
        conns,
        before,
        after,
    })
}

/// Holds `n` idle MQTT clients on the broker and measures its RSS.
pub(crate) async fn mosquitto(n: usize) -> anyhow::Result<Outcome> {
    let Some(pid) = crate::mqtt::broker_pid() else {
        bail!("no mosquitto process found");
    };
    let before = crate::proc::rss_bytes(pid).unwrap_or(0);
    let tag = std::process::id();
    let clients: Vec<anyhow::Result<_>> = stream::iter(0..n)
        .map(|i| crate::mqtt::client(format!("bench-idle-{tag}-{i}"), 1))
        .buffer_unordered(128)
        .collect()
        .await;
    let clients = clients.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = crate::proc::rss_bytes(pid).unwrap_or(0);
    drop(clients);
    Ok(Outcome {
        conns: n,
        before,
        after,
    })
}
