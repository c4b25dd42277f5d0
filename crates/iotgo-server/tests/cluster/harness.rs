//! A cluster for one test: a NATS server on a free port, and nodes started as the real
//! binary on the database of an in-process set-up server (which made it fresh).

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::netns::{Netns, forward};
use crate::support::{Binary, start_binary, start_binary_under};
use iotgo_server::config::Secret;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long a node's lease lasts in these tests.
pub(crate) const LEASE: &str = "3s";
/// How long a device polling over HTTP stays online after a request, in these tests.
pub(crate) const HTTP_WINDOW: &str = "5s";

/// A NATS server of the test's own.
pub(crate) struct Nats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
}

impl Nats {
    /// Starts `nats-server` on a free port and waits until it accepts connections.
    pub(crate) async fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Nats::on(port).await
    }

    async fn on(port: u16) -> Nats {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (Debian package nats-server)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
        }
    }

    /// Stops the server (kill -9).
    pub(crate) async fn stop(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Starts it again on the same port.
    pub(crate) async fn restart(&mut self) {
        *self = Nats::on(self.port).await;
    }
}

/// A test's cluster: the set-up server (a single node that made the database), NATS, and
/// the nodes.
pub(crate) struct Cluster {
    /// The in-process server that made the fresh database; set-up only (users, devices,
    /// licenses), before the nodes start.
    pub setup: TestApp,
    /// The bus.
    pub nats: Nats,
    /// The nodes, by index.
    pub nodes: Vec<Binary>,
    /// Their data directories.
    dirs: Vec<tempfile::TempDir>,
    db: String,
    /// Forwarders for nodes in a namespace of their own.
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    /// Nodes start with no admin configured (the cluster generates one).
    pub generated_admin: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for f in &self.forwarders {
            f.abort();
        }
    }
}

impl Cluster {
    /// A fresh database and NATS, no nodes yet; `None` (and a note) without PostgreSQL.
    pub(crate) async fn new() -> Option<Cluster> {
        Cluster::on(None).await
    }

    /// As [`Cluster::new`], on the database `url` (a PostgreSQL of the test's own).
    pub(crate) async fn on(url: Option<String>) -> Option<Cluster> {
        if std::env::var("IOTGO_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
            let setup = match url {
                Some(url) => spawn_app_with(|c| c.database_url = Some(Secret::new(url))).await,
                None => spawn_app().await,
            };
            let db = setup
                .state
                .config
                .database_url
                .as_ref()?
                .expose()
                .to_owned();
            let nats = Nats::start().await;
            Some(Cluster {
                setup,
                nats,
                nodes: Vec::new(),
                dirs: Vec::new(),
                db,
                forwarders: Vec::new(),
                generated_admin: false,
            })
        } else {
            eprintln!("cluster tests need PostgreSQL: IOTGO_TEST_DATABASE_URL is not set");
            None
        }
    }

    /// Starts `n` nodes named `n0`, `n1`, …
    pub(crate) async fn start(&mut self, n: usize) {
        for _ in 0..n {
            self.add().await;
        }
    }

    /// Starts one more node; its index.
    pub(crate) async fn add(&mut self) -> usize {
        let i = self.nodes.len();
        let dir = tempfile::tempdir().unwrap();
        let node = self.launch(i, dir.path()).await;
        self.nodes.push(node);
        self.dirs.push(dir);
        i
    }

    /// Starts node `i` again on its data directory (after a kill).
    pub(crate) async fn restart(&mut self, i: usize) {
        let node = self.launch(i, self.dirs[i].path()).await;
        self.nodes[i] = node;
    }

    async fn launch(&self, i: usize, dir: &std::path::Path) -> Binary {
        let id = format!("n{i}");
        let mut env = vec![
            ("IOTGO_NATS_URL", self.nats.url.as_str()),
            ("IOTGO_NODE_ID", id.as_str()),
            ("IOTGO_CLUSTER_LEASE", LEASE),
            ("IOTGO_PENDING_REQUEST_TIMEOUT_MS", "1500"),
            ("IOTGO_HTTP_ONLINE_WINDOW", HTTP_WINDOW),
            ("IOTGO_MQTT_LISTEN", "127.0.0.1:0"),
        ];
        if self.generated_admin {
            env.extend([("IOTGO_ADMIN_EMAIL", ""), ("IOTGO_ADMIN_PASSWORD", "")]);
        }
        start_binary(dir, Some(&self.db), &env).await
    }

    /// Starts one more node inside `net`: it reaches PostgreSQL and NATS through
    /// forwarders on this host's end of the cluster link, and listens on the client link.
    /// Its index.
    pub(crate) async fn add_in(&mut self, net: &Netns) -> usize {
        let i = self.nodes.len();
        let dir = tempfile::tempdir().unwrap();
        let host = SocketAddr::from((net.cluster_host, 0));
        let (pg, pg_task) = forward(host, "127.0.0.1:5432".parse().unwrap()).await;
        let nats_port = self.nats.url.rsplit(':').next().unwrap().parse().unwrap();
        let (nats, nats_task) = forward(host, SocketAddr::from(([127, 0, 0, 1], nats_port))).await;
        self.forwarders.extend([pg_task, nats_task]);
        let db = self.db.replacen("127.0.0.1:5432", &pg.to_string(), 1);
        let (id, nats) = (format!("n{i}"), format!("nats://{nats}"));
        let env = [
            ("IOTGO_LISTEN", "0.0.0.0:0"),
            ("IOTGO_NATS_URL", nats.as_str()),
            ("IOTGO_NODE_ID", id.as_str()),
            ("IOTGO_CLUSTER_LEASE", LEASE),
        ];
        let wrapper = ["ip", "netns", "exec", net.name.as_str()];
        let mut node = start_binary_under(&wrapper, dir.path(), Some(&db), &env).await;
        node.base = node.base.replacen("0.0.0.0", &net.client_ns.to_string(), 1);
        self.nodes.push(node);
        self.dirs.push(dir);
        i
    }

    /// Starts a second node with node `i`'s id (on a data directory of its own) and waits
    /// for it to exit, for at most three leases: its exit status and what it printed.
    pub(crate) async fn same_id_as(&self, i: usize) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_iotgo"))
            .arg("serve")
            .env("IOTGO_LISTEN", "127.0.0.1:0")
            .env("IOTGO_DATA_DIR", dir.path())
            .env("IOTGO_DATABASE_URL", &self.db)
            .env("IOTGO_NATS_URL", &self.nats.url)
            .env("IOTGO_NODE_ID", format!("n{i}"))
            .env("IOTGO_CLUSTER_LEASE", LEASE)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(9), child.wait_with_output())
            .await
            .expect("a node with a live node's id exits")
            .unwrap()
    }

    /// The MQTT listener of node `i` (every node started by [`Cluster::add`] has one), as
    /// its start-up log says.
    /// (It logs it just after its HTTP address, which [`Cluster::add`] waited for.)
    pub(crate) async fn mqtt(&self, i: usize) -> SocketAddr {
        for _ in 0..100 {
            let found = self.nodes[i].log.lock().unwrap().iter().find_map(|l| {
                let rest = l.split("MQTT: listening on ").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            });
            if let Some(addr) = found {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {i} did not log its MQTT address");
    }

    /// `http://…` of node `i`.
    pub(crate) fn base(&self, i: usize) -> &str {
        &self.nodes[i].base
    }

    /// Kills node `i` (SIGKILL: no drain, no goodbye).
    pub(crate) async fn kill(&mut self, i: usize) {
        self.nodes[i].child.kill().await.unwrap();
    }
}
