//! The OpenAPI document: valid OpenAPI 3 in structure, the same from the
//! server and the CLI, and listing exactly the routes the server answers.

use std::collections::BTreeSet;
use std::sync::Arc;

use deployment::api::{Access, route_table};
use platform_core::testkit::FakePlatform;
use reqwest::Method;
use serde_json::Value;

use crate::support::{BIN, expect_json, spawn_fake, zoom_request};

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    out.push(inner.as_str().expect("a $ref is a string").to_owned());
                } else {
                    refs(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Resolves a local JSON pointer reference (`#/components/schemas/Bot`).
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn the_document_is_openapi_3_and_every_reference_resolves() {
    let document = serde_json::to_value(deployment::api::openapi()).unwrap();
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert!(
        document["info"]["title"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    let description = document["info"]["description"].as_str().unwrap();
    for code in [
        "pool_exhausted",
        "invalid_meeting_url",
        "bot_not_found",
        "illegal_transition",
    ] {
        assert!(
            description.contains(&format!("`{code}`")),
            "{code} undocumented"
        );
    }
    let paths = document["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        for (method, operation) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                assert!(status.parse::<u16>().is_ok(), "{method} {path} {status}");
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status}"
                );
            }
            // Path parameters are declared.
            for name in path
                .split('{')
                .skip(1)
                .map(|s| s.split('}').next().unwrap())
            {
                let declared = operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
                assert!(declared, "{method} {path} does not declare {name}");
            }
            if let Some(security) = operation["security"].as_array() {
                for requirement in security {
                    for scheme in requirement.as_object().unwrap().keys() {
                        assert!(
                            document["components"]["securitySchemes"][scheme].is_object(),
                            "{scheme} is not declared"
                        );
                    }
                }
            }
        }
    }
    let mut references = Vec::new();
    refs(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        assert!(
            resolve(&document, &reference).is_some(),
            "{reference} does not resolve"
        );
    }
}

#[test]
fn the_router_and_the_document_list_the_same_routes_with_the_same_access() {
    let document = serde_json::to_value(deployment::api::openapi()).unwrap();
    let table = route_table();
    let answered: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(answered.len(), table.len(), "a route is listed twice");
    let documented = documented_routes(&document);
    let undocumented: Vec<_> = answered.difference(&documented).collect();
    let unanswered: Vec<_> = documented.difference(&answered).collect();
    assert!(
        undocumented.is_empty(),
        "answered but not documented: {undocumented:?}"
    );
    assert!(
        unanswered.is_empty(),
        "documented but not answered: {unanswered:?}"
    );
    for route in &table {
        let operation = &document["paths"][route.path][route.method.as_str().to_lowercase()];
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        assert_eq!(
            secured,
            route.access == Access::Bearer,
            "{} {} is documented with the wrong access",
            route.method,
            route.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_answers_every_documented_route_and_serves_the_document() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    let bot = expect_json(app.create(&zoom_request(1)).await, 201).await;
    let id = bot["id"].as_u64().unwrap();
    for route in route_table() {
        let path = route.path.replace("{id}", &id.to_string());
        let mut request = app.authed(route.method.clone(), &path);
        if route.method == Method::POST && route.path == "/v1/bots" {
            request = request.json(&zoom_request(2));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert!(
            status != 404 && status != 405 && status < 500,
            "{} {path} answered {status}: {}",
            route.method,
            response.text().await.unwrap_or_default()
        );
    }
    let served = expect_json(
        app.authed(Method::GET, "/openapi.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        served,
        serde_json::to_value(deployment::api::openapi()).unwrap()
    );
    // `meeboter-deploy openapi` prints the same document, needing no
    // configuration at all.
    let output = std::process::Command::new(BIN)
        .arg("openapi")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, served);
    app.shutdown().await;
}
