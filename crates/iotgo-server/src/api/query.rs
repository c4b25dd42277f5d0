//! Parsing of the admin lists' query parameters (paging, time ranges, filters).

use crate::error::ApiError;
use crate::store::{DeviceFilter, ListFilter, Millis, TimeRange, UserFilter};
use chrono::{DateTime, NaiveDate};
use std::collections::HashMap;

/// Largest page an admin list answers, whatever `limit` asks.
pub(crate) const MAX_PAGE: i64 = 1000;

/// Reads the admin lists' query parameters.
pub(crate) struct ListQuery<'a> {
    q: &'a HashMap<String, String>,
    default_limit: i64,
}

/// A query parameter that does not parse: 400 naming it.
pub(super) fn bad(name: &str) -> ApiError {
    ApiError::BadRequest(format!("Invalid query parameter `{name}`"))
}

/// Parses a time: RFC 3339, a date (`2024-05-01`, midnight UTC) or epoch milliseconds.
pub(super) fn parse_time(s: &str) -> Option<Millis> {
    parse_bound(s, false)
}

/// Like [`parse_time`]; a bare date as an upper bound (`end`) means the end of that day,
/// so `createdAtTo=2024-05-01` includes the whole of May 1st.
fn parse_bound(s: &str, end: bool) -> Option<Millis> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(Millis(ms));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Millis(t.timestamp_millis()));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let time = if end {
        date.and_hms_milli_opt(23, 59, 59, 999)?
    } else {
        date.and_hms_opt(0, 0, 0)?
    };
    Some(Millis(time.and_utc().timestamp_millis()))
}

impl<'a> ListQuery<'a> {
    /// Wraps the raw parameters; `default_limit` is the configured page size.
    pub(crate) fn new(q: &'a HashMap<String, String>, default_limit: u32) -> Self {
        ListQuery {
            q,
            default_limit: i64::from(default_limit).clamp(1, MAX_PAGE),
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.q
            .get(name)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.text(name)
            .map(|s| s.parse::<i64>().map_err(|_| bad(name)))
            .transpose()
    }

    fn time(&self, name: &str, end: bool) -> Result<Option<Millis>, ApiError> {
        self.text(name)
            .map(|s| parse_bound(&s, end).ok_or_else(|| bad(name)))
            .transpose()
    }

    fn range(&self, prefix: &str) -> Result<TimeRange, ApiError> {
        Ok(TimeRange {
            from: self.time(&format!("{prefix}From"), false)?,
            to: self.time(&format!("{prefix}To"), true)?,
        })
    }

    /// `limit` (1…[`MAX_PAGE`], default the configured page size) and `skip` (≥ 0).
    pub(crate) fn page(&self, max: i64) -> Result<ListFilter, ApiError> {
        let limit = match self.number("limit")? {
            None | Some(0) => self.default_limit.min(max),
            Some(n) if n > 0 => n.min(max),
            Some(_) => return Err(bad("limit")),
        };
        let skip = self.number("skip")?.unwrap_or(0);
        if skip < 0 {
            return Err(bad("skip"));
        }
        Ok(ListFilter { limit, skip })
    }

    /// The user list's filters.
    pub(crate) fn users(&self) -> Result<UserFilter, ApiError> {
        Ok(UserFilter {
            page: self.page(MAX_PAGE)?,
            created: self.range("createdAt")?,
            email: self.text("email"),
        })
    }

    /// The device and license lists' filters; `max` caps the page.
    pub(crate) fn devices(&self, max: i64) -> Result<DeviceFilter, ApiError> {
        Ok(DeviceFilter {
            page: self.page(max)?,
            created: self.range("createdAt")?,
            last_modified: self.range("lastModifiedAt")?,
            name: self.text("name"),
            kind: self.text("type"),
            deviceid: self.text("deviceid"),
            apikey: self.text("apikey"),
            batch: self.text("batch"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_three_forms() {
        assert_eq!(parse_time("1000"), Some(Millis(1000)));
        assert_eq!(parse_time("1970-01-01T00:00:01.500Z"), Some(Millis(1500)));
        assert_eq!(parse_time("1970-01-02"), Some(Millis(86_400_000)));
        assert_eq!(parse_bound("1970-01-01", true), Some(Millis(86_399_999)));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn paging_defaults_and_caps() {
        let q: HashMap<String, String> = [("limit".into(), "5000".into())].into();
        let page = ListQuery::new(&q, 50).page(MAX_PAGE).unwrap();
        assert_eq!((page.limit, page.skip), (MAX_PAGE, 0));
        let q: HashMap<String, String> = [("skip".into(), "-1".into())].into();
        assert!(ListQuery::new(&q, 50).page(MAX_PAGE).is_err());
        let q = HashMap::new();
        assert_eq!(ListQuery::new(&q, 50).page(MAX_PAGE).unwrap().limit, 50);
    }
}
