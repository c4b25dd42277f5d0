//! The schema files themselves, and wrong messages they must refuse.

use super::*;

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
