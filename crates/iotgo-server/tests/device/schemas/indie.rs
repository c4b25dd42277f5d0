//! Commands forwarded to indie devices and their answers.

use super::*;

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
    // `register` gives the device its device key; the commands it gets carry that key,
    // never the owner's apikey.
    let dk = device_key(&app, &me, &id).await;
    let command = |sequence: Value, params: Value| {
        let mut c = up(sequence, params);
        c["apikey"] = json!(dk);
        c
    };

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
    assert_eq!(a, json!({"error": 0, "apikey": dk, "deviceid": id}));
    let online = push("sysmsg", &id, &k, json!({"online": true}));
    assert_eq!(web.recv(Kind::Push).await, online);
    assert_eq!(other.recv(Kind::Push).await, online);
    // Indie firmware quirk: an empty state answers `"params":0`.
    let a = dev
        .call(
            Kind::Request,
            json!({"action": "query", "deviceid": id, "apikey": dk, "params": []}),
            Kind::Answer,
        )
        .await;
    assert_eq!(
        a,
        json!({"error": 0, "params": 0, "deviceid": id, "apikey": dk})
    );

    // A command the device carries out: the app is answered, the other app gets the push.
    web.send(Kind::Request, up(json!("2"), on.clone())).await;
    assert_eq!(
        dev.recv(Kind::Command).await,
        command(json!("2"), on.clone())
    );
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
    assert_eq!(
        dev.recv(Kind::Command).await,
        command(json!("3"), off.clone())
    );
    let stuck = json!({"error": 500, "reason": "Relay stuck", "sequence": "3"});
    dev.send(Kind::CommandAnswer, stuck.clone()).await;
    let a = web.recv(Kind::CommandAnswer).await;
    assert_eq!(a, stuck);
    s.refuses(Kind::Answer, &a);

    // No answer in time: 504.
    web.send(Kind::Request, up(json!("4"), off.clone())).await;
    assert_eq!(
        dev.recv(Kind::Command).await,
        command(json!("4"), off.clone())
    );
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
    assert_eq!(cmd, command(seq.clone(), json!({"timers": 0})));
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
        assert_eq!(dev.recv(Kind::Command).await, command(json!(5), on.clone()));
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
