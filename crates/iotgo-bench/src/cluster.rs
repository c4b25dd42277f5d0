//! A cluster under test: a NATS server (started here on a free port, or given by
//! `--nats-url`) and N iotgo nodes in cluster mode on one PostgreSQL database, each the
//! real binary started as [`Server::iotgo`] starts one node. Dropping a [`Cluster`] kills
//! the processes it started.

use crate::target::{Launch, Server, pinned};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` started here (killed on drop).
pub(crate) struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl Nats {
    /// Starts `nats-server -a 127.0.0.1 -p <free port>` (pinned like the servers) and
    /// waits until it accepts connections.
    pub(crate) fn start(launch: &Launch) -> anyhow::Result<Nats> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = pinned(launch, std::path::Path::new("nats-server"));
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .context("starting nats-server (Debian package nats-server), or pass --nats-url")?;
        let nats = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not listen on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nats)
    }

    /// Its pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// N nodes on one database and one NATS server.
pub(crate) struct Cluster {
    /// The nodes, `bench-n0`, `bench-n1`, …
    pub nodes: Vec<Server>,
    /// The NATS server, when started here.
    pub nats: Option<Nats>,
}

impl Cluster {
    /// Starts NATS (unless `nats_url` is given) and `n` nodes one after another (the
    /// first one migrates the database).
    pub(crate) fn start(launch: &Launch, n: usize, nats_url: Option<&str>) -> anyhow::Result<Self> {
        if launch.database_url.is_none() {
            bail!("--nodes needs --database-url (a fresh PostgreSQL database): the nodes share it");
        }
        let nats = match nats_url {
            Some(_) => None,
            None => Some(Nats::start(launch)?),
        };
        let url = nats_url
            .map(str::to_owned)
            .or_else(|| nats.as_ref().map(|n| n.url.clone()))
            .context("no NATS URL")?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("bench-n{i}");
            let env = [("IOTGO_NATS_URL", url.as_str()), ("IOTGO_NODE_ID", &id)];
            nodes.push(Server::iotgo_with(launch, &env)?);
        }
        Ok(Cluster { nodes, nats })
    }

    /// Every pid started here (nodes, then NATS), for CPU use.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(Server::pid)
            .chain(self.nats.as_ref().map(Nats::pid))
            .collect()
    }
}

/// The writer's commit counters of a node, read from its `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Commits {
    /// Batches committed (`iotgo_commit_duration_seconds_count`).
    pub batches: f64,
    /// Updates in them (`iotgo_commit_batch_size_sum`).
    pub updates: f64,
}

impl Commits {
    /// Sums the counters of several servers' `/metrics` (`None` if any cannot be read).
    pub(crate) async fn read(addrs: &[SocketAddr]) -> Option<Commits> {
        let http = reqwest::Client::new();
        let mut total = Commits::default();
        for addr in addrs {
            let text = http
                .get(format!("http://{addr}/metrics"))
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?
                .text()
                .await
                .ok()?;
            total.batches += sample(&text, "iotgo_commit_duration_seconds_count");
            total.updates += sample(&text, "iotgo_commit_batch_size_sum");
        }
        Some(total)
    }

    /// What was committed between `self` (earlier) and `later`, over `secs`: a line for
    /// the report.
    pub(crate) fn rate_since(&self, later: &Commits, secs: f64) -> String {
        let batches = later.batches - self.batches;
        let updates = later.updates - self.updates;
        format!(
            "{:.0} commits/s, {:.1} updates per commit",
            batches / secs,
            updates / batches.max(1.0)
        )
    }
}

/// The sum of a metric's samples over its label sets in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
