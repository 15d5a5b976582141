//! A stateful fake of the Coolify API, answering like the real server does
//! (`/work/shared/coolify/API-NOTES.md`): its JSON bodies, its
//! `state:health` status strings, its error bodies, the `{"data": […]}` bulk
//! env body, `start` without `deployment_uuid` when one is already queued,
//! `{count, deployments}` for an application's deployments, 422 on unknown
//! fields, and `X-RateLimit-*` headers on every answer.
//!
//! Mounted as a catch-all (low priority); tests mount narrower mocks in
//! front of it with `.expect(n)` for the calls that stand for side effects,
//! answering through the same fake so the state stays whole.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The token the fake accepts.
pub const TOKEN: &str = "7|meeboter-test-token-s3cr3t";
/// The installation the tests' platforms run for, unless a test says.
pub const INSTALLATION: &str = "5f3a9c01d2e4b687";
/// The project that holds the slots.
pub const PROJECT: &str = "proj-meeboter";
/// The production environment of the project.
pub const PRODUCTION_ENV_ID: i64 = 11;
/// The staging environment of the project.
pub const STAGING_ENV_ID: i64 = 12;
/// An environment of another project.
pub const OTHER_PROJECT_ENV_ID: i64 = 99;

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

/// An environment variable of an application, as the fake holds it.
#[derive(Clone, Debug)]
pub struct FakeEnv {
    /// Its uuid.
    pub uuid: String,
    /// Its name.
    pub key: String,
    /// Its value.
    pub value: String,
    /// A preview-deployment variable.
    pub is_preview: bool,
    /// Written without interpolation.
    pub is_literal: bool,
    /// Shown once in the UI (a secret).
    pub is_shown_once: bool,
}

/// An application, as the fake holds it.
#[derive(Clone, Debug)]
pub struct FakeApp {
    /// Its uuid.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// The environment it belongs to.
    pub environment_id: i64,
    /// Its `state:health` status.
    pub status: String,
    /// Its domain.
    pub fqdn: Option<String>,
    /// Its image name.
    pub image: String,
    /// Its image tag.
    pub tag: String,
    /// Its environment variables.
    pub envs: Vec<FakeEnv>,
    /// The next deployments of this app fail.
    pub deployments_fail: bool,
}

/// A deployment of an application, as the fake holds it.
#[derive(Clone, Debug)]
pub struct FakeDeployment {
    /// Its uuid.
    pub uuid: String,
    /// The application it deploys.
    pub app_uuid: String,
    /// That application's name.
    pub app_name: String,
    /// `queued`, `in_progress`, `finished` or `failed`.
    pub status: String,
    /// When it was queued.
    pub queued_at: Instant,
}

/// When an injected fault answers.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this without doing anything.
    Before(ResponseTemplate),
    /// Do the work, then answer this (the answer is "lost").
    After(ResponseTemplate),
}

#[derive(Debug, Default)]
struct State {
    apps: BTreeMap<String, FakeApp>,
    deployments: Vec<FakeDeployment>,
    next: u64,
    /// How long a deployment stays queued/in progress.
    deployment_time: Duration,
    /// `start` answers with a deployment uuid but queues nothing (full queue).
    queue_full: bool,
    faults: Vec<(String, String, VecDeque<Fault>)>,
    arrivals: Vec<(String, String, Instant)>,
    /// Laravel's `throttle:api`, when enforced.
    limiter: Option<Limiter>,
    /// Requests answered 429 by the enforced limit.
    throttled: u32,
}

/// Laravel's per-user API limit: a fixed window that starts with the first
/// request counted in it and lasts a minute; past `per_minute` requests in
/// it, 429 with `Retry-After` (the seconds until it ends).
#[derive(Debug)]
struct Limiter {
    per_minute: u32,
    started: Option<Instant>,
    hits: u32,
}

/// Laravel's rate-limit window.
const LIMIT_WINDOW: Duration = Duration::from_secs(60);

impl Limiter {
    /// Counts a request arriving at `now`: `Ok(remaining)` when it is let
    /// through, `Err(retry_after_secs)` past the limit.
    fn hit(&mut self, now: Instant) -> Result<u32, u64> {
        if self
            .started
            .is_some_and(|started| now.saturating_duration_since(started) >= LIMIT_WINDOW)
        {
            self.started = None;
            self.hits = 0;
        }
        let started = *self.started.get_or_insert(now);
        if self.hits >= self.per_minute {
            let left = LIMIT_WINDOW.saturating_sub(now.saturating_duration_since(started));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        self.hits += 1;
        Ok(self.per_minute - self.hits)
    }
}

/// The fake server's state, shared by every mock mounted with it.
#[derive(Clone, Debug, Default)]
pub struct FakeCoolify {
    state: Arc<Mutex<State>>,
}

/// `meeboter-slot-<installation>-<platform>-<nnn>`.
pub fn slot_name(installation: &str, platform: &str, number: u32) -> String {
    format!("meeboter-slot-{installation}-{platform}-{number:03}")
}

/// Fields `PATCH /applications/{uuid}` accepts (a subset of the real ones).
const UPDATE_FIELDS: &[&str] = &["name", "description", "domains", "ports_exposes"];

fn now_string() -> &'static str {
    "2026-11-27T06:00:00.000000Z"
}

