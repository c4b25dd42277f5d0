//! The Device API's JSON Schemas (`docs/schemas/device-api/`) against the real server.
//!
//! Every message the tests send and receive, on both transports, is checked against the
//! schema of its kind: a message meant to be right must validate, and a message meant to
//! be wrong (answered 400) must not. The device types' rules are checked both ways: for
//! each update, the schema and the server give the same verdict. Wrong messages that the
//! server never sends (an answer with an `action` key, a push with extra keys) must be
//! refused, so a schema looser than the code fails here.

mod files;
mod http;
mod indie;
mod ws;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::support::*;
use jsonschema::Validator;
use serde_json::{Value, json};

/// A message kind of the Device API, with its schema file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A device's or app's `register`, `update`, `query` or `date`.
    Request,
    /// The server's answer to a request.
    Answer,
    /// An `update` or `sysmsg` pushed to watching apps.
    Push,
    /// An app's update forwarded to an indie device.
    Command,
    /// The indie device's answer to a command.
    CommandAnswer,
    /// A WebSocket `subscribe`.
    Subscribe,
    /// The answer to `subscribe`.
    SubscribeAnswer,
}

impl Kind {
    /// Every kind, one per schema file.
    const ALL: [Kind; 7] = [
        Kind::Request,
        Kind::Answer,
        Kind::Push,
        Kind::Command,
        Kind::CommandAnswer,
        Kind::Subscribe,
        Kind::SubscribeAnswer,
    ];

    /// The schema file's name and text.
    fn file(self) -> (&'static str, &'static str) {
        match self {
            Kind::Request => (
                "request",
                include_str!("../../../../../docs/schemas/device-api/request.schema.json"),
            ),
            Kind::Answer => (
                "answer",
                include_str!("../../../../../docs/schemas/device-api/answer.schema.json"),
            ),
            Kind::Push => (
                "push",
                include_str!("../../../../../docs/schemas/device-api/push.schema.json"),
            ),
            Kind::Command => (
                "command",
                include_str!("../../../../../docs/schemas/device-api/command.schema.json"),
            ),
            Kind::CommandAnswer => (
                "command-answer",
                include_str!("../../../../../docs/schemas/device-api/command-answer.schema.json"),
            ),
            Kind::Subscribe => (
                "subscribe",
                include_str!("../../../../../docs/schemas/device-api/subscribe.schema.json"),
            ),
            Kind::SubscribeAnswer => (
                "subscribe-answer",
                include_str!("../../../../../docs/schemas/device-api/subscribe-answer.schema.json"),
            ),
        }
    }

    /// The schema document.
    fn schema(self) -> Value {
        let (name, text) = self.file();
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.schema.json: {e}"))
    }
}

/// Every schema, compiled (no reference leaves its own file, so nothing is fetched).
struct Schemas(Vec<(Kind, Validator)>);

impl Schemas {
    /// Compiles every schema file as draft 2020-12.
    fn load() -> Schemas {
        Schemas(
            Kind::ALL
                .iter()
                .map(|&kind| {
                    let v = jsonschema::draft202012::new(&kind.schema())
                        .unwrap_or_else(|e| panic!("{kind:?} schema: {e}"));
                    (kind, v)
                })
                .collect(),
        )
    }

    /// The validator of `kind` messages.
    fn of(&self, kind: Kind) -> &Validator {
        let (_, v) = self.0.iter().find(|(k, _)| *k == kind).expect("a schema");
        v
    }

    /// Asserts that `msg` is a valid `kind` message, listing every error otherwise.
    fn valid(&self, kind: Kind, msg: &Value) {
        let errors: Vec<String> = self
            .of(kind)
            .iter_errors(msg)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{kind:?} {msg} is invalid: {errors:#?}");
    }

    /// Asserts that the `kind` schema refuses `msg`.
    fn refuses(&self, kind: Kind, msg: &Value) {
        assert!(
            !self.of(kind).is_valid(msg),
            "the {kind:?} schema accepts {msg}"
        );
    }
}

/// A WebSocket client whose every message, both ways, is checked against its schema.
struct Client<'s> {
    ws: Ws,
    schemas: &'s Schemas,
}

impl<'s> Client<'s> {
    /// Connects to `/api/ws`.
    async fn connect(app: &TestApp, schemas: &'s Schemas) -> Client<'s> {
        Client {
            ws: Ws::connect(app).await,
            schemas,
        }
    }

    /// Sends a valid `kind` message.
    async fn send(&mut self, kind: Kind, msg: Value) {
        self.schemas.valid(kind, &msg);
        self.ws.send(msg).await;
    }

    /// The next message, which must come and be a valid `kind` message.
    async fn recv(&mut self, kind: Kind) -> Value {
        let msg = self.ws.recv().await;
        self.schemas.valid(kind, &msg);
        msg
    }

    /// Sends a valid `out` message; its answer, a valid `back` message.
    async fn call(&mut self, out: Kind, msg: Value, back: Kind) -> Value {
        self.send(out, msg).await;
        self.recv(back).await
    }

    /// Sends an `out` message that its schema refuses; its answer, a valid `back` message.
    async fn call_wrong(&mut self, out: Kind, msg: Value, back: Kind) -> Value {
        self.schemas.refuses(out, &msg);
        self.ws.send(msg).await;
        self.recv(back).await
    }
}

/// `POST /api/http` of a request; `valid` says whether the request schema accepts it.
/// The answer (HTTP 200) is a valid answer.
async fn post(app: &TestApp, schemas: &Schemas, req: Value, valid: bool) -> Value {
    if valid {
        schemas.valid(Kind::Request, &req);
    } else {
        schemas.refuses(Kind::Request, &req);
    }
    let (status, text) = http_raw(app, &req).await;
    assert_eq!(status, 200, "{req} → {text}");
    let answer = serde_json::from_str(&text).expect("JSON");
    schemas.valid(Kind::Answer, &answer);
    answer
}

/// A push as the server sends it.
fn push(action: &str, id: &str, key: &str, params: Value) -> Value {
    json!({"action": action, "deviceid": id, "apikey": key, "params": params})
}
