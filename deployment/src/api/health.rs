//! `GET /healthz` (the process answers) and `GET /readyz` (the database and
//! the platform answer). Open to all: load balancers and orchestrators call
//! them without a token.

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

/// Whether the database and the platform answer, each checked once.
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
    let readiness = state.service().readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}
