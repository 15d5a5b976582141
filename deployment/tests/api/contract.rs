//! The OpenAPI document says what the service enforces: bodies, headers and
//! query values built around every documented constraint are checked
//! against the document (with a JSON Schema validator) and sent to the
//! server, which must accept exactly those the document accepts. A client
//! generated from the document never sends a request the service refuses,
//! and never relies on one the document forbids.

use std::sync::Arc;

use platform_core::testkit::FakePlatform;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, expect_json, spawn_fake};

/// A validator for `schema`, with the document's components beside it so
/// `$ref`s resolve.
fn validator(document: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}\n{schema}"))
}

/// The schema of `operation`'s parameter `name`.
fn parameter_schema(operation: &Value, name: &str) -> Value {
    operation["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .map(|p| p["schema"].clone())
        .unwrap_or_else(|| panic!("no parameter {name} in {operation}"))
}

/// A query value as the document types it: a number where the schema says
/// integer and the text is one, a string otherwise.
fn typed(schema: &Value, text: &str) -> Value {
    let integer = schema["type"] == "integer"
        || schema["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "integer"));
    match text.parse::<i64>() {
        Ok(n) if integer => json!(n),
        _ => json!(text),
    }
}

fn base_body() -> Value {
    json!({
        "meeting_platform": "zoom",
        "meeting_url": "https://us02web.zoom.us/j/81234567890?pwd=abc123",
        "deploy": false,
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut body = base_body();
    body[field] = value;
    body
}

fn with_leave(field: &str, value: Value) -> Value {
    let mut body = base_body();
    body["automatic_leave"] = json!({ field: value });
    body
}

/// Bodies on both sides of every documented constraint.
fn candidate_bodies() -> Vec<Value> {
    let mut bodies = vec![base_body()];
    for field in [
        "waiting_room_timeout",
        "no_one_joined_timeout",
        "everyone_left_timeout",
    ] {
        for value in [
            json!(0),
            json!(1),
            json!(86400),
            json!(86401),
            json!(3460.0),
            json!(3460.5),
            json!(-5),
            json!("300"),
            json!(null),
            json!(1e3),
        ] {
            bodies.push(with_leave(field, value));
        }
    }
    let mut unknown_leave = base_body();
    unknown_leave["automatic_leave"] = json!({"lobby_timeout": 5});
    bodies.push(unknown_leave);
    bodies.push(with("automatic_leave", json!(5)));
    bodies.push(with("automatic_leave", json!({})));
    for platform in ["zoom", "Zoom", "ZOOM", " zoom", "webex", ""] {
        bodies.push(with("meeting_platform", json!(platform)));
    }
    bodies.push(with("meeting_platform", json!(5)));
    let mut teams = with("meeting_platform", json!("teams"));
    teams["meeting_url"] =
        json!("https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0");
    bodies.push(teams);
    for name in [
        "",
        "x",
        &"x".repeat(100),
        &"x".repeat(101),
        &"é".repeat(100),
        " lead",
        "trail ",
        "\u{a0}nbsp",
        "tab\tin",
        "mid space",
        "Notes & minutes",
        "\u{feff}bom",
        "line\nbreak",
    ] {
        bodies.push(with("display_name", json!(name)));
    }
    bodies.push(with("display_name", json!(null)));
    for password in [
        "p",
        &"x".repeat(256),
        &"x".repeat(257),
        &"é".repeat(256),
        "a\nb",
        "",
    ] {
        bodies.push(with("meeting_password", json!(password)));
    }
    bodies.push(with("meeting_password", json!(null)));
    bodies.push(with(
        "meeting_url",
        json!("http://us02web.zoom.us/j/81234567890"),
    ));
    bodies.push(with(
        "meeting_url",
        json!(format!("https://zoom.us/j/8{}", "1".repeat(2100))),
    ));
    bodies.push(with("recording_enabled", json!(true)));
    bodies.push(with("recording_enabled", json!("yes")));
    bodies.push(with("deploy", json!("no")));
    bodies.push(with("lobby", json!(true)));
    let mut missing = base_body();
    missing.as_object_mut().unwrap().remove("meeting_url");
    bodies.push(missing);
    bodies.push(json!([]));
    bodies
}

async fn document(app: &TestApp) -> Value {
    expect_json(
        app.authed(Method::GET, "/openapi.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_service_accepts_exactly_the_bodies_the_document_accepts() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    let document = document(&app).await;
    let body_schema = &document["paths"]["/v1/bots"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let bodies = validator(&document, body_schema);
    let mut disagreements = Vec::new();
    for body in candidate_bodies() {
        let documented = bodies.is_valid(&body);
        let response = app.create(&body).await;
        let status = response.status().as_u16();
        let accepted = (200..300).contains(&status);
        assert!(status < 500, "{body} answered {status}");
        if documented != accepted {
            disagreements.push(format!(
                "{body}: the document {} it, the service answered {status}: {}",
                if documented { "allows" } else { "refuses" },
                response.text().await.unwrap_or_default()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_service_accepts_exactly_the_headers_and_queries_the_document_accepts() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    let document = document(&app).await;
    let mut disagreements = Vec::new();

    let create = &document["paths"]["/v1/bots"]["post"];
    let key_schema = parameter_schema(create, "Idempotency-Key");
    let keys = validator(&document, &key_schema);
    for (n, key) in ["k", "a b", &"x".repeat(255), &"x".repeat(256), "~!{}"]
        .into_iter()
        .enumerate()
    {
        let documented = keys.is_valid(&json!(key));
        let mut body = base_body();
        body["display_name"] = json!(format!("key {n}"));
        let response = app
            .authed(Method::POST, "/v1/bots")
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let accepted = response.status().is_success();
        if documented != accepted {
            disagreements.push(format!(
                "Idempotency-Key {key:?}: the document {} it, the service answered {}",
                if documented { "allows" } else { "refuses" },
                response.status()
            ));
        }
    }

    let list = &document["paths"]["/v1/bots"]["get"];
    let queries: [(&str, &[&str]); 3] = [
        ("limit", &["0", "1", "500", "501", "abc", "-1", "50"]),
        (
            "platform",
            &["aws", "coolify", "local", "AWS", "fake", "mesos", ""],
        ),
        ("status", &["running", "RUNNING", "pending", "gone", ""]),
    ];
    for (name, values) in queries {
        let schema = parameter_schema(list, name);
        let check = validator(&document, &schema);
        for value in values {
            let documented = check.is_valid(&typed(&schema, value));
            let response = app
                .authed(Method::GET, "/v1/bots")
                .query(&[(name, value)])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(status < 500, "{name}={value} answered {status}");
            let accepted = response.status().is_success();
            if documented != accepted {
                disagreements.push(format!(
                    "{name}={value:?}: the document {} it, the service answered {status}",
                    if documented { "allows" } else { "refuses" },
                ));
            }
        }
    }

    let get = &document["paths"]["/v1/bots/{id}"]["get"];
    let id_schema = parameter_schema(get, "id");
    let ids = validator(&document, &id_schema);
    for id in [
        "1",
        "0",
        "-1",
        "9223372036854775807",
        "9223372036854775808",
        "x",
    ] {
        let documented = ids.is_valid(&typed(&id_schema, id));
        let response = app
            .authed(Method::GET, &format!("/v1/bots/{id}"))
            .send()
            .await
            .unwrap();
        // A valid id of a bot that does not exist is 404, not a refusal.
        let refused_as_invalid = response.status().as_u16() == 400;
        if documented == refused_as_invalid {
            disagreements.push(format!(
                "bot id {id}: the document {} it, the service answered {}",
                if documented { "allows" } else { "refuses" },
                response.status()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    app.shutdown().await;
}
