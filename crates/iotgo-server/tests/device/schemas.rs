//! The Device API's JSON Schemas (`docs/schemas/device-api/`) against the real server.
//!
//! Every message the tests send and receive, on both transports, is checked against the
//! schema of its kind: a message meant to be right must validate, and a message meant to
//! be wrong (answered 400) must not. The device types' rules are checked both ways: for
//! each update, the schema and the server give the same verdict. Wrong messages that the
//! server never sends (an answer with an `action` key, a push with extra keys) must be
//! refused, so a schema looser than the code fails here.

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
                include_str!("../../../../docs/schemas/device-api/request.schema.json"),
            ),
            Kind::Answer => (
                "answer",
                include_str!("../../../../docs/schemas/device-api/answer.schema.json"),
            ),
            Kind::Push => (
                "push",
                include_str!("../../../../docs/schemas/device-api/push.schema.json"),
            ),
            Kind::Command => (
                "command",
                include_str!("../../../../docs/schemas/device-api/command.schema.json"),
            ),
            Kind::CommandAnswer => (
                "command-answer",
                include_str!("../../../../docs/schemas/device-api/command-answer.schema.json"),
            ),
            Kind::Subscribe => (
                "subscribe",
                include_str!("../../../../docs/schemas/device-api/subscribe.schema.json"),
            ),
            Kind::SubscribeAnswer => (
                "subscribe-answer",
                include_str!("../../../../docs/schemas/device-api/subscribe-answer.schema.json"),
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

#[test]
fn schema_files_are_draft_2020_12_with_id_title_description_and_examples() {
    let schemas = Schemas::load();
    for kind in Kind::ALL {
        let (name, _) = kind.file();
        let doc = kind.schema();
        if let Err(e) = jsonschema::meta::validate(&doc) {
            panic!("{name}: not a valid schema: {e}");
        }
        assert_eq!(
            doc["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(doc["$id"], format!("urn:iotgo:device-api:{name}"));
        for key in ["title", "description"] {
            assert!(
                doc[key].as_str().is_some_and(|t| !t.is_empty()),
                "{name}: {key}"
            );
        }
        let examples = doc["examples"].as_array().expect("examples");
        assert!(!examples.is_empty(), "{name}: examples");
        for example in examples {
            schemas.valid(kind, example);
        }
    }
}

#[test]
fn wrong_messages_are_refused() {
    let s = Schemas::load();
    let k = "b45c1e61-964a-4ad3-9b9d-0b97ac95fe14";
    let id = "0100000001";
    let indie = "0180000001";
    let cases = [
        // Requests: malformed ids, unknown actions, params of the wrong shape or type.
        (
            Kind::Request,
            json!({"action": "date", "deviceid": "010000000", "apikey": k}),
        ),
        (
            Kind::Request,
            json!({"action": "date", "deviceid": "01000000AB", "apikey": k}),
        ),
        (
            Kind::Request,
            json!({"action": "date", "deviceid": id, "apikey": k.to_uppercase()}),
        ),
        (
            Kind::Request,
            json!({"action": "date", "deviceid": id, "apikey": k.replace('-', "")}),
        ),
        (Kind::Request, json!({"action": "date", "deviceid": id})),
        (
            Kind::Request,
            json!({"action": "fly", "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Request,
            json!({"action": "subscribe", "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Request,
            json!({"action": "update", "deviceid": "0000000001", "apikey": k, "params": []}),
        ),
        (
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": k, "params": {}}),
        ),
        (
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k, "params": {"switch": "maybe"}}),
        ),
        // Answers: an action key, a reason on success, a reason of another code, extras.
        (
            Kind::Answer,
            json!({"action": "update", "error": 0, "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Answer,
            json!({"error": 0, "reason": "OK", "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Answer,
            json!({"error": 403, "reason": "Bad Request", "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Answer,
            json!({"error": 401, "reason": "Unauthorized"}),
        ),
        (Kind::Answer, json!({"error": 0, "apikey": k})),
        (
            Kind::Answer,
            json!({"error": 0, "params": {}, "date": "2026-11-25T12:00:00.000Z",
                "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Answer,
            json!({"error": 0, "date": "2026-11-25 12:00:00", "deviceid": id, "apikey": k}),
        ),
        (
            Kind::Answer,
            json!({"error": 400, "reason": "Bad Request", "params": {}}),
        ),
        (
            Kind::Answer,
            json!({"error": 0, "deviceid": id, "apikey": k, "online": true}),
        ),
        // Pushes: other actions, extra keys, a sysmsg other than online.
        (
            Kind::Push,
            json!({"action": "query", "deviceid": id, "apikey": k, "params": {}}),
        ),
        (
            Kind::Push,
            json!({"action": "update", "deviceid": id, "apikey": k, "params": {}, "sequence": "1"}),
        ),
        (
            Kind::Push,
            json!({"action": "sysmsg", "deviceid": id, "apikey": k, "params": {"online": "yes"}}),
        ),
        (
            Kind::Push,
            json!({"action": "sysmsg", "deviceid": id, "apikey": k,
                "params": {"online": true, "x": 1}}),
        ),
        (
            Kind::Push,
            json!({"action": "update", "deviceid": id, "params": {}}),
        ),
        // Commands: only apps' updates of indie devices, with a sequence, quirks applied.
        (
            Kind::Command,
            json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
                "params": {"switch": "on"}, "sequence": "1"}),
        ),
        (
            Kind::Command,
            json!({"action": "update", "deviceid": indie, "apikey": k, "userAgent": "device",
                "params": {"switch": "on"}, "sequence": "1"}),
        ),
        (
            Kind::Command,
            json!({"action": "update", "deviceid": indie, "apikey": k, "userAgent": "app",
                "params": {"switch": "on"}}),
        ),
        (
            Kind::Command,
            json!({"action": "update", "deviceid": indie, "apikey": k, "userAgent": "app",
                "params": {}, "sequence": "1"}),
        ),
        (
            Kind::Command,
            json!({"action": "update", "deviceid": indie, "apikey": k, "userAgent": "app",
                "params": {"timers": []}, "sequence": "1"}),
        ),
        // A device's answer: numeric error and sequence, and not a request.
        (Kind::CommandAnswer, json!({"error": 0})),
        (Kind::CommandAnswer, json!({"error": "0", "sequence": "1"})),
        (
            Kind::CommandAnswer,
            json!({"action": "update", "deviceid": indie, "apikey": k, "error": 0,
                "sequence": "1"}),
        ),
        // Subscribe: a jwt or an apikey; the answer carries the user's apikey on success.
        (
            Kind::Subscribe,
            json!({"action": "subscribe", "userAgent": "app"}),
        ),
        (
            Kind::Subscribe,
            json!({"action": "subscribe", "apikey": "nope"}),
        ),
        (Kind::Subscribe, json!({"action": "update", "apikey": k})),
        (Kind::SubscribeAnswer, json!({"error": 0})),
        (
            Kind::SubscribeAnswer,
            json!({"error": 0, "apikey": k, "params": {}}),
        ),
        (
            Kind::SubscribeAnswer,
            json!({"error": 404, "reason": "Not Found"}),
        ),
        (
            Kind::SubscribeAnswer,
            json!({"action": "subscribe", "error": 0, "apikey": k}),
        ),
    ];
    for (kind, msg) in &cases {
        s.refuses(*kind, msg);
    }
}

#[tokio::test]
async fn websocket_messages_match_their_schemas() {
    let app = spawn_app().await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let id = device(&app, &me, "01").await;
    let k = me.apikey.clone();

    // Apps subscribe to every device of their user, by apikey or by token.
    let mut by_key = Client::connect(&app, &s).await;
    let a = by_key
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "apikey": k, "userAgent": "app", "sequence": 1}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k, "sequence": 1}));
    let mut by_jwt = Client::connect(&app, &s).await;
    let a = by_jwt
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "jwt": me.token}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k}));
    let mut refused = Client::connect(&app, &s).await;
    let a = refused
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "jwt": "x.y.z"}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 403, "reason": "Forbidden"}));
    let a = refused
        .call_wrong(
            Kind::Subscribe,
            json!({"action": "subscribe", "apikey": "nope", "sequence": "s"}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "apikey": "nope", "sequence": "s"})
    );

    // An app watches one device with a query, as the original web app does.
    let mut web = Client::connect(&app, &s).await;
    let a = web
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": k, "userAgent": "web",
                "params": ["any_not_exist_property"], "sequence": "s1"}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": {}, "deviceid": id, "apikey": k, "sequence": "s1"})
    );

    // The device's update binds its socket: every app gets the push, then the sysmsg.
    let mut dev = Client::connect(&app, &s).await;
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k,
                "params": {"switch": "on", "power": "12.5"}, "sequence": 7}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": 7})
    );
    for c in [&mut by_key, &mut by_jwt, &mut web] {
        assert_eq!(
            c.recv(Kind::Push).await,
            push("update", &id, &k, json!({"switch": "on", "power": "12.5"}))
        );
        assert_eq!(
            c.recv(Kind::Push).await,
            push("sysmsg", &id, &k, json!({"online": true}))
        );
    }

    // The device reads its params and the time.
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": k,
                "params": ["switch", "nope"], "sequence": {"n": 1}}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": {"switch": "on"}, "deviceid": id, "apikey": k,
            "sequence": {"n": 1}})
    );
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "date", "deviceid": id, "apikey": k}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "date": a["date"], "deviceid": id, "apikey": k})
    );

    // An app's update reaches the DIY device and the other apps, not the sender.
    let a = web
        .call(
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
                "params": {"switch": "off"}, "sequence": "9"}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "9"})
    );
    let off = push("update", &id, &k, json!({"switch": "off"}));
    assert_eq!(dev.recv(Kind::Push).await, off);
    assert_eq!(by_key.recv(Kind::Push).await, off);
    assert_eq!(by_jwt.recv(Kind::Push).await, off);

    // Error answers: wrong requests (400) and a foreign apikey (403).
    let bad = |deviceid: &str| json!({"error": 400, "reason": "Bad Request", "deviceid": deviceid, "apikey": k});
    let a = dev
        .call_wrong(
            Kind::Request,
            json!({"action": "update", "deviceid": id, "apikey": k,
                "params": {"switch": "maybe"}}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, bad(&id));
    let a = dev
        .call_wrong(
            Kind::Request,
            json!({"action": "query", "deviceid": "010000000", "apikey": k, "params": []}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, bad("010000000"));
    let a = dev
        .call_wrong(
            Kind::Request,
            json!({"action": "fly", "deviceid": id, "apikey": k}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, bad(&id));
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": other.apikey, "params": []}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": other.apikey})
    );

    // The device's socket closes: every app gets the offline sysmsg.
    drop(dev);
    for c in [&mut by_key, &mut by_jwt, &mut web] {
        assert_eq!(
            c.recv(Kind::Push).await,
            push("sysmsg", &id, &k, json!({"online": false}))
        );
    }
}

