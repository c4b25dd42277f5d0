//! Configuration: defaults < `iotgo.toml` (`--config`) < `IOTGO_*` environment < flags.
//!
//! Every key is documented in `iotgo.example.toml` at the repository root. Secrets are
//! wrapped in [`Secret`] so that `Debug` output and logs never show them.

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use values::{duration_text, ip_nets, switch};

mod values;

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

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsMode {
    /// With `Authorization: Bearer <metrics_token>`.
    #[default]
    Token,
    /// Anyone who reaches the server.
    Open,
    /// Nobody: `/metrics` answers 404.
    Off,
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Config {
    /// Address to listen on (`IOTGO_LISTEN`).
    pub listen: SocketAddr,
    /// Address of the MQTT listener (`IOTGO_MQTT_LISTEN`), e.g. `0.0.0.0:1883`. Unset:
    /// no MQTT (the default, so that a start never fails on a port another broker holds).
    pub mqtt_listen: Option<SocketAddr>,
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
    /// Who may read `GET /metrics` (`IOTGO_METRICS`: token, open or off).
    pub metrics: MetricsMode,
    /// The bearer token of `/metrics` in token mode (`IOTGO_METRICS_TOKEN`); unset means
    /// generated once into the data directory.
    pub metrics_token: Option<Secret>,
    /// How long a shutdown (SIGTERM, SIGINT) may drain connections and writes before the
    /// server exits anyway, logging what it cut (`IOTGO_SHUTDOWN_TIMEOUT`).
    #[serde(with = "duration_text")]
    pub shutdown_timeout: Duration,
    /// Most bytes of a device's stored params (compact JSON); an update that would make
    /// them larger is refused (Device API 400, "Device State Too Large"). Never below
    /// `max_body_bytes`: what one request may carry can be stored.
    pub max_device_state_bytes: usize,
    /// Most top-level keys of a device's stored params; an update that would add more is
    /// refused the same way. Never below `max_params_keys`.
    pub max_device_state_keys: usize,
    /// Most commands one WebSocket may have waiting for indie devices' answers; past it
    /// the next is answered 429 at once.
    pub max_pending_commands: usize,

    // --- Connections (docs/security.md, "Connections") ---
    /// A request head (request line and headers) must arrive whole within this time of
    /// its first byte, or of the connection being accepted for the first request; else
    /// the connection is closed (`IOTGO_HTTP_HEADER_TIMEOUT`).
    #[serde(with = "duration_text")]
    pub http_header_timeout: Duration,
    /// An HTTP keep-alive connection that waits this long for its next request is closed
    /// (`IOTGO_HTTP_IDLE_TIMEOUT`). WebSockets have their own timeouts.
    #[serde(with = "duration_text")]
    pub http_idle_timeout: Duration,
    /// Most open connections (HTTP and WebSocket) in all (`IOTGO_MAX_CONNECTIONS`);
    /// unset: the open-file limit less a reserve of descriptors for the server itself.
    pub max_connections: Option<usize>,
    /// Most open connections from one client address (an IPv6 client: its /64), counted
    /// on the TCP peer (`IOTGO_MAX_CONNECTIONS_PER_IP`); off with `rate_limits = false`.
    pub max_connections_per_ip: usize,
    /// Per-address limits on (`IOTGO_RATE_LIMITS`: true/false, on/off); off only for load
    /// tests and test suites, with a warning at start.
    #[serde(deserialize_with = "switch")]
    pub rate_limits: bool,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the
    /// client (`IOTGO_TRUSTED_PROXIES`: a list, or addresses separated by commas).
    #[serde(deserialize_with = "ip_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Password hashes (Argon2id: 19 MiB and ~30 ms each) computed at once by logins,
    /// sign-ups and password changes; 0 means one per CPU
    /// (`IOTGO_PASSWORD_HASH_CONCURRENCY`).
    pub password_hash_concurrency: usize,
    /// How long a request waits for a free hashing slot before it is answered 503 with
    /// `Retry-After` (`IOTGO_PASSWORD_HASH_QUEUE_TIMEOUT`).
    #[serde(with = "duration_text")]
    pub password_hash_queue_timeout: Duration,

    // --- E-mail (docs/security.md, "E-mail"; docs/operations.md, "Sending e-mail") ---
    /// The SMTP server that sends the mails (`IOTGO_SMTP_URL`): `smtp://user:pass@host:587`
    /// (STARTTLS, required), `smtps://user:pass@host:465` (TLS from the first byte), or
    /// `smtp://host:25?tls=none` (no TLS: a relay on this machine or network). Unset: no
    /// mail is sent, and the routes that need mail answer that it is unavailable.
    pub smtp_url: Option<Secret>,
    /// The sender of the mails (`IOTGO_SMTP_FROM`), e.g. `IoTgo <iotgo@example.com>`;
    /// needed with `smtp_url`.
    pub smtp_from: Option<String>,
    /// The address where people reach this server's web app (`IOTGO_PUBLIC_URL`), e.g.
    /// `https://iot.example.com`: the links in mails start with it. Needed with
    /// `smtp_url` (a link built from a request's `Host` header could point anywhere).
    pub public_url: Option<String>,
    /// Whether a new account must follow a mailed link before it may use devices
    /// (`IOTGO_EMAIL_VERIFICATION`); needs `smtp_url`.
    #[serde(deserialize_with = "switch")]
    pub email_verification: bool,
    // --- Throttling (docs/security.md, "Throttling"); all off with `rate_limits = false` ---
    /// Wrong logins for one account that cost nothing; from this many on, each blocks the
    /// account for a back-off doubling from 2 s (`IOTGO_LOGIN_FAILURES_FREE`).
    pub login_failures_free: u32,
    /// Wrong logins from one client address (over all accounts, users and admins) that
    /// cost nothing; from this many on, each blocks the address the same way
    /// (`IOTGO_LOGIN_FAILURES_FREE_PER_IP`).
    pub login_failures_free_per_ip: u32,
    /// The longest login back-off; an account is forgiven one failure per this time, an
    /// address one per minute (`IOTGO_LOGIN_BACKOFF_MAX`).
    #[serde(with = "duration_text")]
    pub login_backoff_max: Duration,
    /// Sign-ups per hour from one client address, sustained (`IOTGO_REGISTRATIONS_PER_HOUR`).
    pub registrations_per_hour: u32,
    /// Sign-ups from one client address at once (`IOTGO_REGISTRATIONS_BURST`).
    pub registrations_burst: u32,
    /// Device API requests with a wrong apikey from one client address that cost nothing;
    /// from this many on, the address is answered 429 for a back-off doubling from 1 s up
    /// to 1 min, one failure forgiven every 5 s (`IOTGO_DEVICE_KEY_FAILURES_FREE`).
    pub device_key_failures_free: u32,
    /// Updates per second to one device, sustained (`IOTGO_DEVICE_UPDATES_PER_SECOND`).
    pub device_updates_per_second: u32,
    /// Updates to one device at once (`IOTGO_DEVICE_UPDATES_BURST`).
    pub device_updates_burst: u32,
    /// Most keys (addresses, e-mail addresses, devices) each throttle remembers; past it
    /// new keys share one entry (`IOTGO_THROTTLE_MAX_KEYS`).
    pub throttle_max_keys: usize,
    // --- Web hardening (docs/security.md, "Web hardening") ---
    /// Send `Strict-Transport-Security` (`IOTGO_HSTS`: true/false, on/off): only for an
    /// install that its users reach over HTTPS alone (TLS here or at a reverse proxy).
    #[serde(deserialize_with = "switch")]
    pub hsts: bool,
    /// How long browsers keep to HTTPS after seeing the header (`IOTGO_HSTS_MAX_AGE`).
    #[serde(with = "duration_text")]
    pub hsts_max_age: Duration,
    // --- Cluster (docs/cluster.md) ---
    /// The NATS server that joins this node to a cluster (`IOTGO_NATS_URL`), e.g.
    /// `nats://127.0.0.1:4222`; needs a `postgres://` database. Unset: a single node.
    pub nats_url: Option<Secret>,
    /// This node's name in the cluster (`IOTGO_NODE_ID`): letters, digits, `-` and `_`,
    /// at most 64. Unset: generated once into the data directory (`node-id`).
    pub node_id: Option<String>,
    /// How long a node's lease lasts: a node not heard from for this long is dead, and
    /// the others mark its devices offline (`IOTGO_CLUSTER_LEASE`).
    #[serde(with = "duration_text")]
    pub cluster_lease: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            mqtt_listen: None,
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
            metrics: MetricsMode::Token,
            metrics_token: None,
            shutdown_timeout: Duration::from_secs(10),
            max_device_state_bytes: 64 * 1024,
            max_device_state_keys: 256,
            max_pending_commands: 16,
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(75),
            max_connections: None,
            max_connections_per_ip: 512,
            rate_limits: true,
            trusted_proxies: Vec::new(),
            password_hash_concurrency: 0,
            password_hash_queue_timeout: Duration::from_secs(5),
            smtp_url: None,
            smtp_from: None,
            public_url: None,
            email_verification: false,
            login_failures_free: 5,
            login_failures_free_per_ip: 30,
            login_backoff_max: Duration::from_secs(15 * 60),
            registrations_per_hour: 10,
            registrations_burst: 5,
            device_key_failures_free: 20,
            device_updates_per_second: 20,
            device_updates_burst: 60,
            throttle_max_keys: 100_000,
            hsts: false,
            hsts_max_age: Duration::from_secs(365 * 24 * 3600),
            nats_url: None,
            node_id: None,
            cluster_lease: Duration::from_secs(15),
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
    "metrics",
    "metrics_token",
    "trusted_proxies",
    "smtp_url",
    "smtp_from",
    "public_url",
    "nats_url",
    "node_id",
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

/// Names of the in-code layers, kept in their metadata so [`Origin::of`] can tell them apart.
const ORIGIN_DEFAULT: &str = "default";
const ORIGIN_ENV: &str = "environment";
const ORIGIN_FLAG: &str = "flag";

/// The environment variable of a key: `IOTGO_<KEY>`.
pub fn env_var(key: &str) -> String {
    format!("IOTGO_{}", key.to_uppercase())
}

/// Whether `iotgo check-config` masks a key's value: the database URL (its password) and
/// every key named like a secret, password or token — name a new secret key so — but
/// the settings of password hashing; and the SMTP and NATS URLs (their passwords).
pub fn is_secret_key(key: &str) -> bool {
    key == "database_url"
        || key == "smtp_url"
        || key == "nats_url"
        || ["secret", "password", "token"]
            .iter()
            .any(|w| key.contains(w))
            && !key.starts_with("password_hash_")
}

/// One layer of values set in code, under a name that its values' metadata keeps.
struct Layer<T> {
    name: &'static str,
    value: T,
}

impl<T: Serialize> Layer<T> {
    fn new(name: &'static str, value: T) -> Self {
        Layer { name, value }
    }
}

impl<T: Serialize> Provider for Layer<T> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Serialized::defaults(&self.value).data()
    }
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// This command-line flag.
    Flag(String),
}

