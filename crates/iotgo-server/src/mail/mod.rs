//! E-mail: verification links, password reset links, e-mail change confirmations.
//!
//! Mail leaves the request path: a handler issues the token (its SHA-256 goes to the
//! database), puts a [`Letter`] on a bounded queue and answers; one task sends the
//! queue's letters in turn over SMTP ([`smtp`]). A full queue drops the letter, and a
//! failed send is logged (kind and error, never the SMTP URL or a token); both are
//! counted (`iotgo_mails_total`). A reset request puts only the address on the queue:
//! the task looks the account up, so the request answers in the same time whether the
//! account exists or not. Mails with links are bounded per account and per address
//! ([`limits`]).

mod letters;
mod limits;
mod smtp;

pub use letters::Letter;
pub use limits::{MIN_INTERVAL, MailLimits, PER_HOUR};
pub use smtp::{Security, SmtpTarget};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{Millis, Store, StoreResult, TokenKind, UserRecord};
use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use parking_lot::Mutex;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a verification link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(48 * 3600);
/// How long a password reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// How long an e-mail change link works.
pub const CHANGE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Mails waiting to be sent; past it new ones are dropped (and counted).
const QUEUE_LEN: usize = 256;

/// What the sending task does next.
enum Job {
    /// Send this.
    Letter(Letter),
    /// Mail a reset link to the account with this address, if there is one.
    Reset(String),
}

/// What a request asked to mail, as it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// On the queue.
    Yes,
    /// Not sent: too soon after the last mail to that account or address.
    Throttled,
}

/// The mail service of one server: cheap to share.
pub struct Mail {
    outbox: Option<mpsc::Sender<Job>>,
    core: Arc<Core>,
}

/// What handlers and the sending task share.
struct Core {
    store: Store,
    metrics: Arc<Metrics>,
    /// `public_url` without its trailing `/`.
    public_url: String,
    /// `None` with `rate_limits = false`.
    limits: Option<Mutex<MailLimits>>,
}

/// A new random token for a link, and the SHA-256 (hex) kept in the database.
fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token = hex(&bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// The database's key of a token: its SHA-256 in hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn expiry(ttl: Duration) -> Millis {
    Millis(Millis::now().0.saturating_add(ttl.as_millis() as i64))
}

impl Mail {
    /// Checks the e-mail settings and starts the sending task. Refuses
    /// `email_verification` without `smtp_url`, and `smtp_url` without `smtp_from` or
    /// `public_url`.
    pub fn start(config: &Config, store: Store, metrics: Arc<Metrics>) -> anyhow::Result<Mail> {
        let public_url = match &config.public_url {
            Some(url) => {
                let parsed = url::Url::parse(url).context("public_url is not a URL")?;
                anyhow::ensure!(
                    matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
                    "public_url must be an http:// or https:// address"
                );
                url.trim_end_matches('/').to_owned()
            }
            None => String::new(),
        };
        let limits = config.rate_limits.then(Mutex::default);
        let core = Arc::new(Core {
            store,
            metrics,
            public_url,
            limits,
        });
        let Some(url) = &config.smtp_url else {
            anyhow::ensure!(
                !config.email_verification,
                "email_verification = true needs smtp_url (IOTGO_SMTP_URL): verification \
                 links are sent by mail"
            );
            return Ok(Mail { outbox: None, core });
        };
        anyhow::ensure!(
            config.public_url.is_some(),
            "smtp_url needs public_url (IOTGO_PUBLIC_URL), the address of this server's \
             web app: the links in mails start with it"
        );
        let from = config
            .smtp_from
            .as_deref()
            .context("smtp_url needs smtp_from (IOTGO_SMTP_FROM), the sender of the mails")?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("smtp_from `{from}` is not an address ({e})"))?;
        let target = SmtpTarget::parse(url)?;
        tracing::info!(host = %target.host, port = target.port, security = ?target.security,
            verification = config.email_verification, "mail is sent by SMTP");
        let transport = target.transport()?;
        let (outbox, inbox) = mpsc::channel(QUEUE_LEN);
        tokio::spawn(send_all(inbox, transport, from, core.clone()));
        Ok(Mail {
            outbox: Some(outbox),
            core,
        })
    }

    /// Whether mail can be sent at all (`smtp_url` is set).
    pub fn enabled(&self) -> bool {
        self.outbox.is_some()
    }

    fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}?token={token}", self.core.public_url)
    }

    /// Puts a letter on the queue; a full queue drops it (logged and counted).
    fn queue(&self, job: Job) {
        let Some(outbox) = &self.outbox else { return };
        if outbox.try_send(job).is_err() {
            self.core.metrics.mails_dropped.increment(1);
            tracing::warn!("the mail queue is full; a mail was dropped");
        }
    }

    /// Mails `user` a link that verifies their address.
    pub async fn send_verification(&self, user: &UserRecord) -> StoreResult<Queued> {
        let email = &user.user.email;
        if !self.core.allow(&user.user.apikey, email) {
            return Ok(Queued::Throttled);
        }
        let token = self.core.issue(TokenKind::Verify, user, email).await?;
        self.queue(Job::Letter(letters::verify(
            email,
            &self.link("verify-email", &token),
        )));
        Ok(Queued::Yes)
    }

    /// Mails a reset link to the account with address `email`, if there is one. Answers
    /// at once either way: the sending task looks the account up.
    pub fn request_reset(&self, email: String) {
        self.queue(Job::Reset(email));
    }

    /// Mails `new_email` a link that moves `user` to it.
    pub async fn send_change(&self, user: &UserRecord, new_email: &str) -> StoreResult<Queued> {
        if !self.core.allow(&user.user.apikey, new_email) {
            return Ok(Queued::Throttled);
        }
        let token = self.core.issue(TokenKind::Change, user, new_email).await?;
        let link = self.link("confirm-email", &token);
        self.queue(Job::Letter(letters::change(
            &user.user.email,
            new_email,
            &link,
        )));
        Ok(Queued::Yes)
    }

    /// Tells `old` that its account now uses `new`.
    pub fn notify_changed(&self, old: &str, new: &str) {
        self.queue(Job::Letter(letters::changed(old, new)));
    }
}

