//! The realtime hub: who is connected, who watches whom, and commands waiting for a
//! device's answer.
//!
//! Every WebSocket connection is a [`Peer`] with a bounded queue of outgoing messages.
//! The hub only queues messages: it never waits on a socket, and a peer whose queue is
//! full is told to disconnect. A push is serialised once and the same
//! bytes are queued for every watcher. The hub lives in `AppState`; there are no statics.

use crate::device::KeyKind;
use crate::metrics::Metrics;
use axum::extract::ws::Utf8Bytes;
use metrics::{Counter, Gauge};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{oneshot, watch};
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

mod credentials;
mod peer;

pub use peer::{Outbox, Peer};

/// What binding a device to a socket did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// The device had no socket: it just came online.
    New,
    /// Another socket held the device; it was told to close (the newest wins).
    Replaced,
    /// This socket already held the device.
    Already,
}

#[derive(Default)]
struct Inner {
    /// deviceid → the device's own socket.
    devices: HashMap<String, DeviceSocket>,
    /// deviceid → app sockets watching that device.
    watchers: HashMap<String, Vec<Peer>>,
    /// owner apikey → app sockets watching all of that user's devices.
    users: HashMap<String, Vec<Peer>>,
    /// owner apikey → the sockets among `users` that subscribed with a token, and the
    /// token version they carried (see `credentials.rs`).
    tokens: HashMap<String, Vec<(Peer, i64)>>,
    /// owner apikey → the lowest token version still valid, once one was retired while
    /// this server runs.
    retired: HashMap<String, i64>,
}

/// A device's own socket, and the key it proved itself with.
struct DeviceSocket {
    peer: Peer,
    by: KeyKind,
}

/// The registry of connections, subscriptions and pending commands.
pub struct Hub {
    inner: Mutex<Inner>,
    /// (deviceid, sequence) → the app waiting for the device's answer.
    pending: Mutex<HashMap<(String, String), oneshot::Sender<Value>>>,
    next_id: AtomicU64,
    shutdown: watch::Sender<bool>,
    /// Messages queued to, and refused by, sockets (pushes and commands).
    queued: Counter,
    dropped: Counter,
    /// Sockets cut off for not reading.
    cut_off: Counter,
    /// Devices with a socket.
    devices: Gauge,
    /// The live WebSocket connections, so that a shutdown can wait for them to close.
    sockets: TaskTracker,
}

impl Hub {
    /// An empty hub counting into `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Hub {
            inner: Mutex::default(),
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
            queued: metrics.pushes_queued.clone(),
            dropped: metrics.pushes_dropped.clone(),
            cut_off: metrics.peers_cut_off.clone(),
            devices: metrics.devices_ws.clone(),
            sockets: TaskTracker::new(),
        }
    }
}

/// Removes the socket `id` from `list[key]` (a socket, or a socket with what it carries),
/// and the key once its list is empty.
fn remove_peer<T: AsRef<Peer>>(list: &mut HashMap<String, Vec<T>>, key: &str, id: u64) {
    if let Some(v) = list.get_mut(key) {
        v.retain(|p| p.as_ref().id() != id);
        if v.is_empty() {
            list.remove(key);
        }
    }
}

