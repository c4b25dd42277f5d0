//! The lifecycle of devices and users: the only way to create, claim or delete a device,
//! or to delete a user.
//!
//! A deviceid that is deleted, or created again (a license claimed anew, a serial
//! reused), must leave no trace in what the Device API keeps in memory: the owner cache,
//! the writer's params cache, the hub's watchers and socket, the HTTP-polling window and
//! the recent history points. Each lifecycle event is one function here that changes the
//! database and then clears every one of them; handlers (Web API, admin) call only these.

use super::DeviceApi;
use crate::store::{ClaimError, Device, StoreResult, User};
use iotgo_protocol::{DeviceId, DeviceType};

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

    /// A device row was made. Its deviceid may have lived before (a license claimed
    /// again): the writer reads its params anew, and the owner cache learns the owner.
    fn added(&self, device: &Device) {
        self.owners.set(&device.deviceid, &device.apikey);
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
