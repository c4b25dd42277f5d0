//! The device type registry: every type's code, name and params.
//!
//! One entry per type drives everything type-specific: update validation
//! ([`crate::validate::params`]), the web app's controls (`GET /api/types` serialises
//! [`TYPES`]) and which params are kept in the history ([`history_values`]). Adding a type
//! is adding one entry to [`TYPES`]; a type without an entry behaves like `00` (custom).
//!
//! The original's rules are kept exactly: an update of a switch (`01`) carries `switch`, of a
//! light (`02`) `light` — or, for both, a `timers` list instead — and of a temperature and
//! humidity sensor (`03`) both `temperature` and `humidity`, numbers or numeric text. The
//! other params are optional additions, checked only when present. Params a type does not
//! list are free JSON, as in the original.

use crate::DeviceType;
use serde::Serialize;
use serde_json::{Map, Value};

/// What values a param takes; serialised as `"kind": "onoff" | "number" | "color" | "text"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ParamKind {
    /// `"on"` or `"off"`; kept in history as 1 or 0.
    #[serde(rename = "onoff")]
    OnOff,
    /// A JSON number or text that reads as one (ITEAD firmware sends text), stored as sent.
    Number {
        /// Unit symbol (`"W"`, `"°C"`), `None` when unitless.
        unit: Option<&'static str>,
        /// Smallest accepted value.
        min: Option<f64>,
        /// Largest accepted value.
        max: Option<f64>,
    },
    /// `#rrggbb` (hex digits, either case).
    Color,
    /// Any text.
    Text,
}

/// One param of a device type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Param {
    /// The key in `params`.
    pub name: &'static str,
    /// Its values.
    #[serde(flatten)]
    pub kind: ParamKind,
    /// Every update must carry it (the original's rule for its three types).
    pub required: bool,
    /// Apps may set it (the web app shows a control for it).
    pub writable: bool,
    /// Each accepted value is appended to the device's history.
    pub history: bool,
}

/// A device type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TypeInfo {
    /// Two lowercase hex digits, the first two of its deviceids.
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Whether an update may carry `timers` (checked as timers) instead of its state.
    pub timers: bool,
    /// Its params; others are free JSON.
    pub params: &'static [Param],
}

const fn on_off(name: &'static str) -> Param {
    Param {
        name,
        kind: ParamKind::OnOff,
        required: true,
        writable: true,
        history: true,
    }
}

/// A number a device reports: optional, read-only for apps, kept in history.
const fn reading(
    name: &'static str,
    unit: Option<&'static str>,
    min: Option<f64>,
    max: Option<f64>,
) -> Param {
    Param {
        name,
        kind: ParamKind::Number { unit, min, max },
        required: false,
        writable: false,
        history: true,
    }
}

const fn required(p: Param) -> Param {
    Param {
        required: true,
        ..p
    }
}

const fn writable(p: Param) -> Param {
    Param {
        writable: true,
        ..p
    }
}

/// Every known type. Keep the codes unique; the first entry is the fallback for unknown codes.
pub static TYPES: &[TypeInfo] = &[
    TypeInfo {
        code: "00",
        name: "Custom",
        timers: false,
        params: &[],
    },
    TypeInfo {
        code: "01",
        name: "Switch",
        timers: true,
        params: &[
            on_off("switch"),
            reading("power", Some("W"), Some(0.0), None),
            reading("voltage", Some("V"), Some(0.0), None),
            reading("current", Some("A"), Some(0.0), None),
            reading("energy", Some("kWh"), Some(0.0), None),
        ],
    },
    TypeInfo {
        code: "02",
        name: "Light",
        timers: true,
        params: &[
            on_off("light"),
            writable(reading("brightness", Some("%"), Some(0.0), Some(100.0))),
            Param {
                name: "color",
                kind: ParamKind::Color,
                required: false,
                writable: true,
                history: false,
            },
        ],
    },
    TypeInfo {
        code: "03",
        name: "Temperature & humidity",
        timers: false,
        params: &[
            required(reading("temperature", Some("°C"), None, None)),
            required(reading("humidity", Some("%"), None, None)),
        ],
    },
    TypeInfo {
        code: "04",
        name: "GPS tracker",
        timers: false,
        params: &[
            required(reading("lat", Some("°"), Some(-90.0), Some(90.0))),
            required(reading("lng", Some("°"), Some(-180.0), Some(180.0))),
            reading("alt", Some("m"), Some(-1000.0), Some(100_000.0)),
            reading("speed", Some("km/h"), Some(0.0), None),
            reading("accuracy", Some("m"), Some(0.0), None),
        ],
    },
];

