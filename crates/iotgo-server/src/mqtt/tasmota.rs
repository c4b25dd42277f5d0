//! Stock Tasmota firmware as an IoTgo device (docs/mqtt.md, "Tasmota"): its topics
//! (`<prefix>/<topic>/<leaf>` under the default FullTopic `%prefix%/%topic%/`), the
//! params its messages give a device of each type, and the commands an app's update
//! becomes. Pure mapping: which connection is Tasmota, and under which topic, is the
//! connection's business (it learns the topic from the device's own Will or first
//! publish).
//!
//! In: `POWER`/`POWER1` (`stat/<t>/POWER`, `…/POWER1`, or a field of `tele/<t>/STATE`
//! and `stat/<t>/RESULT`) → `switch` (`01`) or `light` (`02`); `Dimmer` → `brightness`,
//! `Color` → `color` (`02`); `tele/<t>/SENSOR`'s `ENERGY.{Power,Voltage,Current,Total}`
//! → `power`, `voltage`, `current`, `energy` (`01`), a sensor object's `Temperature`
//! and `Humidity` → `temperature`, `humidity` (`03`, both or nothing; °F made °C).
//! Out: `switch`/`light` → `POWER ON|OFF`, `brightness` → `Dimmer n`, `color` →
//! `Color #rrggbb`. Everything else maps to nothing.

use iotgo_protocol::DeviceType;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// What a connection learned of its Tasmota device, shared by its reader and its writer:
/// its topic (from its Will or first publish, then fixed), and its last on/off value
/// (`switch`/`light`) as the device reported it or an app's committed update set it.
#[derive(Default)]
pub(super) struct Learned {
    topic: OnceLock<String>,
    on_off: Mutex<Option<Value>>,
}

impl Learned {
    /// The device's Tasmota topic, once known.
    pub(super) fn topic(&self) -> Option<&str> {
        self.topic.get().map(String::as_str)
    }

    /// Takes `t` as the topic when none is known yet; whether `t` is the topic.
    pub(super) fn is_topic(&self, t: &str) -> bool {
        self.topic.get_or_init(|| t.to_owned()) == t
    }

    /// Keeps the on/off value of type `ty` that `params` carry, if any.
    pub(super) fn remember(&self, ty: DeviceType, params: &Map<String, Value>) {
        if let Some(v) = on_off(ty).and_then(|name| params.get(name)) {
            *self.on_off.lock() = Some(v.clone());
        }
    }

    /// The last on/off value kept.
    pub(super) fn on_off(&self) -> Option<Value> {
        self.on_off.lock().clone()
    }
}

/// A topic of the default FullTopic: its prefix (`cmnd`, `stat`, `tele`), Tasmota topic
/// and last level, each one plain level (no wildcard).
pub(super) fn split(topic: &str) -> Option<(&str, &str, &str)> {
    let mut levels = topic.split('/');
    let prefix = levels.next()?;
    let t = levels.next()?;
    let leaf = levels.next()?;
    let plain = |l: &str| !l.is_empty() && !l.contains(['+', '#']);
    (matches!(prefix, "cmnd" | "stat" | "tele")
        && plain(t)
        && plain(leaf)
        && levels.next().is_none())
    .then_some((prefix, t, leaf))
}

/// Whether a Tasmota device may subscribe to `filter`: `cmnd/<name>/#`, its own topic's
/// (what its commands come on), its group topic's or its fallback topic's. The
/// connection only ever publishes on its own topic's, so the others stay silent.
pub(super) fn may_subscribe(filter: &str) -> bool {
    matches!(
        filter.split('/').collect::<Vec<_>>()[..],
        ["cmnd", name, "#"] if !name.is_empty() && !name.contains(['+', '#'])
    )
}

/// The on/off param of a device type, if it has one.
fn on_off(ty: DeviceType) -> Option<&'static str> {
    match ty.as_str() {
        "01" => Some("switch"),
        "02" => Some("light"),
        _ => None,
    }
}

/// The params a message on `<prefix>/<t>/<leaf>` gives a device of type `ty`; `None`
/// when nothing maps (`tele/<t>/LWT`, `INFO1`, `stat/<t>/STATUS…`, fields the type has
/// no param for, a sensor reading a T&H device gets only half of).
pub(super) fn params_in(
    ty: DeviceType,
    prefix: &str,
    leaf: &str,
    payload: &[u8],
) -> Option<Map<String, Value>> {
    let mut params = Map::new();
    match (prefix, leaf) {
        ("stat", "POWER" | "POWER1") => {
            let text = std::str::from_utf8(payload).ok()?;
            params.insert(on_off(ty)?.into(), power(text)?);
        }
        ("tele", "STATE") | ("stat", "RESULT") => {
            let Value::Object(msg) = serde_json::from_slice(payload).ok()? else {
                return None;
            };
            state(ty, &msg, &mut params);
        }
        ("tele", "SENSOR") => {
            let Value::Object(msg) = serde_json::from_slice(payload).ok()? else {
                return None;
            };
            sensor(ty, &msg, &mut params);
        }
        _ => {}
    }
    (!params.is_empty()).then_some(params)
}

/// `ON`/`OFF` (Tasmota's default state texts) as `on`/`off`.
fn power(text: &str) -> Option<Value> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("on") => Some("on".into()),
        t if t.eq_ignore_ascii_case("off") => Some("off".into()),
        _ => None,
    }
}

