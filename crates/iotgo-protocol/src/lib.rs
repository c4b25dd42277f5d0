//! The IoTgo protocol: identifiers shared by the server, device SDKs and tools.
//!
//! This crate is pure (no I/O). Every value that crosses the wire is parsed into a
//! newtype here, so that an invalid device id or apikey cannot travel further in.

mod ids;

pub use ids::{ApiKey, DeviceId, DeviceType, IdError, Serial};
