//! The rules of the tables, with made-up instants; the throttles with tokio's paused time.

use super::table::{Backoff, Bucket, Entry, Failures, Rate, Table};
use super::*;
use crate::metrics::Access;

const S: Duration = Duration::from_secs(1);

fn rules() -> Backoff {
    Backoff {
        free: 5,
        start: 2 * S,
        max: 15 * 60 * S,
        forgive: 15 * 60 * S,
    }
}

#[test]
fn failures_block_from_the_free_count_on_doubling_up_to_the_max() {
    // (Nothing forgiven meanwhile.)
    let r = Backoff {
        forgive: 24 * 3600 * S,
        ..rules()
    };
    let t0 = Instant::now();
    let mut f = Failures::new(t0);
    for _ in 0..4 {
        f.fail(&r, t0);
        assert_eq!(f.blocked(t0), None, "the first failures are free");
    }
    let mut blocks = Vec::new();
    let mut now = t0;
    for _ in 0..12 {
        f.fail(&r, now);
        let block = f.blocked(now).expect("blocked");
        blocks.push(block.as_secs());
        now += block;
        assert_eq!(f.blocked(now), None, "free again once the block passed");
    }
    assert_eq!(blocks, [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
}

#[test]
fn failures_are_forgiven_one_per_interval_and_refunds_lift_the_block() {
    let (r, t0) = (rules(), Instant::now());
    let mut f = Failures::new(t0);
    for _ in 0..5 {
        f.fail(&r, t0);
    }
    assert!(f.blocked(t0).is_some());
    assert_eq!(f.count(&r, t0 + r.forgive), 4);
    assert_eq!(f.expires(), t0 + 5 * r.forgive);
    assert_eq!(f.count(&r, t0 + 5 * r.forgive), 0);

    let mut f = Failures::new(t0);
    for _ in 0..5 {
        f.fail(&r, t0);
    }
    f.refund(&r, t0);
    assert_eq!(f.blocked(t0), None, "four failures do not block");
}

#[test]
fn a_bucket_allows_its_burst_then_its_rate() {
    let rate = Rate::new(1, S, 3);
    let t0 = Instant::now();
    let mut b = Bucket::new(t0);
    for _ in 0..3 {
        assert_eq!(b.take(&rate, t0), Ok(()));
    }
    assert_eq!(b.take(&rate, t0), Err(S));
    assert_eq!(b.take(&rate, t0 + S / 2), Err(S / 2));
    assert_eq!(b.take(&rate, t0 + S), Ok(()));
    assert_eq!(b.take(&rate, t0 + S), Err(S));
    assert_eq!(b.expires(), t0 + 4 * S);
}

#[test]
fn a_full_table_forgets_expired_keys_then_shares_one_entry_for_new_ones() {
    let rate = Rate::new(1, S, 1);
    let t0 = Instant::now();
    let table: Table<String, Bucket> = Table::new(2, t0);
    let take = |key: &str, now| table.with(key, now, |b| b.take(&rate, now));
    assert_eq!(take("a", t0), Ok(()));
    assert_eq!(take("b", t0), Ok(()));
    // Full: "c" and "d" share the overflow entry.
    assert_eq!(take("c", t0), Ok(()));
    assert_eq!(take("d", t0), Err(S));
    assert_eq!(table.len(), 2);
    assert!(
        table.peek("e", t0, |e| e.is_some()),
        "a new key reads the overflow"
    );
    // Once "a" and "b" expired, a new key gets its own entry again.
    let later = t0 + 2 * S;
    assert_eq!(take("e", later), Ok(()));
    assert_eq!(table.len(), 1);
    table.purge(later + 2 * S);
    assert_eq!(table.len(), 0);
}

fn config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config {
        rate_limits: true,
        ..Config::default()
    };
    tweak(&mut c);
    c
}

#[tokio::test(start_paused = true)]
async fn a_user_who_mistypes_twice_is_not_locked_out_and_a_success_forgets() {
    let metrics = Metrics::start(Access::Off).unwrap();
    let t = Throttles::new(&config(|_| {}), metrics);
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    for _ in 0..4 {
        let _failed = t.login(Realm::User, ip, "a@example.com").unwrap();
    }
    t.login(Realm::User, ip, "a@example.com")
        .unwrap()
        .succeeded();
    for _ in 0..4 {
        let _failed = t.login(Realm::User, ip, "a@example.com").unwrap();
    }
    // The fifth failure blocks for 2 s; users and admins are separate accounts.
    let _failed = t.login(Realm::User, ip, "a@example.com").unwrap();
    let wait = t.login(Realm::User, ip, "a@example.com").err().unwrap();
    assert_eq!(wait, 2 * S);
    assert!(t.login(Realm::Admin, ip, "a@example.com").is_ok());
    tokio::time::advance(2 * S).await;
    assert!(t.login(Realm::User, ip, "a@example.com").is_ok());
    assert_eq!(t.login(Realm::User, ip, "a@example.com").err(), Some(4 * S));
}

#[tokio::test(start_paused = true)]
async fn an_address_is_blocked_over_many_accounts_and_ipv6_by_its_64() {
    let metrics = Metrics::start(Access::Off).unwrap();
    let t = Throttles::new(&config(|c| c.login_failures_free_per_ip = 3), metrics);
    for i in 0..3 {
        let ip: IpAddr = format!("2001:db8::{i}").parse().unwrap();
        let _failed = t
            .login(Realm::User, ip, &format!("{i}@example.com"))
            .unwrap();
    }
    let other: IpAddr = "2001:db8::ffff".parse().unwrap();
    assert_eq!(
        t.login(Realm::Admin, other, "x@example.com").err(),
        Some(2 * S)
    );
    assert!(
        t.login(Realm::User, "2001:db9::1".parse().unwrap(), "x@example.com")
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn off_remembers_nothing() {
    let metrics = Metrics::start(Access::Off).unwrap();
    let off = config(|c| {
        c.rate_limits = false;
        c.login_failures_free = 1;
        c.registrations_burst = 1;
        c.device_updates_burst = 1;
    });
    let (t, d) = (
        Throttles::new(&off, metrics.clone()),
        DeviceThrottle::new(&off, metrics),
    );
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    for _ in 0..10 {
        let _failed = t.login(Realm::User, ip, "a@example.com").unwrap();
        assert!(t.register(ip).is_ok());
        d.key_refused(ip);
        assert!(d.admits(ip));
        assert!(d.update("1000000001"));
    }
}

#[tokio::test(start_paused = true)]
async fn devices_are_blocked_after_failed_keys_and_updates_are_rated() {
    let metrics = Metrics::start(Access::Off).unwrap();
    let c = config(|c| {
        c.device_key_failures_free = 2;
        c.device_updates_per_second = 10;
        c.device_updates_burst = 2;
    });
    let d = DeviceThrottle::new(&c, metrics);
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    d.key_refused(ip);
    assert!(d.admits(ip));
    d.key_refused(ip);
    assert!(!d.admits(ip));
    tokio::time::advance(S).await;
    assert!(d.admits(ip));
    assert!(d.update("1000000001") && d.update("1000000001"));
    assert!(!d.update("1000000001"));
    assert!(d.update("1000000002"));
    tokio::time::advance(S / 10).await;
    assert!(d.update("1000000001"));
}

#[test]
fn account_keys_are_at_most_254_bytes() {
    assert_eq!(account_key("a@example.com"), "a@example.com");
    let long = format!("{}@example.com", "é".repeat(200));
    let key = account_key(&long);
    assert!(key.len() <= 254 && key.len() >= 253, "{}", key.len());
    assert!(long.starts_with(key));
}

#[tokio::test(start_paused = true)]
async fn a_guess_at_a_blocked_account_is_not_counted_against_the_address() {
    let metrics = Metrics::start(Access::Off).unwrap();
    let t = Throttles::new(&config(|c| c.login_failures_free_per_ip = 7), metrics);
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    for _ in 0..5 {
        let _failed = t.login(Realm::User, ip, "a@example.com").unwrap();
    }
    for _ in 0..10 {
        assert!(t.login(Realm::User, ip, "a@example.com").is_err());
    }
    // The address has counted 5 of its 7: one more guess is free, the next blocks it.
    let _failed = t.login(Realm::User, ip, "b@example.com").unwrap();
    let _failed = t.login(Realm::User, ip, "c@example.com").unwrap();
    assert_eq!(t.login(Realm::User, ip, "d@example.com").err(), Some(2 * S));
}

#[tokio::test(start_paused = true)]
async fn idle_keys_are_swept_every_minute() {
    let metrics = Metrics::start(Access::Off).unwrap();
    let t = Throttles::new(&config(|_| {}), metrics);
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    t.register(ip).unwrap();
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        let _failed = t.login(Realm::User, ip, email).unwrap();
    }
    assert_eq!(
        (t.registrations.len(), t.users.len(), t.addresses.len()),
        (1, 3, 1)
    );

    // A sign-up is forgotten after 6 min (10 an hour), three failed logins of an address
    // after 3 min, one of an account after `login_backoff_max` (15 min).
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    assert_eq!(
        (t.registrations.len(), t.users.len(), t.addresses.len()),
        (0, 3, 0)
    );
    tokio::time::sleep(Duration::from_secs(6 * 60)).await;
    assert_eq!(t.users.len(), 0);
}
