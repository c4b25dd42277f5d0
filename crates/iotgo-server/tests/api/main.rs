//! Integration tests of the Web API: a real server over real HTTP.

mod admin;
mod connections;
mod devices;
mod email;
mod headers;
mod helpers;
mod metrics;
mod openapi;
mod security;
mod server;
mod smtp_sink;
#[allow(dead_code, unused_imports)] // the real binary's start-up, shared with the Device API tests
#[path = "../device/support.rs"]
mod support;
mod throttle;
mod users;
