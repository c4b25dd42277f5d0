//! The SMTP connection named by `smtp_url`, and how its scheme chooses TLS.
//!
//! - `smtps://…` — TLS from the first byte (implicit TLS, port 465 by default).
//! - `smtp://…` — STARTTLS, required: the server must offer it, or nothing is sent and
//!   the password never travels in clear (port 587 by default).
//! - `smtp://…?tls=none` — no TLS, for a relay on this machine or a trusted network (port
//!   25 by default). Refused with a user name and password unless the host is a loopback
//!   address: they would cross the network in clear.
//!
//! A user name and password in the URL (percent-encoded) sign in with SMTP AUTH. The URL
//! is a [`Secret`]: nothing here puts it, or the password, in an error or a log line.

use crate::config::Secret;
use anyhow::Context;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport as Transport, Tokio1Executor};
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// How long one SMTP command may take before the send fails (lettre's default is 60 s).
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`smtps://`).
    Implicit,
    /// STARTTLS, required (`smtp://`).
    StartTls,
    /// None (`smtp://…?tls=none`).
    None,
}

/// What `smtp_url` says, checked.
pub struct SmtpTarget {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS mode.
    pub security: Security,
    credentials: Option<Credentials>,
}

impl SmtpTarget {
    /// Parses `smtp_url`. Errors never quote the URL (it may hold a password).
    pub fn parse(url: &Secret) -> anyhow::Result<SmtpTarget> {
        let url =
            Url::parse(url.expose()).map_err(|e| anyhow::anyhow!("smtp_url is not a URL ({e})"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => Security::Implicit,
            ("smtp", None | Some("starttls")) => Security::StartTls,
            ("smtp", Some("none")) => Security::None,
            (scheme @ ("smtp" | "smtps"), Some(other)) => anyhow::bail!(
                "smtp_url: `tls={other}` is not understood with {scheme}:// \
                 (smtp:// takes tls=starttls or tls=none)"
            ),
            (scheme, _) => anyhow::bail!("smtp_url: scheme `{scheme}` is not smtp or smtps"),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .context("smtp_url has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(match security {
            Security::Implicit => 465,
            Security::StartTls => 587,
            Security::None => 25,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| anyhow::anyhow!("smtp_url: the user or password is not UTF-8"))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None if !url.username().is_empty() => {
                anyhow::bail!("smtp_url names a user without a password")
            }
            None => None,
        };
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if security == Security::None && credentials.is_some() && !loopback {
            anyhow::bail!(
                "smtp_url: a password with tls=none would cross the network in clear; \
                 use smtp:// (STARTTLS) or smtps://"
            );
        }
        Ok(SmtpTarget {
            host,
            port,
            security,
            credentials,
        })
    }

    /// The transport: a small pool of connections to the server, each command bounded
    /// by [`SMTP_TIMEOUT`].
    pub fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).context("cannot set up TLS for smtp_url")
        };
        let mut builder = Transport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .timeout(Some(SMTP_TIMEOUT))
            .tls(match self.security {
                Security::Implicit => Tls::Wrapper(tls(&self.host)?),
                Security::StartTls => Tls::Required(tls(&self.host)?),
                Security::None => Tls::None,
            });
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> anyhow::Result<SmtpTarget> {
        SmtpTarget::parse(&Secret::new(url))
    }

    #[test]
    fn schemes_choose_tls_and_default_ports() {
        let t = parse("smtp://u:p@mail.example.com").unwrap();
        assert_eq!((t.security, t.port), (Security::StartTls, 587));
        assert!(t.credentials.is_some());
        let t = parse("smtps://u:p%40x@mail.example.com").unwrap();
        assert_eq!((t.security, t.port), (Security::Implicit, 465));
        let t = parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((t.security, t.port), (Security::None, 2525));
        assert_eq!(t.host, "127.0.0.1");
        let t = parse("smtp://u:p@[::1]?tls=none").unwrap();
        assert_eq!(
            (t.security, t.port, t.host.as_str()),
            (Security::None, 25, "::1")
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_the_password() {
        for url in [
            "http://u:hunter2@mail.example.com",
            "smtp://u:hunter2@mail.example.com?tls=maybe",
            "smtp://u:hunter2@mail.example.com?tls=none",
            "smtp://u@mail.example.com",
            "smtp://:hunter2@",
            "not a url hunter2",
        ] {
            let e = parse(url)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(!e.is_empty(), "{url} was accepted");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
