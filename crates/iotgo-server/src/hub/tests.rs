//! The hub against real metrics handles: pushes, cut-offs, bindings, subscriptions,
//! pending commands and credentials.

use super::*;
use crate::metrics::Access;
use axum::extract::ws::Message;
use futures_util::FutureExt;
use serde_json::json;
use std::sync::Arc;

/// What the hub counted, read from counters swapped into its [`Metrics`].
struct Counts {
    queued: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    cut_off: Arc<AtomicU64>,
    devices: Arc<AtomicU64>,
}

impl Counts {
    /// (queued, dropped, cut off).
    fn pushes(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Acquire);
        (get(&self.queued), get(&self.dropped), get(&self.cut_off))
    }

    /// The devices-with-a-socket gauge.
    fn devices(&self) -> f64 {
        f64::from_bits(self.devices.load(Ordering::Acquire))
    }
}

/// A hub made by [`Hub::new`] from real metrics whose hub handles count into atomics
/// the test can read. (`Metrics::start` spawns a task: the tests run in a runtime.)
fn hub() -> (Hub, Counts) {
    let Ok(mut metrics) = Arc::try_unwrap(Metrics::start(Access::Open).expect("metrics")) else {
        panic!("fresh metrics are not shared");
    };
    let counts = Counts {
        queued: Arc::default(),
        dropped: Arc::default(),
        cut_off: Arc::default(),
        devices: Arc::default(),
    };
    metrics.pushes_queued = Counter::from_arc(counts.queued.clone());
    metrics.pushes_dropped = Counter::from_arc(counts.dropped.clone());
    metrics.peers_cut_off = Counter::from_arc(counts.cut_off.clone());
    metrics.devices_ws = Gauge::from_arc(counts.devices.clone());
    (Hub::new(&metrics), counts)
}

/// The text frames queued for a connection, taking them.
fn taken(outbox: &Outbox) -> Vec<String> {
    std::iter::from_fn(|| outbox.try_recv())
        .map(|m| match m {
            Message::Text(t) => t.to_string(),
            other => panic!("not a text frame: {other:?}"),
        })
        .collect()
}

/// Whether the connection was told to close since last asked (takes the signal).
fn was_killed(peer: &Peer) -> bool {
    peer.killed().now_or_never().is_some()
}

fn frame(text: &'static str) -> Utf8Bytes {
    Utf8Bytes::from_static(text)
}

#[tokio::test]
async fn a_push_reaches_every_watcher_and_subscriber_once_but_not_its_sender() {
    let (hub, counts) = hub();
    let (device_watcher, device_box) = hub.peer(8);
    let (user_watcher, user_box) = hub.peer(8);
    let (both, both_box) = hub.peer(8);
    let (sender, sender_box) = hub.peer(8);
    let (other_device, other_device_box) = hub.peer(8);
    let (other_user, other_user_box) = hub.peer(8);
    hub.watch("d1", &device_watcher);
    hub.watch_user("u1", &user_watcher);
    hub.watch("d1", &both);
    hub.watch_user("u1", &both);
    // Watching twice subscribes once.
    hub.watch("d1", &both);
    hub.watch("d1", &sender);
    hub.watch_user("u1", &sender);
    hub.watch("d2", &other_device);
    hub.watch_user("u2", &other_user);

    hub.push("d1", "u1", &frame("a"), Some(sender.id()));

    assert_eq!(taken(&device_box), ["a"]);
    assert_eq!(taken(&user_box), ["a"]);
    assert_eq!(taken(&both_box), ["a"]);
    assert!(taken(&sender_box).is_empty());
    assert!(taken(&other_device_box).is_empty());
    assert!(taken(&other_user_box).is_empty());
    assert_eq!(counts.pushes(), (3, 0, 0));

    // A change with no sender (the HTTP API) reaches that socket too.
    hub.push("d1", "u1", &frame("b"), None);
    assert_eq!(taken(&sender_box), ["b"]);
    assert_eq!(taken(&both_box), ["b"]);
    assert_eq!(counts.pushes(), (7, 0, 0));
}

