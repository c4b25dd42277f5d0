use super::*;
use serde_json::json;

// The fixtures follow the message shapes of Tasmota's documentation for the firmware and
// module named (the ENERGY key names as in Tasmota's `i18n.h`, `D_JSON_*`); values are
// typical, not captured from a device.

fn ty(code: &str) -> DeviceType {
    DeviceType::parse(code).unwrap()
}

fn map(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

/// The shape of `tele/<t>/STATE` of a Sonoff Basic R2 (module 1), Tasmota 13.2.0.
const STATE_BASIC: &str = r#"{"Time":"2024-01-14T10:21:07","Uptime":"0T00:05:09","UptimeSec":309,"Heap":27,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"ON","Wifi":{"AP":1,"SSId":"home","BSSId":"AA:BB:CC:DD:EE:FF","Channel":6,"Mode":"11n","RSSI":78,"Signal":-61,"LinkCount":1,"Downtime":"0T00:00:03"}}"#;
/// The shape of `tele/<t>/SENSOR` of a Sonoff POW R2 (module 43), Tasmota 13.2.0.
const SENSOR_POW: &str = r#"{"Time":"2024-01-14T10:21:07","ENERGY":{"TotalStartTime":"2023-11-02T18:40:11","Total":12.345,"Yesterday":0.456,"Today":0.123,"Period":1,"Power":45,"ApparentPower":50,"ReactivePower":22,"Factor":0.90,"Voltage":231,"Current":0.217}}"#;
/// The shape of `tele/<t>/SENSOR` with an AM2301 on a Sonoff TH10 (module 4), Tasmota 12.5.0.
const SENSOR_AM2301: &str = r#"{"Time":"2024-01-14T10:21:07","AM2301":{"Temperature":21.3,"Humidity":40.1,"DewPoint":7.2},"TempUnit":"C"}"#;
/// The shape of `stat/<t>/RESULT` of an RGB bulb (module 18, Generic, PWM RGB) answering `Dimmer 40`,
/// Tasmota 13.2.0.
const RESULT_LIGHT: &str =
    r#"{"POWER":"ON","Dimmer":40,"Color":"66330A","HSBColor":"29,85,40","Channel":[40,20,4]}"#;

#[test]
fn topics_are_prefix_topic_leaf() {
    assert_eq!(
        split("tele/kitchen/STATE"),
        Some(("tele", "kitchen", "STATE"))
    );
    assert_eq!(
        split("stat/kitchen/POWER1"),
        Some(("stat", "kitchen", "POWER1"))
    );
    assert_eq!(split("tele/kitchen/STATE/x"), None);
    assert_eq!(split("tele/+/STATE"), None);
    assert_eq!(split("tele//STATE"), None);
    assert_eq!(split("iotgo/1000000001/up"), None);
    assert!(may_subscribe("cmnd/kitchen/#"));
    assert!(may_subscribe("cmnd/tasmotas/#"));
    assert!(may_subscribe("cmnd/DVES_ABCDEF_fb/#"));
    for refused in [
        "cmnd/+/#",
        "cmnd/#",
        "stat/kitchen/#",
        "cmnd/kitchen/POWER",
        "#",
    ] {
        assert!(!may_subscribe(refused), "{refused}");
    }
}

#[test]
fn power_and_state_map_to_the_on_off_param() {
    let switch = ty("01");
    assert_eq!(
        params_in(switch, "stat", "POWER", b"ON"),
        map(json!({"switch": "on"}))
    );
    assert_eq!(
        params_in(switch, "stat", "POWER1", b"OFF"),
        map(json!({"switch": "off"}))
    );
    assert_eq!(params_in(switch, "stat", "POWER2", b"OFF"), None);
    assert_eq!(params_in(switch, "stat", "POWER", b"TOGGLE"), None);
    assert_eq!(
        params_in(switch, "tele", "STATE", STATE_BASIC.as_bytes()),
        map(json!({"switch": "on"}))
    );
    assert_eq!(
        params_in(switch, "stat", "RESULT", br#"{"POWER1":"OFF"}"#),
        map(json!({"switch": "off"}))
    );
    assert_eq!(
        params_in(ty("02"), "stat", "POWER", b"ON"),
        map(json!({"light": "on"}))
    );
    // A T&H sensor has no relay param; a custom device none at all.
    assert_eq!(params_in(ty("03"), "stat", "POWER", b"ON"), None);
    assert_eq!(
        params_in(ty("00"), "tele", "STATE", STATE_BASIC.as_bytes()),
        None
    );
    assert_eq!(params_in(switch, "tele", "LWT", b"Online"), None);
    assert_eq!(params_in(switch, "tele", "INFO1", b"{}"), None);
    assert_eq!(params_in(switch, "stat", "RESULT", b"not json"), None);
}

#[test]
fn light_results_map_to_brightness_and_color() {
    assert_eq!(
        params_in(ty("02"), "stat", "RESULT", RESULT_LIGHT.as_bytes()),
        map(json!({"light": "on", "brightness": 40, "color": "#66330a"}))
    );
    assert_eq!(color_in("FF8000"), Some("#ff8000".into()));
    assert_eq!(color_in("FF800000FF"), Some("#ff8000".into()));
    assert_eq!(color_in("255,128,0"), Some("#ff8000".into()));
    assert_eq!(color_in("255,128"), None);
    assert_eq!(color_in("FF80"), None);
    assert_eq!(color_in("GG8000"), None);
    // A switch keeps only its relay.
    assert_eq!(
        params_in(ty("01"), "stat", "RESULT", RESULT_LIGHT.as_bytes()),
        map(json!({"switch": "on"}))
    );
}

#[test]
fn sensor_readings_map_to_the_types_params() {
    assert_eq!(
        params_in(ty("01"), "tele", "SENSOR", SENSOR_POW.as_bytes()),
        map(json!({"power": 45, "voltage": 231, "current": 0.217, "energy": 12.345}))
    );
    assert_eq!(
        params_in(ty("03"), "tele", "SENSOR", SENSOR_AM2301.as_bytes()),
        map(json!({"temperature": 21.3, "humidity": 40.1}))
    );
    // Energy is no T&H reading, nor the other way round.
    assert_eq!(
        params_in(ty("03"), "tele", "SENSOR", SENSOR_POW.as_bytes()),
        None
    );
    assert_eq!(
        params_in(ty("01"), "tele", "SENSOR", SENSOR_AM2301.as_bytes()),
        None
    );
    // A temperature alone (a DS18B20) is half a T&H update: nothing.
    let ds = br#"{"Time":"2024-01-14T10:21:07","DS18B20":{"Id":"01131B3C1AAA","Temperature":19.5},"TempUnit":"C"}"#;
    assert_eq!(params_in(ty("03"), "tele", "SENSOR", ds), None);
    // The sensor with both readings wins; Fahrenheit is made Celsius.
    let two = br#"{"DS18B20":{"Temperature":60.8},"SI7021":{"Temperature":69.8,"Humidity":45.0},"TempUnit":"F"}"#;
    assert_eq!(
        params_in(ty("03"), "tele", "SENSOR", two),
        map(json!({"temperature": 21.0, "humidity": 45.0}))
    );
    // Three phases (arrays) map nothing but the total.
    let phases = br#"{"ENERGY":{"Total":3.2,"Power":[10,20,30],"Voltage":[230,231,229]}}"#;
    assert_eq!(
        params_in(ty("01"), "tele", "SENSOR", phases),
        map(json!({"energy": 3.2}))
    );
}

#[test]
fn a_missing_on_off_param_is_named() {
    let energy = map(json!({"power": 45})).unwrap();
    assert_eq!(missing_on_off(ty("01"), &energy), Some("switch"));
    let on = map(json!({"switch": "on"})).unwrap();
    assert_eq!(missing_on_off(ty("01"), &on), None);
    assert_eq!(missing_on_off(ty("03"), &energy), None);
}

#[test]
fn updates_become_commands() {
    let update = |params: Value| {
        json!({"action": "update", "deviceid": "0100000001", "apikey": "k",
            "userAgent": "app", "sequence": "1", "params": params})
        .to_string()
    };
    let sent = |code: &str, t: &str, params: Value| {
        commands(ty(code), t, &app_update(&update(params)).unwrap())
    };
    assert_eq!(
        sent("01", "plug", json!({"switch": "off"})),
        vec![("cmnd/plug/POWER".into(), "OFF".into())]
    );
    assert_eq!(
        sent(
            "02",
            "bulb",
            json!({"light": "on", "brightness": "39.6", "color": "#FF8000"})
        ),
        vec![
            ("cmnd/bulb/Color".to_owned(), "#ff8000".to_owned()),
            ("cmnd/bulb/Dimmer".into(), "40".into()),
            ("cmnd/bulb/POWER".into(), "ON".into()),
        ]
    );
    // Timers, a T&H device: nothing to send; answers are no updates.
    assert!(sent("01", "plug", json!({"timers": []})).is_empty());
    assert!(sent("03", "th", json!({"temperature": 1})).is_empty());
    assert_eq!(app_update(r#"{"error":0,"deviceid":"0100000001"}"#), None);
    assert_eq!(app_update(r#"{"action":"update","params":1}"#), None);
    assert_eq!(app_update("not json"), None);
}

#[test]
fn a_connection_learns_one_topic_and_the_last_on_off_value() {
    let learned = Learned::default();
    assert_eq!(learned.topic(), None);
    assert!(learned.is_topic("plug"));
    assert!(learned.is_topic("plug"));
    assert!(!learned.is_topic("other"));
    assert_eq!(learned.topic(), Some("plug"));
    assert_eq!(learned.on_off(), None);
    learned.remember(ty("01"), &map(json!({"switch": "on"})).unwrap());
    learned.remember(ty("01"), &map(json!({"power": 3})).unwrap());
    assert_eq!(learned.on_off(), Some(json!("on")));
    learned.remember(ty("01"), &map(json!({"switch": "off"})).unwrap());
    assert_eq!(learned.on_off(), Some(json!("off")));
}