#[tokio::test]
async fn http_messages_match_their_schemas() {
    let app = spawn_app().await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let other = owner(&app, "b@example.com").await;
    let id = device(&app, &me, "03").await;
    let k = me.apikey.clone();
    let mut all = Client::connect(&app, &s).await;
    let a = all
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "jwt": me.token}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k}));

    // A device that polls over HTTP: its update is pushed, and it is online.
    let params = json!({"temperature": "21.5", "humidity": 40});
    let a = post(
        &app,
        &s,
        json!({"action": "update", "deviceid": id, "apikey": k, "params": params,
            "sequence": "1"}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "1"})
    );
    assert_eq!(
        all.recv(Kind::Push).await,
        push("update", &id, &k, params.clone())
    );
    assert_eq!(
        all.recv(Kind::Push).await,
        push("sysmsg", &id, &k, json!({"online": true}))
    );
    let a = post(
        &app,
        &s,
        json!({"action": "query", "deviceid": id, "apikey": k, "params": []}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": params, "deviceid": id, "apikey": k})
    );
    let a = post(
        &app,
        &s,
        json!({"action": "date", "deviceid": id, "apikey": k, "sequence": null}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 0, "date": a["date"], "deviceid": id, "apikey": k, "sequence": null})
    );

    // Error answers.
    let a = post(
        &app,
        &s,
        json!({"action": "query", "deviceid": id, "apikey": other.apikey, "params": []}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": other.apikey})
    );
    let upper = k.to_uppercase();
    let a = post(
        &app,
        &s,
        json!({"action": "date", "deviceid": id, "apikey": upper}),
        false,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "deviceid": id, "apikey": upper})
    );
    // `subscribe` is WebSocket only.
    let a = post(
        &app,
        &s,
        json!({"action": "subscribe", "deviceid": id, "apikey": k}),
        false,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 400, "reason": "Bad Request", "deviceid": id, "apikey": k})
    );
    let a = post(
        &app,
        &s,
        json!({"action": "register", "deviceid": id, "apikey": k}),
        true,
    )
    .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": k})
    );
    // A body that is not a JSON object: the transport's own 400, in the answer's shape.
    let res = app
        .client
        .post(format!("{}/api/http", app.base))
        .header("content-type", "application/json")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let a: Value = res.json().await.unwrap();
    s.valid(Kind::Answer, &a);
    assert_eq!(a, json!({"error": 400, "reason": "Bad Request"}));
}

