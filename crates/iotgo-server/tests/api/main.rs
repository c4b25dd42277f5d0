//! Integration tests of the Web API: a real server over real HTTP.

mod admin;
mod connections;
mod devices;
mod helpers;
mod metrics;
mod openapi;
mod server;
mod users;
