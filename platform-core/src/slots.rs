//! The slot-store port: where pool-based platforms keep their warm slots.
//!
//! A *slot* is one reusable bot runtime of one meeting platform (a Coolify
//! application). The store is the single source of truth for which bot holds
//! which slot, so it must make claiming atomic: two concurrent claims never
//! get the same slot, even from two service processes (the `deployment`
//! crate's database store uses a conditional update for that).

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::config::BotId;
use crate::error::Result;
use crate::meeting::MeetingPlatform;

/// What a slot is doing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SlotState {
    /// Free to be claimed.
    Idle,
    /// Held by a bot.
    Claimed {
        /// The bot holding it.
        bot_id: BotId,
    },
    /// Not handed out until recovered: its last start failed, or it is broken.
    Failed {
        /// Why.
        reason: String,
    },
}

impl SlotState {
    /// `idle`, `claimed` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Claimed { .. } => "claimed",
            Self::Failed { .. } => "failed",
        }
    }
}

/// One slot of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// The pool it belongs to (by convention the platform's name).
    pub pool: String,
    /// The slot's identifier on the platform (a Coolify application UUID).
    pub slot_id: String,
    /// The meeting platform its image serves.
    pub meeting_platform: MeetingPlatform,
    /// Where a bot in this slot can be reached, if known.
    pub connection_url: Option<String>,
    /// What it is doing.
    #[serde(flatten)]
    pub state: SlotState,
    /// When its state last changed.
    pub updated_at: SystemTime,
}

/// A slot to add to a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSlot {
    /// The pool.
    pub pool: String,
    /// The slot's identifier on the platform.
    pub slot_id: String,
    /// The meeting platform its image serves.
    pub meeting_platform: MeetingPlatform,
    /// Where a bot in this slot can be reached, if known.
    pub connection_url: Option<String>,
}

/// Where pool-based platforms persist their slots.
///
/// Every method is atomic on its own. Errors are
/// [`Error::Unavailable`](crate::Error::Unavailable) (or similar) with
/// platform `slot-store`.
#[async_trait]
pub trait SlotStore: Send + Sync {
    /// Adds a slot as idle. Adding a slot that already exists changes nothing
    /// and returns it as it is (adopting existing slots at start-up is safe).
    async fn add_slot(&self, slot: NewSlot) -> Result<Slot>;

    /// Atomically claims an idle slot of `meeting_platform` in `pool` for
    /// `bot`. If `bot` already holds a slot in `pool`, returns that one (a
    /// repeated deploy after a crash gets the same slot). `None` when no
    /// slot is idle.
    async fn claim_slot(
        &self,
        pool: &str,
        meeting_platform: MeetingPlatform,
        bot: BotId,
    ) -> Result<Option<Slot>>;

    /// Returns the slot to idle if, and only if, `bot` holds it. Returns
    /// whether it did: releasing twice, or releasing a slot another bot now
    /// holds, is a harmless `false`.
    async fn release_slot(&self, pool: &str, slot_id: &str, bot: BotId) -> Result<bool>;

    /// Marks the slot failed with a reason, whoever held it; it is not handed
    /// out again until [`recover_slot`](Self::recover_slot). Returns whether
    /// the slot exists.
    async fn mark_slot_failed(&self, pool: &str, slot_id: &str, reason: &str) -> Result<bool>;

    /// Returns a failed slot to idle. Returns whether it was failed.
    async fn recover_slot(&self, pool: &str, slot_id: &str) -> Result<bool>;

    /// Removes a slot that is not claimed. Returns whether it was removed.
    async fn remove_slot(&self, pool: &str, slot_id: &str) -> Result<bool>;

    /// One slot.
    async fn get_slot(&self, pool: &str, slot_id: &str) -> Result<Option<Slot>>;

    /// Every slot of `pool`, sorted by slot id.
    async fn list_slots(&self, pool: &str) -> Result<Vec<Slot>>;
}

