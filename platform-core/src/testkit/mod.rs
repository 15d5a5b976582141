//! What every platform plugin's tests use: the conformance suite, the slot
//! store suite, an in-memory fake platform, and a measure of pacers.
//!
//! The suites are plain async functions over trait objects that return a
//! [`Violation`] instead of panicking, so a test can also show that a broken
//! implementation is caught.

mod conformance;
mod fake;
mod pacing;
mod slot_store;

use std::fmt;

pub use conformance::{
    Fixtures, deploy_status_stop_cleanup, deploy_survives_transient_failure,
    redeploy_of_same_attempt_returns_same_bot, run_suite, statuses_of_many,
    stop_and_cleanup_are_idempotent, unknown_identifier_is_not_an_error,
};
pub use fake::{FakeCalls, FakePlatform};
pub use pacing::release_times;
pub use slot_store::{
    add_is_idempotent, claim_is_idempotent_per_bot, claims_are_exclusive,
    claims_respect_meeting_platform, failed_slots_are_not_handed_out, release_only_by_holder,
    run_slot_store_suite,
};

/// A broken promise found by a suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The check that failed.
    pub check: &'static str,
    /// What was expected and what happened.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance check `{}` failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for Violation {}
