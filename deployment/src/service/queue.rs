//! The durable queue: bots no platform had room for wait in the database
//! as `queued` and are placed in order (priority, then age) as soon as
//! capacity frees — a bot ends in this process, or any replica's reconciler
//! pass — by every replica at once without taking a bot twice
//! ([`Store::claim_next_queued`](crate::Store::claim_next_queued)), their
//! platform calls run by the [deploy workers](super::workers). A bot
//! that waits longer than `QUEUE_TIMEOUT` fails as `queue_timeout`.

use std::sync::atomic::Ordering;

use platform_core::{BotId, MeetingPlatform};
use serde::Serialize;

use super::BotService;
use super::placement::Step;
use super::workers::JobResult;

use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::store::{Transition, now_ms};

/// What one drain of the queue did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// Queued bots placed on a platform.
    pub placed: usize,
    /// Queued bots looked at that still found no room.
    pub still_queued: usize,
    /// Queued bots whose deploy failed (refused by the platform).
    pub failed: usize,
}

/// The reason a bot that waited too long fails with; the code clients
/// match on is its first word.
pub const QUEUE_TIMEOUT_CODE: &str = "queue_timeout";

impl BotService {
    /// Places queued bots, in order, while platforms have room: claims the
    /// next queued bot no other process holds, places it, and goes on until
    /// the queue is empty or every platform is full.
    /// [`ServiceOptions::drain_concurrency`](crate::ServiceOptions) bots
    /// are placed at once.
    pub async fn drain_queue(&self) -> ServiceResult<DrainReport> {
        let owner = self.inner.instance.as_str();
        // A bot that found no room keeps this drain's lease until the drain
        // ends, so the drain does not take it again.
        let horizon = self.lease_until();
        let mut report = DrainReport::default();
        let mut passed_over: Vec<BotId> = Vec::new();
        let mut no_room_for: Vec<&'static str> = Vec::new();
        // Spawned, so a deploy holding a database transaction keeps going
        // while this loop waits for the next claim (SQLite's one writer).
        let mut deploys = tokio::task::JoinSet::new();
        let limit = self.inner.options.drain_concurrency.max(1);
        let mut failure = None;
        let mut seen = std::collections::HashSet::new();
        let requeued = std::sync::atomic::AtomicBool::new(false);
        loop {
            // The placement decisions are taken one at a time, in queue
            // order; only the platform calls run side by side.
            while deploys.len() >= limit {
                if let Some(Ok(done)) = deploys.join_next().await {
                    self.count_deploy(done, &mut report, &mut failure, &requeued)
                        .await;
                }
            }
            let claimed = match self
                .store_ref()
                .claim_next_queued(owner, horizon, &no_room_for)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    failure = Some(error.into());
                    break;
                }
            };
            let Some(record) = claimed else { break };
            let id = record.id();
            if !seen.insert(id) || requeued.load(Ordering::Relaxed) {
                // A platform answered "no capacity" for a bot of this drain,
                // which went back to the queue: the caps promise more room
                // than the platforms have. Stop here; the next pass, or the
                // next bot to end, drains again.
                passed_over.push(id);
                break;
            }
            let meeting = record
                .meeting_platform_name()
                .parse::<MeetingPlatform>()
                .ok();
            let mut passed = Vec::new();
            match self.choose_platform(&record, &[], &mut passed).await {
                Ok(Step::Placed(placed, platform)) => {
                    let handle = match self.hand_over_placed(placed, platform).await {
                        Ok(handle) => handle,
                        Err(error) => {
                            failure = Some(error);
                            break;
                        }
                    };
                    deploys.spawn(async move {
                        let outcome = match handle {
                            Some(handle) => handle.finished().await,
                            None => Ok(None),
                        };
                        (id, outcome)
                    });
                }
                Ok(Step::Queued(_) | Step::Moved) => {
                    self.store_ref().release_lease(id, owner).await?
                }
                Ok(Step::NoRoom { all_full }) => {
                    report.still_queued += 1;
                    passed_over.push(id);
                    if all_full {
                        break;
                    }
                    if let Some(meeting) = meeting
                        && !no_room_for.contains(&meeting.as_str())
                    {
                        no_room_for.push(meeting.as_str());
                    }
                }
                Err(error) => {
                    self.store_ref().release_lease(id, owner).await?;
                    failure = Some(error);
                    break;
                }
            }
        }
        while let Some(Ok(done)) = deploys.join_next().await {
            self.count_deploy(done, &mut report, &mut failure, &requeued)
                .await;
        }
        for id in passed_over {
            self.store_ref().release_lease(id, owner).await?;
        }
        if let Some(error) = failure {
            return Err(error);
        }
        if report.placed > 0 || report.failed > 0 {
            tracing::info!(?report, "queue drained");
        }
        Ok(report)
    }

    async fn count_deploy(
        &self,
        (id, outcome): (BotId, JobResult),
        report: &mut DrainReport,
        failure: &mut Option<crate::ServiceError>,
        requeued: &std::sync::atomic::AtomicBool,
    ) {
        match outcome.map(|record| record.map(|r| r.state())) {
            Ok(Some(Ok(BotState::Failed))) => report.failed += 1,
            Ok(Some(Ok(BotState::Queued))) => {
                report.still_queued += 1;
                requeued.store(true, Ordering::Relaxed);
            }
            Ok(Some(_)) => report.placed += 1,
            Ok(None) => {}
            Err(crate::ServiceError::DeployFailed { .. }) => report.failed += 1,
            Err(error) => {
                tracing::warn!(bot_id = %id, error = %error, "placing a queued bot failed; the next pass retries");
                failure.get_or_insert(error);
            }
        }
        // The lease was the placement's, then the job's, which gave it back.
    }

    /// Capacity freed in this process (a bot ended): drains the queue in
    /// the background, unless a drain runs already. Outside a runtime (a
    /// one-shot CLI command finishing), the next reconciler pass drains.
    pub(crate) fn capacity_freed(&self) {
        if self.inner.background_drain.load(Ordering::Acquire) {
            self.drain_in_background();
        }
    }

    /// Drains the queue in the background, unless a drain runs already
    /// (or there is no runtime to run it).
    pub(crate) fn drain_in_background(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let service = self.clone();
        runtime.spawn(async move {
            if let Err(error) = service.drain_queue().await {
                tracing::warn!(error = %error, "draining the queue failed; the next reconciler pass drains it");
            }
            service.inner.draining.store(false, Ordering::Release);
        });
    }

    /// Fails queued bots that waited longer than `QUEUE_TIMEOUT`, with
    /// the reason `queue_timeout: …`. Returns how many.
    pub async fn expire_queue(&self) -> ServiceResult<usize> {
        let timeout = self.inner.options.queue_timeout;
        let before =
            now_ms().saturating_sub(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        let mut expired = 0;
        loop {
            let overdue = self.store_ref().queued_before(before, 200).await?;
            let full_page = overdue.len() == 200;
            let mut moved_any = false;
            for record in overdue {
                let reason = format!(
                    "{QUEUE_TIMEOUT_CODE}: waited more than QUEUE_TIMEOUT ({} s) in the queue and no platform had room ({})",
                    timeout.as_secs(),
                    record.reason.as_deref().unwrap_or("no reason recorded")
                );
                let t = Transition::new(
                    record.id(),
                    BotState::Queued,
                    record.attempt(),
                    BotState::Failed,
                    &reason,
                );
                if self.move_bot(t).await?.is_some() {
                    expired += 1;
                    moved_any = true;
                    self.inner.metrics.record_queue_timeout();
                }
            }
            if !full_page || !moved_any {
                break;
            }
        }
        Ok(expired)
    }
}
