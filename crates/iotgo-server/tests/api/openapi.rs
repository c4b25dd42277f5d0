//! The OpenAPI document (`/api/openapi.json`) and the docs page (`/api/docs`): every Web
//! API route documented, every documented route served with the security it claims, the
//! schemas' field names those of real answers, and a docs page with no outside assets.
//! (Whole-API conformance is `scripts/api-check`'s schemathesis run.)

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every Web API route the router serves, `METHOD path`. A route added to the router
/// without its OpenAPI operation, or an operation for a route that is gone, fails here.
const WEB_API: &[&str] = &[
    "DELETE /api/admin/users/{apikey}",
    "DELETE /api/user/device/{deviceid}",
    "GET /api/admin/checkUpdate",
    "GET /api/admin/devices",
    "GET /api/admin/devices/{deviceid}",
    "GET /api/admin/factorydevices",
    "GET /api/admin/factorydevices/csv",
    "GET /api/admin/users",
    "GET /api/admin/users/{apikey}",
    "GET /api/config",
    "GET /api/types",
    "GET /api/user/device",
    "GET /api/user/device/{deviceid}",
    "GET /api/user/device/{deviceid}/history",
    "GET /api/user/device/{deviceid}/history.csv",
    "GET /healthz",
    "POST /api/admin/factorydevices/create",
    "POST /api/admin/login",
    "POST /api/admin/logout-all",
    "POST /api/user/apikey",
    "POST /api/user/device",
    "POST /api/user/device/add",
    "POST /api/user/device/{deviceid}",
    "POST /api/user/device/{deviceid}/key",
    "POST /api/user/email",
    "POST /api/user/email/confirm",
    "POST /api/user/email/resend",
    "POST /api/user/email/verify",
    "POST /api/user/login",
    "POST /api/user/logout-all",
    "POST /api/user/password",
    "POST /api/user/password/forgot",
    "POST /api/user/password/reset",
    "POST /api/user/register",
];

/// User paths that need no token: signing in, and redeeming or asking for a mailed link.
const PUBLIC_USER_PATHS: &[&str] = &[
    "/api/user/register",
    "/api/user/login",
    "/api/user/email/verify",
    "/api/user/email/confirm",
    "/api/user/password/forgot",
    "/api/user/password/reset",
];

/// `(METHOD path, operation)` for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.push((format!("{} {path}", method.to_uppercase()), op.clone()));
            }
        }
    }
    ops
}

/// The security scheme an operation asks for, if any.
fn scheme(op: &Value) -> Option<String> {
    let req = op.get("security")?.as_array()?.first()?.as_object()?;
    req.keys().next().cloned()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let app = spawn_app().await;

    let (status, doc) = app.get("/api/openapi.json", None).await;

    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let listed: BTreeSet<String> = operations(&doc).into_iter().map(|(k, _)| k).collect();
    let expected: BTreeSet<String> = WEB_API.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, expected);
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["user_jwt", "admin_jwt"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
        assert_eq!(schemes[name]["bearerFormat"], "JWT", "{name}");
    }
    for (key, op) in operations(&doc) {
        let path = key.split(' ').nth(1).unwrap();
        let want = if path.starts_with("/api/admin/") && path != "/api/admin/login" {
            Some("admin_jwt")
        } else if path.starts_with("/api/user/") && !PUBLIC_USER_PATHS.contains(&path) {
            Some("user_jwt")
        } else {
            None
        };
        assert_eq!(scheme(&op).as_deref(), want, "{key}");
        assert!(
            op["responses"].get("200").is_some(),
            "{key} documents no 200"
        );
        if want.is_some() {
            for code in ["401", "403"] {
                assert!(
                    op["responses"].get(code).is_some(),
                    "{key} documents no {code}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_with_the_security_it_claims() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/api/openapi.json", None).await;

    for (key, op) in operations(&doc) {
        let (method, path) = key.split_once(' ').unwrap();
        let url = format!(
            "{}{}",
            app.base,
            path.replace("{deviceid}", "0100000001")
                .replace("{apikey}", "00000000-0000-4000-8000-000000000000")
        );
        let req = match method {
            "GET" => app.client.get(&url),
            "POST" => app.client.post(&url).json(&json!({})),
            "DELETE" => app.client.delete(&url),
            other => panic!("unexpected method {other}"),
        };

        let status = req.send().await.expect("request").status();

        // Without a token: 401 where a token is documented, an answer (not 401, 404 or
        // 405, which would mean no such route) elsewhere.
        if scheme(&op).is_some() {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{key}");
        } else {
            assert_eq!(status, StatusCode::OK, "{key}");
        }
    }
}

/// The property names of the named component schema, and those it requires.
fn fields(doc: &Value, name: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = &doc["components"]["schemas"][name];
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect();
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (props, required)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn schemas_name_the_fields_of_real_answers() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/api/openapi.json", None).await;
    let (token, user) = app.register("schema@example.com").await;
    let device = app.create_device(&token, "Lamp", "01").await;
    let admin = app.admin_token().await;
    let (_, licenses) = app
        .post(
            "/api/admin/factorydevices/create",
            &json!({"name": "ITEAD", "type": "02", "qty": 1}),
            Some(&admin),
        )
        .await;
    let (_, config) = app.get("/api/config", None).await;

    for (name, answer) in [
        ("User", &user),
        ("Device", &device),
        ("License", &licenses[0]),
        ("PublicConfig", &config),
    ] {
        let (props, required) = fields(&doc, name);
        let got = keys(answer);
        assert_eq!(props, got, "{name}: documented vs answered fields");
        assert!(
            required.is_subset(&got),
            "{name}: required {required:?}, got {got:?}"
        );
    }
    // A device in an admin list has no params: the schema must not require them.
    let (props, required) = fields(&doc, "Device");
    assert!(props.contains("params") && !required.contains("params"));
    assert!(
        required.contains("lastSeenAt"),
        "always sent, as null until seen"
    );
}

#[tokio::test]
async fn the_docs_page_is_served_with_local_assets_only() {
    let app = spawn_app().await;

    let res = app
        .client
        .get(format!("{}/api/docs", app.base))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers()["location"], "/api/docs/");
    let res = app
        .client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();

    let assets: Vec<&str> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| html.split(attr).skip(1))
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(assets.len() >= 3, "{html}");
    for asset in &assets {
        assert!(
            !asset.contains("://") && !asset.starts_with("//"),
            "outside asset {asset}"
        );
        let url = format!("{}/api/docs/{}", app.base, asset.trim_start_matches("./"));
        let res = app.client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
    }
    // The page's script fetches our document and nothing else (no validator badge).
    let init = app
        .client
        .get(format!("{}/api/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace(char::is_whitespace, "");
    assert!(init.contains("\"url\":\"/api/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\":\"none\""), "{init}");
}
