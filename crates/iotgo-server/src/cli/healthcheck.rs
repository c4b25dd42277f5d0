//! `iotgo healthcheck`: asks a running server's `/healthz` (for Docker's HEALTHCHECK and
//! scripts; the runtime image has no curl).

use super::ConfigArgs;
use crate::config::Config;
use clap::Args;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The `healthcheck` subcommand's help.
pub(super) const HELP: &str = "\
Without --url it asks http://<listen>/healthz, the configured listen address (0.0.0.0
becomes 127.0.0.1, [::] becomes [::1]). It waits at most 5 seconds. The server answers
200 when its database answers.

Examples:
  iotgo healthcheck
  iotgo healthcheck --url http://127.0.0.1:8080/healthz";

/// How long the check waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `healthcheck`.
#[derive(Args)]
pub struct HealthcheckArgs {
    /// URL to ask (default: /healthz at the configured listen address).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

/// Runs `healthcheck`.
pub(super) async fn run(check: HealthcheckArgs, args: &ConfigArgs) -> anyhow::Result<()> {
    let url = match check.url {
        Some(url) => url,
        None => health_url(&args.load()?),
    };
    get(&url, TIMEOUT).await?;
    println!("ok: {url} answered 200 OK");
    Ok(())
}

/// `/healthz` at the configured listen address, reachable from this host.
fn health_url(config: &Config) -> String {
    let mut addr: SocketAddr = config.listen;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    format!("http://{addr}/healthz")
}

/// `GET url`: Ok on 200, else the reason.
async fn get(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: no answer: {}", reason(&e)))?;
    let status = res.status();
    if status != reqwest::StatusCode::OK {
        let body = res.text().await.unwrap_or_default();
        anyhow::bail!("{url} answered {status}: {}", body.trim());
    }
    Ok(())
}

/// The innermost cause of a request failure ("Connection refused", …), which reqwest's
/// own message leaves out.
fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The health URL of a server at the configured listen address, when one answers there.
pub(super) async fn running_server(config: &Config) -> Option<String> {
    let url = health_url(config);
    get(&url, Duration::from_secs(2)).await.ok().map(|_| url)
}
