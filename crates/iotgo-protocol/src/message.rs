//! Device API messages: requests parsed from JSON, answers, error codes and the
//! firmware quirks of the original indie devices.
//!
//! Both transports (HTTP and WebSocket) carry the same JSON objects. A request names an
//! `action`, a `deviceid` and an `apikey`; every answer repeats `deviceid`, `apikey` and
//! the request's `sequence` (if it had one), so a client can match answers to requests.

use crate::validate::{self, Limits};
use crate::{ApiKey, DeviceId};
use serde::Serialize;
use serde_json::{Map, Value};

/// A Device API error code, with the original's reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: malformed request, unknown action, params that fail validation.
    BadRequest,
    /// 400 with its own reason: an update that would make the device's stored params
    /// larger than the server keeps (bytes or keys); nothing of it was stored.
    StateTooLarge,
    /// 403: the (apikey, deviceid) pair is not an owned device (or not a license).
    Forbidden,
    /// 404: `register` of a license nobody has claimed yet.
    NotFound,
    /// 429: a connection has as many commands waiting for indie devices' answers as the
    /// server allows; this one was not forwarded.
    TooManyRequests,
    /// 500: the server failed (the database); the cause is logged, never sent.
    Internal,
    /// 503: an app's command to an indie device that is not connected.
    DeviceOffline,
    /// 504: the indie device did not answer a forwarded command in time.
    Timeout,
}

impl ErrorCode {
    /// The numeric code sent as `error`.
    pub const fn code(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::StateTooLarge => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::DeviceOffline => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The text sent as `reason`.
    pub const fn reason(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "Bad Request",
            ErrorCode::StateTooLarge => "Device State Too Large",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::NotFound => "Not Found",
            ErrorCode::TooManyRequests => "Too Many Requests",
            ErrorCode::Internal => "Internal Server Error",
            ErrorCode::DeviceOffline => "Device Offline",
            ErrorCode::Timeout => "Request Timeout",
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An indie device asks for the key to use (its `apikey` is the factory one); the
    /// server answers the device's own key.
    Register,
    /// Merge `params` (an object) into the device's state.
    Update(Map<String, Value>),
    /// Read the named params (`[]`: all of them).
    Query(Vec<String>),
    /// The server's time.
    Date,
}

/// Who sent a request: the device itself, or an app acting for the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// `userAgent` absent or `"device"`.
    Device,
    /// `userAgent` `"app"` or `"web"` (or anything else that is not `"device"`).
    App,
}

/// The values every answer repeats from its request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Echo {
    /// The request's `deviceid`, as sent.
    pub deviceid: Option<Value>,
    /// The request's `apikey`, as sent.
    pub apikey: Option<Value>,
    /// The request's `sequence`, as sent.
    pub sequence: Option<Value>,
}

impl Echo {
    /// Picks the echoed fields out of a JSON object (absent, `null`, `""` are left out).
    pub fn of(obj: &Map<String, Value>) -> Echo {
        let pick = |k: &str| match obj.get(k) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(v.clone()),
        };
        Echo {
            deviceid: pick("deviceid"),
            apikey: pick("apikey"),
            sequence: obj.get("sequence").cloned(),
        }
    }

    /// An error answer to the request this echo came from.
    pub fn error(&self, code: ErrorCode) -> Answer {
        Answer {
            error: code.code(),
            reason: Some(code.reason()),
            ..self.ok()
        }
    }

    /// A success answer (`error: 0`) to the request this echo came from.
    pub fn ok(&self) -> Answer {
        Answer {
            error: 0,
            reason: None,
            params: None,
            date: None,
            deviceid: self.deviceid.clone(),
            apikey: self.apikey.clone(),
            sequence: self.sequence.clone(),
        }
    }
}

/// An answer, serialised compactly as `{"error":0,…,"deviceid":…,"apikey":…,"sequence":…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// 0 on success, else an [`ErrorCode`].
    pub error: u16,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The params asked for by a `query`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// The time asked for by a `date` (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The request's deviceid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviceid: Option<Value>,
    /// The request's apikey, or the device's key in the answer to `register`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apikey: Option<Value>,
    /// The request's sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Value>,
}

impl Answer {
    /// The answer as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an answer always serialises")
    }
}

/// A well-formed Device API request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What it asks for.
    pub action: Action,
    /// The device it is about.
    pub deviceid: DeviceId,
    /// The owner's apikey or the device's own key (or the factory apikey for `register`).
    pub apikey: ApiKey,
    /// Device or app.
    pub sender: Sender,
    /// What the answer repeats.
    pub echo: Echo,
}

/// How a JSON message reads, before any check of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `action`, `deviceid` and `apikey`: a request.
    Request,
    /// Has a numeric `error`: an answer from a device to a forwarded command.
    Answer,
    /// Neither: ignored on WebSocket.
    Other,
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

/// Tells requests from answers, as the original's WebSocket server did.
pub fn kind(obj: &Map<String, Value>) -> Kind {
    if ["action", "deviceid", "apikey"]
        .iter()
        .all(|k| truthy(obj.get(*k)))
    {
        Kind::Request
    } else if obj.get("error").is_some_and(Value::is_number) {
        Kind::Answer
    } else {
        Kind::Other
    }
}

/// The sender named by `userAgent`.
pub fn sender(obj: &Map<String, Value>) -> Sender {
    match obj.get("userAgent") {
        None => Sender::Device,
        Some(Value::String(s)) if s == "device" => Sender::Device,
        Some(_) => Sender::App,
    }
}

