//! The in-memory slot store passes the slot-store suite; a racy store fails it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use platform_core::testkit;
use platform_core::{
    BotId, InMemorySlotStore, MeetingPlatform, NewSlot, Result, Slot, SlotState, SlotStore,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_store_passes_the_suite() {
    testkit::run_slot_store_suite(Arc::new(InMemorySlotStore::new()), "mem")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_concurrent_claims_on_m_slots_give_exactly_m() {
    for (slots, tasks) in [(1, 2), (20, 50), (40, 100)] {
        let store: Arc<dyn SlotStore> = Arc::new(InMemorySlotStore::new());
        testkit::claims_are_exclusive(store, &format!("pool-{slots}"), slots, tasks)
            .await
            .unwrap();
    }
}

/// A store that reads, yields, then writes: the classic lost-update race.
#[derive(Default)]
struct RacyStore {
    slots: std::sync::Mutex<BTreeMap<String, Slot>>,
}

#[async_trait]
impl SlotStore for RacyStore {
    async fn add_slot(&self, slot: NewSlot) -> Result<Slot> {
        let s = Slot {
            pool: slot.pool,
            slot_id: slot.slot_id.clone(),
            meeting_platform: slot.meeting_platform,
            connection_url: None,
            state: SlotState::Idle,
            updated_at: SystemTime::now(),
        };
        self.slots.lock().unwrap().insert(slot.slot_id, s.clone());
        Ok(s)
    }

    async fn claim_slot(
        &self,
        pool: &str,
        mp: MeetingPlatform,
        bot: BotId,
    ) -> Result<Option<Slot>> {
        let idle = self
            .slots
            .lock()
            .unwrap()
            .values()
            .find(|s| s.pool == pool && s.meeting_platform == mp && s.state == SlotState::Idle)
            .cloned();
        tokio::task::yield_now().await;
        Ok(idle.map(|mut slot| {
            slot.state = SlotState::Claimed { bot_id: bot };
            self.slots
                .lock()
                .unwrap()
                .insert(slot.slot_id.clone(), slot.clone());
            slot
        }))
    }

    async fn release_slot(&self, _: &str, _: &str, _: BotId) -> Result<bool> {
        Ok(false)
    }

    async fn mark_slot_failed(&self, _: &str, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }

    async fn recover_slot(&self, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }

    async fn remove_slot(&self, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }

    async fn get_slot(&self, _: &str, id: &str) -> Result<Option<Slot>> {
        Ok(self.slots.lock().unwrap().get(id).cloned())
    }

    async fn list_slots(&self, pool: &str) -> Result<Vec<Slot>> {
        Ok(self
            .slots
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.pool == pool)
            .cloned()
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_racy_store_is_caught_handing_one_slot_to_two_bots() {
    let store: Arc<dyn SlotStore> = Arc::new(RacyStore::default());
    let violation = testkit::claims_are_exclusive(store, "racy", 5, 50)
        .await
        .unwrap_err();
    assert_eq!(violation.check, "claims_are_exclusive");
}
