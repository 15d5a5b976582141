//! The scheduler: bots whose deploy is due — scheduled bots at `join_at`
//! minus the lead time, and bots created to deploy whose request died
//! before the platform call — are claimed from the database by any service
//! process, none twice, in `join_at` then creation order, and placed like a
//! new bot. A scheduled bot found more than `SCHEDULE_MAX_LATENESS` past its
//! `join_at` fails as `missed_join_time`. A scheduled bot can be moved or
//! changed until its deploy starts, and cancelled with nothing started.

use std::collections::HashSet;

use platform_core::{AutomaticLeaveInput, BotDeploymentInput, BotId, InvalidDeploymentConfig};
use serde::Serialize;

use super::deploy::PlacedNow;
use super::{BotService, JobHandle};

use crate::bot::{Bot, BotState};
use crate::clock::duration_ms;
use crate::error::{ServiceError, ServiceResult};
use crate::schedule::{MISSED_JOIN_TIME_CODE, describe_lateness, parse_join_at};
use crate::store::{BotRecord, ScheduleWrite, Transition, now_ms, timestamp};

/// What one scheduler round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DueReport {
    /// Due bots placed on a platform, their platform calls handed to the
    /// deploy workers (when the round waited for them: the ones the
    /// platform accepted).
    pub deployed: usize,
    /// Due bots that found no room and were queued.
    pub queued: usize,
    /// Due bots whose deploy the platform refused (failed).
    pub failed: usize,
    /// Scheduled bots found too late, failed as `missed_join_time`.
    pub missed: usize,
    /// Due bots whose handling failed (retried on the next round).
    pub errors: usize,
}

impl DueReport {
    /// Whether the round did anything.
    pub fn changed_something(&self) -> bool {
        self.deployed + self.queued + self.failed + self.missed + self.errors > 0
    }
}

/// The deploys that are due and not started yet, across every service
/// process: what the scheduler has still to catch up on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DueBacklog {
    /// Bots whose deploy time has passed and whose deploy has not started.
    pub due: u64,
    /// How long ago the earliest of those deploy times passed, in seconds
    /// (0 without any).
    pub oldest_due_seconds: u64,
}

/// A change to a scheduled bot (`PATCH /v1/bots/{id}`); what is `None`
/// stays as it is.
#[derive(Clone, Debug, Default)]
pub struct Reschedule {
    /// A new `join_at` (RFC 3339).
    pub join_at: Option<String>,
    /// A new display name.
    pub display_name: Option<String>,
    /// New automatic-leave timeouts (the ones given replace the current).
    pub automatic_leave: Option<AutomaticLeaveInput>,
}

/// When a bot's deploy is due, and why.
pub(super) struct Plan {
    /// `pending` (due now) or `scheduled` (due later).
    pub(super) status: BotState,
    /// When its deploy is due (ms, the scheduler's clock).
    pub(super) deploy_at: i64,
    /// Its first reason.
    pub(super) reason: String,
}

/// How many due bots one claim takes.
const CLAIM_BATCH: u32 = 32;

impl BotService {
    /// Until when (real time, ms) a request that recorded a deploy intent
    /// keeps the scheduler off the bot: long enough for its placement (only
    /// database writes) to write the deploy's own lease, short enough that
    /// a request that died delays the bot by less than a reconciler
    /// interval (four fifths of it, the sweep lease, then the next tick).
    pub(super) fn intent_lease_until(&self) -> i64 {
        now_ms() + duration_ms(self.inner.options.sweep_lease)
    }

    /// The scheduler's time (ms).
    pub(crate) fn clock_ms(&self) -> i64 {
        self.inner.options.clock.now_ms()
    }

    /// Reads a client's `join_at` against the scheduler's clock.
    pub(super) fn check_join_at(&self, raw: &str) -> ServiceResult<i64> {
        parse_join_at(
            raw,
            self.clock_ms(),
            self.inner.options.schedule.max_lateness,
        )
        .map_err(|error| {
            ServiceError::InvalidRequest(InvalidDeploymentConfig {
                errors: vec![error],
            })
        })
    }