/// A STATE or RESULT object's relay and light fields.
fn state(ty: DeviceType, msg: &Map<String, Value>, params: &mut Map<String, Value>) {
    if let Some(name) = on_off(ty) {
        let relay = msg.get("POWER").or_else(|| msg.get("POWER1"));
        if let Some(v) = relay.and_then(Value::as_str).and_then(power) {
            params.insert(name.into(), v);
        }
    }
    if ty.as_str() != "02" {
        return;
    }
    if let Some(dimmer) = msg.get("Dimmer").filter(|d| d.is_number()) {
        params.insert("brightness".into(), dimmer.clone());
    }
    if let Some(color) = msg.get("Color").and_then(Value::as_str).and_then(color_in) {
        params.insert("color".into(), color.into());
    }
}

/// Tasmota's `Color`: hex channels (`FF8000`, `FF800000FF` with white channels) or,
/// with SetOption17, decimal ones (`255,128,0`); the RGB part as `#rrggbb`.
fn color_in(text: &str) -> Option<String> {
    if text.contains(',') {
        let rgb: Vec<u8> = text
            .split(',')
            .take(3)
            .map(|c| c.trim().parse().ok())
            .collect::<Option<_>>()?;
        return (rgb.len() == 3).then(|| format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]));
    }
    let hex = text.trim_start_matches('#');
    let rgb = hex.get(..6)?;
    (hex.len() >= 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("#{}", rgb.to_ascii_lowercase()))
}

/// A SENSOR object's energy readings (switches) or temperature and humidity (T&H).
fn sensor(ty: DeviceType, msg: &Map<String, Value>, params: &mut Map<String, Value>) {
    match ty.as_str() {
        "01" => {
            let Some(Value::Object(energy)) = msg.get("ENERGY") else {
                return;
            };
            let fields = [
                ("Power", "power"),
                ("Voltage", "voltage"),
                ("Current", "current"),
                ("Total", "energy"),
            ];
            for (field, param) in fields {
                // (A meter of several phases sends arrays: not mapped.)
                if let Some(v) = energy.get(field).filter(|v| v.is_number()) {
                    params.insert(param.into(), v.clone());
                }
            }
        }
        "03" => {
            let sensors: Vec<&Map<String, Value>> =
                msg.values().filter_map(Value::as_object).collect();
            let has =
                |s: &Map<String, Value>, field: &str| s.get(field).is_some_and(Value::is_number);
            let reading = |field: &str| {
                // A sensor with both readings first, else the first with this one.
                let both = sensors
                    .iter()
                    .copied()
                    .find(|s| has(s, "Temperature") && has(s, "Humidity"));
                both.or_else(|| sensors.iter().copied().find(|s| has(s, field)))
                    .and_then(|s| s.get(field)?.as_f64())
            };
            let (Some(t), Some(h)) = (reading("Temperature"), reading("Humidity")) else {
                return;
            };
            let fahrenheit = msg.get("TempUnit").and_then(Value::as_str) == Some("F");
            let t = if fahrenheit {
                ((t - 32.0) * 5.0 / 9.0 * 100.0).round() / 100.0
            } else {
                t
            };
            params.insert("temperature".into(), t.into());
            params.insert("humidity".into(), h.into());
        }
        _ => {}
    }
}

/// The required on/off param of type `ty` that `params` lacks: the caller fills it in
/// (an energy reading alone is a valid switch update then), or drops the update when it
/// knows no value.
pub(super) fn missing_on_off(ty: DeviceType, params: &Map<String, Value>) -> Option<&'static str> {
    on_off(ty).filter(|name| !params.contains_key(*name))
}

/// The params of an app's update in `text`, the Device API message the hub queued for
/// the device; `None` for anything else (answers to the device's own requests).
pub(super) fn app_update(text: &str) -> Option<Map<String, Value>> {
    let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    if msg.get("action").and_then(Value::as_str) != Some("update") {
        return None;
    }
    match msg.remove("params")? {
        Value::Object(params) => Some(params),
        _ => None,
    }
}

/// The Tasmota commands (topic, payload) an app's update of a device of type `ty` with
/// Tasmota topic `t` and these `params` becomes.
pub(super) fn commands(
    ty: DeviceType,
    t: &str,
    params: &Map<String, Value>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cmnd = |command: &str, payload: String| {
        out.push((format!("cmnd/{t}/{command}"), payload));
    };
    if ty.as_str() == "02" {
        if let Some(c) = params.get("color").and_then(Value::as_str) {
            cmnd("Color", c.to_ascii_lowercase());
        }
        let level = params.get("brightness").and_then(|b| match b {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        if let Some(level) = level {
            cmnd("Dimmer", format!("{}", level.round().clamp(0.0, 100.0)));
        }
    }
    // POWER last: a Dimmer or Color command switches a light on.
    let state = on_off(ty).and_then(|name| params.get(name)?.as_str());
    match state {
        Some("on") => cmnd("POWER", "ON".into()),
        Some("off") => cmnd("POWER", "OFF".into()),
        _ => {}
    }
    out
}

#[cfg(test)]
#[path = "tasmota_tests.rs"]
mod tests;
