//! Presence: `online`, `lastConnectedAt`, `lastDisconnectedAt` and the `sysmsg` pushes.
//!
//! A device is online while it holds a WebSocket, or — when it only polls over HTTP —
//! while its last request is within `http_online_window`. Every change is persisted
//! (committed before the sysmsg goes out, so an app that reads the device after the
//! sysmsg sees the same) and pushed to the device's watchers.

use super::{Access, DeviceApi};
use crate::hub::{Bind, Peer};
use crate::store::{Millis, StateWrite};
use axum::extract::ws::Utf8Bytes;
use iotgo_protocol::DeviceId;
use serde_json::json;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A device that just got a connection as its socket, on its way online: its `online`
/// write commits, then its watchers are told (`sysmsg`) — unless it was online already,
/// through another socket or HTTP polling. The session keeps it until
/// [`Connecting::finish`] returned, so the step survives a cancelled wait.
pub(super) struct Connecting {
    deviceid: DeviceId,
    owner: Arc<str>,
    /// The device was offline: its watchers get the sysmsg.
    announce: bool,
    /// The `online` write, once queued.
    wait: Option<oneshot::Receiver<bool>>,
}

impl Connecting {
    /// Commits the `online` write, then tells the watchers. Cancel-safe: awaited again
    /// after a cancel, it goes on where it stopped (a write not yet queued is queued
    /// then). Not to be awaited again once it returned.
    pub(super) async fn finish(&mut self, api: &DeviceApi) {
        let wait = match &mut self.wait {
            Some(wait) => wait,
            None => {
                // Cluster mode: a device online through another node moves here; its
                // apps hear of no presence change.
                if self.announce && api.bus.is_some() {
                    self.announce = api.held_nowhere(self.deviceid.as_str()).await;
                }
                let write = StateWrite::Online {
                    deviceid: self.deviceid.as_str().to_owned(),
                    at: Millis::now(),
                };
                self.wait.insert(api.writer.submit(write).await)
            }
        };
        // A failed write is logged by the writer; the device holds its socket anyway.
        let _ = wait.await;
        api.announce_bound(self.deviceid.as_str());
        if self.announce {
            api.sysmsg(self.deviceid.as_str(), &self.owner, true);
        }
    }
}

impl DeviceApi {
    /// A device's first successful request on `peer`: binds the connection (the newest
    /// socket of a deviceid wins). What remains, when the device was not bound to `peer`
    /// already, is to mark it online: [`Connecting::finish`].
    pub(super) fn device_bound(
        &self,
        deviceid: DeviceId,
        access: Access,
        peer: &Peer,
    ) -> Option<Box<Connecting>> {
        let bind = self.hub.bind_device(deviceid.as_str(), peer, access.by);
        if bind == Bind::Already {
            return None;
        }
        let was_polling = self.forget_poller(deviceid.as_str());
        Some(Box::new(Connecting {
            announce: bind == Bind::New && !was_polling,
            deviceid,
            owner: access.keys.owner.clone(),
            wait: None,
        }))
    }

    /// Cluster mode: whether no node holds `deviceid` (it is offline), so that its coming
    /// online here is news to its apps.
    async fn held_nowhere(&self, deviceid: &str) -> bool {
        !matches!(self.store.nodes().holder(deviceid).await, Ok(Some(_)))
    }

    /// A device's socket closed: offline, unless a newer socket took the device over.
    pub(super) async fn device_disconnected(&self, deviceid: &str, peer_id: u64) {
        if !self.hub.unbind_device(deviceid, peer_id) {
            return;
        }
        self.went_offline(deviceid).await;
    }

    /// A device's successful request over HTTP: online while it keeps polling.
    pub(super) async fn device_polled(&self, deviceid: &str, owner: &str) {
        if self.hub.is_connected(deviceid) {
            return;
        }
        let first = {
            let mut seen = self.http_seen.lock();
            match seen.get_mut(deviceid) {
                Some(at) => {
                    *at = Instant::now();
                    false
                }
                None => seen.insert(deviceid.to_owned(), Instant::now()).is_none(),
            }
        };
        if first {
            self.metrics.devices_http.increment(1);
            // Cluster mode: polling through another node too, it is online already.
            let announce = self.bus.is_none() || self.held_nowhere(deviceid).await;
            let write = StateWrite::Online {
                deviceid: deviceid.to_owned(),
                at: Millis::now(),
            };
            self.writer.commit(write).await;
            if announce {
                self.sysmsg(deviceid, owner, true);
            }
        }
    }

    async fn went_offline(&self, deviceid: &str) {
        let write = StateWrite::Offline {
            deviceid: deviceid.to_owned(),
            at: Millis::now(),
        };
        let applied = self.writer.commit(write).await;
        // In cluster mode an offline write does not apply once the device is another
        // node's: that node told its apps it is online.
        if !applied && self.bus.is_some() {
            return;
        }
        if let Ok(Some(keys)) = self.owners.get(deviceid).await {
            self.sysmsg(deviceid, &keys.owner, false);
        }
    }

    pub(super) fn sysmsg(&self, deviceid: &str, owner: &str, online: bool) {
        let msg = json!({"action": "sysmsg", "deviceid": deviceid, "apikey": owner,
            "params": {"online": online}});
        self.fan_out(
            deviceid,
            owner,
            &Utf8Bytes::from(msg.to_string()),
            None,
            None,
        );
    }

    /// A device leaves the HTTP-polling window (it got a socket, or it was deleted: no
    /// offline sysmsg comes later); true when it was in it.
    pub(super) fn forget_poller(&self, deviceid: &str) -> bool {
        let was_polling = self.http_seen.lock().remove(deviceid).is_some();
        if was_polling {
            self.metrics.devices_http.decrement(1);
        }
        was_polling
    }

    /// The HTTP-polling devices not seen within the window; forgotten as they are returned.
    fn expired_pollers(&self) -> Vec<String> {
        let window = self.http_window;
        let mut seen = self.http_seen.lock();
        let expired: Vec<String> = seen
            .iter()
            .filter(|(_, at)| at.elapsed() >= window)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            seen.remove(id);
        }
        self.metrics.devices_http.decrement(expired.len() as f64);
        expired
    }
}

/// Marks HTTP-polling devices offline once their window passes; ends with the service.
pub(super) async fn sweep(api: Weak<DeviceApi>) {
    let period = match api.upgrade() {
        Some(a) => (a.http_window / 4).clamp(Duration::from_millis(20), Duration::from_secs(5)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let Some(api) = api.upgrade() else { return };
        for id in api.expired_pollers() {
            if !api.hub.is_connected(&id) {
                api.went_offline(&id).await;
            }
        }
        drop::<Arc<DeviceApi>>(api);
    }
}
