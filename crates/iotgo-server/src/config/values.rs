//! How a setting's text becomes its value: durations, switches, address lists. Read
//! through serde, so they apply alike to the file, the environment and the flags.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Durations as human text (`"7d"`, `"90s"`) or a number of seconds.
pub(super) mod duration_text {
    use super::*;

    pub(in crate::config) fn serialize<S: serde::Serializer>(
        d: &Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(serde::de::Error::custom),
        }
    }
}

/// A switch: a boolean, or the text true/false, on/off, yes/no, 1/0 (figment reads only
/// `true` and `false` from the environment as booleans, and the issue's
/// `IOTGO_RATE_LIMITS=off` must work).
pub(super) fn switch<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Num(u8),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bool(b) => Ok(b),
        Raw::Num(n) if n <= 1 => Ok(n == 1),
        Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "expected true/false or on/off, got `{t}`"
            ))),
        },
        Raw::Num(n) => Err(serde::de::Error::custom(format!(
            "expected true/false or on/off, got {n}"
        ))),
    }
}

/// Addresses and CIDR blocks, as a list or as one text with commas; a bare address is
/// a block of one.
pub(super) fn ip_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(items) => items,
        Raw::Text(t) => t.split(',').map(str::to_owned).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("not an address or CIDR: `{s}`")))
        })
        .collect()
}
