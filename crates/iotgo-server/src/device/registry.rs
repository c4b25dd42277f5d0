//! The lifecycle of devices, users and their credentials: the only way to create, claim
//! or delete a device, to delete a user, to rotate a user's apikey, to regenerate a
//! device key, or to retire a user's tokens (password change, "sign out everywhere").
//!
//! A deviceid that is deleted, or created again (a license claimed anew, a serial
//! reused), must leave no trace in what the Device API keeps in memory: the owner cache,
//! the writer's params cache, the hub's watchers and socket, the HTTP-polling window and
//! the recent history points. A credential that dies must die everywhere at once: in the
//! owner cache (the HTTP Device API and every new request on a socket) and on the open
//! sockets that proved themselves with it (the hub cuts them). Each lifecycle event is
//! one function here that changes the database (one transaction) and then applies the
//! [`Lifecycle`] event to every one of them; handlers (Web API, admin) call only these.
//! In cluster mode the event also goes to the other nodes, which apply it to their own
//! caches and sockets.

use super::DeviceApi;
use crate::store::{ClaimError, Device, Redeemed, StoreResult, User};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType};
use serde::{Deserialize, Serialize};

/// What a lifecycle event changed (committed), for the caches and sockets of every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Lifecycle {
    /// A device row was made (created, or a license claimed): its deviceid may have lived
    /// before, so cached params go and the owner cache learns its keys.
    Added {
        /// The device.
        deviceid: String,
        /// Its owner's apikey.
        owner: String,
        /// Its device key.
        device_key: String,
    },
    /// Devices were deleted.
    Deleted {
        /// The devices.
        deviceids: Vec<String>,
    },
    /// A user was deleted, with their devices.
    UserDeleted {
        /// Their apikey.
        owner: String,
        /// Their devices.
        deviceids: Vec<String>,
    },
    /// A user's apikey was replaced.
    ApikeyRotated {
        /// The old apikey.
        old: String,
        /// The new one.
        new: String,
        /// Their devices, each with its device key.
        devices: Vec<(String, String)>,
    },
    /// A device's key was replaced.
    DeviceKey {
        /// The device.
        deviceid: String,
        /// Its owner's apikey.
        owner: String,
        /// The new device key.
        device_key: String,
    },
    /// A user's tokens older than `version` were retired.
    TokensRetired {
        /// Their apikey.
        owner: String,
        /// The lowest token version still valid.
        version: i64,
    },
}

impl DeviceApi {
    /// Creates a DIY device of type `ty` for `owner`, with the next free serial.
    pub async fn create_device(
        &self,
        owner: &str,
        name: &str,
        group: &str,
        ty: DeviceType,
    ) -> StoreResult<Device> {
        let device = self.store.devices().create(owner, name, group, ty).await?;
        self.lifecycle(added(&device)).await;
        Ok(device)
    }

    /// Claims the license (`id`, `factory_apikey`) of a factory-made device for `owner`.
    pub async fn claim_device(
        &self,
        owner: &str,
        id: &DeviceId,
        factory_apikey: &str,
        name: &str,
        group: &str,
    ) -> Result<Device, ClaimError> {
        let device = self
            .store
            .devices()
            .claim(owner, id, factory_apikey, name, group)
            .await?;
        self.lifecycle(added(&device)).await;
        Ok(device)
    }

    /// Deletes a device of `owner` with its history; the device as it was, or `None` when
    /// `owner` has no such device.
    pub async fn delete_device(&self, owner: &str, deviceid: &str) -> StoreResult<Option<Device>> {
        let device = self.store.devices().delete(owner, deviceid).await?;
        if let Some(d) = &device {
            let deviceids = vec![d.deviceid.clone()];
            self.lifecycle(Lifecycle::Deleted { deviceids }).await;
        }
        Ok(device)
    }

    /// Deletes a user with every device they own and its history; the user as they were.
    pub async fn delete_user(&self, apikey: &str) -> StoreResult<Option<User>> {
        let Some((user, deviceids)) = self.store.users().delete(apikey).await? else {
            return Ok(None);
        };
        let owner = user.apikey.clone();
        self.lifecycle(Lifecycle::UserDeleted { owner, deviceids })
            .await;
        Ok(Some(user))
    }

    /// Gives the user `old` a new apikey: on the user and as the owner of each of their
    /// devices (one transaction), with their token version bumped. The old apikey stops
    /// working at once on every transport — the owner cache learns the new one, and the
    /// hub cuts the sockets that proved themselves with the old one (the user's
    /// subscriptions, the apps watching the user's devices, the devices bound by the
    /// owner's apikey); every token of the user dies. Devices bound by their own device
    /// key keep working. The new apikey and token version, `None` when there is no such
    /// user.
    pub async fn rotate_apikey(&self, old: &str) -> StoreResult<Option<(ApiKey, i64)>> {
        let new = ApiKey::generate();
        let Some(rotated) = self.store.users().rotate_apikey(old, new.as_str()).await? else {
            return Ok(None);
        };
        self.lifecycle(Lifecycle::ApikeyRotated {
            old: old.to_owned(),
            new: new.as_str().to_owned(),
            devices: rotated.devices,
        })
        .await;
        Ok(Some((new, rotated.token_version)))
    }

