//! `GET /healthz` (the process answers) and `GET /readyz` (the database and
//! the platform answer). Open to all: load balancers and orchestrators call
//! them without a token.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::state::ApiState;
use crate::service::Readiness;

/// The liveness answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Whether the process answers. Checks nothing else, so a slow database
/// never gets a healthy process restarted.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process answers", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long a readiness answer is reused. `/readyz` is open to anyone, and
/// each check calls the platform's API (an ECS or Coolify request): without
/// this, a flood of probes would spend the API quota deploys need.
pub const READINESS_TTL: Duration = Duration::from_secs(2);

/// Whether the database and the platform answer, each checked at most once
/// per [`READINESS_TTL`] however many probes arrive.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Both answer", body = Readiness),
        (status = 503, description = "One or both do not; `database.error` or `platform.error` says why", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    // Held across the check: concurrent probes wait for one check instead
    // of each starting their own.
    let mut cached = state.readiness_cache().lock().await;
    let readiness = match cached.as_ref() {
        Some((at, readiness)) if at.elapsed() < READINESS_TTL => readiness.clone(),
        _ => {
            let readiness = state.service().readiness().await;
            *cached = Some((Instant::now(), readiness.clone()));
            readiness
        }
    };
    drop(cached);
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
