//! Cluster mode: several nodes on one PostgreSQL database, joined by NATS (docs/cluster.md).
//!
//! PostgreSQL holds every durable fact, as on one node; NATS (core, no JetStream) carries
//! what one node must tell the others, on these subjects:
//!
//! | subject | what | sent when |
//! |---|---|---|
//! | `iotgo.push.<deviceid>` | a push for the device's watchers (the frame as apps get it; the owner in a header) | after its commit |
//! | `iotgo.lifecycle` | a device created, claimed or deleted, a user deleted, a key rotated, tokens retired | after its commit |
//! | `iotgo.bound.<deviceid>` | the device got its socket on the sending node: an older one elsewhere closes | after its `online` commit |
//! | `iotgo.command.<node>` | request: an app's command for an indie device whose socket is on `<node>`; reply: the device's answer | as the app sends it |
//!
//! Presence is leased in the `nodes` table ([`lease`]). Publishing never waits on NATS: a
//! bounded queue takes each message, and what does not fit while NATS is away is dropped
//! and counted. Nothing durable is lost that way: every message is sent after its commit,
//! and an app that missed a push reads the device again (docs/cluster.md).

mod lease;
mod listen;

use crate::config::Config;
use crate::device::DeviceApi;
use crate::metrics::Metrics;
use anyhow::Context;
use async_nats::client::RequestErrorKind;
use async_nats::{Client, ConnectOptions, Event, HeaderMap, Message};
use bytes::Bytes;
use metrics::Counter;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages waiting to be handed to NATS; past it they are dropped (NATS is away).
const OUTGOING: usize = 16_384;

/// The header that carries a push's owner apikey.
pub(crate) const OWNER: &str = "Iotgo-Owner";
/// The header that marks a push that goes to the device's own socket too (an app's update
/// of a DIY device).
pub(crate) const TO_DEVICE: &str = "Iotgo-To-Device";

/// The subject of a device's pushes.
pub(crate) fn push_subject(deviceid: &str) -> String {
    format!("iotgo.push.{deviceid}")
}

/// The subject of lifecycle events.
pub(crate) const LIFECYCLE: &str = "iotgo.lifecycle";

/// The subject that says a device got its socket on some node.
pub(crate) fn bound_subject(deviceid: &str) -> String {
    format!("iotgo.bound.{deviceid}")
}

/// The subject of commands for the devices held by `node`.
pub(crate) fn command_subject(node: &str) -> String {
    format!("iotgo.command.{node}")
}

/// What became of a command sent to another node.
#[derive(Debug)]
pub(crate) enum Remote {
    /// The device answered.
    Answer(Bytes),
    /// No node holds the device (or NATS is away).
    Offline,
    /// The device did not answer in time.
    Timeout,
}

/// One message to publish.
struct Outgoing {
    subject: String,
    headers: Option<HeaderMap>,
    payload: Bytes,
}

/// This node's connection to the others: its id and NATS.
pub struct Bus {
    client: Client,
    node: Arc<str>,
    lease: Duration,
    out: mpsc::Sender<Outgoing>,
    sent: Counter,
    dropped: Counter,
}

impl Bus {
    /// Connects to `config.nats_url` as node `node` (retrying in the background when NATS
    /// is not up yet: the node serves its own devices meanwhile).
    pub async fn connect(
        config: &Config,
        node: Arc<str>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Arc<Bus>> {
        let url = config.nats_url.as_ref().context("no nats_url")?;
        let events = metrics.clone();
        let client = with_url_credentials(ConnectOptions::new(), url.expose())
            .name(format!("iotgo {node}"))
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let m = events.clone();
                async move { on_event(&m, &event) }
            })
            .connect(url.expose())
            .await
            .context("cannot use the NATS URL")?;
        let (out, rx) = mpsc::channel(OUTGOING);
        tokio::spawn(publisher(client.clone(), rx));
        Ok(Arc::new(Bus {
            client,
            node,
            lease: config.cluster_lease,
            out,
            sent: metrics.cluster_sent.clone(),
            dropped: metrics.cluster_dropped.clone(),
        }))
    }

    /// This node's id.
    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// Whether NATS is connected now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Queues a message for NATS; never waits (dropped and counted when the queue is full).
    pub(crate) fn publish(&self, subject: String, headers: Option<HeaderMap>, payload: Bytes) {
        let msg = Outgoing {
            subject,
            headers,
            payload,
        };
        match self.out.try_send(msg) {
            Ok(()) => self.sent.increment(1),
            Err(_) => self.dropped.increment(1),
        }
    }

    /// Sends a command to `node` and waits up to `timeout` for the device's answer.
    pub(crate) async fn command(&self, node: &str, payload: Bytes, timeout: Duration) -> Remote {
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(timeout));
        self.sent.increment(1);
        match self
            .client
            .send_request(command_subject(node), request)
            .await
        {
            Ok(msg) if msg.payload.is_empty() => Remote::Offline,
            Ok(msg) => Remote::Answer(msg.payload),
            Err(e) if e.kind() == RequestErrorKind::TimedOut => Remote::Timeout,
            // No responders (the node is gone), or NATS is away: nobody can reach it.
            Err(_) => Remote::Offline,
        }
    }

    /// Hands what is queued to NATS (at shutdown), waiting at most a second.
    pub async fn flush(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.out.capacity() < self.out.max_capacity()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = tokio::time::timeout_at(deadline, self.client.flush()).await;
    }

    /// Answers a command request.
    pub(crate) fn reply(&self, request: &Message, payload: Bytes) {
        if let Some(reply) = &request.reply {
            self.publish(reply.to_string(), None, payload);
        }
    }
}

