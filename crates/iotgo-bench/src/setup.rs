//! Accounts and devices for a run, made through the Web API as any client would.

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A user owning the run's devices.
pub(crate) struct Fleet {
    /// The owner's apikey (what devices and subscribing apps send).
    pub apikey: String,
    /// The deviceids, all of the run's type (`--device-type`).
    pub devices: Vec<String>,
}

/// The port of the MQTT listener of the iotgo server at `addr` (`/api/config`).
pub(crate) async fn mqtt_port(addr: SocketAddr) -> anyhow::Result<u16> {
    let config: Value = reqwest::get(format!("http://{addr}/api/config"))
        .await?
        .json()
        .await?;
    match config["mqttPort"].as_u64() {
        Some(port) => Ok(u16::try_from(port)?),
        None => bail!("iotgo at {addr} does not listen for MQTT (mqtt_listen is not set)"),
    }
}

/// Registers a fresh user on `addr` and creates `n` devices of type `kind` for it.
pub(crate) async fn fleet(addr: SocketAddr, n: usize, kind: &str) -> anyhow::Result<Fleet> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let email = format!(
        "bench-{}-{}@example.com",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let session: Value = http
        .post(format!("{base}/api/user/register"))
        .json(&json!({"email": email, "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let jwt = session["jwt"]
        .as_str()
        .with_context(|| format!("register answered {session}"))?
        .to_owned();
    let apikey = session["user"]["apikey"]
        .as_str()
        .context("no apikey")?
        .to_owned();
    let created: Vec<anyhow::Result<String>> = stream::iter(0..n)
        .map(|i| {
            let (http, base, jwt) = (&http, &base, &jwt);
            async move {
                let d: Value = http
                    .post(format!("{base}/api/user/device"))
                    .bearer_auth(jwt)
                    .json(&json!({"name": format!("bench {i}"), "group": "bench", "type": kind}))
                    .send()
                    .await?
                    .json()
                    .await?;
                match d["deviceid"].as_str() {
                    Some(id) => Ok(id.to_owned()),
                    None => bail!("device create answered {d}"),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let devices = created.into_iter().collect::<anyhow::Result<_>>()?;
    Ok(Fleet { apikey, devices })
}

/// A fleet for the reference server, which checks nothing: made-up ids.
pub(crate) fn fake_fleet(n: usize, kind: &str) -> Fleet {
    Fleet {
        apikey: "00000000-0000-4000-8000-000000000000".into(),
        devices: (0..n).map(|i| format!("{kind}{i:08x}")).collect(),
    }
}

/// The update every scenario sends: `t` is the send time in nanoseconds since the run's
/// clock started, read back from the push (type `00` takes any params; a type `03` update
/// also carries the two readings it must have, which the server keeps in history).
pub(crate) fn update(deviceid: &str, apikey: &str, t: u64) -> String {
    let readings = if deviceid.starts_with("03") {
        r#""temperature":"21.5","humidity":"40","#
    } else {
        ""
    };
    format!(
        r#"{{"action":"update","deviceid":"{deviceid}","apikey":"{apikey}","params":{{{readings}"t":"{t}"}},"userAgent":"device"}}"#
    )
}

/// The `t` of a push made from [`update`].
pub(crate) fn sent_at(push: &str) -> Option<u64> {
    let i = push.find(r#""t":""#)? + 5;
    let end = push[i..].find('"')? + i;
    push[i..end].parse().ok()
}