/// The registry entry of `ty`; the custom type (`00`) for codes without one.
pub fn lookup(ty: DeviceType) -> &'static TypeInfo {
    TYPES
        .iter()
        .find(|t| t.code == ty.as_str())
        .unwrap_or(&TYPES[0])
}

impl ParamKind {
    /// Whether `v` is a value of this kind (within range for numbers).
    pub fn accepts(&self, v: &Value) -> bool {
        match self {
            ParamKind::OnOff => matches!(v, Value::String(s) if s == "on" || s == "off"),
            ParamKind::Color => matches!(v, Value::String(s) if is_color(s)),
            ParamKind::Text => v.is_string(),
            ParamKind::Number { min, max, .. } => {
                // The original tested `!isNaN(Number(x))`, and JavaScript reads blank text
                // as 0: kept for its unbounded params (temperature, humidity).
                if min.is_none()
                    && max.is_none()
                    && matches!(v, Value::String(s) if s.trim().is_empty())
                {
                    return true;
                }
                number(v).is_some_and(|n| {
                    !n.is_nan() && min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)
                })
            }
        }
    }

    /// The value kept in history for `v`: numbers as read, on/off as 1/0.
    pub fn history_value(&self, v: &Value) -> Option<f64> {
        let n = match self {
            ParamKind::OnOff => match v.as_str()? {
                "on" => 1.0,
                "off" => 0.0,
                _ => return None,
            },
            ParamKind::Number { .. } => number(v)?,
            ParamKind::Color | ParamKind::Text => return None,
        };
        n.is_finite().then_some(n)
    }
}

/// A JSON number, or text that reads as one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn is_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s.bytes().skip(1).all(|b| b.is_ascii_hexdigit())
}

/// The history-kept params of an update of a `ty` device, with their numeric values.
pub fn history_values(
    ty: DeviceType,
    params: &Map<String, Value>,
) -> impl Iterator<Item = (&'static str, f64)> + '_ {
    lookup(ty)
        .params
        .iter()
        .filter(|p| p.history)
        .filter_map(|p| Some((p.name, p.kind.history_value(params.get(p.name)?)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DeviceType {
        DeviceType::parse(s).unwrap()
    }

    #[test]
    fn codes_are_unique_and_unknown_types_are_custom() {
        for (i, a) in TYPES.iter().enumerate() {
            assert!(DeviceType::parse(a.code).is_ok(), "{}", a.code);
            assert!(TYPES[i + 1..].iter().all(|b| b.code != a.code));
        }
        assert_eq!(lookup(t("7a")).code, "00");
        assert_eq!(lookup(t("04")).name, "GPS tracker");
    }

    #[test]
    fn history_keeps_numbers_and_on_off() {
        let p = json!({"light": "on", "brightness": "40", "color": "#ff0000", "x": 1});
        let got: Vec<_> = history_values(t("02"), p.as_object().unwrap()).collect();
        assert_eq!(got, vec![("light", 1.0), ("brightness", 40.0)]);
        let p = json!({"temperature": "", "humidity": 40});
        let got: Vec<_> = history_values(t("03"), p.as_object().unwrap()).collect();
        assert_eq!(got, vec![("humidity", 40.0)]);
    }

    #[test]
    fn serialises_for_the_web_app() {
        let v = serde_json::to_value(lookup(t("02"))).unwrap();
        assert_eq!(
            v["params"][1],
            json!({"name": "brightness", "kind": "number", "unit": "%", "min": 0.0,
                "max": 100.0, "required": false, "writable": true, "history": true})
        );
        assert_eq!(
            v["params"][2],
            json!({"name": "color", "kind": "color", "required": false, "writable": true,
                "history": false})
        );
    }
}
