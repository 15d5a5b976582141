//! The pods this process deleted, so one that is gone afterwards reads as
//! `stopped` rather than `unknown`.
//!
//! Kept in memory: after a restart a pod gone for whatever reason reads as
//! `unknown`, and the service, which recorded its own stop, finishes it on
//! that evidence. Entries are forgotten after [`REMEMBER_FOR`], far longer
//! than any stop takes to be confirmed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long a deletion is remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(6 * 3600);

/// Pod identifiers this process deleted, with when.
#[derive(Debug, Default)]
pub(crate) struct DeletedPods {
    deleted: Mutex<HashMap<String, Instant>>,
}

impl DeletedPods {
    fn deleted(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.deleted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This process asked for the pod `id` to be deleted.
    pub(crate) fn record(&self, id: &str) {
        let mut deleted = self.deleted();
        let now = Instant::now();
        deleted.retain(|_, at| now.saturating_duration_since(*at) < REMEMBER_FOR);
        deleted.insert(id.to_owned(), now);
    }

    /// Whether this process deleted the pod `id`.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.deleted().contains_key(id)
    }
}
