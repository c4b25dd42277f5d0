//! The clock hyper reads a request head by: the header-read timeout and the keep-alive
//! idle timeout of one connection.
//!
//! hyper's HTTP/1 server starts its header-read timer as soon as it waits for a request
//! head: when the connection opens, and again once the previous response went out. With
//! one duration for both, an idle keep-alive connection would be closed as soon as a
//! slowloris one. This timer tells the two apart:
//! - the first head of a connection must arrive whole within `header` of the accept;
//! - a later head may wait up to `idle` for its first byte, then must arrive whole within
//!   `header` of it.
//!
//! The connection's reads are counted ([`Reads`]); a head timer polled after a new read
//! knows the head began. hyper polls it each time its read of the head is pending, which
//! is right after every read of the socket.

use hyper::rt::{Sleep, Timer};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Successful reads of one connection (shared by its socket and its timer).
pub(crate) type Reads = Arc<AtomicU64>;

/// The timer of one connection (hyper uses it only for request heads).
pub(crate) struct HeadTimer {
    header: Duration,
    idle: Duration,
    reads: Reads,
    /// The connection's first head is being (or was) waited for.
    first_seen: AtomicBool,
}

impl HeadTimer {
    /// A timer for a connection whose reads are counted in `reads`.
    pub(crate) fn new(header: Duration, idle: Duration, reads: Reads) -> HeadTimer {
        HeadTimer {
            header,
            idle,
            reads,
            first_seen: AtomicBool::new(false),
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    /// `deadline` is hyper's (now + the header timeout): kept for the first head; a
    /// later one waits `idle` for its first byte instead.
    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let first = !self.first_seen.swap(true, Ordering::Relaxed);
        let (deadline, reads_before) = if first {
            (deadline, None)
        } else {
            let idle_end = Instant::now() + self.idle;
            (idle_end, Some(self.reads.load(Ordering::Relaxed)))
        };
        Box::pin(HeadSleep {
            sleep: tokio::time::sleep_until(deadline.into()),
            header: self.header,
            reads: self.reads.clone(),
            reads_before,
        })
    }
}

pin_project! {
    /// Waits for one request head. `reads_before`: while the connection is idle, its
    /// read count when it became idle.
    struct HeadSleep {
        #[pin]
        sleep: tokio::time::Sleep,
        header: Duration,
        reads: Reads,
        reads_before: Option<u64>,
    }
}

impl Sleep for HeadSleep {}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if let Some(before) = *this.reads_before
            && this.reads.load(Ordering::Relaxed) != before
        {
            // The next request began: its head now has `header` to arrive.
            *this.reads_before = None;
            let deadline = tokio::time::Instant::now() + *this.header;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.poll(cx)
    }
}
