//! A map of keyed throttle state with a cap on its keys ([`Table`]), and the two kinds of
//! state kept in it: failures with an exponential back-off ([`Failures`]) and a rate
//! ([`Bucket`], GCRA).
//!
//! Every operation takes the time (`now`) from its caller: the tables never read a
//! clock, so their rules are tested with made-up instants.

use parking_lot::Mutex;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;
use tokio::time::Instant;

/// State kept per key.
pub(super) trait Entry {
    /// The state of a key not seen before.
    fn new(now: Instant) -> Self;
    /// When the state says nothing any more (a new one would say the same): the key can
    /// be forgotten from then on.
    fn expires(&self) -> Instant;
}

/// Keyed state with at most `cap` keys. When it is full, keys whose state expired are
/// forgotten (at most once a second: a scan of the map); if it is still full, every new
/// key shares one entry, `overflow` — conservative: an attacker who fills the table
/// throttles the newcomers together, never frees them.
pub(super) struct Table<K, E> {
    inner: Mutex<Inner<K, E>>,
    cap: usize,
}

struct Inner<K, E> {
    map: HashMap<K, E>,
    overflow: E,
    last_purge: Instant,
}

/// The shortest time between two purges made because the table was full.
const PURGE_EVERY: Duration = Duration::from_secs(1);

impl<K: Hash + Eq, E: Entry> Table<K, E> {
    /// An empty table for at most `cap` keys (at least one).
    pub(super) fn new(cap: usize, now: Instant) -> Self {
        Table {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                overflow: E::new(now),
                last_purge: now,
            }),
            cap: cap.max(1),
        }
    }

    /// Reads a key's state: `None` when the key is not known (and the table has room).
    pub(super) fn peek<Q, R>(&self, key: &Q, now: Instant, f: impl FnOnce(Option<&E>) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut t = self.inner.lock();
        if let Some(e) = t.map.get(key) {
            return f(Some(e));
        }
        if t.map.len() >= self.cap {
            t.purge_if_due(now);
        }
        if t.map.len() >= self.cap {
            return f(Some(&t.overflow));
        }
        f(None)
    }

    /// Changes a key's state, making it when the key is new.
    pub(super) fn with<Q, R>(&self, key: &Q, now: Instant, f: impl FnOnce(&mut E) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut t = self.inner.lock();
        if let Some(e) = t.map.get_mut(key) {
            return f(e);
        }
        if t.map.len() >= self.cap {
            t.purge_if_due(now);
        }
        if t.map.len() >= self.cap {
            return f(&mut t.overflow);
        }
        f(t.map.entry(key.to_owned()).or_insert_with(|| E::new(now)))
    }

    /// Forgets a key.
    pub(super) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.lock().map.remove(key);
    }

    /// Forgets every key whose state expired, and gives back the memory of a map that
    /// shrank to a quarter of its capacity.
    pub(super) fn purge(&self, now: Instant) {
        let mut t = self.inner.lock();
        t.purge(now);
        if t.map.len() < t.map.capacity() / 4 {
            t.map.shrink_to_fit();
        }
    }

    /// Keys held now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.lock().map.len()
    }
}

impl<K, E: Entry> Inner<K, E> {
    fn purge(&mut self, now: Instant) {
        self.map.retain(|_, e| e.expires() > now);
        self.last_purge = now;
    }

    fn purge_if_due(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_purge) >= PURGE_EVERY {
            self.purge(now);
        }
    }
}

/// The rules of a [`Failures`] count: the first `free` failures cost nothing; from the
/// `free`-th on, each blocks the key for `start`, doubling with each further failure up to
/// `max`; one failure is forgiven every `forgive`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    /// Failures that never block.
    pub free: u32,
    /// The first block.
    pub start: Duration,
    /// The longest block.
    pub max: Duration,
    /// How long it takes to forgive one failure.
    pub forgive: Duration,
}

/// A key's failures and how long it is blocked.
#[derive(Debug)]
pub(super) struct Failures {
    count: u32,
    /// The time from which the next failure is forgiven.
    since: Instant,
    blocked_until: Instant,
    /// When the whole count is forgiven and no block is left.
    clear_at: Instant,
}

