//! What the other nodes say, handed to the Device API: pushes for the apps watching here,
//! lifecycle events for the caches, devices that moved to another node, and commands for
//! the devices whose sockets are here.

use super::{Bus, LIFECYCLE, OWNER, TO_DEVICE};
use crate::device::{DeviceApi, Lifecycle};
use async_nats::{Message, Subscriber};
use futures_util::StreamExt;
use std::sync::{Arc, Weak};

/// This node's subscriptions.
pub(super) struct Subscriptions {
    pushes: Subscriber,
    lifecycle: Subscriber,
    bound: Subscriber,
    commands: Subscriber,
}

/// Subscribes to what the other nodes send. (NATS keeps subscriptions across reconnects.)
pub(super) async fn subscribe(bus: &Bus) -> Result<Subscriptions, async_nats::SubscribeError> {
    let client = &bus.client;
    Ok(Subscriptions {
        pushes: client.subscribe("iotgo.push.*").await?,
        lifecycle: client.subscribe(LIFECYCLE).await?,
        bound: client.subscribe("iotgo.bound.*").await?,
        commands: client.subscribe(super::command_subject(&bus.node)).await?,
    })
}

/// The last token of a subject (`iotgo.push.<deviceid>` → the deviceid).
fn last_token(msg: &Message) -> &str {
    msg.subject.rsplit('.').next().unwrap_or_default()
}

/// Hands every message to the Device API until it is gone.
pub(super) async fn run(bus: Arc<Bus>, mut subs: Subscriptions, api: Weak<DeviceApi>) {
    loop {
        let msg = tokio::select! {
            Some(m) = subs.pushes.next() => Kind::Push(m),
            Some(m) = subs.lifecycle.next() => Kind::Lifecycle(m),
            Some(m) = subs.bound.next() => Kind::Bound(m),
            Some(m) = subs.commands.next() => Kind::Command(m),
            else => return,
        };
        let Some(api) = api.upgrade() else { return };
        api.counted_received();
        match msg {
            Kind::Push(m) => push(&api, &m),
            Kind::Lifecycle(m) => match serde_json::from_slice::<Lifecycle>(&m.payload) {
                Ok(event) => api.apply(&event).await,
                Err(e) => tracing::warn!(error = %e, "unreadable lifecycle event from NATS"),
            },
            Kind::Bound(m) => {
                let node = String::from_utf8_lossy(&m.payload).into_owned();
                let deviceid = last_token(&m).to_owned();
                tokio::spawn(async move { api.bound_elsewhere(&deviceid, &node).await });
            }
            Kind::Command(m) => {
                let bus = bus.clone();
                tokio::spawn(async move {
                    let answer = api.remote_command(&m.payload).await;
                    if let Some(answer) = answer {
                        bus.reply(&m, answer);
                    }
                });
            }
        }
    }
}

enum Kind {
    Push(Message),
    Lifecycle(Message),
    Bound(Message),
    Command(Message),
}

fn push(api: &DeviceApi, m: &Message) {
    let header = |name| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let Some(owner) = header(OWNER) else { return };
    let Ok(frame) = std::str::from_utf8(&m.payload) else {
        return;
    };
    api.push_from_elsewhere(last_token(m), &owner, frame, header(TO_DEVICE).is_some());
}
