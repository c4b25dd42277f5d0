//! Counting and timing: the run's clock, latency histograms and shared counters.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The run's clock: send times travel in payloads as nanoseconds since its start.
#[derive(Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    /// A clock starting now.
    pub(crate) fn start() -> Self {
        Clock(Instant::now())
    }

    /// Nanoseconds since the clock started.
    pub(crate) fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Latencies in nanoseconds, 1 µs to 60 s, 3 significant digits.
pub(crate) struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid bounds"))
    }
}

impl Latency {
    /// Records one latency (clamped into the bounds).
    pub(crate) fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1_000));
    }

    /// Adds another histogram's samples.
    pub(crate) fn merge(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    /// `p50 / p99 / max` in milliseconds.
    pub(crate) fn summary(&self) -> String {
        if self.0.is_empty() {
            return "–".into();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        format!(
            "{:.2} / {:.2} / {:.1}",
            ms(self.0.value_at_quantile(0.5)),
            ms(self.0.value_at_quantile(0.99)),
            ms(self.0.max())
        )
    }

    /// The 99th percentile in milliseconds.
    pub(crate) fn p99_ms(&self) -> f64 {
        self.0.value_at_quantile(0.99) as f64 / 1e6
    }
}

/// A counter shared by the load tasks.
#[derive(Default)]
pub(crate) struct Count(AtomicU64);

impl Count {
    /// Adds `n`.
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of a fan-out or request run.
#[derive(Default)]
pub(crate) struct Counters {
    /// Requests sent.
    pub sent: Count,
    /// Successful answers received before the deadline.
    pub acked_window: Count,
    /// Successful answers received in all (the deadline plus the drain).
    pub acked_total: Count,
    /// Error answers, failed requests and dropped connections.
    pub errors: Count,
    /// Pushes received by apps before the deadline.
    pub delivered_window: Count,
    /// Pushes received by apps in all.
    pub delivered_total: Count,
}
