//! The `K8S_MAX_BOTS` cap: how many bot pods of this installation hold
//! capacity (starting, running or terminating), known from the last full
//! list and this process's own creations since.
//!
//! Counting with a LIST before every deploy would cost two requests per
//! deploy at a thousand bots; instead every status sweep (one LIST per 500
//! bots, every reconciler pass) refreshes the count, a deploy lists first
//! only when the count is older than [`FRESH_FOR`], and a deploy reserves
//! its place under a lock, so concurrent deploys of this process never
//! overshoot. Replicas do not see each other's reservations until their
//! next list: a ResourceQuota on `pods` is the cluster-wide hard cap, and
//! its refusal reads as the same "no capacity".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a list's count is trusted for a deploy: the reconciler's
/// default pass interval, so a busy service never lists for a deploy.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(10);

/// The pods that hold capacity, by identifier.
#[derive(Debug)]
pub(crate) struct CapacityLedger {
    max: Option<usize>,
    state: Mutex<LedgerState>,
}

#[derive(Debug, Default)]
struct LedgerState {
    /// Pod identifier → when this process reserved it (or first saw it).
    live: HashMap<String, Instant>,
    listed_at: Option<Instant>,
}

/// A deploy that would pass the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtCapacity {
    pub(crate) live: usize,
    pub(crate) max: usize,
}

impl CapacityLedger {
    /// A ledger for at most `max` pods (`None`: no cap, nothing counted).
    pub(crate) fn new(max: Option<usize>) -> Self {
        Self {
            max,
            state: Mutex::new(LedgerState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LedgerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a deploy needs a list first: there is a cap and no list in
    /// the last [`FRESH_FOR`].
    pub(crate) fn needs_list(&self) -> bool {
        self.max.is_some()
            && self
                .state()
                .listed_at
                .is_none_or(|at| at.elapsed() > FRESH_FOR)
    }

    /// A list that started at `started` found these pods holding capacity.
    /// Reservations made after the list started stay: the list may have
    /// missed them.
    pub(crate) fn observe(&self, started: Instant, live: impl IntoIterator<Item = String>) {
        if self.max.is_none() {
            return;
        }
        let mut state = self.state();
        let mut fresh: HashMap<String, Instant> = state
            .live
            .drain()
            .filter(|(_, reserved)| *reserved > started)
            .collect();
        for id in live {
            fresh.entry(id).or_insert(started);
        }
        state.live = fresh;
        state.listed_at = Some(started);
    }

    /// Reserves a place for the pod `id`, unless the cap is reached. A pod
    /// already counted (a repeated deploy) keeps its place.
    pub(crate) fn reserve(&self, id: &str) -> Result<(), AtCapacity> {
        let Some(max) = self.max else {
            return Ok(());
        };
        let mut state = self.state();
        if state.live.contains_key(id) {
            return Ok(());
        }
        if state.live.len() >= max {
            return Err(AtCapacity {
                live: state.live.len(),
                max,
            });
        }
        state.live.insert(id.to_owned(), Instant::now());
        Ok(())
    }

    /// The pod `id` holds nothing any more (it is gone, or its creation
    /// provably failed).
    pub(crate) fn release(&self, id: &str) {
        if self.max.is_some() {
            self.state().live.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn reservations_stop_at_the_cap_and_survive_a_list_that_missed_them() {
        let ledger = CapacityLedger::new(Some(2));
        assert!(ledger.needs_list());
        let list_started = Instant::now();
        tokio::time::advance(Duration::from_millis(5)).await;
        ledger.reserve("ns/a").unwrap();
        // The list began before "a" was created and did not see it.
        ledger.observe(list_started, ["ns/b".to_owned()]);
        assert!(!ledger.needs_list());
        assert_eq!(ledger.reserve("ns/c"), Err(AtCapacity { live: 2, max: 2 }));
        assert_eq!(
            ledger.reserve("ns/a"),
            Ok(()),
            "a repeated deploy keeps its place"
        );
        ledger.release("ns/b");
        assert_eq!(ledger.reserve("ns/c"), Ok(()));
        tokio::time::advance(FRESH_FOR + Duration::from_secs(1)).await;
        assert!(ledger.needs_list());
        // A later list that no longer sees "c" drops it.
        ledger.observe(Instant::now(), ["ns/a".to_owned()]);
        assert_eq!(ledger.reserve("ns/d"), Ok(()));
    }

    #[test]
    fn without_a_cap_nothing_is_counted() {
        let ledger = CapacityLedger::new(None);
        assert!(!ledger.needs_list());
        for i in 0..1000 {
            assert_eq!(ledger.reserve(&format!("ns/{i}")), Ok(()));
        }
    }
}