#[tokio::test]
async fn indie_commands_and_their_answers_match_their_schemas() {
    let app = spawn_app_with(|c| c.pending_request_timeout_ms = 300).await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let (id, factory_key) = license(&app, "01").await;
    claim(&app, &me, &id, &factory_key).await;
    let (unclaimed, unclaimed_key) = license(&app, "01").await;
    let k = me.apikey.clone();
    let up = |sequence: Value, params: Value| {
        json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
            "params": params, "sequence": sequence})
    };
    let on = json!({"switch": "on"});

    // The device is offline: 503, and the app now watches the device.
    let mut web = Client::connect(&app, &s).await;
    let a = web
        .call(Kind::Request, up(json!("1"), on.clone()), Kind::Answer)
        .await;
    assert_eq!(
        a,
        json!({"error": 503, "reason": "Device Offline", "deviceid": id, "apikey": k,
            "sequence": "1"})
    );
    let mut other = Client::connect(&app, &s).await;
    let a = other
        .call(
            Kind::Subscribe,
            json!({"action": "subscribe", "apikey": k.to_uppercase()}),
            Kind::SubscribeAnswer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k}));

    // The device registers: a wrong factory key is 403, a license nobody claimed 404.
    let mut dev = Client::connect(&app, &s).await;
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "register", "deviceid": id, "apikey": k}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 403, "reason": "Forbidden", "deviceid": id, "apikey": k})
    );
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "register", "deviceid": unclaimed, "apikey": unclaimed_key}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 404, "reason": "Not Found", "deviceid": unclaimed,
            "apikey": unclaimed_key})
    );
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "register", "deviceid": id, "apikey": factory_key}),
            Kind::Answer,
        )
        .await;
    assert_eq!(a, json!({"error": 0, "apikey": k, "deviceid": id}));
    let online = push("sysmsg", &id, &k, json!({"online": true}));
    assert_eq!(web.recv(Kind::Push).await, online);
    assert_eq!(other.recv(Kind::Push).await, online);
    // Indie firmware quirk: an empty state answers `"params":0`.
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": k, "params": []}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": 0, "deviceid": id, "apikey": k})
    );

    // A command the device carries out: the app is answered, the other app gets the push.
    web.send(Kind::Request, up(json!("2"), on.clone())).await;
    assert_eq!(dev.recv(Kind::Command).await, up(json!("2"), on.clone()));
    dev.send(Kind::CommandAnswer, json!({"error": 0, "sequence": "2"}))
        .await;
    assert_eq!(
        web.recv(Kind::Answer).await,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": "2"})
    );
    assert_eq!(
        other.recv(Kind::Push).await,
        push("update", &id, &k, on.clone())
    );

    // The device's own error reaches the app as is: not one of the server's answers.
    let off = json!({"switch": "off"});
    web.send(Kind::Request, up(json!("3"), off.clone())).await;
    assert_eq!(dev.recv(Kind::Command).await, up(json!("3"), off.clone()));
    let stuck = json!({"error": 500, "reason": "Relay stuck", "sequence": "3"});
    dev.send(Kind::CommandAnswer, stuck.clone()).await;
    let a = web.recv(Kind::CommandAnswer).await;
    assert_eq!(a, stuck);
    s.refuses(Kind::Answer, &a);

    // No answer in time: 504.
    web.send(Kind::Request, up(json!("4"), off.clone())).await;
    assert_eq!(dev.recv(Kind::Command).await, up(json!("4"), off.clone()));
    assert_eq!(
        web.recv(Kind::Answer).await,
        json!({"error": 504, "reason": "Request Timeout", "deviceid": id, "apikey": k,
            "sequence": "4"})
    );

    // Without a sequence the server adds one, which the app's answer carries too; an
    // empty timers list travels as 0.
    web.send(
        Kind::Request,
        json!({"action": "update", "deviceid": id, "apikey": k, "userAgent": "app",
            "params": {"timers": []}}),
    )
    .await;
    let cmd = dev.recv(Kind::Command).await;
    let seq = cmd["sequence"].clone();
    assert!(
        seq.as_str()
            .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
        "{cmd}"
    );
    assert_eq!(cmd, up(seq.clone(), json!({"timers": 0})));
    dev.send(Kind::CommandAnswer, json!({"error": 0, "sequence": seq}))
        .await;
    assert_eq!(
        web.recv(Kind::Answer).await,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": seq})
    );
    assert_eq!(
        other.recv(Kind::Push).await,
        push("update", &id, &k, json!({"timers": []}))
    );

    // Over HTTP too; the device's answer matches a numeric sequence by its text.
    let (a, ()) = tokio::join!(post(&app, &s, up(json!(5), on.clone()), true), async {
        assert_eq!(dev.recv(Kind::Command).await, up(json!(5), on.clone()));
        dev.send(Kind::CommandAnswer, json!({"error": 0, "sequence": "5"}))
            .await;
    });
    assert_eq!(
        a,
        json!({"error": 0, "deviceid": id, "apikey": k, "sequence": 5})
    );
    let pushed = push("update", &id, &k, on.clone());
    assert_eq!(web.recv(Kind::Push).await, pushed);
    assert_eq!(other.recv(Kind::Push).await, pushed);
}

