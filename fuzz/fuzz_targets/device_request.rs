//! The Device API's request parsing: a WebSocket text frame or an HTTP body as the server
//! reads it (JSON, then `Request::parse` with its validation), and the answers made of it.
#![no_main]

use iotgo_protocol::message::{indie_answer, indie_command};
use iotgo_protocol::{Action, ErrorCode, Limits, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(raw)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match Request::parse(&raw, &Limits::default()) {
        Ok(req) => {
            if let Action::Update(params) = &req.action {
                // What the server forwards to an indie device.
                let mut forwarded = raw.clone();
                forwarded.insert("params".into(), Value::Object(params.clone()));
                let _ = indie_command(forwarded);
            }
            let _ = indie_answer(req.echo.ok().to_value());
        }
        Err(answer) => assert_eq!(answer.error, ErrorCode::BadRequest.code()),
    }
});
