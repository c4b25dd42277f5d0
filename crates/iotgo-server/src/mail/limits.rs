//! How often mails with a link may go to one account and to one address.
//!
//! Each mail with a link (verification, password reset, e-mail change) is counted under
//! two keys, its account and its recipient's address; it goes out only if both keys are
//! under both limits, [`MIN_INTERVAL`] since the last mail and [`PER_HOUR`] in the last
//! hour. So nobody can use the server to flood a mailbox, and one account cannot send
//! to many addresses quickly either. Notices (the old address told of a change) follow a
//! counted mail and are not counted again. The counts live in memory: a restart forgets
//! them, which at worst allows one more hour's worth.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Least time between two mails with a link to one account or address.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Most mails with a link to one account or address within an hour.
pub const PER_HOUR: usize = 5;
const HOUR: Duration = Duration::from_secs(3600);
/// Keys held before a sweep drops those with no mail in the last hour.
const SWEEP_AT: usize = 10_000;

/// The times of the mails sent in the last hour, per key.
#[derive(Default)]
pub struct MailLimits {
    sent: HashMap<String, Vec<Instant>>,
}

impl MailLimits {
    /// Whether a mail counted under every key of `keys` may go out at `now`; if so, it
    /// is counted.
    pub fn allow(&mut self, keys: &[&str], now: Instant) -> bool {
        if self.sent.len() >= SWEEP_AT {
            self.sent.retain(|_, times| {
                times.retain(|t| now.duration_since(*t) < HOUR);
                !times.is_empty()
            });
        }
        let free = keys.iter().all(|key| {
            let Some(times) = self.sent.get_mut(*key) else {
                return true;
            };
            times.retain(|t| now.duration_since(*t) < HOUR);
            times.len() < PER_HOUR
                && times
                    .last()
                    .is_none_or(|t| now.duration_since(*t) >= MIN_INTERVAL)
        });
        if free {
            for key in keys {
                self.sent.entry((*key).to_owned()).or_default().push(now);
            }
        }
        free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_a_minute_and_five_an_hour_per_key() {
        let mut limits = MailLimits::default();
        let t0 = Instant::now();
        let at = |minutes: u64| t0 + Duration::from_secs(minutes * 60);
        assert!(limits.allow(&["acct:a", "addr:a@x.y"], at(0)));
        // Within the minute: neither key may send, and a refusal is not counted.
        assert!(!limits.allow(&["acct:a", "addr:a@x.y"], t0 + Duration::from_secs(59)));
        assert!(!limits.allow(&["addr:a@x.y"], t0 + Duration::from_secs(30)));
        assert!(limits.allow(&["acct:b", "addr:b@x.y"], t0 + Duration::from_secs(30)));
        for minute in 1..5 {
            assert!(
                limits.allow(&["acct:a", "addr:a@x.y"], at(minute)),
                "{minute}"
            );
        }
        // Five in the hour: the sixth waits until the first is an hour old.
        assert!(!limits.allow(&["acct:a", "addr:a@x.y"], at(30)));
        assert!(!limits.allow(&["acct:a", "addr:other@x.y"], at(59)));
        assert!(limits.allow(&["acct:a", "addr:a@x.y"], at(60)));
    }
}
