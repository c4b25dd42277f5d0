//! The HTTP side of a graceful shutdown: stop accepting, answer what is in flight, close
//! idle keep-alive connections without racing a client's next request.
//!
//! A shutdown runs in two steps, because closing an idle keep-alive connection at the
//! very moment its client sends the next request resets that request:
//! 1. [`Drain::begin`]: the listening socket closes (new connections are refused, not left
//!    hanging in the backlog) and every response from then on carries
//!    `Connection: close`, so a client that is still sending learns to stop after its
//!    answer instead of reusing the connection.
//! 2. Once no response went out for [`QUIET`] (clients have stopped), hyper's graceful
//!    shutdown closes the connections that are idle and lets those with a request in
//!    flight finish it ([`Drain::idle_closing`], the signal of `net::Http::serve`).
//!
//! WebSockets are upgraded out of hyper's hands; `api::ws` closes them (code 1001) and the
//! hub tracks them until they are gone.

use crate::net::{Reads, Slot};
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::FutureExt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower_http::set_header::SetResponseHeaderLayer;

/// How long no response may go out during a drain before idle keep-alive connections are
/// closed: long enough for a client in a request loop to get its `Connection: close`
/// answer and stop, short enough not to delay the exit.
pub const QUIET: Duration = Duration::from_millis(250);

/// The state of a drain, shared by the listener, the response layer and the server.
#[derive(Debug)]
pub struct Drain {
    /// Set once the drain began (read on every response: a plain atomic).
    draining: AtomicBool,
    /// The same, for those who wait for it.
    began: watch::Sender<bool>,
    /// A response went out during the drain.
    activity: Notify,
    /// Open TCP connections, HTTP and WebSocket.
    open: AtomicUsize,
}

impl Drain {
    /// A drain that has not begun.
    pub fn new() -> Arc<Drain> {
        Arc::new(Drain {
            draining: AtomicBool::new(false),
            began: watch::Sender::new(false),
            activity: Notify::new(),
            open: AtomicUsize::new(0),
        })
    }

    /// Starts the drain: the listener closes, responses ask clients to close.
    pub fn begin(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.began.send_replace(true);
    }

    /// Whether the drain began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Open TCP connections (HTTP and WebSocket).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    async fn began(&self) {
        let _ = self.began.subscribe().wait_for(|b| *b).await;
    }

    /// Resolves when idle keep-alive connections may be closed: the drain began and no
    /// response went out for [`QUIET`] (at once when no connection is open).
    pub async fn idle_closing(self: Arc<Self>) {
        self.began().await;
        while self.open_connections() > 0 {
            tokio::select! {
                _ = tokio::time::sleep(QUIET) => break,
                _ = self.activity.notified() => {}
            }
        }
    }

    /// The layer that adds `Connection: close` to every response sent during the drain
    /// (hyper then closes the connection once the response is written).
    pub fn layer(
        self: &Arc<Self>,
    ) -> SetResponseHeaderLayer<impl Fn(&Response) -> Option<HeaderValue> + Clone + use<>> {
        let drain = self.clone();
        SetResponseHeaderLayer::overriding(CONNECTION, move |res: &Response| {
            // (A WebSocket's 101 keeps its `Connection: upgrade`.)
            if !drain.is_draining() || res.status() == StatusCode::SWITCHING_PROTOCOLS {
                return None;
            }
            drain.activity.notify_one();
            Some(HeaderValue::from_static("close"))
        })
    }

    /// Wraps the bound socket; it closes when the drain begins.
    pub fn listener(self: &Arc<Self>, tcp: TcpListener) -> DrainListener {
        DrainListener {
            tcp: Some(tcp),
            drain: self.clone(),
        }
    }

    /// An accepted connection, counted while it is open; it holds `slot` (its place
    /// under the per-address cap) and counts its reads in `reads`.
    pub(crate) fn counted(self: &Arc<Self>, io: TcpStream, slot: Slot, reads: Reads) -> Counted {
        // Device API answers and pushes are small frames: send them at once instead of
        // letting Nagle hold them for the peer's delayed ACK (40 ms on Linux).
        let _ = io.set_nodelay(true);
        self.open.fetch_add(1, Ordering::Relaxed);
        Counted {
            io,
            drain: self.clone(),
            reads,
            _slot: slot,
        }
    }
}

/// The listening socket of a server that may drain.
pub struct DrainListener {
    tcp: Option<TcpListener>,
    drain: Arc<Drain>,
}

impl DrainListener {
    /// The next connection; pending forever once the socket closed.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some(tcp) = self.tcp.as_mut() else {
                return std::future::pending().await;
            };
            if self.drain.is_draining() {
                // Connections already in the backlog are served (closing the socket
                // would reset them), then the socket closes: later ones are refused.
                match TcpListener::accept(tcp).now_or_never() {
                    Some(Ok(conn)) => return conn,
                    _ => self.tcp = None,
                }
                continue;
            }
            tokio::select! {
                // (axum's accept retries errors: after EMFILE it waits a second.)
                conn = axum::serve::Listener::accept(tcp) => return conn,
                _ = self.drain.began() => {}
            }
        }
    }
}

/// An accepted connection, counted while it is open.
pub struct Counted {
    io: TcpStream,
    drain: Arc<Drain>,
    reads: Reads,
    _slot: Slot,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drain.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        read
    }
}
impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
