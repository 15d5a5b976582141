//! The reconciler: keeps the database true to the platform, and finishes
//! what a crash left half-done.
//!
//! A pass is a sweep: it reads statuses in batches, decides, and hands the
//! platform calls it decided on to the deploy workers, so its own time
//! stays flat however many deploys and stops wait. Each pass walks every bot of this service's platform that is
//! `deploying`, `running` or `stopping`, or has ended with cleanup pending,
//! in batches of [`ServiceOptions::reconcile_batch`](crate::ServiceOptions):
//!
//! - one `get_bot_statuses` call per batch; a `deploying` bot the platform
//!   reports running becomes `running`; a bot the platform reports stopped
//!   or failed becomes `stopped`/`failed` with the platform's reason, and
//!   what it held is released;
//! - a `deploying` bot without an identifier (the process died between the
//!   intent and the platform's answer) is handed to the
//!   [deploy workers](crate::service) to be deployed again with the *same*
//!   attempt, which the platform contract makes idempotent;
//! - a `stopping` bot, and an ended bot with cleanup pending, is handed to
//!   the deploy workers to be stopped and cleaned up again (both
//!   idempotent; the worker acts on the bot's row as it is then, so a stop
//!   that finished meanwhile is not repeated);
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

mod overdue;
mod report;
mod sweep;

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use crate::error::ServiceResult;
use crate::service::{BotService, DueReport};
use crate::store::now_ms;

pub use report::ReconcileReport;
use sweep::HandedOver;

/// How often `run_reconciler` claims due deploys (or each interval, when
/// that is shorter).
const SCHEDULER_TICK: Duration = Duration::from_secs(1);

impl BotService {
    /// Runs one reconciler pass and waits for the platform calls it handed
    /// to the deploy workers, counting what they did: what a one-shot
    /// `reconcile` runs. See [`reconcile_pass`](Self::reconcile_pass).
    pub async fn reconcile_once(&self) -> ServiceResult<ReconcileReport> {
        self.pass(true, true).await
    }

    /// Runs one reconciler pass, what `serve` runs every
    /// `RECONCILE_INTERVAL`: fails queued bots past `QUEUE_TIMEOUT`; places
    /// the bots whose deploy is due (scheduled bots, creates a crash
    /// interrupted; see [`deploy_due`](Self::deploy_due)); when this process
    /// holds the [sweep lease](crate::sweep_lease), walks every bot that
    /// needs its platform, platform by platform in batches; then drains the
    /// queue into the capacity that freed. Every platform call it decides
    /// on (a deploy, a stop, a cleanup to finish) is handed to the deploy
    /// workers and not waited for.
    pub async fn reconcile_pass(&self) -> ServiceResult<ReconcileReport> {
        self.pass(false, true).await
    }

    /// A pass; `wait`: for what it hands over; `due`: with a round of the
    /// scheduler (not when the scheduler runs beside the passes already).
    async fn pass(&self, wait: bool, due: bool) -> ServiceResult<ReconcileReport> {
        let span = tracing::info_span!("reconcile");
        async {
            let mut report = ReconcileReport {
                queue_timeouts: self.expire_queue().await?,
                due: if due {
                    self.due_round(wait).await?
                } else {
                    DueReport::default()
                },
                ..ReconcileReport::default()
            };
            let mut handed = HandedOver::default();
            if self.hold_sweep_lease().await? {
                report.swept = true;
                for platform in self.inner.platforms.iter() {
                    self.sweep_platform(platform, &mut report, &mut handed)
                        .await?;
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
            if wait {
                handed.finished(&mut report).await;
                report.queue_placed = self.drain_queue().await?.placed;
            } else {
                self.drain_in_background();
            }
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

    /// Runs [`reconcile_pass`](Self::reconcile_pass) now and then every
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
                            if let Err(error) = service.due_round(false).await {
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
                    // The scheduler's round runs every second beside it.
                    if let Err(error) = self.pass(false, false).await {
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
