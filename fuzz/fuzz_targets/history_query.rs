//! The history API's query string (`from`, `to`, `fields`, `bucket`), with the point cap
//! and the device type picked by the first two bytes (`iotgo_server::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iotgo_server::fuzzing::history_query(data));
