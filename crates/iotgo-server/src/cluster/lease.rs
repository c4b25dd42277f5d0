//! Presence across nodes: each node holds a lease in the `nodes` table and renews it every
//! third of `cluster_lease`. A node whose lease ended (killed, cut off from the database)
//! is dead: the first survivor to see it buries it — its devices go offline and the apps
//! are told. A node that finds its own lease gone (it was cut off long enough to be
//! buried) closes its devices' sockets, so that nothing it holds is stale, and joins
//! again; its devices reconnect and come online afresh.

use super::Bus;
use crate::device::DeviceApi;
use crate::store::{Join, Millis};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Joins the cluster: the lease is taken, and what an earlier run of this node left
/// online goes offline (the apps on other nodes are told); this run's start, which its
/// renewals name. A live run holding this node id's lease (an earlier run that crashed
/// moments ago, or another node given the same `node_id`) is waited for until its lease
/// ends; if it renews meanwhile it is alive, and this node refuses to share its id.
pub(super) async fn join(api: &DeviceApi, bus: &Bus) -> anyhow::Result<Millis> {
    let run = Millis::now();
    let mut waited_for: Option<i64> = None;
    loop {
        let (until, left) = match api.store().nodes().join(&bus.node, bus.lease, run).await? {
            Join::Joined(buried) => {
                if !buried.is_empty() {
                    tracing::info!(
                        devices = buried.len(),
                        "devices this node held before its restart marked offline"
                    );
                }
                api.announce_offline(&buried);
                return Ok(run);
            }
            Join::Held { until, left } => (until, left),
        };
        match waited_for {
            Some(before) if until > before => anyhow::bail!(
                "node id {} is in use: a running node holds it (it renewed its lease while \
                 this one waited); give each node its own node_id, or none (a node then \
                 makes its own in its data directory)",
                bus.node
            ),
            Some(_) => {}
            None => tracing::warn!(
                node = &*bus.node,
                wait_ms = left.as_millis() as u64,
                "a run of this node id holds a lease (this node's last run, if it crashed \
                 moments ago, or another node with the same node_id): waiting for it to end"
            ),
        }
        waited_for = Some(until);
        tokio::time::sleep(left + Duration::from_millis(100)).await;
    }
}

/// Renews the lease and buries dead nodes, until the Device API is gone.
pub(super) async fn run(bus: Arc<Bus>, api: Weak<DeviceApi>, mut run: Millis) {
    let mut tick = tokio::time::interval(bus.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(api) = api.upgrade() else { return };
        if let Err(e) = keep(&api, &bus, &mut run).await {
            tracing::error!(error = ?e, "cluster lease: renewing or joining failed");
        }
    }
}

/// Renews the lease of `run` (joining again as a new run if it was taken), then buries
/// the nodes whose lease ended.
async fn keep(api: &DeviceApi, bus: &Bus, run: &mut Millis) -> anyhow::Result<()> {
    let nodes = api.store().nodes();
    if !nodes.renew(&bus.node, *run, bus.lease).await? {
        tracing::warn!(
            "this node's lease was taken (it was cut off for longer than cluster_lease): \
             closing its devices' sockets, joining again"
        );
        api.lease_lost();
        // A survivor may have folded this node's history log: a fold now finds out and
        // reads back what is left (docs/history.md, "On a cluster").
        if let Err(e) = api.writer().fold_history(1).await {
            tracing::warn!(error = ?e, "history fold after the lease was lost failed");
        }
        *run = join(api, bus).await?;
    }
    for node in nodes.expired().await? {
        let Some(buried) = nodes.bury(&node, Millis::now()).await? else {
            continue;
        };
        tracing::warn!(
            node,
            devices = buried.len(),
            "a node's lease ended: its devices are marked offline"
        );
        api.node_buried(&node, &buried).await;
        // What it recorded and did not fold becomes chunks (each point once, even when
        // another survivor does the same).
        match crate::history::fold_node_log(api.store(), &node).await {
            Ok(0) => {}
            Ok(points) => tracing::info!(node, points, "a dead node's history log folded"),
            Err(e) => tracing::warn!(node, error = ?e, "a dead node's history fold failed"),
        }
    }
    Ok(())
}
