//! The fake's routes: what each request does to its state and answers,
//! behind the checks every request passes (JSON accepted, the token, the
//! rate limit, injected faults).

use std::time::Instant;

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use super::bodies::{app_json, deployment_json, env_json};
use super::*;

/// Fields `POST /applications/dockerimage` accepts (a subset of the real
/// 79 that covers everything a client might send).
const CREATE_FIELDS: &[&str] = &[
    "project_uuid",
    "server_uuid",
    "environment_name",
    "environment_uuid",
    "docker_registry_image_name",
    "docker_registry_image_tag",
    "ports_exposes",
    "destination_uuid",
    "name",
    "description",
    "domains",
    "instant_deploy",
    "health_check_enabled",
    "limits_memory",
    "limits_cpus",
    "tags",
    "autogenerate_domain",
];

/// Fields of one bulk env item the real server accepts.
const ENV_FIELDS: &[&str] = &[
    "key",
    "value",
    "is_preview",
    "is_literal",
    "is_multiline",
    "is_shown_once",
    "is_runtime",
    "is_buildtime",
    "comment",
];

/// Fields `PATCH /applications/{uuid}` accepts (a subset of the real ones).
const UPDATE_FIELDS: &[&str] = &["name", "description", "domains", "ports_exposes"];

impl FakeCoolify {
    /// Moves deployments along: after `deployment_time` a deployment is
    /// finished (the app runs) or failed (it stays down).
    fn progress(state: &mut State) {
        let time = state.deployment_time;
        let State {
            deployments, apps, ..
        } = state;
        for deployment in deployments.iter_mut() {
            if deployment.status != "queued" && deployment.status != "in_progress" {
                continue;
            }
            if deployment.queued_at.elapsed() < time {
                deployment.status = "in_progress".into();
                continue;
            }
            let Some(app) = apps.get_mut(&deployment.app_uuid) else {
                deployment.status = "failed".into();
                continue;
            };
            if app.deployments_fail {
                deployment.status = "failed".into();
                app.status = "exited:unhealthy".into();
            } else {
                deployment.status = "finished".into();
                // The deploy job writes bare `running`; the mutator adds
                // `:unhealthy` until the next status poll.
                app.status = "running:unhealthy".into();
            }
        }
    }
    fn handle(&self, state: &mut State, request: &Request, path: &str) -> ResponseTemplate {
        let method = request.method.as_str();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("GET", ["version"]) => {
                // Served as text/html, like Laravel does; a client that
                // accepts only JSON cannot be satisfied.
                if !accepts(request, "text/html") {
                    return message(406, "Not Acceptable.");
                }
                ResponseTemplate::new(200).set_body_raw("4.3.11", "text/html; charset=UTF-8")
            }
            ("GET", ["projects"]) => ResponseTemplate::new(200).set_body_json(json!([
                {"id": 1, "uuid": PROJECT, "name": "Meeboter", "description": null},
                {"id": 2, "uuid": "proj-website", "name": "Website", "description": null},
            ])),
            ("GET", ["servers"]) => ResponseTemplate::new(200).set_body_json(json!([
                {"id": 0, "uuid": "srv-main", "name": "localhost", "ip": "host.docker.internal"},
            ])),
            ("GET", ["servers", uuid]) => {
                if *uuid != "srv-main" {
                    return message(404, "Server not found.");
                }
                ResponseTemplate::new(200).set_body_json(
                    json!({"id": 0, "uuid": "srv-main", "name": "localhost", "ip": "host.docker.internal"}),
                )
            }
            ("PATCH", ["applications", uuid]) => self.update(state, uuid, request),
            ("GET", ["projects", project, "environments"]) => {
                if *project != PROJECT {
                    return message(404, "Project not found.");
                }
                ResponseTemplate::new(200).set_body_json(json!([
                    {"id": PRODUCTION_ENV_ID, "name": "production", "project_id": 1, "created_at": now_string(), "updated_at": now_string(), "description": null},
                    {"id": STAGING_ENV_ID, "name": "staging", "project_id": 1, "created_at": now_string(), "updated_at": now_string(), "description": null},
                ]))
            }
            ("GET", ["applications"]) => ResponseTemplate::new(200)
                .set_body_json(Value::Array(state.apps.values().map(app_json).collect())),
            ("POST", ["applications", "dockerimage"]) => self.create(state, request),
            ("GET", ["applications", uuid]) => match state.apps.get(*uuid) {
                Some(app) => ResponseTemplate::new(200).set_body_json(app_json(app)),
                None => message(404, "Application not found."),
            },
            ("DELETE", ["applications", uuid]) => match state.apps.remove(*uuid) {
                Some(_) => message(200, "Application deletion request queued."),
                None => message(404, "Application not found."),
            },
            ("GET", ["applications", _, "start" | "stop" | "restart"]) => {
                message(405, "This endpoint has changed to a POST request.")
                    .insert_header("Allow", "POST")
            }
            ("POST", ["applications", uuid, "start"]) => self.start(state, uuid),
            ("POST", ["applications", uuid, "stop"]) => match state.apps.get_mut(*uuid) {
                Some(app) => {
                    app.status = "exited:unhealthy".into();
                    message(200, "Application stopping request queued.")
                }
                None => message(404, "Application not found."),
            },
            ("GET", ["applications", uuid, "envs"]) => {
                let Some((index, app)) = state
                    .apps
                    .values()
                    .enumerate()
                    .find(|(_, a)| a.uuid == *uuid)
                else {
                    return message(404, "Application not found.");
                };
                ResponseTemplate::new(200).set_body_json(Value::Array(
                    app.envs.iter().map(|e| env_json(index, e)).collect(),
                ))
            }
            ("PATCH", ["applications", uuid, "envs", "bulk"]) => self.bulk(state, uuid, request),
            ("DELETE", ["applications", uuid, "envs", env_uuid]) => {
                let Some(app) = state.apps.get_mut(*uuid) else {
                    return message(404, "Application not found.");
                };
                let before = app.envs.len();
                app.envs.retain(|e| e.uuid != *env_uuid);
                if app.envs.len() < before {
                    message(200, "Environment variable deleted.")
                } else {
                    message(404, "Environment variable not found.")
                }
            }
            ("GET", ["deployments"]) => ResponseTemplate::new(200).set_body_json(Value::Array(
                state
                    .deployments
                    .iter()
                    .filter(|d| d.status == "queued" || d.status == "in_progress")
                    .map(deployment_json)
                    .collect(),
            )),
            ("GET", ["deployments", "applications", uuid]) => {
                let query: BTreeMap<String, String> =
                    request.url.query_pairs().into_owned().collect();
                let skip: usize = query.get("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
                let take: usize = query.get("take").and_then(|s| s.parse().ok()).unwrap_or(10);
                let of_app: Vec<&FakeDeployment> = state
                    .deployments
                    .iter()
                    .rev()
                    .filter(|d| d.app_uuid == *uuid)
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "count": of_app.len(),
                    "deployments": of_app.iter().skip(skip).take(take).map(|d| deployment_json(d)).collect::<Vec<_>>(),
                }))
            }
            ("GET", ["deployments", uuid]) => {
                match state.deployments.iter().find(|d| d.uuid == *uuid) {
                    Some(d) => ResponseTemplate::new(200).set_body_json(deployment_json(d)),
                    None => message(404, "Deployment not found."),
                }
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({
                "message": format!("The route api/v1{path} could not be found.")
            })),
        }
    }

    fn create(&self, state: &mut State, request: &Request) -> ResponseTemplate {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"message": "Invalid request.", "error": "Invalid JSON."}));
        };
        let unknown: serde_json::Map<String, Value> = body
            .keys()
            .filter(|k| !CREATE_FIELDS.contains(&k.as_str()))
            .map(|k| (k.clone(), json!(["This field is not allowed."])))
            .collect();
        if !unknown.is_empty() {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Validation failed.", "errors": unknown}));
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut missing = serde_json::Map::new();
        for field in [
            "docker_registry_image_name",
            "ports_exposes",
            "server_uuid",
            "project_uuid",
        ] {
            if text(field).is_none() {
                missing.insert(
                    field.into(),
                    json!([format!(
                        "The {} field is required.",
                        field.replace('_', " ")
                    )]),
                );
            }
        }
        if !missing.is_empty() {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"message": "Validation failed.", "errors": missing}));
        }
        if text("project_uuid").as_deref() != Some(PROJECT) {
            return message(404, "Project not found.");
        }
        let environment_id = match text("environment_name").as_deref() {
            Some("production") => PRODUCTION_ENV_ID,
            Some("staging") => STAGING_ENV_ID,
            Some(_) => return message(404, "Environment not found."),
            None => {
                return message(
                    422,
                    "You need to provide at least one of environment_name or environment_uuid.",
                );
            }
        };
        let uuid = Self::next_uuid(state, "new");
        let name = text("name").unwrap_or_else(|| format!("docker-image-{uuid}"));
        state.apps.insert(
            uuid.clone(),
            FakeApp {
                uuid: uuid.clone(),
                name,
                environment_id,
                status: "exited:unhealthy".into(),
                fqdn: Some(format!("http://{uuid}.10.0.0.5.sslip.io")),
                image: text("docker_registry_image_name").unwrap_or_default(),
                tag: text("docker_registry_image_tag").unwrap_or_else(|| "latest".into()),
                envs: Vec::new(),
                deployments_fail: false,
            },
        );
        ResponseTemplate::new(201).set_body_json(json!({ "uuid": uuid }))
    }

    fn update(&self, state: &mut State, uuid: &str, request: &Request) -> ResponseTemplate {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"message": "Invalid request.", "error": "Invalid JSON."}));
        };
        if let Some(bad) = body.keys().find(|k| !UPDATE_FIELDS.contains(&k.as_str())) {
            return ResponseTemplate::new(422).set_body_json(
                json!({"message": "Validation failed.", "errors": {bad.clone(): ["This field is not allowed."]}}),
            );
        }
        let Some(app) = state.apps.get_mut(uuid) else {
            return message(404, "Application not found.");
        };
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            app.name = name.to_owned();
        }
        ResponseTemplate::new(200).set_body_json(json!({ "uuid": uuid }))
    }

    fn start(&self, state: &mut State, uuid: &str) -> ResponseTemplate {
        let Some(app) = state.apps.get(uuid) else {
            return message(404, "Application not found.");
        };
        let app_name = app.name.clone();
        let pending = state
            .deployments
            .iter()
            .any(|d| d.app_uuid == uuid && (d.status == "queued" || d.status == "in_progress"));
        if pending {
            return message(200, "Deployment already queued for this commit.");
        }
        let deployment_uuid = Self::next_uuid(state, "dep");
        if !state.queue_full {
            state.deployments.push(FakeDeployment {
                uuid: deployment_uuid.clone(),
                app_uuid: uuid.to_owned(),
                app_name,
                status: "queued".into(),
                queued_at: Instant::now(),
            });
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "message": "Deployment request queued.",
            "deployment_uuid": deployment_uuid,
        }))
    }

    fn bulk(&self, state: &mut State, uuid: &str, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"message": "Invalid request.", "error": "Invalid JSON."}));
        };
        let items = match body.get("data").and_then(Value::as_array) {
            Some(items) if !items.is_empty() => items.clone(),
            _ => return message(400, "Bulk data is required."),
        };
        let next_uuids: Vec<String> = (0..items.len())
            .map(|_| Self::next_uuid(state, "env"))
            .collect();
        let Some((index, app)) = state
            .apps
            .values_mut()
            .enumerate()
            .find(|(_, a)| a.uuid == uuid)
        else {
            return message(404, "Application not found.");
        };
        let mut saved = Vec::new();
        // Item by item, stopping at the first bad one: earlier items stay
        // saved, as on the real server.
        for (item, new_uuid) in items.iter().zip(next_uuids) {
            let Some(fields) = item.as_object() else {
                return ResponseTemplate::new(422)
                    .set_body_json(json!({"message": "Validation failed.", "errors": {"data": ["Each item must be an object."]}}));
            };
            if let Some(bad) = fields.keys().find(|k| !ENV_FIELDS.contains(&k.as_str())) {
                return ResponseTemplate::new(422).set_body_json(
                    json!({"message": "Validation failed.", "errors": {bad.clone(): ["This field is not allowed."]}}),
                );
            }
            let key = fields
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned();
            let valid_key = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid_key {
                return ResponseTemplate::new(422).set_body_json(
                    json!({"message": "Validation failed.", "errors": {"key": ["The key field format is invalid."]}}),
                );
            }
            let value = fields
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let flag = |k: &str| fields.get(k).and_then(Value::as_bool).unwrap_or(false);
            let is_preview = flag("is_preview");
            match app
                .envs
                .iter_mut()
                .find(|e| e.key == key && e.is_preview == is_preview)
            {
                Some(existing) => {
                    existing.value = value;
                    existing.is_literal = flag("is_literal");
                    existing.is_shown_once = flag("is_shown_once");
                    saved.push(existing.clone());
                }
                None => {
                    let env = FakeEnv {
                        uuid: new_uuid,
                        key,
                        value,
                        is_preview,
                        is_literal: flag("is_literal"),
                        is_shown_once: flag("is_shown_once"),
                    };
                    saved.push(env.clone());
                    app.envs.push(env);
                }
            }
        }
        ResponseTemplate::new(201).set_body_json(Value::Array(
            saved.iter().map(|e| env_json(index, e)).collect(),
        ))
    }
}

