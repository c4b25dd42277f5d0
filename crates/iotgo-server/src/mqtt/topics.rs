//! The IoTgo topic scheme: which topics a client may publish and subscribe, and which
//! topic each outgoing Device API message goes to.
//!
//! - `iotgo/<deviceid>/up`: a device's requests (the device itself only);
//! - `iotgo/<deviceid>/down`: answers and app commands for the device (the device only);
//! - `iotgo/<deviceid>/set`: an app's update of one of its user's devices;
//! - `iotgo/<deviceid>/state`, `…/online`, `…/answer`: what an app subscribes to.
//!
//! A filter's deviceid level may be `+` (or the filter `iotgo/#`): every device of the
//! app's user; an ACL check stays with the caller (it knows the user's devices).

use bytes::Bytes;
use iotgo_protocol::DeviceId;
use rumqttc::mqttbytes::matches;
use serde_json::Value;

/// What a publish of a client names: the device and the last level.
pub(super) fn published(topic: &str) -> Option<(DeviceId, &str)> {
    let rest = topic.strip_prefix("iotgo/")?;
    let (id, leaf) = rest.split_once('/')?;
    let id = DeviceId::parse(id).ok()?;
    (!leaf.contains('/')).then_some((id, leaf))
}

/// The devices a subscription filter reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scope {
    /// One device.
    Device(DeviceId),
    /// Every device of the client's user (`+` or `#` at the deviceid level).
    All,
}

/// The last levels an app may subscribe to.
pub(super) const APP_LEAVES: &[&str] = &["state", "online", "answer"];
/// The last levels a device may subscribe to.
pub(super) const DEVICE_LEAVES: &[&str] = &["down"];

/// The devices `filter` reaches when it is one of the scheme's filters whose last level
/// is one of `leaves` (or `+`, `#`); `None` for any other filter.
pub(super) fn scope(filter: &str, leaves: &[&str]) -> Option<Scope> {
    let mut levels = filter.split('/');
    if levels.next() != Some("iotgo") {
        return None;
    }
    let scope = match levels.next()? {
        "#" => return levels.next().is_none().then_some(Scope::All),
        "+" => Scope::All,
        id => Scope::Device(DeviceId::parse(id).ok()?),
    };
    let leaf = levels.next()?;
    let known = leaf == "+" || leaf == "#" || leaves.contains(&leaf);
    (known && levels.next().is_none()).then_some(scope)
}

/// Whether `topic` matches one of `filters`.
pub(super) fn wanted(topic: &str, filters: &[String]) -> bool {
    filters.iter().any(|f| matches(topic, f))
}

/// The topic and payload of a message the hub queued for an app: an update's push goes
/// to `state` (its params), a presence change to `online` (`true`/`false`), an answer
/// to the app's own `set` to `answer` (the Device API answer). `None`: nothing for MQTT.
pub(super) fn for_app(text: &str) -> Option<(String, Bytes)> {
    let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let id = msg.get("deviceid")?.as_str()?.to_owned();
    let (leaf, payload) = match msg.get("action").and_then(Value::as_str) {
        Some("update") => ("state", msg.remove("params")?.to_string()),
        Some("sysmsg") => {
            let online = msg.get("params")?.get("online")?.as_bool()?;
            ("online", online.to_string())
        }
        Some(_) => return None,
        None => ("answer", text.to_owned()),
    };
    Some((format!("iotgo/{id}/{leaf}"), Bytes::from(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_topics_name_one_device_and_one_leaf() {
        let (id, leaf) = published("iotgo/1000000001/up").unwrap();
        assert_eq!((id.as_str(), leaf), ("1000000001", "up"));
        assert_eq!(published("iotgo/1000000001/up/x"), None);
        assert_eq!(published("iotgo/+/set"), None);
        assert_eq!(published("other/1000000001/up"), None);
        assert_eq!(published("iotgo/1000000001"), None);
    }

    #[test]
    fn filters_are_scoped_to_one_device_or_all_of_the_users() {
        let id = DeviceId::parse("1000000001").unwrap();
        assert_eq!(
            scope("iotgo/1000000001/state", APP_LEAVES),
            Some(Scope::Device(id.clone()))
        );
        assert_eq!(
            scope("iotgo/1000000001/#", APP_LEAVES),
            Some(Scope::Device(id))
        );
        assert_eq!(scope("iotgo/+/online", APP_LEAVES), Some(Scope::All));
        assert_eq!(scope("iotgo/+/+", APP_LEAVES), Some(Scope::All));
        assert_eq!(scope("iotgo/#", APP_LEAVES), Some(Scope::All));
        for refused in [
            "#",
            "+/+/state",
            "iotgo/1000000001/down",
            "iotgo/1000000001/state/x",
            "iotgo/nothex/state",
            "iotgo",
            "iotgo/#/state",
        ] {
            assert_eq!(scope(refused, APP_LEAVES), None, "{refused}");
        }
        assert!(scope("iotgo/1000000001/down", DEVICE_LEAVES).is_some());
    }

    #[test]
    fn hub_messages_map_to_topics() {
        let push =
            r#"{"action":"update","deviceid":"1000000001","apikey":"k","params":{"switch":"on"}}"#;
        let (topic, payload) = for_app(push).unwrap();
        assert_eq!(topic, "iotgo/1000000001/state");
        assert_eq!(&payload[..], br#"{"switch":"on"}"#);
        let sysmsg =
            r#"{"action":"sysmsg","deviceid":"1000000001","apikey":"k","params":{"online":false}}"#;
        assert_eq!(
            for_app(sysmsg).unwrap(),
            ("iotgo/1000000001/online".into(), Bytes::from("false"))
        );
        let answer = r#"{"error":503,"reason":"Service Unavailable","deviceid":"1000000001"}"#;
        assert_eq!(
            for_app(answer).unwrap(),
            ("iotgo/1000000001/answer".into(), Bytes::from(answer))
        );
        assert_eq!(for_app(r#"{"error":0,"apikey":"k"}"#), None);
        assert_eq!(for_app("not json"), None);
        assert!(wanted(
            "iotgo/1000000001/state",
            &["iotgo/+/state".to_owned()]
        ));
        assert!(!wanted(
            "iotgo/1000000001/state",
            &["iotgo/+/online".to_owned()]
        ));
    }
}
