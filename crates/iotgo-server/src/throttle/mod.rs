//! Throttles: logins and sign-ups per client address and per account ([`Throttles`],
//! owned by `AppState`), and the Device API's failed apikeys per client address and
//! updates per device ([`DeviceThrottle`], owned by `DeviceApi`).
//!
//! Two kinds of keyed state (`table.rs`): failures with an exponential back-off, for
//! guesses (logins, apikeys), and a rate (GCRA), for sign-ups and device updates. They
//! are our own small structs rather than `governor`'s keyed limiters: GCRA alone is no
//! back-off, `governor`'s keyed store has no cap on its keys, and its clock does not
//! follow tokio's paused time in tests. Every table holds at most `throttle_max_keys`
//! keys, forgets idle ones every minute, and past its cap throttles new keys together
//! (see [`table::Table`]). Client addresses are keyed as the connection limits key them:
//! an IPv6 client by its /64.
//!
//! With `rate_limits = false` every check passes and nothing is remembered.

mod table;
#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::metrics::{Metrics, Throttled};
use crate::net::client_key;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use table::{Backoff, Bucket, Failures, Rate, Table};
use tokio::time::Instant;

/// How often idle keys are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The first login back-off, doubling with each further failure.
const LOGIN_BACKOFF_START: Duration = Duration::from_secs(2);
/// An address is forgiven one wrong login per this time.
const ADDRESS_FORGIVE: Duration = Duration::from_secs(60);
/// The first back-off of an address after failed apikeys, its longest, and how often one
/// failure is forgiven (a device retrying with a wrong key every 5 s never blocks).
const DEVICE_BACKOFF: (Duration, Duration, Duration) = (
    Duration::from_secs(1),
    Duration::from_secs(60),
    Duration::from_secs(5),
);

/// Password reset requests from one client address: sustained per hour, and at once.
/// Each may queue a mail lookup (`mail::Mail`), so a flood from one address cannot fill
/// the mail queue; the mail limits per account and address stay behind it.
const FORGOT_PER_HOUR: (u32, u32) = (10, 5);

/// The longest e-mail address an account may have (RFC 5321, as sign-up checks): a
/// longer one, which can be nobody's, is remembered by its first this many bytes, so that
/// a key is never larger.
const MAX_EMAIL: usize = 254;

/// The key of an account: `email`, cut to [`MAX_EMAIL`] bytes.
fn account_key(email: &str) -> &str {
    let mut end = email.len().min(MAX_EMAIL);
    while !email.is_char_boundary(end) {
        end -= 1;
    }
    &email[..end]
}

/// Who is logging in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// A user (`POST /api/user/login`).
    User,
    /// An admin (`POST /api/admin/login`).
    Admin,
}

/// The Web API's throttles: logins and sign-ups.
pub struct Throttles {
    on: bool,
    metrics: Arc<Metrics>,
    /// Wrong logins per client address, users' and admins' together.
    addresses: Table<IpAddr, Failures>,
    /// Wrong logins per user account (e-mail address, known or not).
    users: Table<String, Failures>,
    /// Wrong logins per admin account.
    admins: Table<String, Failures>,
    /// Sign-ups per client address.
    registrations: Table<IpAddr, Bucket>,
    /// Password reset requests per client address.
    forgotten: Table<IpAddr, Bucket>,
    address_rules: Backoff,
    account_rules: Backoff,
    registration_rate: Rate,
    forgot_rate: Rate,
}

/// A login attempt let through and counted as a failure until it proves right
/// ([`LoginAttempt::succeeded`]): concurrent guesses cannot all pass before the first
/// one fails.
#[must_use = "a successful login must say so, or it counts as a failure"]
pub struct LoginAttempt<'a> {
    throttles: &'a Throttles,
    realm: Realm,
    client: IpAddr,
    email: String,
}

impl LoginAttempt<'_> {
    /// The password was right: the account's failures are forgotten and the address gets
    /// its attempt back.
    pub fn succeeded(self) {
        let t = self.throttles;
        if !t.on {
            return;
        }
        let now = Instant::now();
        t.accounts(self.realm).remove(self.email.as_str());
        let rules = t.address_rules;
        t.addresses
            .with(&self.client, now, |f| f.refund(&rules, now));
    }
}

