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

/// `GET /api/user/device/{id}/history` (and `.csv`): the query of `from`, `to`, `fields`
/// and `bucket`, for a device of type `kind`, with a cap of `cap` points.
///
/// An accepted query names a range inside the epoch … year 9999 with `from < to`, at
/// most 16 well-formed fields, and, with buckets, at most `cap` buckets of whole seconds.
pub fn history_query(bytes: &[u8], kind: &str, cap: u16) {
    let Some(q) = query(bytes) else { return };
    let cap = i64::from(cap.max(1));
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
/// and filters, and the SQL made of them.
///
/// An accepted query pages within 1…[`MAX_PAGE`] rows and a skip ≥ 0; its SQL numbers
/// its placeholders `$1…$n` in order, one per value, and holds no text the client sent.
pub fn admin_filters(bytes: &[u8], page_limit: u32) {
    let Some(q) = query(bytes) else { return };
    let list = ListQuery::new(&q, page_limit);
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