#[tokio::test]
async fn a_full_queue_cuts_that_peer_off_while_the_others_still_receive() {
    let (hub, counts) = hub();
    let (slow, slow_box) = hub.peer(1);
    let (fast, fast_box) = hub.peer(4);
    hub.watch("d1", &slow);
    hub.watch_user("u1", &fast);

    hub.push("d1", "u1", &frame("1"), None);
    assert_eq!(counts.pushes(), (2, 0, 0));
    assert!(!was_killed(&slow));

    hub.push("d1", "u1", &frame("2"), None);
    assert_eq!(counts.pushes(), (3, 1, 1));
    assert!(was_killed(&slow));
    assert!(!was_killed(&fast));

    // Still full: refused again, but a connection is cut off (and counted) once.
    hub.push("d1", "u1", &frame("3"), None);
    assert_eq!(counts.pushes(), (4, 2, 1));
    assert_eq!(taken(&slow_box), ["1"]);
    assert_eq!(taken(&fast_box), ["1", "2", "3"]);

    // A closed connection (its writer gone) refuses without being cut off.
    drop(fast_box);
    hub.push("d1", "u1", &frame("4"), None);
    assert_eq!(counts.pushes(), (5, 3, 1));
    assert_eq!(taken(&slow_box), ["4"]);
}

#[tokio::test]
async fn the_newest_socket_of_a_device_wins_and_an_older_one_cannot_unbind_it() {
    let (hub, counts) = hub();
    let (old, old_box) = hub.peer(8);
    let (new, new_box) = hub.peer(8);

    assert_eq!(hub.bind_device("d1", &old, KeyKind::Owner), Bind::New);
    assert_eq!(hub.bind_device("d1", &old, KeyKind::Owner), Bind::Already);
    assert!(!was_killed(&old));
    assert_eq!(counts.devices(), 1.0);

    assert_eq!(hub.bind_device("d1", &new, KeyKind::Owner), Bind::Replaced);
    assert!(was_killed(&old));
    assert!(!was_killed(&new));
    assert_eq!(counts.devices(), 1.0);
    assert!(hub.send_to_device("d1", &frame("cmd"), &frame("keyed")));
    assert!(taken(&old_box).is_empty());
    assert_eq!(taken(&new_box), ["cmd"]);

    // The replaced socket closing must not take the device offline.
    assert!(!hub.unbind_device("d1", old.id()));
    assert!(hub.is_connected("d1"));
    assert_eq!(counts.devices(), 1.0);

    assert!(hub.unbind_device("d1", new.id()));
    assert!(!hub.is_connected("d1"));
    assert_eq!(counts.devices(), 0.0);
    assert!(!hub.unbind_device("d1", new.id()));
    assert_eq!(counts.devices(), 0.0);
    assert!(!hub.send_to_device("d1", &frame("cmd"), &frame("keyed")));
    assert_eq!(counts.pushes(), (1, 0, 0));
}

#[tokio::test]
async fn a_forgotten_device_loses_its_watchers_and_its_socket() {
    let (hub, counts) = hub();
    let (device, _device_box) = hub.peer(8);
    let (watcher, watcher_box) = hub.peer(8);
    let (subscriber, subscriber_box) = hub.peer(8);
    let (other_watcher, other_watcher_box) = hub.peer(8);
    hub.bind_device("d1", &device, KeyKind::Owner);
    hub.watch("d1", &watcher);
    hub.watch_user("u1", &subscriber);
    hub.watch("d2", &other_watcher);

    hub.forget_device("d1");

    assert!(was_killed(&device));
    assert!(!hub.is_connected("d1"));
    assert_eq!(counts.devices(), 0.0);
    hub.push("d1", "u1", &frame("a"), None);
    hub.push("d2", "u2", &frame("b"), None);
    assert!(taken(&watcher_box).is_empty());
    // The owner's subscribe-all socket is the owner's, not the device's.
    assert_eq!(taken(&subscriber_box), ["a"]);
    assert_eq!(taken(&other_watcher_box), ["b"]);
    assert!(!was_killed(&watcher));

    // A device without a socket: nothing to close, the gauge stays.
    hub.forget_device("d2");
    assert_eq!(counts.devices(), 0.0);
    hub.push("d2", "u2", &frame("c"), None);
    assert!(taken(&other_watcher_box).is_empty());
}

