//! Integration tests of the MQTT transport: rumqttc clients (and raw bytes) over real
//! sockets against a server with `mqtt_listen` on port 0.

#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../device/support.rs"]
#[allow(dead_code)]
mod support;

mod auth;
mod binary;
mod client;
mod robust;
mod tasmota;
mod topics;
mod will;