#[tokio::test]
async fn the_request_schema_and_the_server_agree_on_each_device_types_rules() {
    let app = spawn_app().await;
    let s = Schemas::load();
    let me = owner(&app, "a@example.com").await;
    let k = me.apikey.clone();
    let timer = json!({"enabled": true, "type": "repeat", "at": "0 8 * * *",
        "do": {"switch": "on"}});
    // (device type, action, params, well formed)
    let cases = [
        ("01", "update", json!({"switch": "on"}), true),
        ("01", "update", json!({"switch": true}), false),
        ("01", "update", json!({"light": "on"}), false),
        ("01", "update", json!({"timers": [timer]}), true),
        (
            "01",
            "update",
            json!({"timers": [timer], "switch": "maybe"}),
            true,
        ),
        ("01", "update", json!({"timers": []}), true),
        (
            "01",
            "update",
            json!({"timers": null, "switch": "off"}),
            true,
        ),
        ("01", "update", json!({"timers": 0}), false),
        ("01", "update", json!({"timers": "soon"}), false),
        ("01", "update", json!({"timers": {}}), false),
        (
            "01",
            "update",
            json!({"timers": [{"enabled": "yes", "type": "once", "at": "x", "do": {}}]}),
            false,
        ),
        (
            "01",
            "update",
            json!({"timers": [{"enabled": true, "type": "once", "at": "", "do": {}}]}),
            false,
        ),
        (
            "01",
            "update",
            json!({"switch": "off", "power": "12.5", "energy": 3, "current": " 1e-1 "}),
            true,
        ),
        (
            "01",
            "update",
            json!({"switch": "off", "voltage": -1}),
            false,
        ),
        (
            "01",
            "update",
            json!({"switch": "off", "voltage": "-1"}),
            false,
        ),
        (
            "01",
            "update",
            json!({"switch": "on", "current": ""}),
            false,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "brightness": "100", "color": "#A0b1C2"}),
            true,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "brightness": 101}),
            false,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "brightness": true}),
            false,
        ),
        (
            "02",
            "update",
            json!({"light": "on", "color": "red"}),
            false,
        ),
        ("02", "update", json!({"brightness": 50}), false),
        (
            "02",
            "update",
            json!({"timers": [timer], "brightness": 50}),
            true,
        ),
        (
            "03",
            "update",
            json!({"temperature": 21.5, "humidity": "40"}),
            true,
        ),
        (
            "03",
            "update",
            json!({"temperature": " ", "humidity": -3}),
            true,
        ),
        (
            "03",
            "update",
            json!({"temperature": "warm", "humidity": 40}),
            false,
        ),
        ("03", "update", json!({"temperature": 20}), false),
        ("03", "update", json!({"timers": [], "humidity": 1}), false),
        (
            "04",
            "update",
            json!({"lat": -90, "lng": "180", "alt": 12}),
            true,
        ),
        ("04", "update", json!({"lat": 91, "lng": 0}), false),
        ("04", "update", json!({"lat": 10}), false),
        (
            "04",
            "update",
            json!({"lat": 1, "lng": 2, "speed": -3}),
            false,
        ),
        (
            "04",
            "update",
            json!({"lat": 1, "lng": 2, "accuracy": "x"}),
            false,
        ),
        ("00", "update", json!({"anything": [1, {"x": null}]}), true),
        ("00", "update", json!({}), true),
        ("00", "update", json!([]), false),
        ("7a", "update", json!({"switch": 1}), true),
        ("01", "query", json!(["switch", 3]), true),
        ("01", "query", json!([]), true),
        ("01", "query", json!({}), false),
        ("01", "query", json!("switch"), false),
    ];
    let mut ids = std::collections::HashMap::new();
    let mut wrong = Vec::new();
    for (kind, action, params, well_formed) in cases {
        if !ids.contains_key(kind) {
            ids.insert(kind, device(&app, &me, kind).await);
        }
        let req = json!({"action": action, "deviceid": ids[kind], "apikey": k, "params": params});
        let by_schema = s.of(Kind::Request).is_valid(&req);
        let (status, text) = http_raw(&app, &req).await;
        assert_eq!(status, 200, "{req} → {text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        s.valid(Kind::Answer, &answer);
        let by_server = answer["error"] != 400;
        if (by_schema, by_server) != (well_formed, well_formed) {
            wrong.push(format!(
                "{req}: schema {by_schema}, server {by_server} ({text}), expected {well_formed}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
