//! `GET /v1/platforms`: what this binary can run, and what it runs.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::errors::{ApiError, ErrorBody};
use super::state::ApiState;
use crate::platforms::registry;
use crate::service::PlatformsView;

/// One compiled-in platform.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformView {
    /// Its name (`coolify`, `aws`, `local`).
    pub name: &'static str,
    /// One line about it.
    pub description: &'static str,
    /// The cargo feature of `deployment` that brings it in.
    pub feature: &'static str,
    /// Whether this service places bots on it (it is in the priority
    /// list).
    pub active: bool,
}

/// The platforms of this binary.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformsResponse {
    /// The first platform of the priority list (the only one when one is
    /// configured).
    pub active: &'static str,
    /// Each platform's bots against its cap (counted in the database, so
    /// the same from every replica), the queue, and who runs the platform
    /// sweep.
    pub placement: PlatformsView,
    /// Every compiled-in platform, sorted by name.
    pub platforms: Vec<PlatformView>,
    /// The cargo features this binary was built with.
    pub features: Vec<&'static str>,
    /// The service's version.
    pub version: &'static str,
}

/// The compiled-in platforms and the active one.
#[utoipa::path(
    get,
    path = "/v1/platforms",
    tag = "service",
    responses(
        (status = 200, description = "The compiled-in platforms, the placement order with each platform's used/cap and queued bots, and the queue", body = PlatformsResponse),
        (status = 503, description = "`database_unavailable`: the database did not answer", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_platforms(
    State(state): State<ApiState>,
) -> Result<Json<PlatformsResponse>, ApiError> {
    let active = state.service().platform_name();
    let held = state.service().platform_names();
    let placement = state.service().platforms_view().await?;
    let platforms = registry()?
        .platforms()
        .iter()
        .map(|descriptor| PlatformView {
            name: descriptor.name,
            description: descriptor.description,
            feature: descriptor.feature,
            active: held.contains(&descriptor.name),
        })
        .collect();
    Ok(Json(PlatformsResponse {
        active,
        placement,
        platforms,
        features: crate::ENABLED_FEATURES.to_vec(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}
