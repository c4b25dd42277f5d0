//! PostgreSQL restarted under load, on a PostgreSQL of the test's own (the machine's
//! shared one is never restarted by a test).

use crate::harness::Cluster;
use crate::helpers::{device, owner};
use crate::support::query_n;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::process::Child;

/// A PostgreSQL server in a temporary directory, run as the `postgres` user.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Child>,
}

fn as_postgres(program: &str) -> Command {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("bin").join(program))
        .expect("PostgreSQL binaries in /usr/lib/postgresql/<version>/bin");
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        "postgres",
        "--regid",
        "postgres",
        "--clear-groups",
    ])
    .arg(bin);
    c
}

impl OwnPostgres {
    /// `None` when it cannot be made here (no root, no binaries).
    async fn start() -> Option<OwnPostgres> {
        let dir = tempfile::tempdir().ok()?;
        let data = dir.path().join("pg");
        Command::new("chown")
            .args(["postgres:postgres", dir.path().to_str()?])
            .status()
            .ok()?
            .success()
            .then_some(())?;
        let init = as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .ok()?;
        if !init.success() {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut pg = OwnPostgres {
            dir,
            port,
            server: None,
        };
        pg.run().await;
        Some(pg)
    }

    async fn run(&mut self) {
        let data = self.dir.path().join("pg");
        let mut cmd: tokio::process::Command = as_postgres("postgres").into();
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        self.server = Some(cmd.spawn().expect("postgres"));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("own PostgreSQL did not start");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it the hard way (kill -9: every connection drops, nothing is flushed
    /// politely) and starts it again.
    async fn crash_and_restart(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill().await.unwrap();
        }
        self.run().await;
    }
}

/// A device updating `{"switch": "on", "n": 1, 2, …}` over HTTP at `base` until `stop`;
/// `acked` holds the last `n` answered 0. Failures (the database away) are counted and
/// go on.
async fn updating(
    base: String,
    id: String,
    key: String,
    acked: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let client = reqwest::Client::new();
    let mut failed = 0;
    for n in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let body = json!({"action": "update", "deviceid": id, "apikey": key,
            "params": {"switch": "on", "n": n}});
        let res = client
            .post(format!("{base}/api/http"))
            .json(&body)
            .send()
            .await;
        match res {
            Ok(r) => match r.json::<Value>().await {
                Ok(a) if a["error"] == 0 => acked.store(n, Ordering::SeqCst),
                _ => failed += 1,
            },
            Err(_) => failed += 1,
        }
        if failed > 0 && failed % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    failed
}

#[tokio::test]
async fn postgres_killed_mid_load_nodes_recover_and_keep_every_acked_update() {
    if std::env::var("IOTGO_TEST_DATABASE_URL").is_err() {
        eprintln!("cluster tests need PostgreSQL: IOTGO_TEST_DATABASE_URL is not set");
        return;
    }
    let Some(mut pg) = OwnPostgres::start().await else {
        eprintln!("needs root and PostgreSQL's binaries to run a PostgreSQL of its own: skipped");
        return;
    };
    let mut c = Cluster::on(Some(pg.url())).await.expect("a cluster");
    let me = owner(&c.setup, "a@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(device(&c.setup, &me, "01").await);
    }
    c.start(2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Vec<Arc<AtomicI64>> = ids.iter().map(|_| Arc::default()).collect();
    let clients: Vec<_> = ids
        .iter()
        .zip(&acked)
        .enumerate()
        .map(|(i, (id, a))| {
            let base = c.base(i % 2).to_owned();
            let args = (id.clone(), me.apikey.clone(), a.clone(), stop.clone());
            tokio::spawn(updating(base, args.0, args.1, args.2, args.3))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert!(
        before.iter().all(|&n| n > 0),
        "updates flow before: {before:?}"
    );

    pg.crash_and_restart().await;
    // The nodes recover by themselves: every device gets acks again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now: Vec<i64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        if now.iter().zip(&before).all(|(n, b)| n > &(b + 20)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recovery: {before:?} → {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut failed = 0;
    for t in clients {
        failed += t.await.unwrap();
    }
    // Every acked update is stored (a later unacked one may be too).
    for (id, a) in ids.iter().zip(&acked) {
        let stored = query_n(c.base(0), id, &me.apikey).await;
        let acked = a.load(Ordering::SeqCst);
        assert!(stored >= acked, "{id}: stored {stored}, acked {acked}");
    }
    eprintln!("updates refused while PostgreSQL was away: {failed}");
}

#[tokio::test]
async fn a_second_node_with_a_live_nodes_id_is_refused_and_a_crashed_ones_restart_waits() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    c.start(1).await;
    let out = c.same_id_as(0).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node id n0 is in use"), "{err}");
    // n0 kept its lease all along.
    let health = format!("{}/healthz", c.base(0));
    let answer: Value = reqwest::get(&health).await.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "ok", "{answer}");
    assert!(
        !c.nodes[0]
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("lease was taken"))
    );

    // Killed and started again at once: the new run waits out the old run's lease.
    c.kill(0).await;
    c.restart(0).await;
    let log = c.nodes[0].log.lock().unwrap().join("\n");
    assert!(log.contains("waiting for it to end"), "{log}");
}
