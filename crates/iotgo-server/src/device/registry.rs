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
//! one function here that changes the database (one transaction) and then updates every
//! one of them; handlers (Web API, admin) call only these.

use super::DeviceApi;
use crate::store::{ClaimError, Device, Redeemed, StoreResult, User};
use iotgo_protocol::{ApiKey, DeviceId, DeviceType};

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
        self.added(&device);
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
        self.added(&device);
        Ok(device)
    }

    /// Deletes a device of `owner` with its history; the device as it was, or `None` when
    /// `owner` has no such device.
    pub async fn delete_device(&self, owner: &str, deviceid: &str) -> StoreResult<Option<Device>> {
        let device = self.store.devices().delete(owner, deviceid).await?;
        if let Some(d) = &device {
            self.gone(std::slice::from_ref(&d.deviceid)).await;
        }
        Ok(device)
    }

    /// Deletes a user with every device they own and its history; the user as they were.
    pub async fn delete_user(&self, apikey: &str) -> StoreResult<Option<User>> {
        let Some((user, deviceids)) = self.store.users().delete(apikey).await? else {
            return Ok(None);
        };
        self.gone(&deviceids).await;
        self.hub.forget_user(&user.apikey);
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
        let mut ids = Vec::with_capacity(rotated.devices.len());
        for (id, key) in rotated.devices {
            self.owners.set(&id, new.as_str(), &key);
            ids.push(id);
        }
        self.hub.apikey_rotated(old, &ids);
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
            self.owners.set(&d.deviceid, &d.apikey, &d.device_key);
            self.hub.device_key_changed(&d.deviceid);
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
        self.hub.retire_tokens(owner, version);
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
        Ok(reset.map(|(account, version)| {
            self.hub.retire_tokens(&account.apikey, version);
            account
        }))
    }

    /// "Sign out everywhere": retires every token of the user `owner` (the sockets
    /// subscribed with one are cut); the new token version, `None` when there is no such
    /// user.
    pub async fn retire_tokens(&self, owner: &str) -> StoreResult<Option<i64>> {
        let version = self.store.users().bump_token_version(owner).await?;
        if let Some(v) = version {
            self.hub.retire_tokens(owner, v);
        }
        Ok(version)
    }

    /// A device row was made. Its deviceid may have lived before (a license claimed
    /// again): the writer reads its params anew, and the owner cache learns its keys.
    fn added(&self, device: &Device) {
        self.owners
            .set(&device.deviceid, &device.apikey, &device.device_key);
        self.writer.forget(&device.deviceid);
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
