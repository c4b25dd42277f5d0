//! A connection as the hub sees it: a [`Peer`] queues messages, the connection's writer
//! takes them from its [`Outbox`].
//!
//! The queue is bounded and holds memory only while it holds messages: a `VecDeque`
//! behind a mutex, woken through a `Notify`. (tokio's bounded channel allocates a block
//! of 32 slots with its header up front, about 2 KiB per connection, which an idle device
//! should not cost.)

use axum::extract::ws::{Message, Utf8Bytes};
use metrics::Counter;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

/// What a peer and its outbox share.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Most messages queued.
    cap: usize,
    /// A message was queued (or the queue closed).
    ready: Notify,
    /// The connection was told to close.
    kill: Notify,
    /// Counts the connections cut off for not reading.
    cut_off: Counter,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Message>,
    /// The outbox is gone: nothing more is queued.
    closed: bool,
    /// The queue filled up and the connection was told to close.
    full: bool,
}

/// One WebSocket connection, as the hub sees it: cheap to clone.
#[derive(Clone, Debug)]
pub struct Peer {
    id: u64,
    shared: Arc<Shared>,
}

/// A socket in the hub's lists: the peer itself, or (token lists) with the token version
/// it subscribed with.
impl AsRef<Peer> for Peer {
    fn as_ref(&self) -> &Peer {
        self
    }
}

impl AsRef<Peer> for (Peer, i64) {
    fn as_ref(&self) -> &Peer {
        &self.0
    }
}

/// The receiving end of a peer's queue, owned by the connection's writer. Dropping it
/// closes the queue.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// A new peer `id` with a queue of at most `cap` messages, and its outbox; a peer cut
/// off for letting it fill is counted in `cut_off`.
pub(super) fn pair(id: u64, cap: usize, cut_off: Counter) -> (Peer, Outbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::default(),
        cap: cap.max(1),
        ready: Notify::new(),
        kill: Notify::new(),
        cut_off,
    });
    let outbox = Outbox {
        shared: shared.clone(),
    };
    (Peer { id, shared }, outbox)
}

impl Peer {
    /// This connection's id, unique within the process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues a message; a full queue means the client stopped reading: it is cut off.
    /// False when the message was not queued.
    pub fn send(&self, msg: Message) -> bool {
        let mut queue = self.shared.queue.lock();
        if queue.closed {
            return false;
        }
        if queue.items.len() >= self.shared.cap {
            if !std::mem::replace(&mut queue.full, true) {
                self.shared.cut_off.increment(1);
            }
            drop(queue);
            tracing::debug!(peer = self.id, "outgoing queue full, disconnecting");
            self.kill();
            return false;
        }
        queue.items.push_back(msg);
        drop(queue);
        self.shared.ready.notify_one();
        true
    }

    /// Queues a text frame.
    pub fn send_text(&self, frame: &Utf8Bytes) -> bool {
        self.send(Message::Text(frame.clone()))
    }

    /// Tells the connection's task to close.
    pub fn kill(&self) {
        self.shared.kill.notify_one();
    }

    /// Resolves when the connection was told to close.
    pub async fn killed(&self) {
        self.shared.kill.notified().await
    }
}

impl Outbox {
    /// The next message, waiting for one.
    pub async fn recv(&self) -> Message {
        loop {
            if let Some(msg) = self.try_recv() {
                return msg;
            }
            // A message queued between the check and here left a permit: no lost wake-up.
            self.shared.ready.notified().await;
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Option<Message> {
        let mut queue = self.shared.queue.lock();
        let msg = queue.items.pop_front();
        if queue.items.is_empty() && queue.items.capacity() > SHRINK_ABOVE {
            // A burst is over: give its memory back.
            queue.items = VecDeque::new();
        }
        msg
    }
}

/// Capacity an empty queue keeps; a larger one (left by a burst) is freed.
const SHRINK_ABOVE: usize = 8;

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut queue = self.shared.queue.lock();
        queue.closed = true;
        queue.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queues_in_order_cuts_off_when_full_and_refuses_once_closed() {
        let (peer, outbox) = pair(7, 2, Counter::noop());
        assert!(peer.send(Message::Text("a".into())));
        assert!(peer.send(Message::Text("b".into())));
        // Full: refused, and the connection is told to close.
        assert!(!peer.send(Message::Text("c".into())));
        tokio::time::timeout(std::time::Duration::from_secs(1), peer.killed())
            .await
            .expect("killed");
        assert_eq!(outbox.recv().await, Message::Text("a".into()));
        assert_eq!(outbox.try_recv(), Some(Message::Text("b".into())));
        assert_eq!(outbox.try_recv(), None);
        // A waiting writer wakes for the next message.
        let waiter = tokio::spawn(async move { (outbox.recv().await, outbox) });
        tokio::task::yield_now().await;
        assert!(peer.send(Message::Text("d".into())));
        let (msg, outbox) = waiter.await.unwrap();
        assert_eq!(msg, Message::Text("d".into()));
        drop(outbox);
        assert!(!peer.send(Message::Text("e".into())));
    }
}
