//! Configuration: defaults < `iotgo.toml` (`--config`) < `IOTGO_*` environment < flags.
//!
//! Every key is documented in `iotgo.example.toml` at the repository root. Secrets are
//! wrapped in [`Secret`] so that `Debug` output and logs never show them.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret string: printed as `***`, handed out only on purpose.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An admin account listed in the config file, with an Argon2id or bcrypt PHC hash
/// (`iotgo hash-password` prints one).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdminEntry {
    /// Login e-mail address.
    pub email: String,
    /// PHC string of the password.
    pub password_hash: Secret,
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Config {
    /// Address to listen on (`IOTGO_LISTEN`).
    pub listen: SocketAddr,
    /// Where the SQLite database and the generated secrets live (`IOTGO_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; unset means `iotgo.db` in the data directory.
    pub database_url: Option<Secret>,
    /// One admin from the environment (`IOTGO_ADMIN_EMAIL`), with…
    pub admin_email: Option<String>,
    /// …its plain password (`IOTGO_ADMIN_PASSWORD`), hashed at start-up.
    pub admin_password: Option<Secret>,
    /// Admins from the config file, with password hashes.
    pub admins: Vec<AdminEntry>,
    /// HMAC key of the JWTs; unset means generated once into the data directory.
    pub jwt_secret: Option<Secret>,
    /// How long a JWT stays valid (`"7d"`, `"12h"`, …).
    #[serde(with = "duration_text")]
    pub jwt_ttl: Duration,
    /// Captcha secret; when set, registration must pass the captcha check.
    pub recaptcha_secret: Option<Secret>,
    /// Where captcha tokens are verified (reCAPTCHA, hCaptcha and Turnstile share the protocol).
    pub recaptcha_url: String,
    /// The public captcha site key, for the web app.
    pub recaptcha_site_key: Option<String>,
    /// Map tiles for the web app's GPS maps (`{z}/{x}/{y}` template; OpenStreetMap by default).
    pub map_tile_url: String,
    /// When set, `POST /api/http` requires this `Host` header (as the original did).
    pub host: Option<String>,
    /// How long an app's command to an indie device waits for the device's answer.
    pub pending_request_timeout_ms: u64,
    /// Default page size of the admin lists.
    pub page_limit: u32,
    /// Largest accepted request body, in bytes; also the largest WebSocket message.
    pub max_body_bytes: usize,
    /// A device that polls over HTTP only stays online while seen within this window.
    #[serde(with = "duration_text")]
    pub http_online_window: Duration,
    /// A WebSocket that sends nothing (not even a pong to our pings) for this long is closed.
    #[serde(with = "duration_text")]
    pub ws_idle_timeout: Duration,
    /// A WebSocket whose first message does not come within this time is closed.
    #[serde(with = "duration_text")]
    pub ws_first_frame_timeout: Duration,
    /// Outgoing messages queued per WebSocket; a client that lets it fill is disconnected.
    pub ws_queue_len: usize,
    /// Deepest nesting of objects and arrays accepted in Device API params.
    pub max_params_depth: usize,
    /// Most keys and array items (over the whole tree) accepted in Device API params.
    pub max_params_keys: usize,
    /// How long device writes are collected before they are committed in one transaction;
    /// 0: commit at once what queued while the previous commit ran.
    pub commit_window_ms: u64,
    /// Whether accepted updates record the history of their type's kept params
    /// (`IOTGO_HISTORY_ENABLED`); when off, what was recorded stays readable.
    pub history_enabled: bool,
    /// Most points one history answer holds (`IOTGO_HISTORY_MAX_POINTS`); `bucket=auto`
    /// picks buckets wide enough to stay under it.
    pub history_max_points: u32,
    /// History older than this many days is deleted by a background task
    /// (`IOTGO_HISTORY_RETENTION_DAYS`); 0 keeps it forever.
    pub history_retention_days: u32,
    /// How long a shutdown (SIGTERM, SIGINT) may drain connections and writes before the
    /// server exits anyway, logging what it cut (`IOTGO_SHUTDOWN_TIMEOUT`).
    #[serde(with = "duration_text")]
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            admin_email: None,
            admin_password: None,
            admins: Vec::new(),
            jwt_secret: None,
            jwt_ttl: Duration::from_secs(7 * 24 * 3600),
            recaptcha_secret: None,
            recaptcha_url: "https://www.google.com/recaptcha/api/siteverify".into(),
            recaptcha_site_key: None,
            map_tile_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
            host: None,
            pending_request_timeout_ms: 3000,
            page_limit: 50,
            max_body_bytes: 64 * 1024,
            http_online_window: Duration::from_secs(60),
            ws_idle_timeout: Duration::from_secs(60),
            ws_first_frame_timeout: Duration::from_secs(30),
            ws_queue_len: 64,
            max_params_depth: 8,
            max_params_keys: 256,
            commit_window_ms: 0,
            history_enabled: true,
            history_max_points: 1000,
            history_retention_days: 365,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Keys whose environment values are text, never parsed as numbers or booleans.
const TEXT_KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "admin_email",
    "admin_password",
    "jwt_secret",
    "recaptcha_secret",
    "recaptcha_url",
    "recaptcha_site_key",
    "map_tile_url",
    "host",
];

/// Values given as command-line flags; they override everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the layers in order of precedence: defaults, the file, `IOTGO_*`, flags.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        // Text keys are taken verbatim: figment would read `IOTGO_ADMIN_PASSWORD=0123`
        // as the number 123.
        let text: BTreeMap<&str, String> = TEXT_KEYS
            .iter()
            .filter_map(|k| {
                Some((
                    *k,
                    std::env::var(format!("IOTGO_{}", k.to_uppercase())).ok()?,
                ))
            })
            .collect();
        let mut ignored = TEXT_KEYS.to_vec();
        ignored.push("test_database_url");
        fig.merge(Env::prefixed("IOTGO_").ignore(&ignored))
            .merge(Serialized::defaults(text))
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => crate::store::Store::sqlite_url(&self.data_dir),
        }
    }
}

/// Durations as human text (`"7d"`, `"90s"`) or a number of seconds.
mod duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "iotgo.toml",
                "listen = \"127.0.0.1:1\"\npage_limit = 10\njwt_ttl = \"2h\"",
            )?;
            jail.set_env("IOTGO_PAGE_LIMIT", "20");
            jail.set_env("IOTGO_DATA_DIR", "/tmp/x");
            jail.set_env("IOTGO_ADMIN_PASSWORD", "0123456789");
            jail.set_env("IOTGO_JWT_TTL", "3600");
            let flags = Overrides {
                data_dir: Some("/tmp/y".into()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("iotgo.toml")), &flags).unwrap();
            assert_eq!(c.listen, "127.0.0.1:1".parse().unwrap());
            assert_eq!(c.page_limit, 20);
            assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
            assert_eq!(c.jwt_ttl, Duration::from_secs(3600));
            assert_eq!(c.admin_password, Some(Secret::new("0123456789")));
            assert_eq!(c.pending_request_timeout_ms, 3000);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn the_example_file_matches_the_defaults() {
        figment::Jail::expect_with(|_| {
            let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../iotgo.example.toml");
            let c = Config::load(Some(Path::new(example)), &Overrides::default()).unwrap();
            let d = Config::default();
            assert_eq!(format!("{c:?}"), format!("{d:?}"));
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        let c = Config {
            jwt_secret: Some(Secret::new("hunter2")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