impl Request {
    /// Parses and validates a request object; the error is the answer to send back.
    ///
    /// Checks in the original's order: the ids' formats and a known action (400), then the
    /// params' shape for the action, the device type's rules and the size limits (400).
    /// Ownership (403) is the server's business.
    pub fn parse(obj: &Map<String, Value>, limits: &Limits) -> Result<Request, Box<Answer>> {
        let echo = Echo::of(obj);
        let bad = || Box::new(echo.error(ErrorCode::BadRequest));
        let deviceid = obj
            .get("deviceid")
            .and_then(Value::as_str)
            .and_then(|s| DeviceId::parse(s).ok())
            .ok_or_else(bad)?;
        // The original accepts lowercase UUIDs only.
        let apikey = obj
            .get("apikey")
            .and_then(Value::as_str)
            .filter(|s| !s.bytes().any(|b| b.is_ascii_uppercase()))
            .and_then(|s| ApiKey::parse(s).ok())
            .ok_or_else(bad)?;
        let params = obj.get("params");
        let action = match obj.get("action").and_then(Value::as_str) {
            Some("register") => Action::Register,
            Some("date") => Action::Date,
            Some("update") => match params {
                Some(Value::Object(p)) => {
                    if !validate::within(params.unwrap_or(&Value::Null), limits)
                        || !validate::params(deviceid.device_type(), p)
                    {
                        return Err(bad());
                    }
                    Action::Update(p.clone())
                }
                _ => return Err(bad()),
            },
            Some("query") => match params {
                Some(Value::Array(names)) if names.len() <= limits.max_keys => Action::Query(
                    names
                        .iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect(),
                ),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        Ok(Request {
            action,
            deviceid,
            apikey,
            sender: sender(obj),
            echo,
        })
    }
}

/// The original's quirk for indie firmware, on answers sent to indie devices over
/// WebSocket: `true`/`false` become `1`/`0`; `null`, `[]` and `{}` become `0`, at any depth.
pub fn indie_answer(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, quirk(v))).collect()),
        other => other,
    }
}

fn quirk(v: Value) -> Value {
    match v {
        Value::Bool(b) => Value::from(u8::from(b)),
        Value::Null => Value::from(0),
        Value::Array(a) if a.is_empty() => Value::from(0),
        Value::Object(m) if m.is_empty() => Value::from(0),
        Value::Array(a) => Value::Array(a.into_iter().map(quirk).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, quirk(v))).collect()),
        other => other,
    }
}

/// The original's quirk on commands forwarded to indie devices: empty `params` become
/// `0`, and so does an empty `params.timers`.
pub fn indie_command(mut obj: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Object(p)) = obj.get_mut("params") {
        if p.is_empty() {
            obj.insert("params".into(), Value::from(0));
        } else if matches!(p.get("timers"), Some(Value::Array(t)) if t.is_empty()) {
            p.insert("timers".into(), Value::from(0));
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    const KEY: &str = "b45c1e61-964a-4ad3-9b9d-0b97ac95fe14";

    #[test]
    fn answers_are_compact_and_echo_the_request() {
        let req = obj(
            json!({"action": "update", "deviceid": "0100000001", "apikey": KEY,
            "sequence": "7", "params": {"switch": "on"}}),
        );
        let r = Request::parse(&req, &Limits::default()).unwrap();
        let text = serde_json::to_string(&r.echo.ok()).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"error":0,"deviceid":"0100000001","apikey":"{KEY}","sequence":"7"}}"#)
        );
        let bad = obj(json!({"action": "nope", "deviceid": "0100000001", "apikey": KEY}));
        let e = Request::parse(&bad, &Limits::default()).unwrap_err();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            format!(
                r#"{{"error":400,"reason":"Bad Request","deviceid":"0100000001","apikey":"{KEY}"}}"#
            )
        );
    }

    #[test]
    fn requests_need_well_formed_ids_and_params() {
        let l = Limits::default();
        for bad in [
            json!({"action": "date", "deviceid": "01000001", "apikey": KEY}),
            json!({"action": "date", "deviceid": "0100000001", "apikey": KEY.to_uppercase()}),
            json!({"action": "query", "deviceid": "0100000001", "apikey": KEY, "params": {}}),
            json!({"action": "update", "deviceid": "0100000001", "apikey": KEY, "params": []}),
            json!({"action": "update", "deviceid": "0100000001", "apikey": KEY,
                "params": {"switch": "maybe"}}),
        ] {
            assert!(Request::parse(&obj(bad.clone()), &l).is_err(), "{bad}");
        }
        let q = obj(
            json!({"action": "query", "deviceid": "0100000001", "apikey": KEY,
            "params": ["switch", 3], "userAgent": "app"}),
        );
        let r = Request::parse(&q, &l).unwrap();
        assert_eq!(r.action, Action::Query(vec!["switch".into()]));
        assert_eq!(r.sender, Sender::App);
    }

    #[test]
    fn indie_quirks_follow_the_original() {
        let a = indie_answer(json!({"error": 0, "params": {"on": true, "t": [], "o": {},
            "n": null, "l": [{"x": false}]}, "sequence": "1"}));
        assert_eq!(
            a,
            json!({"error": 0, "params": {"on": 1, "t": 0, "o": 0, "n": 0, "l": [{"x": 0}]},
                "sequence": "1"})
        );
        let c = indie_command(obj(json!({"params": {}})));
        assert_eq!(c["params"], 0);
        let c = indie_command(obj(json!({"params": {"timers": []}})));
        assert_eq!(c["params"], json!({"timers": 0}));
        assert_eq!(
            kind(&obj(json!({"error": 0, "sequence": "1"}))),
            Kind::Answer
        );
        assert_eq!(kind(&obj(json!({"hello": 1}))), Kind::Other);
    }
}
