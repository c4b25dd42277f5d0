//! Who owns which device, and with which keys a request may act for it: an in-memory
//! cache backed by the store, so that authorising a Device API message costs no database
//! read once the device is known.
//!
//! The lifecycle functions (`device/registry.rs`) keep it right: creating or claiming a
//! device records its keys, deleting a device or a user forgets them, rotating an apikey
//! or regenerating a device key replaces them.

use crate::store::{Store, StoreResult};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// The two keys that may act for a device.
#[derive(Debug, PartialEq, Eq)]
pub struct Keys {
    /// The owner's apikey: acts for every device of the owner, as a device or an app.
    pub owner: Arc<str>,
    /// The device's own key: acts only as this device.
    pub device: Arc<str>,
}

/// Which key a request gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The owner's apikey.
    Owner,
    /// The device's own key.
    Device,
}

impl Keys {
    /// Which of the two keys `given` is, if either. Compared in constant time, so the
    /// time an answer takes tells nothing about how much of a guessed key was right.
    pub fn which(&self, given: &str) -> Option<KeyKind> {
        if same_key(&self.owner, given) {
            Some(KeyKind::Owner)
        } else if same_key(&self.device, given) {
            Some(KeyKind::Device)
        } else {
            None
        }
    }
}

/// Whether a key given by a client is `expected`, in constant time.
fn same_key(expected: &str, given: &str) -> bool {
    // An empty expected key (a row from before the device keys, never read as such
    // since migration 0005) matches nothing.
    !expected.is_empty() && crate::secrets::same_secret(expected, given)
}

/// deviceid → its keys.
pub struct Owners {
    store: Store,
    map: RwLock<HashMap<String, Arc<Keys>>>,
}

impl Owners {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Self {
        Owners {
            store,
            map: RwLock::default(),
        }
    }

    /// The keys of `deviceid`; reads the store only the first time.
    ///
    /// Unknown devices are not cached, so a device created elsewhere is found at once.
    pub async fn get(&self, deviceid: &str) -> StoreResult<Option<Arc<Keys>>> {
        if let Some(keys) = self.map.read().get(deviceid) {
            return Ok(Some(keys.clone()));
        }
        // Boxed: the query's future is large, and a connection's task would otherwise
        // carry its size for its whole life (see `api::ws`).
        let row = Box::pin(self.store.devices().keys_of(deviceid)).await?;
        Ok(row.map(|(owner, device)| {
            let read = Arc::new(Keys {
                owner: owner.into(),
                device: device.into(),
            });
            // A lifecycle event that set the keys while this read was under way wins:
            // what was read may be from before it.
            match self.map.write().entry(deviceid.to_owned()) {
                Entry::Occupied(e) => e.get().clone(),
                Entry::Vacant(e) => e.insert(read).clone(),
            }
        }))
    }

    /// The keys of `deviceid` if they are cached (a device with a socket here is).
    pub fn cached(&self, deviceid: &str) -> Option<Arc<Keys>> {
        self.map.read().get(deviceid).cloned()
    }

    /// Records the keys of a new or claimed device, or its new keys.
    pub fn set(&self, deviceid: &str, owner: &str, device: &str) {
        let keys = Arc::new(Keys {
            owner: owner.into(),
            device: device.into(),
        });
        self.map.write().insert(deviceid.to_owned(), keys);
    }

    /// Forgets a deleted device.
    pub fn forget(&self, deviceid: &str) {
        self.map.write().remove(deviceid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "b45c1e61-964a-4ad3-9b9d-0b97ac95fe14";
    const DEVICE: &str = "0e7f5c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6";

    #[test]
    fn a_key_is_the_owners_the_devices_or_neither() {
        let keys = Keys {
            owner: OWNER.into(),
            device: DEVICE.into(),
        };
        assert_eq!(keys.which(OWNER), Some(KeyKind::Owner));
        assert_eq!(keys.which(DEVICE), Some(KeyKind::Device));
        assert_eq!(keys.which("b45c1e61-964a-4ad3-9b9d-0b97ac95fe15"), None);
        assert_eq!(keys.which(&OWNER[..35]), None);
        assert_eq!(keys.which(""), None);
    }

    #[test]
    fn an_empty_device_key_matches_nothing() {
        let keys = Keys {
            owner: OWNER.into(),
            device: "".into(),
        };
        assert_eq!(keys.which(""), None);
        assert_eq!(keys.which(OWNER), Some(KeyKind::Owner));
    }
}