fn message(code: u16, text: &str) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({ "message": text }))
}

impl FakeCoolify {
    /// A Coolify with no application.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_uuid(state: &mut State, prefix: &str) -> String {
        state.next += 1;
        format!("{prefix}{:06}", state.next)
    }

    /// Adds an application as the real server would hold it.
    pub fn add_app(&self, uuid: &str, name: &str, environment_id: i64) -> &Self {
        self.state().apps.insert(
            uuid.to_owned(),
            FakeApp {
                uuid: uuid.to_owned(),
                name: name.to_owned(),
                environment_id,
                status: "exited:unhealthy".into(),
                fqdn: Some(format!("http://{uuid}.10.0.0.5.sslip.io")),
                image: "ghcr.io/acme/bot".into(),
                tag: "1.0.0".into(),
                envs: Vec::new(),
                deployments_fail: false,
            },
        );
        self
    }

    /// Adds `count` slot applications of the tests' installation,
    /// `meeboter-slot-<INSTALLATION>-<platform>-001…`, in the production
    /// environment, with uuids `<platform>slot001…`.
    pub fn add_slots(&self, platform: &str, count: u32) -> Vec<String> {
        (1..=count)
            .map(|n| {
                let uuid = format!("{platform}slot{n:03}");
                self.add_app(
                    &uuid,
                    &slot_name(INSTALLATION, platform, n),
                    PRODUCTION_ENV_ID,
                );
                uuid
            })
            .collect()
    }

    /// Adds `count` slot applications of `installation` in the production
    /// environment, with uuids `<installation>-<platform>-001…`.
    pub fn add_slots_of(&self, installation: &str, platform: &str, count: u32) -> Vec<String> {
        (1..=count)
            .map(|n| {
                let uuid = format!("{installation}-{platform}-{n:03}");
                self.add_app(
                    &uuid,
                    &slot_name(installation, platform, n),
                    PRODUCTION_ENV_ID,
                );
                uuid
            })
            .collect()
    }

    /// Sets an env var on an app, as a previous bot's deploy would have.
    pub fn set_env(&self, app: &str, key: &str, value: &str) {
        let mut state = self.state();
        let uuid = Self::next_uuid(&mut state, "env");
        let app = state.apps.get_mut(app).expect("app exists");
        app.envs.push(FakeEnv {
            uuid,
            key: key.into(),
            value: value.into(),
            is_preview: false,
            is_literal: true,
            is_shown_once: false,
        });
    }

    /// Renames an app, as an operator would in the UI.
    pub fn rename_app(&self, uuid: &str, name: &str) {
        if let Some(app) = self.state().apps.get_mut(uuid) {
            app.name = name.to_owned();
        }
    }

    /// Deletes an application, as an operator would in the UI.
    pub fn remove_app(&self, uuid: &str) {
        self.state().apps.remove(uuid);
    }

    /// An application by uuid.
    pub fn app(&self, uuid: &str) -> Option<FakeApp> {
        self.state().apps.get(uuid).cloned()
    }

    /// Every application.
    pub fn apps(&self) -> Vec<FakeApp> {
        self.state().apps.values().cloned().collect()
    }

    /// The value of an application's (non-preview) variable.
    pub fn env_value(&self, app: &str, key: &str) -> Option<String> {
        self.app(app)?
            .envs
            .iter()
            .find(|e| e.key == key && !e.is_preview)
            .map(|e| e.value.clone())
    }

    /// Sets an application's `state:health` status, as its container
    /// would.
    pub fn set_status(&self, app: &str, status: &str) {
        if let Some(app) = self.state().apps.get_mut(app) {
            app.status = status.into();
        }
    }

    /// Deployments of `app` fail from now on.
    pub fn fail_deployments_of(&self, app: &str) {
        if let Some(app) = self.state().apps.get_mut(app) {
            app.deployments_fail = true;
        }
    }

    /// How long a deployment stays queued or in progress from now on.
    pub fn set_deployment_time(&self, time: Duration) {
        self.state().deployment_time = time;
    }

    /// Whether `start` queues nothing (while still answering with a
    /// deployment uuid).
    pub fn set_queue_full(&self, full: bool) {
        self.state().queue_full = full;
    }

    /// Every deployment ever queued.
    pub fn deployments(&self) -> Vec<FakeDeployment> {
        self.state().deployments.clone()
    }

    /// The next calls of `method path` (path without `/api/v1`; a trailing
    /// `*` matches any rest) get these faults, in order.
    pub fn inject(&self, method: &str, path: &str, faults: impl IntoIterator<Item = Fault>) {
        self.state()
            .faults
            .push((method.into(), path.into(), faults.into_iter().collect()));
    }

    /// When each call of `method path` arrived.
    pub fn arrivals(&self, method: &str, path: &str) -> Vec<Instant> {
        self.state()
            .arrivals
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .map(|(_, _, at)| *at)
            .collect()
    }

    /// Enforces Coolify's API rate limit from now on, as Laravel's
    /// `throttle:api` does: `per_minute` requests in a one-minute window
    /// that starts with the first of them, then 429 "Too Many Attempts."
    /// with `Retry-After` until the window ends; every answer carries the
    /// real `X-RateLimit-Limit` and `X-RateLimit-Remaining`.
    pub fn enforce_rate_limit(&self, per_minute: u32) {
        self.state().limiter = Some(Limiter {
            per_minute,
            started: None,
            hits: 0,
        });
    }

    /// How many requests the enforced rate limit answered 429.
    pub fn throttled(&self) -> u32 {
        self.state().throttled
    }

    /// Every request: its method, its path (without `/api/v1`) and when it
    /// arrived, in arrival order.
    pub fn all_arrivals(&self) -> Vec<(String, String, Instant)> {
        self.state().arrivals.clone()
    }

    /// Mounts the fake as the catch-all answer of `server`.
    pub async fn mount(&self, server: &MockServer) {
        Mock::given(any())
            .respond_with(self.clone())
            .with_priority(u8::MAX)
            .named("fake coolify")
            .mount(server)
            .await;
    }

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

    fn app_json(app: &FakeApp) -> Value {
        json!({
            "uuid": app.uuid,
            "name": app.name,
            "description": null,
            "fqdn": app.fqdn,
            "status": app.status,
            "build_pack": "dockerimage",
            "docker_registry_image_name": app.image,
            "docker_registry_image_tag": app.tag,
            "ports_exposes": "3000",
            "environment_id": app.environment_id,
            "destination_type": "App\\Models\\StandaloneDocker",
            "destination_id": 1,
            "health_check_enabled": false,
            "created_at": now_string(),
            "updated_at": now_string(),
            "deleted_at": null,
        })
    }

    fn deployment_json(d: &FakeDeployment) -> Value {
        json!({
            "id": 1,
            "application_id": "3",
            "deployment_uuid": d.uuid,
            "pull_request_id": 0,
            "force_rebuild": false,
            "commit": "HEAD",
            "status": d.status,
            "is_webhook": false,
            "is_api": true,
            "created_at": now_string(),
            "updated_at": now_string(),
            "logs": "[]",
            "restart_only": false,
            "server_id": 0,
            "application_name": d.app_name,
            "server_name": "localhost",
            "deployment_url": format!("/project/{PROJECT}/environment/production/application/{}/deployment/{}", d.app_uuid, d.uuid),
        })
    }

    fn env_json(app_id: usize, env: &FakeEnv) -> Value {
        json!({
            "id": 1,
            "uuid": env.uuid,
            "resourceable_type": "App\\Models\\Application",
            "resourceable_id": app_id,
            "is_literal": env.is_literal,
            "is_multiline": false,
            "is_preview": env.is_preview,
            "is_runtime": true,
            "is_buildtime": false,
            "is_shared": false,
            "is_shown_once": env.is_shown_once,
            "key": env.key,
            "comment": null,
            "version": "4.3.11",
            "created_at": now_string(),
            "updated_at": now_string(),
        })
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
            ("GET", ["applications"]) => ResponseTemplate::new(200).set_body_json(Value::Array(
                state.apps.values().map(Self::app_json).collect(),
            )),
            ("POST", ["applications", "dockerimage"]) => self.create(state, request),
            ("GET", ["applications", uuid]) => match state.apps.get(*uuid) {
                Some(app) => ResponseTemplate::new(200).set_body_json(Self::app_json(app)),
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
                    app.envs.iter().map(|e| Self::env_json(index, e)).collect(),
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
                    .map(Self::deployment_json)
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
                    "deployments": of_app.iter().skip(skip).take(take).map(|d| Self::deployment_json(d)).collect::<Vec<_>>(),
                }))
            }
            ("GET", ["deployments", uuid]) => {
                match state.deployments.iter().find(|d| d.uuid == *uuid) {
                    Some(d) => ResponseTemplate::new(200).set_body_json(Self::deployment_json(d)),
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
            saved.iter().map(|e| Self::env_json(index, e)).collect(),
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

/// A 429 as Laravel's limiter sends it.
pub fn too_many_attempts(retry_after_secs: u64) -> ResponseTemplate {
    message(429, "Too Many Attempts.")
        .insert_header("Retry-After", retry_after_secs.to_string().as_str())
        .insert_header("X-RateLimit-Limit", "200")
        .insert_header("X-RateLimit-Remaining", "0")
}

/// A 5xx from the proxy in front of Coolify.
pub fn bad_gateway() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_raw(
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        "text/html",
    )
}

/// A Laravel server error.
pub fn server_error() -> ResponseTemplate {
    message(500, "Server Error")
}