impl Hub {
    /// A new connection with an outgoing queue of `queue_len` messages.
    pub fn peer(&self, queue_len: usize) -> (Peer, Outbox) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        peer::pair(id, queue_len, self.cut_off.clone())
    }

    /// Makes `peer`, which proved itself with the key `by`, the socket of `deviceid`.
    pub fn bind_device(&self, deviceid: &str, peer: &Peer, by: KeyKind) -> Bind {
        let mut inner = self.inner.lock();
        let socket = DeviceSocket {
            peer: peer.clone(),
            by,
        };
        match inner.devices.insert(deviceid.to_owned(), socket) {
            None => {
                self.devices.increment(1);
                Bind::New
            }
            Some(old) if old.peer.id() == peer.id() => Bind::Already,
            Some(old) => {
                old.peer.kill();
                Bind::Replaced
            }
        }
    }

    /// Releases `deviceid` if `peer_id` still holds it; true when it did.
    pub fn unbind_device(&self, deviceid: &str, peer_id: u64) -> bool {
        let mut inner = self.inner.lock();
        if inner
            .devices
            .get(deviceid)
            .is_some_and(|s| s.peer.id() == peer_id)
        {
            inner.devices.remove(deviceid);
            self.devices.decrement(1);
            true
        } else {
            false
        }
    }

    /// Cluster mode: the device moved to another node. Its socket here is told to close,
    /// and released now, so that its close does not mark the device offline.
    pub fn release_device(&self, deviceid: &str) {
        let mut inner = self.inner.lock();
        if let Some(s) = inner.devices.remove(deviceid) {
            self.devices.decrement(1);
            s.peer.kill();
        }
    }

    /// Cluster mode: this node lost its lease. Every device socket is told to close, and
    /// released now (their devices were marked offline by the node that took the lease).
    pub fn release_devices(&self) {
        let mut inner = self.inner.lock();
        self.devices.decrement(inner.devices.len() as f64);
        for (_, s) in inner.devices.drain() {
            s.peer.kill();
        }
    }

    /// Whether the device has a socket now.
    pub fn is_connected(&self, deviceid: &str) -> bool {
        self.inner.lock().devices.contains_key(deviceid)
    }

    /// Queues `frame` on the device's socket, or `keyed` (the same message with the
    /// device key as its `apikey`) when the device proved itself with its device key: it
    /// never sees the owner's apikey. False when it has no socket.
    pub fn send_to_device(&self, deviceid: &str, frame: &Utf8Bytes, keyed: &Utf8Bytes) -> bool {
        let inner = self.inner.lock();
        let Some(socket) = inner.devices.get(deviceid) else {
            return false;
        };
        let frame = match socket.by {
            KeyKind::Owner => frame,
            KeyKind::Device => keyed,
        };
        let sent = socket.peer.send_text(frame);
        self.count(sent as u64, !sent as u64);
        sent
    }

    fn count(&self, queued: u64, dropped: u64) {
        self.queued.increment(queued);
        self.dropped.increment(dropped);
    }

    /// Subscribes `peer` to one device.
    pub fn watch(&self, deviceid: &str, peer: &Peer) {
        let mut inner = self.inner.lock();
        let list = inner.watchers.entry(deviceid.to_owned()).or_default();
        if !list.iter().any(|p| p.id() == peer.id()) {
            list.push(peer.clone());
        }
    }

    /// Subscribes `peer` to every device of the user `owner`, current and future.
    pub fn watch_user(&self, owner: &str, peer: &Peer) {
        let mut inner = self.inner.lock();
        let list = inner.users.entry(owner.to_owned()).or_default();
        if !list.iter().any(|p| p.id() == peer.id()) {
            list.push(peer.clone());
        }
    }

    /// Removes a closed connection's subscriptions.
    pub fn leave<'a>(
        &self,
        peer_id: u64,
        devices: impl IntoIterator<Item = &'a String>,
        users: impl IntoIterator<Item = &'a String>,
    ) {
        let mut inner = self.inner.lock();
        for d in devices {
            remove_peer(&mut inner.watchers, d, peer_id);
        }
        for u in users {
            remove_peer(&mut inner.users, u, peer_id);
            remove_peer(&mut inner.tokens, u, peer_id);
        }
    }

    /// A device was deleted: its watchers are dropped and its socket is closed, so that
    /// nothing leaks to the next owner of that deviceid.
    pub fn forget_device(&self, deviceid: &str) {
        let mut inner = self.inner.lock();
        inner.watchers.remove(deviceid);
        if let Some(s) = inner.devices.remove(deviceid) {
            self.devices.decrement(1);
            s.peer.kill();
        }
    }

    /// A user was deleted: their subscribe-all sockets stop receiving.
    pub fn forget_user(&self, owner: &str) {
        let mut inner = self.inner.lock();
        inner.users.remove(owner);
        inner.tokens.remove(owner);
        inner.retired.remove(owner);
    }

    /// Queues `frame` for every app watching `deviceid` or all devices of `owner`, once
    /// each, except the connection `except` (the sender of the change).
    pub fn push(&self, deviceid: &str, owner: &str, frame: &Utf8Bytes, except: Option<u64>) {
        let inner = self.inner.lock();
        let mut sent: Vec<u64> = Vec::new();
        let mut dropped = 0;
        let all = inner.watchers.get(deviceid).into_iter().flatten();
        for p in all.chain(inner.users.get(owner).into_iter().flatten()) {
            if Some(p.id()) == except || sent.contains(&p.id()) {
                continue;
            }
            sent.push(p.id());
            dropped += u64::from(!p.send_text(frame));
        }
        self.count(sent.len() as u64 - dropped, dropped);
    }

    /// Registers an app waiting for `deviceid` to answer the command `sequence`.
    /// Once the server shuts down the receiver resolves at once, empty.
    pub fn expect_answer(&self, deviceid: &str, sequence: &str) -> oneshot::Receiver<Value> {
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending.lock();
        // Checked under the lock that `shut_down` clears the commands under.
        if !self.is_shutting_down() {
            // A second command with the same sequence replaces the first, which then
            // times out.
            pending.insert((deviceid.to_owned(), sequence.to_owned()), tx);
        }
        rx
    }

    /// Drops a waiting command (sent nowhere, or timed out).
    pub fn cancel_answer(&self, deviceid: &str, sequence: &str) {
        self.pending
            .lock()
            .remove(&(deviceid.to_owned(), sequence.to_owned()));
    }

    /// Hands a device's answer to the app waiting for it; false when nobody waits.
    pub fn answer(&self, deviceid: &str, sequence: &str, answer: Value) -> bool {
        let waiter = self
            .pending
            .lock()
            .remove(&(deviceid.to_owned(), sequence.to_owned()));
        waiter.is_some_and(|w| w.send(answer).is_ok())
    }

    /// A receiver that sees `true` when the server shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether the server is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Tells every connection to close, and ends every command still waiting for a
    /// device's answer (its app is answered at once instead of when its socket is gone).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
        self.pending.lock().clear();
        self.sockets.close();
    }

    /// Counts a WebSocket connection as open while the token lives.
    pub fn track_socket(&self) -> TaskTrackerToken {
        self.sockets.token()
    }

    /// WebSocket connections open now.
    pub fn open_sockets(&self) -> usize {
        self.sockets.len()
    }

    /// Resolves once the hub shut down and every WebSocket connection ended.
    pub async fn sockets_closed(&self) {
        self.sockets.wait().await
    }
}

#[cfg(test)]
mod tests;
