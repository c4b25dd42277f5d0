//! Cluster mode, black box: real `iotgo` nodes on one fresh PostgreSQL database, joined by
//! a NATS server of the test's own (so a test can stop it), talking HTTP, WebSocket and MQTT.
//! PostgreSQL-only: without `IOTGO_TEST_DATABASE_URL` each test says so and passes.

#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code, unused_imports)]
#[path = "../device/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../mqtt/client.rs"]
mod client;
mod faults;
mod harness;
mod history;
mod mqtt;
mod netns;
mod partition;
mod rules;