#[tokio::test]
async fn a_forgotten_user_gets_no_more_pushes_of_all_their_devices() {
    let (hub, _counts) = hub();
    let (subscriber, subscriber_box) = hub.peer(8);
    let (watcher, watcher_box) = hub.peer(8);
    let (other_user, other_user_box) = hub.peer(8);
    hub.watch_user("u1", &subscriber);
    hub.watch("d1", &watcher);
    hub.watch_user("u2", &other_user);

    hub.forget_user("u1");
    hub.push("d1", "u1", &frame("a"), None);
    hub.push("d2", "u2", &frame("b"), None);

    assert!(taken(&subscriber_box).is_empty());
    assert_eq!(taken(&watcher_box), ["a"]);
    assert_eq!(taken(&other_user_box), ["b"]);
}

#[tokio::test]
async fn a_closed_connection_leaves_its_subscriptions() {
    let (hub, _counts) = hub();
    let (gone, gone_box) = hub.peer(8);
    let (stays, stays_box) = hub.peer(8);
    hub.watch("d1", &gone);
    hub.watch_user("u1", &gone);
    hub.watch("d1", &stays);

    hub.leave(gone.id(), &["d1".to_owned()], &["u1".to_owned()]);
    hub.push("d1", "u1", &frame("a"), None);

    assert!(taken(&gone_box).is_empty());
    assert_eq!(taken(&stays_box), ["a"]);
}

#[tokio::test]
async fn a_device_answer_reaches_the_command_waiting_for_it_once() {
    let (hub, _counts) = hub();
    let mut waiting = hub.expect_answer("d1", "s1");

    assert!(!hub.answer("d1", "s2", json!({"error": 0})));
    assert!(!hub.answer("d2", "s1", json!({"error": 0})));
    assert!(waiting.try_recv().is_err());
    assert!(hub.answer("d1", "s1", json!({"error": 0, "params": {}})));
    assert_eq!(waiting.await.unwrap(), json!({"error": 0, "params": {}}));
    assert!(!hub.answer("d1", "s1", json!({"error": 0})));
}

#[tokio::test]
async fn a_cancelled_or_replaced_command_gets_no_answer() {
    let (hub, _counts) = hub();
    let cancelled = hub.expect_answer("d1", "s1");
    hub.cancel_answer("d1", "s1");
    assert!(!hub.answer("d1", "s1", json!({"error": 0})));
    assert!(cancelled.await.is_err());

    // A second command with the same sequence takes the answer; the first ends empty.
    let first = hub.expect_answer("d1", "s2");
    let second = hub.expect_answer("d1", "s2");
    assert!(first.await.is_err());
    assert!(hub.answer("d1", "s2", json!({"error": 0})));
    assert_eq!(second.await.unwrap(), json!({"error": 0}));

    // An app that stopped waiting: the answer is not taken.
    drop(hub.expect_answer("d1", "s3"));
    assert!(!hub.answer("d1", "s3", json!({"error": 0})));
}

#[tokio::test]
async fn a_shutdown_ends_every_waiting_command_at_once() {
    let (hub, _counts) = hub();
    let before = hub.expect_answer("d1", "s1");

    hub.shut_down();

    assert!(before.await.is_err());
    assert!(hub.expect_answer("d1", "s2").await.is_err());
    assert!(!hub.answer("d1", "s2", json!({"error": 0})));
    assert!(*hub.shutdown_signal().borrow());
}