impl Respond for FakeCoolify {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state();
        let Some(path) = request.url.path().strip_prefix("/api/v1") else {
            return ResponseTemplate::new(404);
        };
        let path = path.to_owned();
        let method = request.method.as_str().to_owned();
        state
            .arrivals
            .push((method.clone(), path.clone(), Instant::now()));
        let accepts_json = request
            .headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if !accepts_json {
            // Laravel renders errors as HTML unless JSON is asked for.
            return ResponseTemplate::new(401)
                .set_body_raw("<!DOCTYPE html><html>Unauthenticated</html>", "text/html");
        }
        let authorised = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {TOKEN}").as_str());
        if !authorised {
            return message(401, "Unauthenticated.");
        }
        let remaining = match state
            .limiter
            .as_mut()
            .map(|l| (l.per_minute, l.hit(Instant::now())))
        {
            None => None,
            Some((limit, Err(retry_after))) => {
                state.throttled += 1;
                return too_many_attempts(retry_after)
                    .insert_header("X-RateLimit-Limit", limit.to_string().as_str());
            }
            Some((limit, Ok(remaining))) => Some((limit, remaining)),
        };
        let fault = state
            .faults
            .iter_mut()
            .find(|(m, p, faults)| {
                let path_matches = match p.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => *p == path,
                };
                *m == method && path_matches && !faults.is_empty()
            })
            .and_then(|(_, _, faults)| faults.pop_front());
        Self::progress(&mut state);
        let response = match fault {
            Some(Fault::Before(response)) => response,
            Some(Fault::After(response)) => {
                drop(self.handle(&mut state, request, &path));
                response
            }
            None => self.handle(&mut state, request, &path),
        };
        let (limit, remaining) = remaining.unwrap_or((200, 199));
        response
            .insert_header("X-RateLimit-Limit", limit.to_string().as_str())
            .insert_header("X-RateLimit-Remaining", remaining.to_string().as_str())
    }
}
/// Whether the request's `Accept` allows `content_type` (by type, its
/// `type/*` or `*/*`, at a quality above 0).
fn accepts(request: &Request, content_type: &str) -> bool {
    let Some(accept) = request.headers.get("accept").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let wildcard = format!("{}/*", content_type.split('/').next().unwrap_or_default());
    accept.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|p| p.replace(' ', "") == "q=0");
        !refused && (media == content_type || media == wildcard || media == "*/*")
    })
}