    /// When a bot that must be in its meeting at `join_at` (or as soon as
    /// possible, without one) deploys: `join_at` minus the largest lead of
    /// the priority list (see [`crate::schedule`]) and a random share of
    /// `DEPLOY_JITTER`; now when that is past.
    pub(super) fn plan(&self, join_at: Option<i64>) -> Plan {
        let now = self.clock_ms();
        let Some(join_at) = join_at else {
            return Plan {
                status: BotState::Pending,
                deploy_at: now,
                reason: "created".to_owned(),
            };
        };
        let schedule = &self.inner.options.schedule;
        let (platform, lead) = schedule.lead_among(&self.platform_names());
        let deploy_at = join_at
            .saturating_sub(duration_ms(lead))
            .saturating_sub(schedule.jitter_ms());
        if deploy_at <= now {
            return Plan {
                status: BotState::Pending,
                deploy_at: now,
                reason: format!(
                    "created; join_at {} is within the {} s lead of {platform}: deploying now",
                    rfc3339(join_at),
                    lead.as_secs()
                ),
            };
        }
        Plan {
            status: BotState::Scheduled,
            deploy_at,
            reason: format!(
                "scheduled: deploys at {} for join_at {} ({} s lead of {platform}, the largest of PLATFORM_PRIORITY)",
                rfc3339(deploy_at),
                rfc3339(join_at),
                lead.as_secs()
            ),
        }
    }

    /// Deploys every bot whose deploy is due now, in `join_at` then
    /// creation order, and waits for their platform calls; fails scheduled
    /// bots found more than `SCHEDULE_MAX_LATENESS` past `join_at`. Any
    /// number of service processes may run it at once: each due bot is
    /// claimed by one of them.
    pub async fn deploy_due(&self) -> ServiceResult<DueReport> {
        self.due_round(true).await
    }

    /// One round of the scheduler: claims the due bots, places them, and
    /// hands their platform calls to the deploy workers in that order;
    /// waits for those calls only when `wait` (a one-shot command, a
    /// test). Under `serve` it runs every second and never waits, so a
    /// burst is placed in a moment and deployed at the platforms' pace.
    pub(crate) async fn due_round(&self, wait: bool) -> ServiceResult<DueReport> {
        let owner = self.inner.instance.as_str();
        let mut report = DueReport::default();
        let mut seen: HashSet<BotId> = HashSet::new();
        let mut handed = Vec::new();
        loop {
            // Short: the claim only keeps other processes off the bot until
            // its placement writes the deploy's own lease. A process that
            // dies with a claim delays the bot by this much at most.
            let claim_until = self.intent_lease_until();
            let due = self
                .store_ref()
                .claim_due(owner, claim_until, self.clock_ms(), CLAIM_BATCH)
                .await?;
            let full = due.len() >= CLAIM_BATCH as usize;
            let fresh: Vec<BotRecord> = due.into_iter().filter(|r| seen.insert(r.id())).collect();
            if fresh.is_empty() {
                break;
            }
            // One at a time, in order: only database writes, and the order
            // of the hand-over is the order of the platform calls.
            for record in fresh {
                let id = record.id();
                match self.deploy_one_due(record).await {
                    Ok(DueOutcome::Handed(handle)) => {
                        report.deployed += 1;
                        handed.extend(handle);
                    }
                    Ok(DueOutcome::Queued) => report.queued += 1,
                    Ok(DueOutcome::Missed) => report.missed += 1,
                    Ok(DueOutcome::Nothing) => {}
                    Err(error) => {
                        tracing::warn!(bot_id = %id, error = %error, "deploying a due bot failed; the next round retries");
                        report.errors += 1;
                        if let Err(error) = self.store_ref().release_lease(id, owner).await {
                            tracing::debug!(bot_id = %id, error = %error, "could not release a due bot's claim; it lapses on its own");
                        }
                    }
                }
            }
            if !full {
                break;
            }
        }
        if wait {
            for handle in handed {
                match handle.finished().await {
                    Ok(Some(record)) if record.state().is_ok_and(|s| s == BotState::Failed) => {
                        report.deployed -= 1;
                        report.failed += 1;
                    }
                    Ok(Some(record)) if record.state().is_ok_and(|s| s == BotState::Queued) => {
                        report.deployed -= 1;
                        report.queued += 1;
                    }
                    Err(ServiceError::DeployFailed { .. }) => {
                        report.deployed -= 1;
                        report.failed += 1;
                    }
                    _ => {}
                }
            }
        }
        if report.changed_something() {
            tracing::info!(?report, "due deploys done");
        }
        Ok(report)
    }

