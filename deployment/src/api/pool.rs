//! `GET /v1/pool`: the warm pools' slots, and how many bots are in each
//! state.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use platform_core::{MeetingPlatform, Slot, SlotState};
use serde::Serialize;
use time::OffsetDateTime;

use super::errors::{ApiError, ErrorBody};
use super::state::ApiState;
use crate::bot::BotState;
use crate::service::{PoolSummary, SlotCounts};

/// One slot of a warm pool.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SlotView {
    /// The slot's identifier on the platform (a Coolify application UUID).
    pub slot_id: String,
    /// The meeting platform its image serves.
    pub meeting_platform: MeetingPlatform,
    /// `idle`, `claimed` or `failed`.
    #[schema(example = "idle")]
    pub state: &'static str,
    /// The bot holding it, when claimed.
    pub bot_id: Option<u64>,
    /// Why it was taken out of service, when failed.
    pub reason: Option<String>,
    /// Where a bot in it can be reached, if known.
    pub connection_url: Option<String>,
    /// When its state last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl SlotView {
    fn of(slot: Slot) -> Self {
        let (bot_id, reason) = match &slot.state {
            SlotState::Idle => (None, None),
            SlotState::Claimed { bot_id } => (Some(bot_id.0), None),
            SlotState::Failed { reason } => (None, Some(reason.clone())),
        };
        Self {
            slot_id: slot.slot_id,
            meeting_platform: slot.meeting_platform,
            state: slot.state.as_str(),
            bot_id,
            reason,
            connection_url: slot.connection_url,
            updated_at: OffsetDateTime::from(slot.updated_at),
        }
    }
}

/// One warm pool.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PoolResponseEntry {
    /// The pool's name.
    pub pool: String,
    /// Slot counts per meeting platform.
    pub by_meeting_platform: BTreeMap<MeetingPlatform, SlotCounts>,
    /// Every slot.
    pub slots: Vec<SlotView>,
}

/// The pools of this service's platform and its bots by state.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PoolResponse {
    /// The platform this service runs.
    pub platform: &'static str,
    /// Its warm pools (none for platforms without one, such as `aws` and
    /// `local`).
    pub pools: Vec<PoolResponseEntry>,
    /// How many of this platform's bots are in each state.
    pub bots_by_status: BTreeMap<BotState, u64>,
}

impl PoolResponse {
    /// The wire form of the service's summary.
    pub fn of(summary: PoolSummary) -> Self {
        Self {
            platform: summary.platform,
            pools: summary
                .pools
                .into_iter()
                .map(|pool| PoolResponseEntry {
                    pool: pool.pool,
                    by_meeting_platform: pool.by_meeting_platform,
                    slots: pool.slots.into_iter().map(SlotView::of).collect(),
                })
                .collect(),
            bots_by_status: summary.bots_by_status,
        }
    }
}

/// The warm pools' slots and how many bots are in each state.
#[utoipa::path(
    get,
    path = "/v1/pool",
    tag = "service",
    responses(
        (status = 200, description = "Pools and bot counts", body = PoolResponse),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn pool_summary(State(state): State<ApiState>) -> Result<Json<PoolResponse>, ApiError> {
    Ok(Json(PoolResponse::of(
        state.service().pool_summary().await?,
    )))
}
