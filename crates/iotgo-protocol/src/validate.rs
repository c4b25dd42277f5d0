//! Params validation: per-type rules from the registry ([`crate::types`]) and size limits.
//!
//! Switches (`01`) need `switch` "on"/"off", lights (`02`) `light` "on"/"off" — or, for
//! both, a valid `timers` list instead; temperature and humidity sensors (`03`) need
//! numeric `temperature` and `humidity`, GPS trackers (`04`) `lat` and `lng`. Optional
//! params (brightness, color, power, …) are checked when present. Every other type takes
//! any object.

use crate::{DeviceType, types};
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

/// Whether `params` of an update suit a device of type `ty`, by the type's registry entry.
///
/// A type that takes timers checks a truthy `timers` instead of its required params (the
/// original tests `if (params.timers)`: absent, null, false, 0 and "" fall through).
/// Optional params are checked whenever present; unlisted params are free JSON.
pub fn params(ty: DeviceType, params: &Map<String, Value>) -> bool {
    let info = types::lookup(ty);
    let timers_given = match params.get("timers") {
        Some(t) if info.timers && !falsy(t) => {
            if !timers(t) {
                return false;
            }
            true
        }
        _ => false,
    };
    info.params.iter().all(|p| match params.get(p.name) {
        None => !p.required || timers_given,
        Some(_) if p.required && timers_given => true,
        Some(v) => p.kind.accepts(v),
    })
}

fn falsy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
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
    fn optional_params_are_checked_when_present() {
        assert!(params(
            t("02"),
            &p(json!({"light": "on", "brightness": "100", "color": "#A0b1C2"}))
        ));
        assert!(!params(
            t("02"),
            &p(json!({"light": "on", "brightness": 101}))
        ));
        assert!(!params(
            t("02"),
            &p(json!({"light": "on", "brightness": true}))
        ));
        assert!(!params(t("02"), &p(json!({"light": "on", "color": "red"}))));
        assert!(!params(t("02"), &p(json!({"brightness": 50}))));
        assert!(params(
            t("01"),
            &p(json!({"switch": "off", "power": "12.5", "energy": 3}))
        ));
        assert!(!params(
            t("01"),
            &p(json!({"switch": "off", "voltage": -1}))
        ));
        assert!(!params(t("01"), &p(json!({"switch": "on", "current": ""}))));
        assert!(params(
            t("04"),
            &p(json!({"lat": -90, "lng": "180", "alt": 12}))
        ));
        assert!(!params(t("04"), &p(json!({"lat": 91, "lng": 0}))));
        assert!(!params(t("04"), &p(json!({"lat": 10}))));
        assert!(!params(
            t("04"),
            &p(json!({"lat": 1, "lng": 2, "speed": -3}))
        ));
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
