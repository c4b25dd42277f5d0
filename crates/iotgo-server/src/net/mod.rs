//! Serving HTTP: the accept loop with its connection caps ([`limits`]), then hyper on
//! each connection with a header-read and a keep-alive idle timeout ([`timer`]), and the
//! client address of every request ([`ClientIp`]).
//!
//! axum's own `serve` starts hyper without a timer, so hyper's header-read timeout is
//! off there; this loop does what it did otherwise (HTTP/1 with upgrades for WebSockets,
//! graceful shutdown of every connection on a signal, waiting for them to end).
//! WebSockets leave hyper when upgraded: these timeouts do not apply to them
//! (`api::ws` has its own), the caps do (they stay counted until closed).

mod client;
mod limits;
mod timer;

pub use client::ClientIp;
pub(crate) use limits::{Slot, client_key};
pub(crate) use timer::Reads;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::shutdown::{Counted, Drain, DrainListener};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use client::TrustedProxies;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use limits::Limits;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How connections are served: timeouts, caps, trusted proxies.
pub(crate) struct Http {
    header_timeout: Duration,
    idle_timeout: Duration,
    limits: Limits,
    proxies: TrustedProxies,
}

impl Http {
    /// The settings of `config`; the cap in all is `max_connections`, else the open-file
    /// limit (raised to its hard limit first) less [`limits::RESERVE`]. Logs them.
    pub(crate) fn new(config: &Config, metrics: &Metrics) -> Http {
        let max_total = config
            .max_connections
            .unwrap_or_else(default_max_connections);
        let per_ip = config.rate_limits.then_some(config.max_connections_per_ip);
        if config.rate_limits {
            tracing::info!(
                max_connections = max_total,
                max_connections_per_ip = config.max_connections_per_ip,
                "connection caps"
            );
        } else {
            tracing::warn!(
                max_connections = max_total,
                "rate_limits is off: no per-address caps nor throttles (for load tests and \
                 test suites only; never on a server open to the internet)"
            );
        }
        Http {
            header_timeout: config.http_header_timeout,
            idle_timeout: config.http_idle_timeout,
            limits: Limits::new(max_total, per_ip, metrics),
            proxies: TrustedProxies::new(&config.trusted_proxies),
        }
    }

    /// Admits a connection of another transport (MQTT) from `ip` under the same caps
    /// while `open` connections are open: its place under the per-address cap, or `None`
    /// when refused (counted and logged as HTTP's refusals are; the caller closes it).
    pub(crate) fn admit(&self, ip: IpAddr, open: usize) -> Option<Slot> {
        self.limits
            .admit(ip, open)
            .inspect_err(|why| self.limits.refused(ip, *why))
            .ok()
    }

    /// Serves `router` on the connections of `listener` until `signal` resolves; then
    /// accepts no more, shuts every connection down gracefully (idle ones close, those
    /// with a request in flight finish it) and resolves once they are all gone.
    pub(crate) async fn serve(
        self: Arc<Self>,
        mut listener: DrainListener,
        drain: Arc<Drain>,
        router: Router,
        signal: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let connections = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut signal = pin!(signal);
        loop {
            let (tcp, peer) = tokio::select! {
                conn = listener.accept() => conn,
                () = &mut signal => break,
            };
            match self.limits.admit(peer.ip(), drain.open_connections()) {
                Ok(slot) => {
                    let reads = Reads::default();
                    let io = drain.counted(tcp, slot, reads.clone());
                    let conn =
                        self.clone()
                            .connection(io, peer, reads, router.clone(), stop.clone());
                    connections.spawn(conn);
                }
                Err(why) => self.limits.refuse(tcp, peer.ip(), why),
            }
        }
        drop(listener);
        stop.cancel();
        connections.close();
        connections.wait().await;
        Ok(())
    }

    /// hyper serving one connection, with the client address on every request, until
    /// it ends; once `stop` fires, it is shut down gracefully.
    async fn connection(
        self: Arc<Self>,
        io: Counted,
        peer: SocketAddr,
        reads: Reads,
        router: Router,
        stop: CancellationToken,
    ) {
        let http = self.clone();
        let service = router.map_request(move |mut req: Request<Incoming>| {
            let client = http.proxies.client(peer.ip(), req.headers());
            req.extensions_mut().insert(ClientIp(client));
            req.map(Body::new)
        });
        let timer = timer::HeadTimer::new(self.header_timeout, self.idle_timeout, reads);
        let conn = http1::Builder::new()
            .timer(timer)
            .header_read_timeout(self.header_timeout)
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
            .with_upgrades();
        let mut conn = pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
        }
        // (Errors are the client's: a reset, a head too slow.)
        let _ = conn.await;
    }
}

/// The open-file limit, raised to its hard limit (as Go's runtime does at start; a
/// server's usual soft limit of 1,024 is far below what it may hold), less the reserve.
fn default_max_connections() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let max = limit.saturating_sub(limits::RESERVE).max(limit / 2);
    usize::try_from(max).unwrap_or(usize::MAX)
}
