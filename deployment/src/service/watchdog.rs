//! The watchdog, on evidence: each reconciler pass it ends live bots that
//!
//! - sent at least one heartbeat and then none for `HEARTBEAT_TIMEOUT`
//!   while in the meeting (`joining`, `in_waiting_room`, `in_call`): failed
//!   as `heartbeat_timeout` (their meeting status says so too) and torn
//!   down;
//! - were asked to leave more than `LEAVE_GRACE` ago and have not ended:
//!   stopped as `stop` does;
//! - with `BOT_PROTOCOL_REQUIRED=true`, run without ever speaking the
//!   protocol past `DEPLOY_TIMEOUT` from their deploy: failed.
//!
//! A bot that never speaks the protocol (a plain image) is never judged by
//! its silence unless the protocol is required. The heartbeats this process
//! holds are written before it looks, so it judges on the freshest record
//! it can.

use platform_core::BotId;
use serde::Serialize;

use super::BotService;

use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::meeting::{EventSource, FatalCode, MeetingEvent, MeetingStatus};
use crate::store::{BotRecord, MeetingWrite, Transition, WatchCutoffs, now_ms};

/// What one watchdog pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WatchReport {
    /// Bots failed as `heartbeat_timeout`.
    pub heartbeat_timeouts: usize,
    /// Bots stopped because they did not leave within `LEAVE_GRACE`.
    pub leave_overdue: usize,
    /// Bots failed for never speaking a required protocol.
    pub silent: usize,
}

impl WatchReport {
    /// Whether the pass ended a bot.
    pub fn changed_something(&self) -> bool {
        self.heartbeat_timeouts + self.leave_overdue + self.silent > 0
    }
}

fn ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl BotService {
    /// One watchdog pass over this platform's live bots.
    pub async fn watch_once(&self) -> ServiceResult<WatchReport> {
        if let Err(error) = self.flush_heartbeats().await {
            // Judging on older heartbeats could fail a live bot: wait for
            // the next pass.
            tracing::warn!(error = %error, "heartbeats not written; the watchdog waits for the next pass");
            return Ok(WatchReport::default());
        }
        let options = &self.inner.options;
        let now = now_ms();
        let cutoffs = WatchCutoffs {
            heartbeat_before: now.saturating_sub(ms(options.heartbeat_timeout)),
            leave_before: now.saturating_sub(ms(options.leave_grace)),
            silent_deployed_before: options
                .bot_protocol_required
                .then(|| now.saturating_sub(ms(options.deploy_timeout))),
        };
        let mut report = WatchReport::default();
        let mut after = BotId(0);
        loop {
            let batch = self
                .store_ref()
                .watched_bots(self.platform_name(), cutoffs, after, 100)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.id();
            let full = batch.len() >= 100;
            for record in batch {
                let id = record.id();
                match self.judge(record, cutoffs).await {
                    Ok(Some(Verdict::HeartbeatTimeout)) => report.heartbeat_timeouts += 1,
                    Ok(Some(Verdict::LeaveOverdue)) => report.leave_overdue += 1,
                    Ok(Some(Verdict::Silent)) => report.silent += 1,
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(bot_id = %id, error = %error, "the watchdog could not end the bot; the next pass retries");
                    }
                }
            }
            if !full {
                break;
            }
        }
        if report.changed_something() {
            tracing::info!(?report, "watchdog pass done");
        }
        Ok(report)
    }

    async fn judge(
        &self,
        record: BotRecord,
        cutoffs: WatchCutoffs,
    ) -> ServiceResult<Option<Verdict>> {
        let options = &self.inner.options;
        let in_meeting = MeetingStatus::IN_MEETING.contains(&record.meeting_status()?);
        let silent_too_long = self
            .latest_heartbeat(&record)
            .is_some_and(|at| at < cutoffs.heartbeat_before);
        if in_meeting && silent_too_long {
            let message = format!(
                "no heartbeat for {} s (HEARTBEAT_TIMEOUT) while {}",
                options.heartbeat_timeout.as_secs(),
                record.meeting_status
            );
            let event = MeetingEvent {
                status: MeetingStatus::Fatal,
                sub_code: Some(FatalCode::HeartbeatTimeout.as_str().to_owned()),
                message: Some(message),
                recording: None,
                event_id: None,
                source: EventSource::Service,
            };
            let attempt = record.attempt();
            return Ok(
                match self.write_meeting_event(&record, attempt, &event).await? {
                    MeetingWrite::Written {
                        bot,
                        stopping: true,
                    } => {
                        tracing::warn!(bot_id = %bot.id(), "bot failed: heartbeat_timeout; tearing it down");
                        self.tear_down(bot).await?;
                        Some(Verdict::HeartbeatTimeout)
                    }
                    _ => None,
                },
            );
        }
        let leave_overdue = record
            .leave_requested_at_ms()
            .is_some_and(|at| at < cutoffs.leave_before);
        if leave_overdue {
            let reason = format!(
                "stopped: the bot did not end within LEAVE_GRACE ({} s) of the leave request",
                options.leave_grace.as_secs()
            );
            return self
                .stop_for(record, BotState::Stopped, &reason)
                .await
                .map(|done| done.then_some(Verdict::LeaveOverdue));
        }
        let never_spoke = !record.spoke_protocol() && self.latest_heartbeat(&record).is_none();
        if never_spoke
            && record.state()? == BotState::Running
            && cutoffs
                .silent_deployed_before
                .is_some_and(|before| record.deploy_started_at_ms().is_some_and(|at| at < before))
        {
            let reason = format!(
                "bot_protocol_silent: the bot never spoke the bot protocol within DEPLOY_TIMEOUT ({} s) and BOT_PROTOCOL_REQUIRED is true",
                options.deploy_timeout.as_secs()
            );
            return self
                .stop_for(record, BotState::Failed, &reason)
                .await
                .map(|done| done.then_some(Verdict::Silent));
        }
        Ok(None)
    }

    /// Records the stop (ending in `end` with `reason`) and carries it out
    /// in the background. Whether this call recorded it.
    async fn stop_for(
        &self,
        record: BotRecord,
        end: BotState,
        reason: &str,
    ) -> ServiceResult<bool> {
        let owner = self.inner.instance.clone();
        let state = record.state()?;
        let stopping_reason = format!("{reason}; stopping it");
        let mut t = Transition::new(
            record.id(),
            state,
            record.attempt(),
            BotState::Stopping,
            &stopping_reason,
        );
        t.lease = Some((&owner, self.lease_until()));
        t.ending = Some((end, reason));
        match self.move_bot(t).await? {
            Some(moved) => {
                self.tear_down(moved).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Carries out a recorded stop now (the reconciler finishes it if the
    /// platform does not confirm), then gives the lease back.
    async fn tear_down(&self, stopping: BotRecord) -> ServiceResult<()> {
        let id = stopping.id();
        let outcome = self.drive_stop(stopping, false).await;
        self.store_ref()
            .release_lease(id, &self.inner.instance)
            .await?;
        outcome.map(drop)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    HeartbeatTimeout,
    LeaveOverdue,
    Silent,
}
