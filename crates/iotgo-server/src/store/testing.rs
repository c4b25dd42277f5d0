//! Set-up shared by the unit tests beside the concurrent core (state merge, writer,
//! recorder, session): a real store on a fresh SQLite file, never a mock.

use super::Store;
use iotgo_protocol::DeviceType;

/// The apikey of the one user of [`store_with_devices`].
pub(crate) const OWNER: &str = "00000000-0000-4000-8000-000000000001";

/// A store on a fresh SQLite file (kept while the directory lives), with one user,
/// [`OWNER`], and `n` devices of type `ty`; their deviceids in creation order.
pub(crate) async fn store_with_devices(
    ty: &str,
    n: usize,
) -> (tempfile::TempDir, Store, Vec<String>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("a fresh store");
    store
        .users()
        .create("o@example.com", OWNER, "x", true)
        .await
        .expect("a user");
    let ty = DeviceType::parse(ty).expect("a known device type");
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let d = store
            .devices()
            .create(OWNER, "d", "", ty)
            .await
            .expect("a device");
        ids.push(d.deviceid);
    }
    (dir, store, ids)
}