/// Hands queued messages to NATS, in order.
async fn publisher(client: Client, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some(msg) = rx.recv().await {
        let sent = match msg.headers {
            Some(h) => {
                client
                    .publish_with_headers(msg.subject, h, msg.payload)
                    .await
            }
            None => client.publish(msg.subject, msg.payload).await,
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "NATS publish failed");
        }
    }
}

fn on_event(metrics: &Metrics, event: &Event) {
    match event {
        Event::Connected => {
            metrics.cluster_connected.set(1.0);
            tracing::info!("connected to NATS");
        }
        Event::Disconnected => {
            metrics.cluster_connected.set(0.0);
            metrics.cluster_disconnects.increment(1);
            tracing::warn!(
                "NATS connection lost: serving the devices connected here; pushes and \
                 commands to other nodes wait for it (reconnecting)"
            );
        }
        other => tracing::info!(event = %other, "NATS"),
    }
}

/// Starts the node's cluster work once the Device API runs: it joins (an earlier run's
/// devices go offline), listens to the other nodes, and keeps its lease.
pub async fn start(api: &Arc<DeviceApi>, bus: Arc<Bus>) -> anyhow::Result<()> {
    let subscriptions = listen::subscribe(&bus)
        .await
        .context("cannot subscribe on NATS")?;
    let run = lease::join(api, &bus).await?;
    api.spawn(listen::run(bus.clone(), subscriptions, Arc::downgrade(api)));
    api.spawn(lease::run(bus, Arc::downgrade(api), run));
    Ok(())
}

/// This node's id: `node_id` from the configuration, else the one kept in the data
/// directory (made at the first start).
pub fn node_id(config: &Config) -> anyhow::Result<Arc<str>> {
    let id = match &config.node_id {
        Some(id) => id.clone(),
        None => stored_node_id(&config.data_dir)?,
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    anyhow::ensure!(
        valid,
        "node_id `{id}`: use letters, digits, - and _ (at most 64)"
    );
    Ok(id.into())
}

fn stored_node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("node-{:016x}", rand::random::<u64>());
            std::fs::write(&path, format!("{id}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The credentials of `nats://user:password@host:4222` (or `nats://token@host:4222`) put
/// on the options: async-nats connects to such a URL but sends nothing from its user part.
fn with_url_credentials(options: ConnectOptions, urls: &str) -> ConnectOptions {
    match url_credentials(urls) {
        None => options,
        Some((user, Some(password))) => options.user_and_password(user, password),
        Some((token, None)) => options.token(token),
    }
}

/// The user (or token) and password of the first URL of a list that has them, decoded.
fn url_credentials(urls: &str) -> Option<(String, Option<String>)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let url = urls
        .split(',')
        .filter_map(|u| url::Url::parse(u.trim()).ok())
        .find(|u| !u.username().is_empty())?;
    Some((decode(url.username()), url.password().map(decode)))
}

#[cfg(test)]
mod tests {
    use super::url_credentials;

    #[test]
    fn credentials_come_from_the_url() {
        let user = |u: &str, p: &str| Some((u.to_owned(), Some(p.to_owned())));
        assert_eq!(
            url_credentials("nats://iotgo:p%40ss@nats:4222"),
            user("iotgo", "p@ss")
        );
        assert_eq!(
            url_credentials("nats://a:4222, nats://s3cret@b:4222"),
            Some(("s3cret".to_owned(), None))
        );
        assert_eq!(url_credentials("nats://127.0.0.1:4222"), None);
    }
}
