//! The IoTgo server: a self-hosted IoT cloud in one binary.
//!
//! [`app::run`] builds everything from a [`config::Config`] and serves on a listener; the
//! `iotgo` binary and the integration tests both go through it.

pub mod api;
pub mod app;
pub mod auth;
pub mod captcha;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod device;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod history;
pub mod hub;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod mqtt;
pub mod net;
pub mod retention;
pub mod secrets;
pub mod shutdown;
pub mod store;
pub mod throttle;
pub mod web;

pub use app::{App, AppState, run};
pub use config::Config;