impl Entry for Failures {
    fn new(now: Instant) -> Self {
        Failures {
            count: 0,
            since: now,
            blocked_until: now,
            clear_at: now,
        }
    }

    fn expires(&self) -> Instant {
        self.clear_at
    }
}

impl Failures {
    /// How long the key stays blocked, if it is.
    pub(super) fn blocked(&self, now: Instant) -> Option<Duration> {
        (self.blocked_until > now).then(|| self.blocked_until - now)
    }

    /// Forgives the failures whose time passed.
    fn leak(&mut self, rules: &Backoff, now: Instant) {
        if self.count == 0 {
            self.since = now;
            return;
        }
        let forgive = rules.forgive.max(Duration::from_millis(1));
        let elapsed = now.saturating_duration_since(self.since);
        let forgiven = (elapsed.as_nanos() / forgive.as_nanos()).min(u128::from(u32::MAX)) as u32;
        self.count = self.count.saturating_sub(forgiven);
        self.since = if self.count == 0 {
            now
        } else {
            self.since + forgive * forgiven
        };
    }

    /// Counts a failure (or an attempt counted before it is known to fail), and blocks the
    /// key when the free failures are used up.
    pub(super) fn fail(&mut self, rules: &Backoff, now: Instant) {
        self.leak(rules, now);
        self.count = self.count.saturating_add(1);
        if self.count >= rules.free {
            let doublings = (self.count - rules.free).min(31);
            let block = rules.start.saturating_mul(1 << doublings).min(rules.max);
            self.blocked_until = self.blocked_until.max(now + block);
        }
        self.cleared(rules);
    }

    fn cleared(&mut self, rules: &Backoff) {
        let forgiven = self.since + rules.forgive.saturating_mul(self.count);
        self.clear_at = self.blocked_until.max(forgiven);
    }

    /// Counts an attempt as a failure until it proves right, unless the key is blocked:
    /// then `Err(wait)` and nothing is counted. (One call under the table's lock: two
    /// concurrent attempts cannot both pass the last free one.)
    pub(super) fn attempt(&mut self, rules: &Backoff, now: Instant) -> Result<(), Duration> {
        if let Some(wait) = self.blocked(now) {
            return Err(wait);
        }
        self.fail(rules, now);
        Ok(())
    }

    /// Takes back one counted attempt that turned out not to be a failure; a count back
    /// under the free failures lifts the block.
    pub(super) fn refund(&mut self, rules: &Backoff, now: Instant) {
        self.leak(rules, now);
        self.count = self.count.saturating_sub(1);
        if self.count < rules.free {
            self.blocked_until = self.blocked_until.min(now);
        }
        self.cleared(rules);
    }

    /// Failures counted now.
    #[cfg(test)]
    pub(super) fn count(&mut self, rules: &Backoff, now: Instant) -> u32 {
        self.leak(rules, now);
        self.count
    }
}

/// A rate: one event every `interval` sustained, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate {
    /// Time between two events at the sustained rate.
    pub interval: Duration,
    /// Events allowed at once after a quiet time.
    pub burst: u32,
}

impl Rate {
    /// `per` events per `period`, `burst` at once (both at least one).
    pub(super) fn new(per: u32, period: Duration, burst: u32) -> Rate {
        Rate {
            interval: period / per.max(1),
            burst: burst.max(1),
        }
    }
}

/// A key's rate state (GCRA): the theoretical arrival time of the next event.
#[derive(Debug)]
pub(super) struct Bucket {
    tat: Instant,
}

impl Entry for Bucket {
    fn new(now: Instant) -> Self {
        Bucket { tat: now }
    }

    fn expires(&self) -> Instant {
        self.tat
    }
}

impl Bucket {
    /// Takes one event: `Err(wait)` when the rate is exceeded (the event is not counted).
    pub(super) fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        let next = self.tat.max(now) + rate.interval;
        let allowed = now + rate.interval * rate.burst;
        if next > allowed {
            return Err(next - allowed);
        }
        self.tat = next;
        Ok(())
    }
}