    async fn deploy_one_due(&self, record: BotRecord) -> ServiceResult<DueOutcome> {
        let state = record.state()?;
        let now = self.clock_ms();
        let max_lateness = self.inner.options.schedule.max_lateness;
        if let Some(join_at) = record.join_at_ms()
            && now.saturating_sub(join_at) > duration_ms(max_lateness)
        {
            let reason = format!(
                "{MISSED_JOIN_TIME_CODE}: found {} past its join_at {} (more than SCHEDULE_MAX_LATENESS, {} s): no service process deployed it in time; nothing was started",
                describe_lateness(now - join_at),
                rfc3339(join_at),
                max_lateness.as_secs()
            );
            let t = Transition::new(
                record.id(),
                state,
                record.attempt(),
                BotState::Failed,
                &reason,
            );
            return Ok(match self.move_bot(t).await? {
                Some(_) => {
                    tracing::warn!(bot_id = %record.id(), reason = %reason, "scheduled bot missed its join time");
                    DueOutcome::Missed
                }
                None => DueOutcome::Nothing,
            });
        }
        Ok(match self.place_now(record).await? {
            PlacedNow::Handed(_, handle) => DueOutcome::Handed(handle),
            PlacedNow::Queued(_) => DueOutcome::Queued,
            PlacedNow::Moved => DueOutcome::Nothing,
        })
    }

    /// The deploys due now that no process has started yet (a burst being
    /// worked through, or no process running the scheduler).
    pub async fn due_backlog(&self) -> ServiceResult<DueBacklog> {
        let now = self.clock_ms();
        let (due, earliest) = self.store_ref().due_backlog(now).await?;
        Ok(DueBacklog {
            due,
            oldest_due_seconds: earliest
                .map(|at| u64::try_from((now - at) / 1000).unwrap_or_default())
                .unwrap_or_default(),
        })
    }

    /// Changes a scheduled bot: its `join_at` (its deploy time moves with
    /// it), display name or automatic-leave timeouts. Refused with
    /// `not_scheduled` once its deploy has started (or while it is being
    /// started), and with the field's error when a value is not allowed.
    pub async fn reschedule(&self, id: BotId, change: Reschedule) -> ServiceResult<Bot> {
        if change.join_at.is_none()
            && change.display_name.is_none()
            && change.automatic_leave.is_none()
        {
            return Err(ServiceError::InvalidRequest(InvalidDeploymentConfig {
                errors: vec![platform_core::FieldError::new(
                    "join_at",
                    "nothing to change was given; allowed: join_at, display_name, automatic_leave (any of them)",
                )],
            }));
        }
        let record = self.load(id).await?;
        let state = record.state()?;
        if state != BotState::Scheduled {
            return Err(not_scheduled(id, state));
        }
        let join_at = match &change.join_at {
            Some(raw) => self.check_join_at(raw)?,
            None => record.join_at_ms().unwrap_or_else(|| self.clock_ms()),
        };
        let (display_name, timeouts) = self.checked_settings(&record, &change)?;
        let plan = self.plan(Some(join_at));
        let reason = match plan.status {
            BotState::Scheduled => format!("re{}", plan.reason),
            _ => format!(
                "rescheduled: join_at {} is within the lead time: deploying now",
                rfc3339(join_at)
            ),
        };
        let write = ScheduleWrite {
            bot: id,
            from: BotState::Scheduled,
            join_at,
            deploy_at: plan.deploy_at,
            display_name: display_name.as_deref(),
            timeouts,
            reason: &reason,
        };
        match self.store_ref().write_schedule(&write).await? {
            Some(record) => {
                tracing::info!(bot_id = %id, reason = %reason, "scheduled bot changed");
                self.shown(record).await
            }
            None => {
                let now = self.load(id).await?;
                match now.state()? {
                    BotState::Scheduled => Err(ServiceError::NotScheduled {
                        bot: id,
                        status: BotState::Scheduled,
                        why: "its deploy is starting right now",
                    }),
                    other => Err(not_scheduled(id, other)),
                }
            }
        }
    }