    /// Gives a device of `owner` a new device key; the old one stops working at once (the
    /// owner cache learns the new one, and a socket bound by the old one is cut). The
    /// device as it is now, `None` when `owner` has no such device.
    pub async fn regenerate_device_key(
        &self,
        owner: &str,
        deviceid: &str,
    ) -> StoreResult<Option<Device>> {
        let key = ApiKey::generate();
        let device = self
            .store
            .devices()
            .set_device_key(owner, deviceid, key.as_str())
            .await?;
        if let Some(d) = &device {
            self.lifecycle(Lifecycle::DeviceKey {
                deviceid: d.deviceid.clone(),
                owner: d.apikey.clone(),
                device_key: d.device_key.clone(),
            })
            .await;
        }
        Ok(device)
    }

    /// Replaces the password hash of the user `owner` and retires every token of theirs
    /// (the sockets subscribed with one are cut); the new token version.
    pub async fn change_password(&self, owner: &str, password_hash: &str) -> StoreResult<i64> {
        let version = self
            .store
            .users()
            .set_password(owner, password_hash)
            .await?;
        self.tokens_retired(owner, version).await;
        Ok(version)
    }

    /// Redeems a password reset token (its hash) with a new password hash and retires
    /// every token of the account (the sockets subscribed with one are cut). `None` when
    /// the token is unknown, used or expired.
    pub async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Redeemed>> {
        let reset = self
            .store
            .email_tokens()
            .reset_password(token_hash, password_hash)
            .await?;
        let Some((account, version)) = reset else {
            return Ok(None);
        };
        self.tokens_retired(&account.apikey, version).await;
        Ok(Some(account))
    }

    /// "Sign out everywhere": retires every token of the user `owner` (the sockets
    /// subscribed with one are cut); the new token version, `None` when there is no such
    /// user.
    pub async fn retire_tokens(&self, owner: &str) -> StoreResult<Option<i64>> {
        let version = self.store.users().bump_token_version(owner).await?;
        if let Some(v) = version {
            self.tokens_retired(owner, v).await;
        }
        Ok(version)
    }

    async fn tokens_retired(&self, owner: &str, version: i64) {
        let owner = owner.to_owned();
        self.lifecycle(Lifecycle::TokensRetired { owner, version })
            .await;
    }

    /// Applies a committed lifecycle event here, then tells the other nodes (cluster mode).
    async fn lifecycle(&self, event: Lifecycle) {
        self.apply(&event).await;
        if let Some(bus) = &self.bus {
            let payload = serde_json::to_vec(&event).expect("an event always serialises");
            bus.publish(crate::cluster::LIFECYCLE.into(), None, payload.into());
        }
    }

    /// Brings every cache and socket of this node in line with a committed lifecycle
    /// event, made here or (cluster mode) on another node.
    pub(crate) async fn apply(&self, event: &Lifecycle) {
        match event {
            Lifecycle::Added {
                deviceid,
                owner,
                device_key,
            } => {
                self.owners.set(deviceid, owner, device_key);
                self.writer.forget(deviceid);
            }
            Lifecycle::Deleted { deviceids } => self.gone(deviceids).await,
            Lifecycle::UserDeleted { owner, deviceids } => {
                self.gone(deviceids).await;
                self.hub.forget_user(owner);
            }
            Lifecycle::ApikeyRotated { old, new, devices } => {
                for (id, key) in devices {
                    self.owners.set(id, new, key);
                }
                let ids: Vec<String> = devices.iter().map(|(id, _)| id.clone()).collect();
                self.hub.apikey_rotated(old, &ids);
            }
            Lifecycle::DeviceKey {
                deviceid,
                owner,
                device_key,
            } => {
                self.owners.set(deviceid, owner, device_key);
                self.hub.device_key_changed(deviceid);
            }
            Lifecycle::TokensRetired { owner, version } => {
                self.hub.retire_tokens(owner, *version);
            }
        }
    }

    /// Devices were deleted (committed): every cache lets go of them, and their socket
    /// closes, so that nothing leaks to the next owner of a deviceid. Their recent history
    /// points are the writer's: gone once it answers (after the batch it may be
    /// committing).
    async fn gone(&self, deviceids: &[String]) {
        for id in deviceids {
            self.owners.forget(id);
            self.writer.forget(id);
            self.hub.forget_device(id);
            self.forget_poller(id);
        }
        self.writer.deleted(deviceids).await;
    }
}

/// The event of a device row made.
fn added(device: &Device) -> Lifecycle {
    Lifecycle::Added {
        deviceid: device.deviceid.clone(),
        owner: device.apikey.clone(),
        device_key: device.device_key.clone(),
    }
}
