//! Durability: every acked update survives a SIGKILL of the real binary.

use crate::helpers::spawn_app;
use crate::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[tokio::test]
async fn acked_updates_survive_sigkill() {
    let app = spawn_app().await;
    let me = owner(&app, "a@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(device(&app, &me, "00").await);
    }
    let config = app.state.config.clone();
    let db = config.database_url.as_ref().map(|s| s.expose().to_owned());
    let Binary {
        child: mut server,
        base,
        ..
    } = start_binary(&config.data_dir, db.as_deref(), &[]).await;

    let mut senders = Vec::new();
    let mut acked = Vec::new();
    for id in &ids {
        let last = Arc::new(AtomicI64::new(0));
        acked.push(last.clone());
        let (url, id, key) = (format!("{base}/api/http"), id.clone(), me.apikey.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 1.. {
                let body = json!({"action": "update", "deviceid": id, "apikey": key,
                    "params": {"n": n}});
                let Ok(res) = client.post(&url).json(&body).send().await else {
                    break;
                };
                let Ok(answer) = res.json::<Value>().await else {
                    break;
                };
                if answer["error"] == 0 {
                    last.store(n, Ordering::SeqCst);
                }
            }
        }));
    }
    // Every device is acked at least once, then the updates run a little longer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while acked.iter().any(|a| a.load(Ordering::SeqCst) == 0) {
        assert!(tokio::time::Instant::now() < deadline, "no acks");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.start_kill().expect("SIGKILL");
    server.wait().await.expect("killed");
    for s in senders {
        s.await.expect("sender");
    }

    let Binary {
        child: _server,
        base,
        ..
    } = start_binary(&config.data_dir, db.as_deref(), &[]).await;
    for (id, last) in ids.iter().zip(&acked) {
        let acked = last.load(Ordering::SeqCst);
        assert!(acked > 0, "device {id} got no ack before the kill");
        let stored = query_n(&base, id, &me.apikey).await;
        assert!(
            stored >= acked,
            "device {id}: acked {acked}, stored {stored}"
        );
    }
}
