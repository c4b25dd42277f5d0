//! Integration tests of the Device API: HTTP and WebSocket over real sockets.

#[path = "../api/helpers.rs"]
mod helpers;
