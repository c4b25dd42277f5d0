//! The admin lists' query string (paging, time ranges, text filters) and the SQL made of
//! it, with the page size picked by the first byte (`iotgo_server::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iotgo_server::fuzzing::admin_filters(data));
