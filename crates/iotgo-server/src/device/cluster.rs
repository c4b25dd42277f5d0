//! The Device API's side of cluster mode (`crate::cluster` carries the messages): pushes
//! that reach the apps on every node, devices that move between nodes, commands to a
//! device whose socket is on another node, and presence when a node dies.
//!
//! On a single node (no [`Bus`]) each of these is the local step alone.

use super::DeviceApi;
use crate::cluster::{self, Bus, Remote};
use crate::store::{Buried, Store};
use async_nats::HeaderMap;
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// A command for a device whose socket is on another node.
#[derive(Serialize, Deserialize)]
struct Command {
    /// The device.
    deviceid: String,
    /// The sequence the device's answer carries.
    sequence: String,
    /// The command, with the owner's apikey…
    frame: String,
    /// …and with the device key, for a device bound by it.
    keyed: String,
}

impl DeviceApi {
    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `task` until the Device API shuts down.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.lock().push(tokio::spawn(task));
    }

    /// The cluster's bus, in cluster mode.
    pub fn bus(&self) -> Option<&Arc<Bus>> {
        self.bus.as_ref()
    }

    /// Counts a message from another node.
    pub(crate) fn counted_received(&self) {
        self.metrics.cluster_received.increment(1);
    }

    /// Queues a committed change's `frame` for the apps watching `deviceid` or its owner's
    /// devices (but `except`, its sender), and for the device's own socket when an app
    /// sent it (`to_device`: the frame with the device key); in cluster mode on every node.
    pub(super) fn fan_out(
        &self,
        deviceid: &str,
        owner: &str,
        frame: &Utf8Bytes,
        except: Option<u64>,
        to_device: Option<&Utf8Bytes>,
    ) {
        self.hub.push(deviceid, owner, frame, except);
        if let Some(keyed) = to_device {
            self.hub.send_to_device(deviceid, frame, keyed);
        }
        let Some(bus) = &self.bus else { return };
        let mut headers = HeaderMap::new();
        headers.insert(cluster::OWNER, owner);
        // Where the device's socket is on this node it got the frame above.
        if to_device.is_some() && !self.hub.is_connected(deviceid) {
            headers.insert(cluster::TO_DEVICE, "1");
        }
        let payload = Bytes::copy_from_slice(frame.as_str().as_bytes());
        bus.publish(cluster::push_subject(deviceid), Some(headers), payload);
    }

    /// A push committed on another node: queued for the apps watching here, and for the
    /// device's socket when it is here and the push goes to the device too.
    pub(crate) fn push_from_elsewhere(
        &self,
        deviceid: &str,
        owner: &str,
        frame: &str,
        to_device: bool,
    ) {
        let frame = Utf8Bytes::from(frame);
        self.hub.push(deviceid, owner, &frame, None);
        if to_device && self.hub.is_connected(deviceid) {
            let keyed = self.keyed(deviceid, frame.as_str());
            self.hub.send_to_device(deviceid, &frame, &keyed);
        }
    }

    /// `frame` with the device's key as its `apikey`, for a device bound by its key.
    fn keyed(&self, deviceid: &str, frame: &str) -> Utf8Bytes {
        let key = self.owners.cached(deviceid).map(|k| k.device.to_string());
        match (serde_json::from_str::<Value>(frame), key) {
            (Ok(Value::Object(mut m)), Some(key)) => {
                m.insert("apikey".into(), Value::from(key));
                Utf8Bytes::from(Value::Object(m).to_string())
            }
            _ => Utf8Bytes::from(frame),
        }
    }

    /// Tells the other nodes that `deviceid` got its socket here (its `online` committed):
    /// an older socket on another node closes.
    pub(super) fn announce_bound(&self, deviceid: &str) {
        if let Some(bus) = &self.bus {
            let node = Bytes::copy_from_slice(bus.node().as_bytes());
            bus.publish(cluster::bound_subject(deviceid), None, node);
        }
    }

    /// `deviceid` got a socket on `node`. When this node holds an older one (the database
    /// says the device is `node`'s now), it closes without marking the device offline.
    pub(crate) async fn bound_elsewhere(&self, deviceid: &str, node: &str) {
        if !self.hub.is_connected(deviceid) && !self.http_seen.lock().contains_key(deviceid) {
            return;
        }
        match self.store.nodes().holder(deviceid).await {
            Ok(Some(holder)) if holder == node => {
                self.hub.release_device(deviceid);
                self.forget_poller(deviceid);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, deviceid, "cannot read a device's node"),
        }
    }

    /// Sends an app's command to the node that holds the indie device `deviceid`; `offline`
    /// is the answer when none does. Resolves with the device's answer, `offline`, or
    /// nothing when the device did not answer in time.
    pub(super) async fn command_elsewhere(
        &self,
        deviceid: &str,
        sequence: &str,
        frames: (&Utf8Bytes, &Utf8Bytes),
        offline: Value,
    ) -> Option<Value> {
        let (Some(bus), Ok(Some(node))) = (&self.bus, self.store.nodes().holder(deviceid).await)
        else {
            return Some(offline);
        };
        if *node == **bus.node() {
            // The database says here, the hub says not: it just went.
            return Some(offline);
        }
        let command = Command {
            deviceid: deviceid.to_owned(),
            sequence: sequence.to_owned(),
            frame: frames.0.as_str().to_owned(),
            keyed: frames.1.as_str().to_owned(),
        };
        let payload = serde_json::to_vec(&command).expect("a command always serialises");
        match bus
            .command(&node, payload.into(), self.pending_timeout)
            .await
        {
            Remote::Answer(answer) => Some(serde_json::from_slice(&answer).unwrap_or(offline)),
            Remote::Offline => Some(offline),
            Remote::Timeout => None,
        }
    }

    /// A command from another node for a device whose socket is here: the device's answer,
    /// an empty answer when the device is not here, `None` when it did not answer in time
    /// (the requesting node times out).
    pub(crate) async fn remote_command(&self, payload: &[u8]) -> Option<Bytes> {
        let Ok(c) = serde_json::from_slice::<Command>(payload) else {
            return Some(Bytes::new());
        };
        let wait = self.hub.expect_answer(&c.deviceid, &c.sequence);
        let (frame, keyed) = (Utf8Bytes::from(c.frame), Utf8Bytes::from(c.keyed));
        if !self.hub.send_to_device(&c.deviceid, &frame, &keyed) {
            self.hub.cancel_answer(&c.deviceid, &c.sequence);
            return Some(Bytes::new());
        }
        match tokio::time::timeout(self.pending_timeout, wait).await {
            Ok(Ok(answer)) => Some(answer.to_string().into()),
            // Timed out, or this node shuts down (its socket closes with it).
            _ => {
                self.hub.cancel_answer(&c.deviceid, &c.sequence);
                None
            }
        }
    }

    /// Devices marked offline by a node's join or burial: their apps are told, here and on
    /// the other nodes.
    pub(crate) fn announce_offline(&self, buried: &Buried) {
        for (deviceid, owner) in buried {
            self.sysmsg(deviceid, owner, false);
        }
    }

    /// A dead node was buried by this one: its devices' apps are told.
    pub(crate) async fn node_buried(&self, _node: &str, buried: &Buried) {
        self.metrics.cluster_buried.increment(1);
        self.announce_offline(buried);
    }

    /// This node's lease was taken: what it holds is stale. Its devices' sockets close
    /// (without marking them offline: the node that buried this one did), and its
    /// HTTP-polling window empties; the devices come back online as they reconnect.
    pub(crate) fn lease_lost(&self) {
        self.metrics.cluster_lease_lost.increment(1);
        self.hub.release_devices();
        let polling: Vec<String> = self.http_seen.lock().keys().cloned().collect();
        for id in polling {
            self.forget_poller(&id);
        }
    }
}