impl Throttles {
    /// The throttles of `config`, with a task that forgets idle keys.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Arc<Throttles> {
        let now = Instant::now();
        let cap = config.throttle_max_keys;
        let throttles = Arc::new(Throttles {
            on: config.rate_limits,
            metrics,
            addresses: Table::new(cap, now),
            users: Table::new(cap, now),
            admins: Table::new(cap, now),
            registrations: Table::new(cap, now),
            forgotten: Table::new(cap, now),
            address_rules: Backoff {
                free: config.login_failures_free_per_ip,
                start: LOGIN_BACKOFF_START,
                max: config.login_backoff_max,
                forgive: ADDRESS_FORGIVE,
            },
            account_rules: Backoff {
                free: config.login_failures_free,
                start: LOGIN_BACKOFF_START,
                max: config.login_backoff_max,
                forgive: config.login_backoff_max,
            },
            registration_rate: Rate::new(
                config.registrations_per_hour,
                Duration::from_secs(3600),
                config.registrations_burst,
            ),
            forgot_rate: Rate::new(
                FORGOT_PER_HOUR.0,
                Duration::from_secs(3600),
                FORGOT_PER_HOUR.1,
            ),
        });
        if config.rate_limits {
            tokio::spawn(sweep(Arc::downgrade(&throttles), |t: &Throttles, now| {
                t.addresses.purge(now);
                t.users.purge(now);
                t.admins.purge(now);
                t.registrations.purge(now);
                t.forgotten.purge(now);
            }));
        }
        throttles
    }

    fn accounts(&self, realm: Realm) -> &Table<String, Failures> {
        match realm {
            Realm::User => &self.users,
            Realm::Admin => &self.admins,
        }
    }

    /// Lets a login for `email` (trimmed, lowercased) from `client` go on to the password
    /// check, counted as a failure until it succeeds; `Err(wait)` while the address or the
    /// account is blocked (nothing is counted then, and no password is hashed).
    pub fn login(
        &self,
        realm: Realm,
        client: IpAddr,
        email: &str,
    ) -> Result<LoginAttempt<'_>, Duration> {
        let (client, email) = (client_key(client), account_key(email));
        let attempt = LoginAttempt {
            throttles: self,
            realm,
            client,
            email: email.to_owned(),
        };
        if !self.on {
            return Ok(attempt);
        }
        let now = Instant::now();
        let (address, account) = (self.address_rules, self.account_rules);
        let counted = self
            .addresses
            .with(&client, now, |f| f.attempt(&address, now))
            .and_then(|()| {
                let accounts = self.accounts(realm);
                let counted = accounts.with(email, now, |f| f.attempt(&account, now));
                if counted.is_err() {
                    // Not checked: the address gets its attempt back.
                    self.addresses
                        .with(&client, now, |f| f.refund(&address, now));
                }
                counted
            });
        if let Err(wait) = counted {
            self.metrics.throttled(match realm {
                Realm::User => Throttled::Login,
                Realm::Admin => Throttled::AdminLogin,
            });
            return Err(wait);
        }
        Ok(attempt)
    }

    /// Takes one sign-up of `client`'s; `Err(wait)` over `registrations_per_hour`.
    pub fn register(&self, client: IpAddr) -> Result<(), Duration> {
        let rate = self.registration_rate;
        self.take(&self.registrations, rate, client, Throttled::Register)
    }

    /// Takes one password reset request of `client`'s; `Err(wait)` over
    /// [`FORGOT_PER_HOUR`].
    pub fn forgot(&self, client: IpAddr) -> Result<(), Duration> {
        let rate = self.forgot_rate;
        self.take(&self.forgotten, rate, client, Throttled::PasswordForgot)
    }

    /// Takes one request of `client`'s from the per-address `table` at `rate`; a refusal
    /// is counted as `what`.
    fn take(
        &self,
        table: &Table<IpAddr, Bucket>,
        rate: Rate,
        client: IpAddr,
        what: Throttled,
    ) -> Result<(), Duration> {
        if !self.on {
            return Ok(());
        }
        let now = Instant::now();
        table
            .with(&client_key(client), now, |b| b.take(&rate, now))
            .inspect_err(|_| self.metrics.throttled(what))
    }
}

/// The Device API's throttles: failed apikeys per client address, updates per device.
pub struct DeviceThrottle {
    on: bool,
    metrics: Arc<Metrics>,
    /// Failed apikeys per client address.
    keys: Table<IpAddr, Failures>,
    /// Updates per device.
    updates: Table<String, Bucket>,
    key_rules: Backoff,
    update_rate: Rate,
}

impl DeviceThrottle {
    /// The throttles of `config`, with a task that forgets idle keys.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Arc<DeviceThrottle> {
        let now = Instant::now();
        let (start, max, forgive) = DEVICE_BACKOFF;
        let throttle = Arc::new(DeviceThrottle {
            on: config.rate_limits,
            metrics,
            keys: Table::new(config.throttle_max_keys, now),
            updates: Table::new(config.throttle_max_keys, now),
            key_rules: Backoff {
                free: config.device_key_failures_free,
                start,
                max,
                forgive,
            },
            update_rate: Rate::new(
                config.device_updates_per_second,
                Duration::from_secs(1),
                config.device_updates_burst,
            ),
        });
        if config.rate_limits {
            tokio::spawn(sweep(
                Arc::downgrade(&throttle),
                |t: &DeviceThrottle, now| {
                    t.keys.purge(now);
                    t.updates.purge(now);
                },
            ));
        }
        throttle
    }

    /// Whether `client` may be served: false (and counted) while it is blocked after
    /// failed apikeys. Reads memory only.
    pub fn admits(&self, client: IpAddr) -> bool {
        if !self.on {
            return true;
        }
        let now = Instant::now();
        let blocked = self.keys.peek(&client_key(client), now, |f| {
            f.and_then(|f| f.blocked(now)).is_some()
        });
        if blocked {
            self.metrics.throttled(Throttled::DeviceApikey);
        }
        !blocked
    }

    /// Counts a request of `client`'s refused for its apikey (403).
    pub fn key_refused(&self, client: IpAddr) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let rules = self.key_rules;
        self.keys
            .with(&client_key(client), now, |f| f.fail(&rules, now));
    }

    /// Takes one update of `deviceid`: false (and counted) over the device's rate.
    pub fn update(&self, deviceid: &str) -> bool {
        if !self.on {
            return true;
        }
        let now = Instant::now();
        let rate = self.update_rate;
        let taken = self.updates.with(deviceid, now, |b| b.take(&rate, now));
        if taken.is_err() {
            self.metrics.throttled(Throttled::DeviceUpdates);
        }
        taken.is_ok()
    }
}

/// Forgets idle keys every [`SWEEP_EVERY`] while the throttles live.
async fn sweep<T: Send + Sync + 'static>(throttles: Weak<T>, purge: fn(&T, Instant)) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let Some(t) = throttles.upgrade() else { return };
        purge(&t, Instant::now());
    }
}
