//! `iotgo-bench`: the load generator of IoTgo's realtime path.
//!
//! Each scenario (`ws-fanout`, `http-update`, `idle`) runs for a bounded time against
//! three targets in the same run — Mosquitto (MQTT, same shape), the in-memory reference
//! server (the socket layer's ceiling) and the real `iotgo` binary — and reports figures
//! with ratios between them. See `bench/README.md`.

mod cluster;
mod fanout;
mod http_update;
mod idle;
mod mqtt;
mod natsbench;
mod proc;
mod refserver;
mod report;
mod scenario;
mod setup;
mod stats;
mod target;
mod ws;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "iotgo-bench",
    about = "Load generator for IoTgo's realtime path"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Flags every scenario takes.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The iotgo binary to start.
    #[arg(long, default_value = "target/release/iotgo")]
    iotgo: PathBuf,
    /// Target a running iotgo at http://IP:PORT instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Pin the servers started here with `taskset -c LIST` (pin this process yourself).
    #[arg(long)]
    server_cpus: Option<String>,
    /// IOTGO_DATABASE_URL for the iotgo server (e.g. a fresh PostgreSQL database).
    #[arg(long)]
    database_url: Option<String>,
    /// Extra KEY=VALUE environment for the iotgo server (repeatable).
    #[arg(long = "server-env")]
    server_env: Vec<String>,
    /// Comma-separated targets: mosquitto, ref, iotgo, and for ws-fanout iotgo-mqtt (the
    /// same shape over iotgo's MQTT listener).
    #[arg(
        long,
        default_value = "mosquitto,ref,iotgo,iotgo-mqtt",
        value_delimiter = ','
    )]
    targets: Vec<String>,
    /// Seconds of load per target.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Directory for the Markdown report.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Do not write a report file (print only).
    #[arg(long)]
    no_report: bool,
    /// Suffix of the report file name (e.g. `pg`).
    #[arg(long)]
    label: Option<String>,
    /// Outgoing messages queued per WebSocket in iotgo (`IOTGO_WS_QUEUE_LEN`) and the
    /// reference server: one app watching a thousand devices flat out needs more than
    /// iotgo's default of 64 — up to devices × in-flight pushes can be queued at once,
    /// since iotgo pipelines each device's updates (1,000 × 16).
    #[arg(long, default_value_t = 16384)]
    ws_queue_len: usize,
    /// Device type of the run: `00` custom (updates keep no history) or `03` temperature &
    /// humidity (each update also appends two history points) — the pair measures what
    /// recording history costs.
    #[arg(long, default_value = "00", value_parser = ["00", "03"])]
    device_type: String,
    /// Exit non-zero on any error or lost push (for CI smoke runs).
    #[arg(long)]
    strict: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Device sockets send updates; app sockets receive the pushes.
    WsFanout {
        #[command(flatten)]
        common: Common,
        /// Device connections.
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        /// App connections, each subscribed to all devices.
        #[arg(long, default_value_t = 1)]
        apps: usize,
        /// Most unanswered updates per device.
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        /// Updates per second per device (flat out when absent).
        #[arg(long)]
        rate: Option<f64>,
        /// Skip the iotgo run paced at half its flat-out rate.
        #[arg(long)]
        no_half: bool,
        /// Also run iotgo as a cluster of this many nodes (2 or more) on the same
        /// `--database-url` (PostgreSQL), devices on node 0 and apps on node 1, after the
        /// single-node run.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// The cluster's NATS server (default: a `nats-server` started here on a free
        /// port, pinned with `--server-cpus`).
        #[arg(long)]
        nats_url: Option<String>,
    },
    /// Messages per second through NATS in the shape of the cluster's pushes.
    Nats {
        /// A NATS server to measure (default: a `nats-server` started here on a free
        /// port, pinned with `--server-cpus`).
        #[arg(long)]
        nats_url: Option<String>,
        /// Pin the nats-server started here with `taskset -c LIST`.
        #[arg(long)]
        server_cpus: Option<String>,
        /// Publishing connections.
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// Subscribing connections, each on `iotgo.push.*` (as every node is).
        #[arg(long, default_value_t = 1)]
        subscribers: usize,
        /// Payload bytes (a push frame of a small update is about 200).
        #[arg(long, default_value_t = 200)]
        size: usize,
        /// Seconds of publishing.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
    /// Keep-alive `POST /api/http` updates.
    HttpUpdate {
        #[command(flatten)]
        common: Common,
        /// Connections (one device each).
        #[arg(long, default_value_t = 64)]
        conns: usize,
    },
    /// Idle connected devices; server memory per connection.
    Idle {
        #[command(flatten)]
        common: Common,
        /// Connections.
        #[arg(long, default_value_t = 19_000)]
        conns: usize,
    },
    /// The in-memory reference server (started by the scenarios).
    #[command(hide = true)]
    RefServer {
        /// Outgoing messages queued per connection.
        #[arg(long, default_value_t = 64)]
        queue: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let strict = match &cli.command {
        Cmd::WsFanout { common, .. }
        | Cmd::HttpUpdate { common, .. }
        | Cmd::Idle { common, .. } => common.strict,
        Cmd::RefServer { .. } | Cmd::Nats { .. } => false,
    };
    let ok = match cli.command {
        Cmd::RefServer { queue } => return refserver::serve(queue).await,
        Cmd::WsFanout {
            common,
            devices,
            apps,
            inflight,
            rate,
            no_half,
            nodes,
            nats_url,
        } => {
            let shape = fanout::Shape {
                devices,
                apps,
                inflight,
                rate,
                duration: std::time::Duration::from_secs_f64(common.duration),
            };
            let cluster =
                (nodes > 1 || nats_url.is_some()).then_some(scenario::Nodes { n: nodes, nats_url });
            scenario::ws_fanout(&common, shape, !no_half, cluster).await?
        }
        Cmd::Nats {
            nats_url,
            server_cpus,
            publishers,
            subscribers,
            size,
            duration,
        } => {
            let launch = target::Launch {
                iotgo: PathBuf::new(),
                cpus: server_cpus,
                database_url: None,
                env: Vec::new(),
                ws_queue_len: 0,
            };
            let shape = natsbench::Shape {
                publishers,
                subscribers,
                size,
                duration: std::time::Duration::from_secs_f64(duration),
            };
            natsbench::run(&launch, nats_url.as_deref(), shape).await?;
            true
        }
        Cmd::HttpUpdate { common, conns } => scenario::http_update(&common, conns).await?,
        Cmd::Idle { common, conns } => scenario::idle(&common, conns).await?,
    };
    if !ok && strict {
        anyhow::bail!("errors or lost pushes (see the report)");
    }
    Ok(())
}