impl Origin {
    /// The origin of top-level `key` in `fig` (made by [`Config::figment`]).
    pub fn of(fig: &Figment, key: &str) -> Origin {
        let Some(md) = fig.find_metadata(key) else {
            return Origin::Default;
        };
        match (md.name.as_ref(), &md.source) {
            (ORIGIN_DEFAULT, _) => Origin::Default,
            (ORIGIN_FLAG, _) => Origin::Flag(format!("--{}", key.replace('_', "-"))),
            (_, Some(Source::File(path))) => Origin::File(path.clone()),
            // figment's own `Env` provider and the verbatim text keys.
            _ => Origin::Env(env_var(key)),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(var) => write!(f, "environment {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Fails on the first key of the file that the configuration does not have (figment
/// would ignore it, and a misspelt key would silently keep its default).
fn check_file_keys(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    let known = serde_json::to_value(Config::default())?;
    let admin = serde_json::to_value(AdminEntry {
        email: String::new(),
        password_hash: Secret::default(),
    })?;
    let unknown = |key: String| {
        anyhow::anyhow!(
            "unknown key `{key}` in the config file {} (iotgo.example.toml lists every key)",
            path.display()
        )
    };
    for (key, value) in &table {
        let Some(default) = known.get(key) else {
            return Err(unknown(key.clone()));
        };
        // Nested tables: `[[admins]]` entries, and any table-valued key.
        let entries: Vec<(String, &toml::Table, &serde_json::Value)> = match value {
            toml::Value::Table(t) => vec![(key.clone(), t, default)],
            toml::Value::Array(items) if key == "admins" => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((format!("{key}[{i}]"), v.as_table()?, &admin)))
                .collect(),
            _ => Vec::new(),
        };
        for (prefix, t, fields) in entries {
            if let Some(k) = t.keys().find(|k| fields.get(k.as_str()).is_none()) {
                return Err(unknown(format!("{prefix}.{k}")));
            }
        }
    }
    Ok(())
}

impl Config {
    /// Loads the layers in order of precedence: defaults, the file, `IOTGO_*`, flags.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> anyhow::Result<Config> {
        Config::figment(file, flags)?
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// The layers, merged but not extracted: `iotgo check-config` asks it where each
    /// value came from ([`Origin::of`]). An unknown key in the file is an error.
    pub fn figment(file: Option<&Path>, flags: &Overrides) -> anyhow::Result<Figment> {
        let mut fig = Figment::from(Layer::new(ORIGIN_DEFAULT, Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            check_file_keys(path)?;
            fig = fig.merge(Toml::file(path));
        }
        // Text keys are taken verbatim: figment would read `IOTGO_ADMIN_PASSWORD=0123`
        // as the number 123.
        let text: BTreeMap<&str, String> = TEXT_KEYS
            .iter()
            .filter_map(|k| Some((*k, std::env::var(env_var(k)).ok()?)))
            .collect();
        let mut ignored = TEXT_KEYS.to_vec();
        ignored.push("test_database_url");
        Ok(fig
            .merge(Env::prefixed("IOTGO_").ignore(&ignored))
            .merge(Layer::new(ORIGIN_ENV, text))
            .merge(Layer::new(ORIGIN_FLAG, flags)))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => crate::store::Store::sqlite_url(&self.data_dir),
        }
    }
}

#[cfg(test)]
mod tests;
