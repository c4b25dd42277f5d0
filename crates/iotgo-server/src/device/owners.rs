//! Who owns which device: an in-memory cache backed by the store, so that authorising a
//! Device API message costs no database read once the device is known.
//!
//! The Web API keeps it right: creating or claiming a device records its owner, deleting
//! a device or a user forgets them.

use crate::store::{Store, StoreResult};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// deviceid → owner apikey.
pub struct Owners {
    store: Store,
    map: RwLock<HashMap<String, Arc<str>>>,
}

impl Owners {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Self {
        Owners {
            store,
            map: RwLock::default(),
        }
    }

    /// The owner of `deviceid`; reads the store only the first time.
    ///
    /// Unknown devices are not cached, so a device created elsewhere is found at once.
    pub async fn get(&self, deviceid: &str) -> StoreResult<Option<Arc<str>>> {
        if let Some(owner) = self.map.read().get(deviceid) {
            return Ok(Some(owner.clone()));
        }
        // Boxed: the query's future is large, and a connection's task would otherwise
        // carry its size for its whole life (see `api::ws`).
        let owner = Box::pin(self.store.devices().owner_of(deviceid)).await?;
        Ok(owner.map(|o| {
            let o: Arc<str> = o.into();
            self.map.write().insert(deviceid.to_owned(), o.clone());
            o
        }))
    }

    /// Records the owner of a new or claimed device.
    pub fn set(&self, deviceid: &str, owner: &str) {
        self.map.write().insert(deviceid.to_owned(), owner.into());
    }

    /// Forgets a deleted device.
    pub fn forget(&self, deviceid: &str) {
        self.map.write().remove(deviceid);
    }
}
