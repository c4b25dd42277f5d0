//! Credentials that die while sockets are open: an owner's apikey rotated, a device key
//! regenerated, a user's tokens retired (password change, "sign out everywhere",
//! rotation). The hub knows which socket proved itself with what, and cuts the ones whose
//! proof no longer holds at once, so no open socket outlives its credential. Nothing here
//! runs per message: a request on an open socket is authorised from the owner cache,
//! which the same lifecycle event updates.

use super::{Hub, Peer, remove_peer};
use crate::device::KeyKind;

impl Hub {
    /// Records that `peer` subscribed to the user `owner` with a token of version `ver`,
    /// so that retiring that version cuts it. False (nothing recorded) when that version
    /// was retired already: the token was checked against the database before a
    /// retirement this server has since seen.
    pub fn hold_token(&self, owner: &str, ver: i64, peer: &Peer) -> bool {
        let mut inner = self.inner.lock();
        if inner.retired.get(owner).is_some_and(|&lowest| ver < lowest) {
            return false;
        }
        let list = inner.tokens.entry(owner.to_owned()).or_default();
        if !list.iter().any(|(p, _)| p.id() == peer.id()) {
            list.push((peer.clone(), ver));
        }
        true
    }

    /// The user `owner`'s tokens older than `version` were retired: the sockets that
    /// subscribed with one are cut.
    pub fn retire_tokens(&self, owner: &str, version: i64) {
        let mut inner = self.inner.lock();
        let lowest = inner.retired.entry(owner.to_owned()).or_insert(version);
        *lowest = (*lowest).max(version);
        let Some(list) = inner.tokens.get_mut(owner) else {
            return;
        };
        let cut: Vec<(Peer, i64)> = list.extract_if(.., |(_, ver)| *ver < version).collect();
        if list.is_empty() {
            inner.tokens.remove(owner);
        }
        for (p, _) in cut {
            remove_peer(&mut inner.users, owner, p.id());
            p.kill();
        }
    }

    /// The user's apikey `old` was replaced (committed): every socket that proved itself
    /// with it is cut — the user's subscribe-all sockets (by apikey or token), the apps
    /// watching the user's `devices`, and the devices' own sockets bound by the owner's
    /// apikey. Devices bound by their own device key stay.
    pub fn apikey_rotated(&self, old: &str, devices: &[String]) {
        let mut inner = self.inner.lock();
        inner.tokens.remove(old);
        inner.retired.remove(old);
        for p in inner.users.remove(old).into_iter().flatten() {
            p.kill();
        }
        for id in devices {
            for p in inner.watchers.remove(id).into_iter().flatten() {
                p.kill();
            }
            if let Some(socket) = inner.devices.get(id)
                && socket.by == KeyKind::Owner
            {
                socket.peer.kill();
            }
        }
    }

    /// A device's key was replaced (committed): its socket is cut if it proved itself with
    /// the old device key. (Apps never use a device key.)
    pub fn device_key_changed(&self, deviceid: &str) {
        let inner = self.inner.lock();
        if let Some(socket) = inner.devices.get(deviceid)
            && socket.by == KeyKind::Device
        {
            socket.peer.kill();
        }
    }
}
