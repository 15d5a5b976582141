//! The reconciler: keeps the database true to the platform, and finishes
//! what a crash left half-done.
//!
//! Each pass walks every bot of this service's platform that is
//! `deploying`, `running` or `stopping`, or has ended with cleanup pending,
//! in batches of [`ServiceOptions::reconcile_batch`](crate::ServiceOptions):
//!
//! - one `get_bot_statuses` call per batch; a `deploying` bot the platform
//!   reports running becomes `running`; a bot the platform reports stopped
//!   or failed becomes `stopped`/`failed` with the platform's reason, and
//!   what it held is released;
//! - a `deploying` bot without an identifier (the process died between the
//!   intent and the platform's answer) is deployed again with the *same*
//!   attempt, which the platform contract makes idempotent;
//! - a `stopping` bot is stopped and cleaned up again (both idempotent);
//! - a deploy not running within the deploy timeout is failed and cleaned up;
//!   one the platform never answered is first asked for again (same
//!   attempt), so a bot the lost call started is released, not forgotten;
//! - only evidence moves a bot: an API error or an `unknown` status changes
//!   nothing (except past the deploy deadline);
//! - a pool slot still held by a bot that ended and was cleaned up more
//!   than [`ServiceOptions::orphan_slot_grace`](crate::ServiceOptions) ago
//!   is given back, so a platform that failed to release it leaks nothing;
//! - the bot-protocol [watchdog](crate::service::WatchReport) ends bots
//!   that went silent in a meeting for `HEARTBEAT_TIMEOUT`, did not leave
//!   within `LEAVE_GRACE` of a leave request, or (with
//!   `BOT_PROTOCOL_REQUIRED`) never spoke the protocol;
//! - idempotency keys older than
//!   [`ServiceOptions::idempotency_key_ttl`](crate::ServiceOptions) are
//!   forgotten.
//!
//! Several service processes may share one PostgreSQL database: each batch
//! is *leased* (`FOR UPDATE SKIP LOCKED` picks bots whose lease is free or
//! expired), so two reconcilers never act on the same bot at once, and a
//! request in flight holds its bot's lease so the reconciler leaves it
//! alone until the request's own time bound has passed.
//!
//! # Cadence
//!
//! A pass runs at start-up (to finish what a crash left) and then every
//! `RECONCILE_INTERVAL` (default 10 s). Ten seconds bounds how long an ended
//! bot keeps its slot or task unnoticed, and how long a `deploying` bot
//! waits to be shown `running`, while costing one batch status call per 100
//! active bots per pass — far below ECS's and Coolify's rate limits.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use platform_core::{BotId, BotStatus, PlatformId};
use serde::Serialize;
use tracing::Instrument;

use crate::bot::BotState;
use crate::error::{ServiceError, ServiceResult};
use crate::platform_set::ListedPlatform;
use crate::service::{AttemptBot, BotService, DeployCall, DueReport, WatchReport};
use crate::store::{BotRecord, Transition, now_ms};

/// How often `run_reconciler` claims due deploys (or each interval, when
/// that is shorter).
const SCHEDULER_TICK: Duration = Duration::from_secs(1);

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Bots looked at.
    pub examined: usize,
    /// `deploying → running`.
    pub promoted: usize,
    /// Bots found ended (stopped or failed) by the platform.
    pub ended: usize,
    /// Deploys called again after a crash (same attempt).
    pub redriven_deploys: usize,
    /// Stops finished.
    pub finished_stops: usize,
    /// Deploys failed for passing the deploy timeout.
    pub timed_out: usize,
    /// Ended bots whose platform resources were released.
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

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Nothing => {}
            Outcome::Promoted => self.promoted += 1,
            Outcome::Ended => self.ended += 1,
            Outcome::RedrivenDeploy => self.redriven_deploys += 1,
            Outcome::FinishedStop => self.finished_stops += 1,
            Outcome::TimedOut => self.timed_out += 1,
            Outcome::CleanedUp => self.cleaned_up += 1,
            Outcome::Error => self.errors += 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Nothing,
    Promoted,
    Ended,
    RedrivenDeploy,
    FinishedStop,
    TimedOut,
    CleanedUp,
    Error,
}

