//! History across nodes, black box: updates recorded on two nodes are read in full from
//! every node's history API, also after one of them is killed (a survivor folds its log)
//! and restarted.

use crate::harness::Cluster;
use crate::helpers::{device, owner};
use crate::rules::{get, http, login, update};
use iotgo_server::history::fold_node_log;
use serde_json::json;
use std::time::Duration;

/// Longer than a lease (3 s) plus a renewal period and a sweep.
const PAST_LEASE: Duration = Duration::from_secs(8);

/// The temperatures node `i`'s history API answers for `deviceid`, in order.
async fn temperatures(c: &Cluster, i: usize, token: &str, deviceid: &str) -> Vec<f64> {
    let url = format!(
        "{}/api/user/device/{deviceid}/history?from=0&fields=temperature",
        c.base(i)
    );
    let (status, body) = get(&url, Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("points: {body}"))
        .iter()
        .map(|p| p["temperature"].as_f64().expect("a temperature"))
        .collect()
}

#[tokio::test]
async fn every_node_reads_every_nodes_history_also_after_one_is_killed() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let th = device(&c.setup, &me, "03").await;
    c.start(3).await;
    // Three updates through node 0, three through node 1, in turn.
    for t in 0..6 {
        let params = json!({"temperature": t, "humidity": 50});
        let node = c.base(t % 2).to_owned();
        let answer = http(&node, &update(&th, &k, false, params)).await;
        assert_eq!(answer["error"], 0, "{answer}");
    }
    let all: Vec<f64> = (0..6).map(f64::from).collect();
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(login(c.base(i), "a@example.com").await);
        assert_eq!(temperatures(&c, i, &tokens[i], &th).await, all, "node {i}");
    }

    // Node 0 dies with its points in its log; a survivor buries it and folds the log.
    c.kill(0).await;
    tokio::time::sleep(PAST_LEASE).await;
    for (i, token) in tokens.iter().enumerate().skip(1) {
        assert_eq!(temperatures(&c, i, token, &th).await, all, "node {i}");
    }
    // Its log was folded already: nothing is left to fold.
    let store = &c.setup.state.store;
    assert_eq!(fold_node_log(store, "n0").await.unwrap(), 0);
    c.restart(0).await;
    let token = login(c.base(0), "a@example.com").await;
    assert_eq!(temperatures(&c, 0, &token, &th).await, all, "node 0 again");
}