/// A slot store in memory: for tests and single-process use. Slots are lost
/// when the process ends.
#[derive(Default)]
pub struct InMemorySlotStore {
    slots: Mutex<BTreeMap<(String, String), Slot>>,
}

impl InMemorySlotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for InMemorySlotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemorySlotStore").finish_non_exhaustive()
    }
}

fn key(pool: &str, slot_id: &str) -> (String, String) {
    (pool.to_owned(), slot_id.to_owned())
}

#[async_trait]
impl SlotStore for InMemorySlotStore {
    async fn add_slot(&self, slot: NewSlot) -> Result<Slot> {
        let mut slots = self.slots.lock().await;
        let entry = slots
            .entry(key(&slot.pool, &slot.slot_id))
            .or_insert_with(|| Slot {
                pool: slot.pool,
                slot_id: slot.slot_id,
                meeting_platform: slot.meeting_platform,
                connection_url: slot.connection_url,
                state: SlotState::Idle,
                updated_at: SystemTime::now(),
            });
        Ok(entry.clone())
    }

    async fn claim_slot(
        &self,
        pool: &str,
        meeting_platform: MeetingPlatform,
        bot: BotId,
    ) -> Result<Option<Slot>> {
        let mut slots = self.slots.lock().await;
        let in_pool = |s: &&mut Slot| s.pool == pool;
        if let Some(held) = slots
            .values_mut()
            .filter(in_pool)
            .find(|s| s.state == SlotState::Claimed { bot_id: bot })
        {
            return Ok(Some(held.clone()));
        }
        // Least recently used first, so wear spreads over the pool.
        let chosen = slots
            .values_mut()
            .filter(|s| {
                s.pool == pool
                    && s.meeting_platform == meeting_platform
                    && s.state == SlotState::Idle
            })
            .min_by_key(|s| s.updated_at);
        Ok(chosen.map(|slot| {
            slot.state = SlotState::Claimed { bot_id: bot };
            slot.updated_at = SystemTime::now();
            slot.clone()
        }))
    }

    async fn release_slot(&self, pool: &str, slot_id: &str, bot: BotId) -> Result<bool> {
        let mut slots = self.slots.lock().await;
        match slots.get_mut(&key(pool, slot_id)) {
            Some(slot) if slot.state == (SlotState::Claimed { bot_id: bot }) => {
                slot.state = SlotState::Idle;
                slot.updated_at = SystemTime::now();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_slot_failed(&self, pool: &str, slot_id: &str, reason: &str) -> Result<bool> {
        let mut slots = self.slots.lock().await;
        Ok(slots
            .get_mut(&key(pool, slot_id))
            .map(|slot| {
                slot.state = SlotState::Failed {
                    reason: reason.to_owned(),
                };
                slot.updated_at = SystemTime::now();
            })
            .is_some())
    }

    async fn recover_slot(&self, pool: &str, slot_id: &str) -> Result<bool> {
        let mut slots = self.slots.lock().await;
        match slots.get_mut(&key(pool, slot_id)) {
            Some(slot) if matches!(slot.state, SlotState::Failed { .. }) => {
                slot.state = SlotState::Idle;
                slot.updated_at = SystemTime::now();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove_slot(&self, pool: &str, slot_id: &str) -> Result<bool> {
        let mut slots = self.slots.lock().await;
        let k = key(pool, slot_id);
        match slots.get(&k) {
            Some(slot) if !matches!(slot.state, SlotState::Claimed { .. }) => {
                slots.remove(&k);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_slot(&self, pool: &str, slot_id: &str) -> Result<Option<Slot>> {
        Ok(self.slots.lock().await.get(&key(pool, slot_id)).cloned())
    }

    async fn list_slots(&self, pool: &str) -> Result<Vec<Slot>> {
        Ok(self
            .slots
            .lock()
            .await
            .values()
            .filter(|s| s.pool == pool)
            .cloned()
            .collect())
    }
}
