//! The warm pools at a glance, and returning a failed slot to its pool.

use std::collections::BTreeMap;

use platform_core::{MeetingPlatform, Slot, SlotState, SlotStore};
use serde::Serialize;

use super::BotService;

use crate::bot::BotState;
use crate::error::{ServiceError, ServiceResult};

/// Slot counts of one meeting platform in one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SlotCounts {
    /// Free slots.
    pub idle: u64,
    /// Slots held by a bot.
    pub claimed: u64,
    /// Slots taken out of service.
    pub failed: u64,
}

/// One pool of warm slots.
#[derive(Clone, Debug, Serialize)]
pub struct PoolView {
    /// The pool's name.
    pub pool: String,
    /// Counts per meeting platform.
    pub by_meeting_platform: BTreeMap<MeetingPlatform, SlotCounts>,
    /// Every slot.
    pub slots: Vec<Slot>,
}

/// Pools and bots at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct PoolSummary {
    /// The platform this service runs.
    pub platform: &'static str,
    /// Its pools (none for platforms without a warm pool).
    pub pools: Vec<PoolView>,
    /// How many of this platform's bots are in each state.
    pub bots_by_status: BTreeMap<BotState, u64>,
    /// How the platform's pool grows, for a pool with no slots yet (`None`
    /// for a platform without a warm pool).
    pub pool_note: Option<String>,
}

impl BotService {
    /// The platform whose warm pool `pool` shows: the first of the
    /// priority list with a pool, else the first.
    fn pool_platform(&self) -> &crate::platform_set::ListedPlatform {
        self.inner
            .platforms
            .iter()
            .find(|p| p.calls.platform().describe_pool().is_some())
            .unwrap_or_else(|| self.inner.platforms.first())
    }

    /// Returns a failed slot of this service's pool to idle, once the
    /// operator has fixed what made it fail (a broken image, a deleted
    /// application recreated). The next bot that claims it writes its own
    /// environment and starts it.
    pub async fn recover_slot(&self, slot_id: &str) -> ServiceResult<Slot> {
        let store = self.store_ref();
        let pool = self.pool_platform().name();
        let refuse = |state: &'static str| ServiceError::SlotNotRecoverable {
            pool,
            slot: slot_id.chars().take(128).collect(),
            state,
        };
        match SlotStore::get_slot(store, pool, slot_id).await? {
            None => return Err(refuse("unknown")),
            Some(slot) if !matches!(slot.state, SlotState::Failed { .. }) => {
                return Err(refuse(slot.state.as_str()));
            }
            Some(_) => {}
        }
        if !SlotStore::recover_slot(store, pool, slot_id).await? {
            // Another process recovered or changed it in between.
            let state = SlotStore::get_slot(store, pool, slot_id)
                .await?
                .map_or("unknown", |s| s.state.as_str());
            return Err(refuse(state));
        }
        tracing::info!(pool, slot = slot_id, "slot recovered by the operator");
        SlotStore::get_slot(store, pool, slot_id)
            .await?
            .ok_or_else(|| refuse("unknown"))
    }

    /// The warm pools and how many bots are in each state.
    pub async fn pool_summary(&self) -> ServiceResult<PoolSummary> {
        let store = self.store_ref();
        let mut pools = Vec::new();
        for pool in store.pool_names().await? {
            let slots = SlotStore::list_slots(store, &pool).await?;
            let mut by_meeting_platform: BTreeMap<MeetingPlatform, SlotCounts> = BTreeMap::new();
            for slot in &slots {
                let counts = by_meeting_platform
                    .entry(slot.meeting_platform)
                    .or_default();
                match slot.state {
                    SlotState::Idle => counts.idle += 1,
                    SlotState::Claimed { .. } => counts.claimed += 1,
                    SlotState::Failed { .. } => counts.failed += 1,
                }
            }
            pools.push(PoolView {
                pool,
                by_meeting_platform,
                slots,
            });
        }
        let platform = self.pool_platform();
        let bots_by_status = store
            .count_by_status(Some(platform.name()))
            .await?
            .into_iter()
            .collect();
        Ok(PoolSummary {
            pool_note: platform.calls.platform().describe_pool(),
            platform: platform.name(),
            pools,
            bots_by_status,
        })
    }
}