#[tokio::test]
async fn a_device_bound_by_its_own_key_gets_the_keyed_frame() {
    let (hub, _counts) = hub();
    let (owner_keyed, owner_box) = hub.peer(8);
    let (device_keyed, device_box) = hub.peer(8);
    hub.bind_device("d1", &owner_keyed, KeyKind::Owner);
    hub.bind_device("d2", &device_keyed, KeyKind::Device);

    assert!(hub.send_to_device("d1", &frame("owner"), &frame("keyed")));
    assert!(hub.send_to_device("d2", &frame("owner"), &frame("keyed")));

    assert_eq!(taken(&owner_box), ["owner"]);
    assert_eq!(taken(&device_box), ["keyed"]);
}

#[tokio::test]
async fn retiring_tokens_cuts_the_sockets_on_older_ones_and_refuses_them_later() {
    let (hub, _counts) = hub();
    let (old, _old_box) = hub.peer(8);
    let (current, current_box) = hub.peer(8);
    let (by_key, by_key_box) = hub.peer(8);
    let (other_user, _other_box) = hub.peer(8);
    for (peer, ver) in [(&old, 0), (&current, 1)] {
        hub.watch_user("u1", peer);
        assert!(hub.hold_token("u1", ver, peer));
    }
    hub.watch_user("u1", &by_key);
    hub.watch_user("u2", &other_user);
    assert!(hub.hold_token("u2", 0, &other_user));

    hub.retire_tokens("u1", 1);

    assert!(was_killed(&old));
    assert!(!was_killed(&current) && !was_killed(&by_key) && !was_killed(&other_user));
    // The cut socket gets no more pushes; the others do.
    hub.push("d1", "u1", &frame("a"), None);
    assert_eq!(taken(&current_box), ["a"]);
    assert_eq!(taken(&by_key_box), ["a"]);
    // A token checked before the retirement, registered after it, is refused.
    let (late, _late_box) = hub.peer(8);
    assert!(!hub.hold_token("u1", 0, &late));
    assert!(hub.hold_token("u1", 1, &late));
    // A later retirement never lowers the bar.
    hub.retire_tokens("u1", 0);
    assert!(!hub.hold_token("u1", 0, &late));
}

#[tokio::test]
async fn a_rotated_apikey_cuts_what_proved_itself_with_it_and_spares_device_keys() {
    let (hub, _counts) = hub();
    let (subscriber, _s) = hub.peer(8);
    let (watcher, _w) = hub.peer(8);
    let (owner_keyed, _o) = hub.peer(8);
    let (device_keyed, _d) = hub.peer(8);
    let (elsewhere, _e) = hub.peer(8);
    hub.watch_user("old", &subscriber);
    hub.watch("d1", &watcher);
    hub.bind_device("d1", &owner_keyed, KeyKind::Owner);
    hub.bind_device("d2", &device_keyed, KeyKind::Device);
    hub.watch("d9", &elsewhere);

    hub.apikey_rotated("old", &["d1".to_owned(), "d2".to_owned()]);

    assert!(was_killed(&subscriber) && was_killed(&watcher) && was_killed(&owner_keyed));
    assert!(!was_killed(&device_keyed) && !was_killed(&elsewhere));
}

#[tokio::test]
async fn a_new_device_key_cuts_only_a_socket_bound_by_the_old_one() {
    let (hub, _counts) = hub();
    let (owner_keyed, _o) = hub.peer(8);
    let (device_keyed, _d) = hub.peer(8);
    hub.bind_device("d1", &owner_keyed, KeyKind::Owner);
    hub.bind_device("d2", &device_keyed, KeyKind::Device);

    hub.device_key_changed("d1");
    hub.device_key_changed("d2");

    assert!(!was_killed(&owner_keyed));
    assert!(was_killed(&device_keyed));
}
