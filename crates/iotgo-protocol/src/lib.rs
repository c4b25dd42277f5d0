//! The IoTgo protocol: identifiers, Device API messages, the device type registry and params
//! validation, shared by the server, device SDKs and tools.
//!
//! This crate is pure (no I/O). Every value that crosses the wire is parsed into a
//! newtype here, so that an invalid device id or apikey cannot travel further in.

mod ids;
pub mod message;
pub mod types;
pub mod validate;

pub use ids::{ApiKey, DeviceId, DeviceType, IdError, Serial};
pub use message::{Action, Answer, Echo, ErrorCode, Kind, Request, Sender};
pub use validate::Limits;
