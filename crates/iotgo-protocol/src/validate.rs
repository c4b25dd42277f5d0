//! Params validation: the original's per-type rules and size limits.
//!
//! Switches (`01`) need `switch` "on"/"off", lights (`02`) `light` "on"/"off" — or, for
//! both, a valid `timers` list instead; temperature and humidity sensors (`03`) need
//! numeric `temperature` and `humidity`. Every other type takes any object.

use crate::DeviceType;
use serde_json::{Map, Value};

/// Bounds on the size of params, so that no request can make the server work too hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of objects and arrays (the params object itself is depth 1).
    pub max_depth: usize,
    /// Most object keys and array items, counted over the whole tree.
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_keys: 256,
        }
    }
}

/// Whether `v` stays within `limits`.
pub fn within(v: &Value, limits: &Limits) -> bool {
    let mut keys = 0usize;
    fits(v, 1, limits, &mut keys)
}

fn fits(v: &Value, depth: usize, limits: &Limits, keys: &mut usize) -> bool {
    let children: Box<dyn Iterator<Item = &Value>> = match v {
        Value::Object(m) => Box::new(m.values()),
        Value::Array(a) => Box::new(a.iter()),
        _ => return true,
    };
    if depth > limits.max_depth {
        return false;
    }
    for c in children {
        *keys += 1;
        if *keys > limits.max_keys || !fits(c, depth + 1, limits, keys) {
            return false;
        }
    }
    true
}

/// Whether `params` of an update suit a device of type `ty`.
pub fn params(ty: DeviceType, params: &Map<String, Value>) -> bool {
    match ty.as_str() {
        "01" => on_off(params, "switch"),
        "02" => on_off(params, "light"),
        "03" => number(params.get("temperature")) && number(params.get("humidity")),
        _ => true,
    }
}

/// `key` is "on" or "off" — unless the request carries `timers`, then those are checked.
fn on_off(params: &Map<String, Value>, key: &str) -> bool {
    match params.get("timers") {
        // The original tests `if (params.timers)`: absent, null, false, 0 and "" fall through.
        Some(t) if !falsy(t) => timers(t),
        _ => matches!(params.get(key), Some(Value::String(s)) if s == "on" || s == "off"),
    }
}

fn falsy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A number, or text that reads as one (the original used `!isNaN(Number(x))`).
fn number(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Number(_)) => true,
        Some(Value::String(s)) => s.trim().is_empty() || s.trim().parse::<f64>().is_ok(),
        _ => false,
    }
}

/// `[{"enabled": bool, "type": "once"|"repeat", "at": "<time>", "do": {…}}, …]`.
fn timers(v: &Value) -> bool {
    let Value::Array(list) = v else { return false };
    list.iter().all(|t| {
        let Value::Object(t) = t else { return false };
        t.get("enabled").is_some_and(Value::is_boolean)
            && matches!(
                t.get("type").and_then(Value::as_str),
                Some("once" | "repeat")
            )
            && t.get("at")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
            && t.get("do").is_some_and(|d| d.is_object() || d.is_array())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn t(s: &str) -> DeviceType {
        DeviceType::parse(s).unwrap()
    }

    #[test]
    fn per_type_rules_follow_the_original() {
        assert!(params(t("01"), &p(json!({"switch": "on"}))));
        assert!(!params(t("01"), &p(json!({"switch": true}))));
        assert!(!params(t("01"), &p(json!({"light": "on"}))));
        assert!(params(t("02"), &p(json!({"light": "off"}))));
        assert!(params(
            t("03"),
            &p(json!({"temperature": 21.5, "humidity": "40"}))
        ));
        assert!(!params(
            t("03"),
            &p(json!({"temperature": "warm", "humidity": 40}))
        ));
        assert!(!params(t("03"), &p(json!({"temperature": 20}))));
        assert!(params(t("00"), &p(json!({"anything": [1, {"x": null}]}))));
        assert!(params(t("7a"), &p(json!({}))));
    }

    #[test]
    fn timers_are_checked_instead_of_the_state() {
        let ok = json!({"timers": [{"enabled": true, "type": "once",
            "at": "2015-01-01T00:00:00.000Z", "do": {"switch": "on"}}]});
        assert!(params(t("01"), &p(ok)));
        assert!(params(t("02"), &p(json!({"timers": []}))));
        let bad = json!({"timers": [{"enabled": "yes", "type": "once", "at": "x", "do": {}}]});
        assert!(!params(t("01"), &p(bad)));
        assert!(!params(t("01"), &p(json!({"timers": "soon"}))));
    }

    #[test]
    fn limits_bound_depth_and_keys() {
        let l = Limits {
            max_depth: 3,
            max_keys: 4,
        };
        assert!(within(&json!({"a": {"b": {"c": 1}}}), &l));
        assert!(!within(&json!({"a": {"b": {"c": {"d": 1}}}}), &l));
        assert!(within(&json!({"a": 1, "b": 2, "c": 3, "d": 4}), &l));
        assert!(!within(&json!({"a": [1, 2, 3, 4]}), &l));
    }
}
