//! Integration tests of the Device API: HTTP and WebSocket over real sockets.

#[path = "../api/helpers.rs"]
mod helpers;

mod bounds;
mod crash;
mod credentials;
mod drain;
mod http;
mod metrics;
mod proxy;
mod robust;
mod schemas;
mod support;
mod throttle;
mod ws;
