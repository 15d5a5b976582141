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

mod bodies;
mod limiter;
mod routes;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use limiter::Limiter;

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

/// The fake server's state, shared by every mock mounted with it.
#[derive(Clone, Debug, Default)]
pub struct FakeCoolify {
    state: Arc<Mutex<State>>,
}

/// `meeboter-slot-<installation>-<platform>-<nnn>`.
pub fn slot_name(installation: &str, platform: &str, number: u32) -> String {
    format!("meeboter-slot-{installation}-{platform}-{number:03}")
}

/// The time every record of the fake was made.
fn now_string() -> &'static str {
    "2026-11-27T06:00:00.000000Z"
}

/// A Laravel JSON message with `code`.
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
        self.state().limiter = Some(Limiter::new(per_minute));
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
