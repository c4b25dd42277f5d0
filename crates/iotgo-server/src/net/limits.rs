//! Connection caps: per client address and in all, checked as a connection is accepted.
//!
//! A refused connection is still accepted (the cap leaves a reserve of descriptors, so
//! the server can always accept): it gets a short 503 as soon as its request begins,
//! and is closed (within [`LINGER`] in any case). Refusals
//! are counted (`iotgo_connections_refused_total`) and logged at most every
//! [`LOG_EVERY`], never a line per connection of a flood.

use crate::metrics::Metrics;
use metrics::Counter;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Descriptors kept for the server itself (database, data files, listener, lingering
/// refusals) below the open-file limit when `max_connections` is unset.
pub(crate) const RESERVE: u64 = 256;
/// How often refusals are logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Refused connections answered at once, at most; past it (a flood) they are closed
/// without an answer.
const LINGERING: usize = 64;
/// How long a refused connection is kept, at most: for its request to begin, the 503,
/// and the rest of the request.
const LINGER: Duration = Duration::from_secs(2);

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address holds `max_connections_per_ip` connections.
    PerIp,
    /// The server holds `max_connections`.
    Total,
}

impl Refusal {
    /// The whole answer, whatever the request.
    fn response(self) -> &'static [u8] {
        match self {
            Refusal::PerIp => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                  content-length: 51\r\nretry-after: 10\r\nconnection: close\r\n\r\n\
                  {\"error\":\"too many connections from your address\"}\n"
            }
            Refusal::Total => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                  content-length: 48\r\nretry-after: 10\r\nconnection: close\r\n\r\n\
                  {\"error\":\"the server has too many connections\"}\n"
            }
        }
    }
}

/// The caps of one server and what they count.
pub(crate) struct Limits {
    max_total: usize,
    /// Open connections by client key; `None` when per-address limits are off.
    per_ip: Option<Arc<PerIp>>,
    refused_per_ip: Counter,
    refused_total: Counter,
    log: Arc<RefusalLog>,
    lingering: Arc<Semaphore>,
}

struct PerIp {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under the per-address cap, given back when it is dropped.
pub(crate) struct Slot {
    held: Option<(Arc<PerIp>, IpAddr)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((per_ip, key)) = self.held.take() {
            let mut open = per_ip.open.lock();
            if let Some(n) = open.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&key);
                }
            }
        }
    }
}

impl Limits {
    /// At most `max_total` connections, and `per_ip` from one address when given.
    pub(crate) fn new(max_total: usize, per_ip: Option<usize>, metrics: &Metrics) -> Limits {
        Limits {
            max_total,
            per_ip: per_ip.map(|cap| {
                Arc::new(PerIp {
                    cap,
                    open: Mutex::new(HashMap::new()),
                })
            }),
            refused_per_ip: metrics.connections_refused_per_ip.clone(),
            refused_total: metrics.connections_refused_total.clone(),
            log: Arc::default(),
            lingering: Arc::new(Semaphore::new(LINGERING)),
        }
    }

    /// Admits a connection from `ip` while `open` connections are open, or says why not.
    pub(crate) fn admit(&self, ip: IpAddr, open: usize) -> Result<Slot, Refusal> {
        if open >= self.max_total {
            return Err(Refusal::Total);
        }
        let Some(per_ip) = &self.per_ip else {
            return Ok(Slot { held: None });
        };
        let key = client_key(ip);
        let mut map = per_ip.open.lock();
        let n = map.entry(key).or_default();
        if *n >= per_ip.cap {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(Slot {
            held: Some((per_ip.clone(), key)),
        })
    }

    /// Answers a refused connection 503 and closes it; counts and (now and then) logs.
    pub(crate) fn refuse(&self, tcp: TcpStream, ip: IpAddr, why: Refusal) {
        self.refused(ip, why);
        let Ok(permit) = self.lingering.clone().try_acquire_owned() else {
            return; // A flood: closed at once.
        };
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(LINGER, answer(tcp, why)).await;
        });
    }

    /// Counts and (now and then) logs a refused connection; the caller closes it.
    pub(crate) fn refused(&self, ip: IpAddr, why: Refusal) {
        match why {
            Refusal::PerIp => self.refused_per_ip.increment(1),
            Refusal::Total => self.refused_total.increment(1),
        }
        self.log.note(why, ip, self.max_total);
    }
}

/// Answers a refused connection once its request began: an HTTP client takes an answer
/// that comes before it sent its request for a broken connection, not for a 503. Then
/// reads on to the end (closing with the request unread would reset the connection, and
/// the client could lose the answer).
async fn answer(mut tcp: TcpStream, why: Refusal) {
    let mut buf = [0; 2048];
    if !matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {
        return;
    }
    if tcp.write_all(why.response()).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// The key a client's connections are counted under: its address, an IPv4 address in
/// IPv6 form as IPv4, an IPv6 address by its /64 (one subscriber's usual share, which a
/// client can walk through at will).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Refusals since the last line, logged at most every [`LOG_EVERY`]; those that came
/// too soon after a line are logged at the end of its interval.
#[derive(Default)]
struct RefusalLog {
    per_ip: AtomicU64,
    total: AtomicU64,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    /// When the last line was written.
    at: Option<Instant>,
    /// The address refused last.
    from: Option<IpAddr>,
    /// A line is due at the end of the interval.
    due: bool,
}

impl RefusalLog {
    fn note(self: &Arc<Self>, why: Refusal, ip: IpAddr, max_total: usize) {
        match why {
            Refusal::PerIp => self.per_ip.fetch_add(1, Ordering::Relaxed),
            Refusal::Total => self.total.fetch_add(1, Ordering::Relaxed),
        };
        let mut state = self.state.lock();
        state.from = Some(ip);
        match state.at.map(|at| at.elapsed()) {
            Some(since) if since < LOG_EVERY => {
                if !state.due {
                    state.due = true;
                    let log = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(LOG_EVERY - since).await;
                        log.write(&mut log.state.lock(), max_total);
                    });
                }
            }
            _ => self.write(&mut state, max_total),
        }
    }

    fn write(&self, state: &mut LogState, max_total: usize) {
        state.at = Some(Instant::now());
        state.due = false;
        let per_ip = self.per_ip.swap(0, Ordering::Relaxed);
        let total = self.total.swap(0, Ordering::Relaxed);
        let Some(last_from) = state.from else {
            return;
        };
        tracing::warn!(
            per_ip,
            total,
            %last_from,
            max_connections = max_total,
            "connections refused (503) since the last such line: `per_ip` over \
             max_connections_per_ip, `total` over max_connections"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_its_64() {
        let key = |s: &str| client_key(s.parse().unwrap()).to_string();
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
    }

    #[test]
    fn answers_have_their_length() {
        for why in [Refusal::PerIp, Refusal::Total] {
            let text = std::str::from_utf8(why.response()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{text}"
            );
        }
    }
}