    /// Schedules a pending bot that was created without a deploy and is
    /// deployed now with a `join_at` still ahead. `None` when it is due now
    /// (or moved meanwhile).
    pub(super) async fn schedule_pending(
        &self,
        record: &BotRecord,
    ) -> ServiceResult<Option<BotRecord>> {
        // A bot with a deploy intent was planned when it was created.
        let (Some(join_at), None) = (record.join_at_ms(), record.deploy_at_ms()) else {
            return Ok(None);
        };
        let plan = self.plan(Some(join_at));
        if plan.status != BotState::Scheduled {
            return Ok(None);
        }
        let write = ScheduleWrite {
            bot: record.id(),
            from: BotState::Pending,
            join_at,
            deploy_at: plan.deploy_at,
            display_name: None,
            timeouts: None,
            reason: &plan.reason,
        };
        Ok(self.store_ref().write_schedule(&write).await?)
    }

    /// The display name and timeouts of a change, checked by the rules a
    /// create is checked by.
    fn checked_settings(
        &self,
        record: &BotRecord,
        change: &Reschedule,
    ) -> ServiceResult<(Option<String>, Option<[i64; 3]>)> {
        if change.display_name.is_none() && change.automatic_leave.is_none() {
            return Ok((None, None));
        }
        let current = record.config().map_err(|reason| ServiceError::BotEnded {
            bot: record.id(),
            reason,
        })?;
        let leave = current.automatic_leave();
        let given = change.automatic_leave.unwrap_or_default();
        let input = BotDeploymentInput {
            meeting_platform: current.meeting_platform().as_str().to_owned(),
            meeting_url: current.meeting_url().expose().to_owned(),
            meeting_password: current.meeting_password().cloned(),
            display_name: Some(
                change
                    .display_name
                    .clone()
                    .unwrap_or_else(|| current.display_name().as_str().to_owned()),
            ),
            recording_enabled: current.recording_enabled(),
            automatic_leave: AutomaticLeaveInput {
                waiting_room_timeout: given
                    .waiting_room_timeout
                    .or(Some(leave.waiting_room_timeout.as_secs())),
                no_one_joined_timeout: given
                    .no_one_joined_timeout
                    .or(Some(leave.no_one_joined_timeout.as_secs())),
                everyone_left_timeout: given
                    .everyone_left_timeout
                    .or(Some(leave.everyone_left_timeout.as_secs())),
            },
        };
        let checked = input
            .validate(record.id())
            .map_err(ServiceError::InvalidRequest)?;
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let leave = checked.automatic_leave();
        Ok((
            change
                .display_name
                .as_ref()
                .map(|_| checked.display_name().as_str().to_owned()),
            change.automatic_leave.map(|_| {
                [
                    secs(leave.waiting_room_timeout),
                    secs(leave.no_one_joined_timeout),
                    secs(leave.everyone_left_timeout),
                ]
            }),
        ))
    }
}

enum DueOutcome {
    Nothing,
    /// Placed, its platform call handed to the deploy workers.
    Handed(Option<JobHandle>),
    Queued,
    Missed,
}

fn not_scheduled(bot: BotId, status: BotState) -> ServiceError {
    let why = match status {
        BotState::Pending => "it was created without a deploy and has no deploy time yet",
        BotState::Queued | BotState::Deploying => "its deploy has started",
        BotState::Running | BotState::Stopping => "it is in its meeting or leaving it",
        _ => "it has ended",
    };
    ServiceError::NotScheduled { bot, status, why }
}

/// An instant (ms) as RFC 3339, for reasons.
pub(crate) fn rfc3339(ms: i64) -> String {
    timestamp(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ms.to_string())
}
