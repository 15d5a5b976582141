//! What this process remembers about the claims it served: the deployment a
//! start queued, whether a stop was asked for, a deployment's final outcome,
//! and one lock per slot.
//!
//! None of it is needed for correctness after a restart (the slot store and
//! Coolify are the sources of truth); it saves API calls and makes statuses
//! sharper: `stopping` right after a stop, the exact deployment of a claim
//! instead of the application's newest one. Entries are keyed by slot, so
//! there are never more of them than slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::claim::SlotClaim;

/// How a claim's deployment ended, once it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeploymentOutcome {
    /// It finished: the container was started.
    Finished,
    /// It failed, with the reason shown to the operator.
    Failed(String),
    /// It was cancelled in Coolify.
    Cancelled(String),
    /// Coolify answered the start with a deployment it never created (its
    /// queue was full).
    NeverQueued(String),
}

/// What is remembered about the current claim of one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClaimRecord {
    /// The claim.
    pub claim: SlotClaim,
    /// The deploy attempt that started it, once started.
    pub started_attempt: Option<u32>,
    /// The deployment the start queued, when Coolify said.
    pub deployment_uuid: Option<String>,
    /// Whether `stop_bot` was called for it.
    pub stop_requested: bool,
    /// How its deployment ended, once known.
    pub outcome: Option<DeploymentOutcome>,
}

/// The per-process memory of claims.
#[derive(Debug, Default)]
pub(crate) struct ClaimLedger {
    records: Mutex<HashMap<String, ClaimRecord>>,
    slot_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ClaimLedger {
    fn records(&self) -> MutexGuard<'_, HashMap<String, ClaimRecord>> {
        // Plain data, valid after any panic.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock that serialises deploy, stop and cleanup of one slot in this
    /// process, so a cleanup never interleaves with the next bot's deploy.
    pub(crate) fn slot_lock(&self, application_uuid: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.slot_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(application_uuid.to_owned())
            .or_default()
            .clone()
    }

    /// The record of `claim`, if it is the one remembered for its slot.
    pub(crate) fn get(&self, claim: &SlotClaim) -> Option<ClaimRecord> {
        self.records()
            .get(&claim.application_uuid)
            .filter(|r| r.claim == *claim)
            .cloned()
    }

    /// Remembers that `attempt` of `claim` was started, replacing whatever
    /// was remembered about the slot.
    pub(crate) fn record_start(
        &self,
        claim: &SlotClaim,
        attempt: u32,
        deployment_uuid: Option<String>,
    ) {
        self.records().insert(
            claim.application_uuid.clone(),
            ClaimRecord {
                claim: claim.clone(),
                started_attempt: Some(attempt),
                deployment_uuid,
                stop_requested: false,
                outcome: None,
            },
        );
    }

    /// Remembers that a stop was asked for.
    pub(crate) fn record_stop(&self, claim: &SlotClaim) {
        self.records()
            .entry(claim.application_uuid.clone())
            .and_modify(|r| {
                if r.claim == *claim {
                    r.stop_requested = true;
                }
            })
            .or_insert_with(|| ClaimRecord {
                claim: claim.clone(),
                started_attempt: None,
                deployment_uuid: None,
                stop_requested: true,
                outcome: None,
            });
    }

    /// Remembers how the claim's deployment ended.
    pub(crate) fn record_outcome(&self, claim: &SlotClaim, outcome: DeploymentOutcome) {
        let mut records = self.records();
        let record = records
            .entry(claim.application_uuid.clone())
            .or_insert_with(|| ClaimRecord {
                claim: claim.clone(),
                started_attempt: None,
                deployment_uuid: None,
                stop_requested: false,
                outcome: None,
            });
        if record.claim == *claim {
            record.outcome = Some(outcome);
        }
    }

    /// Forgets the claim (its slot was released or failed).
    pub(crate) fn forget(&self, claim: &SlotClaim) {
        let mut records = self.records();
        if records
            .get(&claim.application_uuid)
            .is_some_and(|r| r.claim == *claim)
        {
            records.remove(&claim.application_uuid);
        }
    }
}

#[cfg(test)]
mod tests {
    use platform_core::BotId;

    use super::*;

    #[test]
    fn a_newer_claim_of_the_slot_replaces_the_older_one() {
        let ledger = ClaimLedger::default();
        let old = SlotClaim::new("app1", BotId(1));
        let new = SlotClaim::new("app1", BotId(2));
        ledger.record_start(&old, 1, Some("dep-1".into()));
        ledger.record_start(&new, 1, None);
        assert_eq!(ledger.get(&old), None);
        assert_eq!(ledger.get(&new).unwrap().started_attempt, Some(1));
        // Stale writes do not touch the current claim.
        ledger.record_stop(&old);
        ledger.record_outcome(&old, DeploymentOutcome::Finished);
        ledger.forget(&old);
        let current = ledger.get(&new).unwrap();
        assert!(!current.stop_requested);
        assert_eq!(current.outcome, None);
        ledger.record_stop(&new);
        assert!(ledger.get(&new).unwrap().stop_requested);
        ledger.forget(&new);
        assert_eq!(ledger.get(&new), None);
    }

    #[test]
    fn one_lock_per_slot() {
        let ledger = ClaimLedger::default();
        assert!(Arc::ptr_eq(&ledger.slot_lock("a"), &ledger.slot_lock("a")));
        assert!(!Arc::ptr_eq(&ledger.slot_lock("a"), &ledger.slot_lock("b")));
    }
}
