//! What recording history costs the device writer: batches of 512 updates (one per device,
//! round robin over 1,000 devices) applied as the writer applies them, for devices that
//! keep no history (type `00`) and devices whose updates append two points (type `03`),
//! alternating; process CPU time per update of each.
//!
//! ```text
//! cargo run --release -p iotgo-server --example history_write_cost -- [BATCHES] [DATABASE_URL]
//! ```
//! BATCHES defaults to 400 per type and round; DATABASE_URL to fresh SQLite files in a temp
//! directory. A PostgreSQL URL must name an empty database. The environment variable
//! `FOLD_POINTS` sets the recent points at which a fold runs (default: the server's);
//! `HISTORY=off` records no history (the baseline of what history costs); `NODE=<id>`
//! records as that cluster node (a log row per device per batch, tagged with the node).
//!
//! Only the store's share of an update is measured (no sockets, no fan-out), so the
//! figures say where the history's cost sits, not the server's update rate.

use iotgo_protocol::DeviceType;
use iotgo_server::history::{FOLD_POINTS, Recorder};
use iotgo_server::store::{Millis, StateCache, StateLimits, StateWrite, Store};
use serde_json::{Map, Value, json};
use std::time::Instant;

const DEVICES: usize = 1000;
const BATCH: usize = 512;
const ROUNDS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let batches: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(400);
    let fold: usize = std::env::var("FOLD_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FOLD_POINTS);
    let url = args.next();
    let dir = std::env::temp_dir().join(format!("iotgo-write-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::connect(&url.unwrap_or_else(|| Store::sqlite_url(&dir))).await?;
    let history = std::env::var("HISTORY").as_deref() != Ok("off");
    let node = std::env::var("NODE").ok().map(std::sync::Arc::from);
    let mut recorder = Recorder::load_as(store.clone(), history, node).await?;
    let apikey = "00000000-0000-4000-8000-000000000001";
    store
        .users()
        .create("cost@example.com", apikey, "x", true)
        .await?;
    let mut fleets = Vec::new();
    for ty in ["00", "03"] {
        let mut ids = Vec::with_capacity(DEVICES);
        for _ in 0..DEVICES {
            let d = store
                .devices()
                .create(apikey, "d", "", DeviceType::parse(ty)?)
                .await?;
            ids.push(d.deviceid);
        }
        fleets.push((ty, ids));
    }
    let mut cache = StateCache::new();
    let mut n = 0u64;
    for round in 1..=ROUNDS {
        for (ty, ids) in &fleets {
            let (cpu0, t0) = (cpu_secs(), Instant::now());
            for _ in 0..batches {
                let writes: Vec<StateWrite> = (0..BATCH)
                    .map(|_| {
                        n += 1;
                        StateWrite::Merge {
                            deviceid: ids[n as usize % DEVICES].clone(),
                            params: params(ty, n),
                            at: Millis::now(),
                            seen: true,
                        }
                    })
                    .collect();
                // As the device writer: the batch, its points into memory, and a fold
                // once enough points are held.
                let applied = store
                    .apply_state_to(&writes, &mut cache, recorder.log(), StateLimits::NONE)
                    .await?;
                recorder.committed(&applied.history);
                recorder.fold(fold).await?;
            }
            let updates = (batches * BATCH) as f64;
            println!(
                "round {round} type {ty}: {:.2} µs CPU, {:.2} µs wall per update",
                (cpu_secs() - cpu0) / updates * 1e6,
                t0.elapsed().as_secs_f64() / updates * 1e6
            );
        }
    }
    store.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn params(ty: &str, n: u64) -> Map<String, Value> {
    let v = if ty == "03" {
        // What iotgo-bench's type 03 devices send.
        json!({"temperature": "21.5", "humidity": "40", "t": n.to_string()})
    } else {
        json!({"t": n.to_string()})
    };
    v.as_object().cloned().unwrap_or_default()
}

/// User + system CPU time of this process, from /proc (Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
