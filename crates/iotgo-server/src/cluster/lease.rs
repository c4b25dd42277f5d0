//! Presence across nodes: each node holds a lease in the `nodes` table and renews it every
//! third of `cluster_lease`. A node whose lease ended (killed, cut off from the database)
//! is dead: the first survivor to see it buries it — its devices go offline and the apps
//! are told. A node that finds its own lease gone (it was cut off long enough to be
//! buried) closes its devices' sockets, so that nothing it holds is stale, and joins
//! again; its devices reconnect and come online afresh.

use super::Bus;
use crate::device::DeviceApi;
use crate::store::Millis;
use std::sync::{Arc, Weak};

/// Joins the cluster: the lease is taken, and what an earlier run of this node left
/// online goes offline (the apps on other nodes are told).
pub(super) async fn join(api: &DeviceApi, bus: &Bus) -> anyhow::Result<()> {
    let buried = api
        .store()
        .nodes()
        .join(&bus.node, bus.lease, Millis::now())
        .await?;
    if !buried.is_empty() {
        tracing::info!(
            devices = buried.len(),
            "devices this node held before its restart marked offline"
        );
    }
    api.announce_offline(&buried);
    Ok(())
}

/// Renews the lease and buries dead nodes, until the Device API is gone.
pub(super) async fn run(bus: Arc<Bus>, api: Weak<DeviceApi>) {
    let mut tick = tokio::time::interval(bus.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(api) = api.upgrade() else { return };
        if let Err(e) = keep(&api, &bus).await {
            tracing::warn!(error = ?e, "cluster lease: the database did not answer");
        }
    }
}

async fn keep(api: &DeviceApi, bus: &Bus) -> anyhow::Result<()> {
    let nodes = api.store().nodes();
    if !nodes.renew(&bus.node, bus.lease).await? {
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
        join(api, bus).await?;
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
