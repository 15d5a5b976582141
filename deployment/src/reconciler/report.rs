//! What a reconciler pass did, counted.

use serde::Serialize;

use crate::service::{DueReport, WatchReport};

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Bots looked at.
    pub examined: usize,
    /// `deploying → running`.
    pub promoted: usize,
    /// Bots found ended (stopped or failed) by the platform.
    pub ended: usize,
    /// Deploys left without an answer (a crash, a lost answer) handed to
    /// the deploy workers to be called again with the same attempt.
    pub redriven_deploys: usize,
    /// Unfinished stops and cleanups handed to the deploy workers.
    pub handed_over: usize,
    /// Stops finished (counted when the pass waited for its hand-overs: a
    /// one-shot `reconcile`; under `serve` the workers finish them after
    /// the pass).
    pub finished_stops: usize,
    /// Deploys failed for passing the deploy timeout.
    pub timed_out: usize,
    /// Ended bots whose platform resources were released (the cleanups
    /// handed over counted only when the pass waited for them).
    pub cleaned_up: usize,
    /// Batch status calls that failed (no evidence taken from them).
    pub status_errors: usize,
    /// Pool slots still held by bots that ended and were cleaned up,
    /// given back.
    pub released_slots: usize,
    /// Bots whose handling failed (retried next pass).
    pub errors: usize,
    /// Queued bots failed for waiting longer than `QUEUE_TIMEOUT`.
    pub queue_timeouts: usize,
    /// Queued bots placed on a platform by this pass's drain.
    pub queue_placed: usize,
    /// Bots on platforms this service is not configured for, left alone.
    pub unconfigured: usize,
    /// Whether this process ran the platform sweep (it holds the sweep
    /// lease); when it does not, another process does.
    pub swept: bool,
    /// What the bot-protocol watchdog ended (heartbeat timeouts, overdue
    /// leaves, silent bots).
    pub watchdog: WatchReport,
    /// What this pass did with bots whose deploy was due (scheduled bots
    /// at their deploy time, creates a crash interrupted).
    pub due: DueReport,
}

impl ReconcileReport {
    /// Whether the pass moved a bot, released something or failed at
    /// something (as opposed to only looking).
    pub fn changed_something(&self) -> bool {
        let Self {
            examined: _,
            promoted,
            ended,
            redriven_deploys,
            handed_over,
            finished_stops,
            timed_out,
            cleaned_up,
            status_errors,
            released_slots,
            errors,
            queue_timeouts,
            queue_placed,
            unconfigured: _,
            swept: _,
            watchdog,
            due,
        } = *self;
        queue_timeouts
            + queue_placed
            + promoted
            + ended
            + redriven_deploys
            + handed_over
            + finished_stops
            + timed_out
            + cleaned_up
            + status_errors
            + released_slots
            + errors
            > 0
            || watchdog.changed_something()
            || due.changed_something()
    }

    pub(super) fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Nothing => {}
            Outcome::Promoted => self.promoted += 1,
            Outcome::Ended => self.ended += 1,
            Outcome::RedrivenDeploy => self.redriven_deploys += 1,
            Outcome::HandedOver => self.handed_over += 1,
            Outcome::FinishedStop => self.finished_stops += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::CleanedUp => self.cleaned_up += 1,
            Outcome::Error => self.errors += 1,
        }
    }
}

/// What the reconciler did with one bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Nothing,
    Promoted,
    Ended,
    RedrivenDeploy,
    HandedOver,
    FinishedStop,
    TimedOut,
    CleanedUp,
    Error,
}
