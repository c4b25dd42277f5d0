//! Logging: human-readable text (the default) or one JSON object per line for log
//! shippers (`--log-format json`, `IOTGO_LOG_FORMAT=json`), filtered by `RUST_LOG`
//! (default `info`).
//!
//! Requests and WebSockets run inside spans (`request`: method, route template, user,
//! deviceid; `ws`: peer, deviceid or user), so every line logged while one is handled
//! carries them. Secrets (passwords, apikeys, tokens) are never put in spans or events.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the current span and its parents.
    Json,
}

/// Installs the process's log subscriber (once, at start-up, by the binary).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald gets plain text (and formatting
    // each request's span costs less without them).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