impl Core {
    /// Whether a mail with a link may go to this account and address now (counted).
    fn allow(&self, apikey: &str, email: &str) -> bool {
        let Some(limits) = &self.limits else {
            return true;
        };
        let keys = [format!("acct:{apikey}"), format!("addr:{email}")];
        let allowed = limits
            .lock()
            .allow(&[keys[0].as_str(), keys[1].as_str()], Instant::now());
        if !allowed {
            self.metrics.mails_throttled.increment(1);
        }
        allowed
    }

    /// A new token of `kind` for `user`, mailed to `email`; it replaces the last one.
    async fn issue(&self, kind: TokenKind, user: &UserRecord, email: &str) -> StoreResult<String> {
        let ttl = match kind {
            TokenKind::Verify => VERIFY_TTL,
            TokenKind::Reset => RESET_TTL,
            TokenKind::Change => CHANGE_TTL,
        };
        let (token, hash) = new_token();
        self.store
            .email_tokens()
            .issue(kind, &user.user.apikey, email, &hash, expiry(ttl))
            .await?;
        Ok(token)
    }

    /// The reset letter for `email`, if it names an account and may be sent now.
    async fn reset_letter(&self, email: &str) -> StoreResult<Option<Letter>> {
        let Some(user) = self.store.users().find_by_email(email).await? else {
            return Ok(None);
        };
        if !self.allow(&user.user.apikey, email) {
            return Ok(None);
        }
        let token = self.issue(TokenKind::Reset, &user, email).await?;
        let link = format!("{}/reset-password?token={token}", self.public_url);
        Ok(Some(letters::reset(email, &link)))
    }
}

/// The sending task: one letter at a time, until the [`Mail`] is dropped.
async fn send_all(
    mut inbox: mpsc::Receiver<Job>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    core: Arc<Core>,
) {
    while let Some(job) = inbox.recv().await {
        let letter = match job {
            Job::Letter(letter) => letter,
            Job::Reset(email) => match core.reset_letter(&email).await {
                Ok(Some(letter)) => letter,
                Ok(None) => continue,
                Err(e) => {
                    core.metrics.mails_failed.increment(1);
                    tracing::error!(error = %e, "cannot issue a password reset token");
                    continue;
                }
            },
        };
        let kind = letter.kind;
        match send(&transport, &from, letter).await {
            Ok(()) => {
                core.metrics.mails_sent.increment(1);
                tracing::debug!(kind, "mail sent");
            }
            Err(e) => {
                core.metrics.mails_failed.increment(1);
                tracing::warn!(kind, error = %e, "mail not sent");
            }
        }
    }
}

async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    letter: Letter,
) -> anyhow::Result<()> {
    let to: Mailbox = letter
        .to
        .parse()
        .map_err(|e| anyhow::anyhow!("bad recipient address ({e})"))?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(letter.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(letter.body)?;
    transport.send(message).await?;
    Ok(())
}
