//! Entry points of the fuzz targets in `fuzz/` (`cargo fuzz`, docs/security.md
//! "Fuzzing"): not an API, hidden from the docs and subject to change.
//!
//! Each function takes the bytes a client could send, runs them through the same parsing
//! as the server, and panics only where the server's promises about the result break (a
//! panic is what the fuzzer reports). Bad input is not a failure: it must just be refused.

use crate::api::{ListQuery, MAX_PAGE, MAX_TIME_MS, parse_ask};
use crate::store::{DeviceFilter, UserFilter, Where};
use std::collections::HashMap;

/// The query string as axum's `Query` extractor reads it (the handlers' `QueryMap`);
/// `None` where the server answers 400 before any handler runs.
fn query(bytes: &[u8]) -> Option<HashMap<String, String>> {
    serde_urlencoded::from_bytes(bytes).ok()
}

/// Device types the history target picks from: one of each kind of rules, and an unknown.
const KINDS: [&str; 5] = ["01", "02", "03", "04", "xx"];

/// `GET /api/user/device/{id}/history` (and `.csv`): the query of `from`, `to`, `fields`
/// and `bucket`. The first byte of `data` picks the point cap (`history_max_points`,
/// 1…4081), the second the device type, the rest is the query string.
///
/// An accepted query names a range inside the epoch … year 9999 with `from < to`, at
/// most 16 well-formed fields, and, with buckets, at most `cap` buckets of whole seconds.
pub fn history_query(data: &[u8]) {
    let [a, b, bytes @ ..] = data else { return };
    let cap = i64::from(*a) * 16 + 1;
    let kind = KINDS[usize::from(*b) % KINDS.len()];
    let Some(q) = query(bytes) else { return };
    let Ok(ask) = parse_ask(&q, kind, cap) else {
        return;
    };
    assert!(0 <= ask.from.0 && ask.from < ask.to && ask.to.0 <= MAX_TIME_MS + 1);
    assert!(ask.fields.len() <= 16);
    assert!(ask.fields.iter().all(|f| !f.is_empty() && f.len() <= 64));
    if let Some(width) = ask.bucket_ms {
        assert!(width >= 1000 && width % 1000 == 0);
        let span = ask.to.0 - ask.from.0;
        let buckets = span / width + i64::from(span % width != 0);
        assert!(buckets <= cap, "{span} / {width} > {cap}");
    }
}

/// `GET /api/admin/users`, `/devices`, `/factorydevices` (and the licenses CSV): paging
/// and filters, and the SQL made of them. The first byte of `data` picks the configured
/// page size (`page_limit`, 0…2040), the rest is the query string.
///
/// An accepted query pages within 1…[`MAX_PAGE`] rows and a skip ≥ 0; its SQL numbers
/// its placeholders `$1…$n` in order, one per value, and holds no text the client sent.
pub fn admin_filters(data: &[u8]) {
    let Some((first, bytes)) = data.split_first() else {
        return;
    };
    let Some(q) = query(bytes) else { return };
    let list = ListQuery::new(&q, u32::from(*first) * 8);
    if let Ok(users) = list.users() {
        check_page(users.page.limit, users.page.skip);
        check_sql(&Where::users(&users), &user_texts(&users));
    }
    if let Ok(devices) = list.devices(MAX_PAGE) {
        check_page(devices.page.limit, devices.page.skip);
        let texts = device_texts(&devices);
        check_sql(&Where::devices(&devices), &texts);
        check_sql(&Where::licenses(&devices), &texts);
    }
}

fn check_page(limit: i64, skip: i64) {
    assert!((1..=MAX_PAGE).contains(&limit), "limit {limit}");
    assert!(skip >= 0, "skip {skip}");
}

fn user_texts(f: &UserFilter) -> Vec<&str> {
    f.email.iter().map(String::as_str).collect()
}

fn device_texts(f: &DeviceFilter) -> Vec<&str> {
    [&f.name, &f.kind, &f.deviceid, &f.apikey, &f.batch]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

/// The placeholders of `w`'s SQL are `$1…$n` in order, with the paging's two last, and
/// none of the client's `texts` is in it (a text made only of SQL words could be, so
/// only texts with a character the generated SQL never has are checked).
fn check_sql(w: &Where, texts: &[&str]) {
    let (sql, values) = w.rendered();
    let numbers: Vec<usize> = sql
        .split('$')
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().expect("a $ not followed by a number")
        })
        .collect();
    let expected: Vec<usize> = (1..=values.len() + 2).collect();
    assert_eq!(numbers, expected, "{sql}");
    let generated = |c: char| c.is_ascii_alphanumeric() || " _$<=>()'\\,".contains(c);
    for text in texts {
        if text.chars().any(|c| !generated(c)) {
            assert!(!sql.contains(text), "{text:?} spliced into {sql}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every input of a kept corpus (`fuzz/corpus/<target>/`), with its target's framing.
    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let files = std::fs::read_dir(&dir).expect("the kept corpus");
        let inputs: Vec<Vec<u8>> = files
            .map(|f| std::fs::read(f.expect("a corpus entry").path()).expect("a corpus file"))
            .collect();
        assert!(!inputs.is_empty(), "{}", dir.display());
        inputs
    }

    /// The kept corpora pass in the ordinary test suite too.
    #[test]
    fn the_kept_corpora_pass() {
        corpus("history_query")
            .iter()
            .for_each(|i| history_query(i));
        corpus("admin_filters")
            .iter()
            .for_each(|i| admin_filters(i));
    }

    #[test]
    fn the_checks_accept_good_queries() {
        history_query(b"\x10\x02from=2024-01-01&to=2024-01-02&bucket=auto");
        admin_filters(b"\x06limit=10&email=a%25b&createdAtFrom=2024-05-01");
    }
}