impl BotService {
    /// Runs one reconciler pass: fails queued bots past `QUEUE_TIMEOUT`;
    /// deploys the bots whose deploy is due (scheduled bots, creates a
    /// crash interrupted; see [`deploy_due`](Self::deploy_due)); when this
    /// process holds the [sweep lease](crate::sweep_lease), walks every bot
    /// that needs its platform, platform by platform in batches; then
    /// drains the queue into the capacity that freed.
    pub async fn reconcile_once(&self) -> ServiceResult<ReconcileReport> {
        let span = tracing::info_span!("reconcile");
        async {
            let mut report = ReconcileReport {
                queue_timeouts: self.expire_queue().await?,
                due: self.deploy_due().await?,
                ..ReconcileReport::default()
            };
            if self.hold_sweep_lease().await? {
                report.swept = true;
                for platform in self.inner.platforms.iter() {
                    self.sweep_platform(platform, &mut report).await?;
                }
                self.report_unconfigured(&mut report).await?;
                report.watchdog = self.watch_once().await?;
            }
            // Only the database is touched: every process may do it.
            let ttl = i64::try_from(self.inner.options.idempotency_key_ttl.as_millis())
                .unwrap_or(i64::MAX);
            self.store()
                .forget_idempotency_keys(now_ms().saturating_sub(ttl))
                .await?;
            report.queue_placed = self.drain_queue().await?.placed;
            // Only what changed is worth an operator's attention; a quiet
            // pass is a debug line.
            if report.changed_something() {
                tracing::info!(?report, "reconcile pass done");
            } else {
                tracing::debug!(?report, "reconcile pass done");
            }
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// One platform's part of the sweep: its bots in leased batches, one
    /// batch status call each, then its leaked slots.
    async fn sweep_platform(
        &self,
        platform: &ListedPlatform,
        report: &mut ReconcileReport,
    ) -> ServiceResult<()> {
        let span = tracing::info_span!("reconcile_platform", platform = platform.name());
        async {
            let owner = self.inner.instance.clone();
            let batch_size = self.inner.options.reconcile_batch.max(1);
            let mut after = BotId(0);
            loop {
                let batch = self
                    .store()
                    .lease_batch(
                        platform.name(),
                        &owner,
                        self.reconcile_lease_until(),
                        after,
                        batch_size,
                    )
                    .await?;
                let Some(last) = batch.last() else { break };
                after = last.id();
                let full_batch = batch.len() >= batch_size as usize;
                report.examined += batch.len();
                let statuses = self.batch_statuses(platform, &batch, report).await;
                let statuses = &statuses;
                let owner = &owner;
                let outcomes: Vec<Outcome> = futures::stream::iter(batch)
                    .map(|record| async move {
                        let id = record.id();
                        let outcome = self
                            .reconcile_bot(record, statuses.as_ref())
                            .instrument(tracing::info_span!("reconcile_bot", bot_id = %id))
                            .await;
                        if let Err(error) = self.store().release_lease(id, owner).await {
                            tracing::warn!(bot_id = %id, error = %error, "could not release the lease; it expires on its own");
                        }
                        outcome.unwrap_or_else(|error| {
                            tracing::warn!(bot_id = %id, error = %error, "reconciling the bot failed; the next pass retries");
                            Outcome::Error
                        })
                    })
                    .buffer_unordered(self.inner.options.reconcile_concurrency.max(1))
                    .collect()
                    .await;
                for outcome in outcomes {
                    report.add(outcome);
                }
                if !full_batch {
                    break;
                }
            }
            report.released_slots += self.release_orphan_slots(platform.name()).await?;
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Says plainly which bots sit on platforms this service is not
    /// configured for: they are left alone, never swept or orphaned.
    async fn report_unconfigured(&self, report: &mut ReconcileReport) -> ServiceResult<()> {
        for (platform, bots) in self.store().needing_platform().await? {
            if self.inner.platforms.get(&platform).is_none() {
                report.unconfigured += usize::try_from(bots).unwrap_or(usize::MAX);
                tracing::warn!(
                    platform = %platform,
                    bots,
                    configured = %self.platform_names().join(", "),
                    "bots run on a platform this service is not configured for; they are left alone (add the platform to PLATFORM_PRIORITY to manage them)"
                );
            }
        }
        Ok(())
    }

    /// One batch status call for the batch's deploying and running bots.
    /// `None` when the call failed: no evidence either way.
    async fn batch_statuses(
        &self,
        platform: &ListedPlatform,
        batch: &[BotRecord],
        report: &mut ReconcileReport,
    ) -> Option<HashMap<PlatformId, BotStatus>> {
        let asked: Vec<PlatformId> = batch
            .iter()
            .filter(|r| matches!(r.state(), Ok(BotState::Deploying | BotState::Running)))
            .filter_map(BotRecord::platform_id)
            .collect();
        if asked.is_empty() {
            return Some(HashMap::new());
        }
        match platform.calls.statuses(&asked).await {
            Ok(statuses) => Some(statuses),
            Err(error) => {
                tracing::warn!(error = %error, "batch status read failed; no evidence taken from it");
                report.status_errors += 1;
                None
            }
        }
    }

    /// Gives back slots that ended bots still hold (see
    /// [`Store::release_orphan_slots`](crate::Store::release_orphan_slots)).
    async fn release_orphan_slots(&self, platform: &str) -> ServiceResult<usize> {
        let grace =
            i64::try_from(self.inner.options.orphan_slot_grace.as_millis()).unwrap_or(i64::MAX);
        let released = self
            .store()
            .release_orphan_slots(platform, now_ms().saturating_sub(grace))
            .await?;
        for (pool, slot, bot) in &released {
            tracing::warn!(pool, slot, bot_id = %bot, "slot still held by an ended bot after its cleanup; given back");
        }
        Ok(released.len())
    }

    fn reconcile_lease_until(&self) -> i64 {
        // A batch may re-drive deploys, each bounded by the call timeout and
        // run concurrently; allow a few rounds of them.
        let lease = self.inner.options.platform_call_timeout * 3 + Duration::from_secs(30);
        now_ms() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    async fn reconcile_bot(
        &self,
        record: BotRecord,
        statuses: Option<&HashMap<PlatformId, BotStatus>>,
    ) -> ServiceResult<Outcome> {
        let state = record.state()?;
        let observed = record
            .platform_id()
            .and_then(|id| statuses.and_then(|s| s.get(&id)).cloned());
        match state {
            BotState::Deploying => match (record.platform_id(), observed) {
                (None, _) if self.past_deadline(&record) => {
                    self.fail_overdue_unconfirmed(record).await
                }
                (None, _) => {
                    tracing::info!(
                        attempt = record.attempt(),
                        "re-driving a deploy left without an answer"
                    );
                    match self.drive_deploy(record, DeployCall::Repeat).await {
                        // What the platform answered is recorded on the bot
                        // by drive_deploy; only a database failure is this
                        // pass's error.
                        Err(ServiceError::Storage(error)) => Err(error.into()),
                        _ => Ok(Outcome::RedrivenDeploy),
                    }
                }
                (Some(_), Some(status)) => {
                    let after = self.apply_observation(record, &status).await?;
                    Ok(match after.state()? {
                        BotState::Running => Outcome::Promoted,
                        BotState::Failed if !status.kind.is_terminal() => Outcome::TimedOut,
                        s if s.is_terminal() => Outcome::Ended,
                        _ => Outcome::Nothing,
                    })
                }
                // The status read failed: no evidence, unless overdue.
                (Some(_), None) if self.past_deadline(&record) => self.fail_overdue(record).await,
                (Some(_), None) => Ok(Outcome::Nothing),
            },
            BotState::Running => match observed {
                Some(status) => {
                    let after = self.apply_observation(record, &status).await?;
                    Ok(if after.state()?.is_terminal() {
                        Outcome::Ended
                    } else {
                        Outcome::Nothing
                    })
                }
                None => Ok(Outcome::Nothing),
            },
            BotState::Stopping => {
                let after = self.drive_stop(record, true).await?;
                Ok(if after.state()? == BotState::Stopped {
                    Outcome::FinishedStop
                } else {
                    Outcome::Nothing
                })
            }
            BotState::Stopped | BotState::Failed if record.cleanup_pending() => {
                let after = self.drive_cleanup(record).await?;
                Ok(if after.cleanup_pending() {
                    Outcome::Nothing
                } else {
                    Outcome::CleanedUp
                })
            }
            _ => Ok(Outcome::Nothing),
        }
    }

    /// A deploy past its deadline that the platform never answered. The
    /// call may still have started a bot (it timed out, or the process died
    /// after the platform accepted it), so the platform is asked for the
    /// attempt's bot first and what it started is released with the
    /// failure. While the platform does not answer, the bot stays
    /// `deploying`: failing it now would forget a bot that may be running.
    async fn fail_overdue_unconfirmed(&self, record: BotRecord) -> ServiceResult<Outcome> {
        match self.find_attempt_bot(&record).await? {
            AttemptBot::Found { record, .. } => self.fail_overdue(*record).await,
            AttemptBot::NothingRuns(_) => self.fail_overdue(record).await,
            AttemptBot::Unanswered(why) => {
                let reason = format!(
                    "not running within the deploy timeout of {} s; the platform must say what it started before the bot is failed ({why}); it will be retried",
                    self.inner.options.deploy_timeout.as_secs()
                );
                self.store()
                    .set_reason(record.id(), BotState::Deploying, record.attempt(), &reason)
                    .await?;
                Ok(Outcome::Nothing)
            }
            AttemptBot::Moved => Ok(Outcome::Nothing),
        }
    }

    async fn fail_overdue(&self, record: BotRecord) -> ServiceResult<Outcome> {
        let reason = format!(
            "not running within the deploy timeout of {} s{}",
            self.inner.options.deploy_timeout.as_secs(),
            if record.platform_id().is_none() {
                "; the platform never confirmed the deploy"
            } else {
                ""
            }
        );
        let mut t = Transition::new(
            record.id(),
            BotState::Deploying,
            record.attempt(),
            BotState::Failed,
            &reason,
        );
        t.cleanup_pending = Some(record.platform_id().is_some());
        match self.move_bot(t).await? {
            Some(moved) if moved.cleanup_pending() => {
                self.drive_cleanup(moved).await?;
                Ok(Outcome::TimedOut)
            }
            Some(_) => Ok(Outcome::TimedOut),
            None => Ok(Outcome::Nothing),
        }
    }

    /// Runs [`reconcile_once`](Self::reconcile_once) now and then every
    /// `interval`, and the [orphan sweep](crate::orphan_sweep) now and then
    /// every [`ServiceOptions::orphan_sweep_interval`](crate::ServiceOptions),
    /// until `shutdown` completes. A failed pass is logged and the next one
    /// runs on time.
    pub async fn run_reconciler(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweeper = tokio::time::interval(self.inner.options.orphan_sweep_interval);
        sweeper.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The lease is renewed beside the passes, so a long pass does not
        // let it lapse while its holder lives.
        let heartbeat = {
            let service = self.clone();
            let every = (self.inner.options.sweep_lease / 3).max(Duration::from_millis(100));
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(every);
                beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    beat.tick().await;
                    service.renew_sweep_lease().await;
                }
            })
        };
        // Due deploys are claimed every second beside the passes, so a bot
        // deploys at its deploy time (not up to an interval later) and a long
        // pass never holds one up. Each claim reads only the due bots.
        let (stop_scheduler, mut scheduler_stopped) = tokio::sync::watch::channel(false);
        let scheduler = {
            let service = self.clone();
            let every = interval.min(SCHEDULER_TICK);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        biased;
                        _ = scheduler_stopped.changed() => break,
                        _ = tick.tick() => {
                            if let Err(error) = service.deploy_due().await {
                                tracing::warn!(error = %error, "deploying due bots failed; the next tick retries");
                            }
                        }
                    }
                }
            })
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    if let Err(error) = self.reconcile_once().await {
                        tracing::warn!(error = %error, "reconcile pass failed; the next pass retries");
                    }
                }
                _ = sweeper.tick() => {
                    if let Err(error) = self.sweep_orphans().await {
                        tracing::warn!(error = %error, "orphan sweep failed; the next sweep retries");
                    }
                }
            }
        }
        heartbeat.abort();
        // A deploy in flight finishes (each is bounded by the platform call
        // timeout); the next due bot waits for the next start.
        let _ = stop_scheduler.send(true);
        let _ = scheduler.await;
        self.release_sweep_lease().await;
        tracing::info!("reconciler stopped");
    }
}
