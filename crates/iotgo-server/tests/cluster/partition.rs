//! A partition: a node on a host of its own (a network namespace) is cut off from
//! PostgreSQL, NATS and the other nodes while its devices still reach it.

use crate::harness::Cluster;
use crate::helpers::{device, owner};
use crate::netns::Netns;
use crate::rules::{get, query};
use crate::support::Ws;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_node_cut_off_is_buried_then_drops_its_stale_sockets_when_it_comes_back() {
    let Some(mut c) = Cluster::new().await else {
        return;
    };
    let Some(net) = Netns::create() else {
        eprintln!("the partition test needs root (ip netns): skipped");
        return;
    };
    let me = owner(&c.setup, "a@example.com").await;
    let k = me.apikey.clone();
    let sw = device(&c.setup, &me, "01").await;
    c.start(2).await;
    let cut_off = c.add_in(&net).await;

    let mut app = Ws::connect_to(c.base(0)).await;
    assert_eq!(app.call(query(&sw, &k, true)).await["error"], 0);
    let mut dev = Ws::connect_to(c.base(cut_off)).await;
    assert_eq!(dev.call(query(&sw, &k, false)).await["error"], 0);
    let online = |on: bool| json!({"action": "sysmsg", "deviceid": sw, "apikey": k, "params": {"online": on}});
    assert_eq!(app.recv().await, online(true));

    // Cut: the others bury the node within the lease; the app is told.
    net.cut();
    let told = app.next(Duration::from_secs(8)).await;
    assert_eq!(told, Some(online(false)), "a sysmsg within the lease");

    // Healed: the node finds its lease taken and closes the socket it held, rather than
    // keep a device that the cluster says is offline; the device comes back elsewhere.
    net.heal();
    assert!(
        dev.closed_within(Duration::from_secs(30)).await,
        "the cut-off node drops its stale socket"
    );
    let mut dev = Ws::connect_to(c.base(1)).await;
    assert_eq!(dev.call(query(&sw, &k, false)).await["error"], 0);
    assert_eq!(app.recv().await, online(true));
    // And the node is whole again.
    let health = format!("{}/healthz", c.base(cut_off));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&health, None).await;
        if status == 200 && body["status"] == "ok" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(net);
}
