//! The servers under test: the real `iotgo` binary (started here on port 0 with a fresh
//! data directory and a known admin, or given by `--url`) and the in-memory reference
//! server (this binary's hidden `ref-server` command), each optionally pinned with
//! `taskset`. Dropping a [`Server`] kills the process it started.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Admin account of a server started here.
pub(crate) const ADMIN_EMAIL: &str = "bench-admin@example.com";
/// Its password.
pub(crate) const ADMIN_PASSWORD: &str = "bench-admin-password";

/// How to start servers.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    /// The `iotgo` binary.
    pub iotgo: PathBuf,
    /// `taskset -c` list for servers, if pinning.
    pub cpus: Option<String>,
    /// `IOTGO_DATABASE_URL` for the iotgo server (PostgreSQL runs).
    pub database_url: Option<String>,
    /// Extra `KEY=VALUE` environment for the iotgo server.
    pub env: Vec<String>,
    /// Outgoing messages queued per WebSocket, for both servers.
    pub ws_queue_len: usize,
}

/// A running server: its address and, when started here, its process.
pub(crate) struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// The server's pid, when this run started it.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A server somebody else runs.
    pub(crate) fn external(url: &str) -> anyhow::Result<Server> {
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let addr = host.parse().context("--url must be http://IP:PORT")?;
        Ok(Server {
            addr,
            child: None,
            _data: None,
        })
    }

    /// Starts `iotgo serve` on 127.0.0.1:0 with a fresh data directory.
    pub(crate) fn iotgo(launch: &Launch) -> anyhow::Result<Server> {
        Server::iotgo_with(launch, &[])
    }

    /// Starts `iotgo serve` as [`Server::iotgo`] does, with `extra` environment (a
    /// cluster node's NATS URL and node id); `--server-env` still has the last word.
    pub(crate) fn iotgo_with(launch: &Launch, extra: &[(&str, &str)]) -> anyhow::Result<Server> {
        let data = tempfile::tempdir()?;
        let mut cmd = pinned(launch, &launch.iotgo);
        cmd.arg("serve")
            .env("IOTGO_LISTEN", "127.0.0.1:0")
            .env("IOTGO_DATA_DIR", data.path())
            .env("IOTGO_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("IOTGO_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("IOTGO_WS_QUEUE_LEN", launch.ws_queue_len.to_string())
            // Thousands of connections from 127.0.0.x: no per-address caps.
            .env("IOTGO_RATE_LIMITS", "off")
            // The commit counters are read from /metrics (loopback only).
            .env("IOTGO_METRICS", "open")
            .env("RUST_LOG", "info");
        if let Some(url) = &launch.database_url {
            cmd.env("IOTGO_DATABASE_URL", url);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        for kv in &launch.env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        start(cmd, Some(data))
    }

    /// Starts this binary's in-memory reference server.
    pub(crate) fn reference(launch: &Launch) -> anyhow::Result<Server> {
        let me = std::env::current_exe()?;
        let mut cmd = pinned(launch, &me);
        cmd.arg("ref-server")
            .arg("--queue")
            .arg(launch.ws_queue_len.to_string());
        start(cmd, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn pinned(launch: &Launch, program: &std::path::Path) -> Command {
    match &launch.cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Runs `cmd` and waits for its `listening on http://ADDR` line (on stdout or stderr);
/// the rest of its output is drained so that it never blocks on a full pipe.
fn start(mut cmd: Command, data: Option<tempfile::TempDir>) -> anyhow::Result<Server> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let (tx, rx) = mpsc::channel();
    let outputs: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().context("stdout")?),
        Box::new(child.stderr.take().context("stderr")?),
    ];
    for out in outputs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let _ = tx.send(line[i + 20..].trim().to_owned());
                } else if line.contains("ERROR") || line.contains("panicked") {
                    eprintln!("server: {line}");
                }
            }
        });
    }
    let mut server = Server {
        addr: "127.0.0.1:0".parse()?,
        child: Some(child),
        _data: data,
    };
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => server.addr = addr.parse().context("listening address")?,
        Err(_) => bail!("{cmd:?} did not report its address within 30 s"),
    }
    Ok(server)
}
