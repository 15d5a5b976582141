//! The bot protocol, the bot's side: who is calling (a token valid for one
//! bot and attempt), heartbeats (buffered, see
//! [`HeartbeatBuffer`](crate::bot_protocol::HeartbeatBuffer)), meeting-status
//! reports, and the bot's own configuration. A bot that reports
//! `call_ended` or `fatal` is torn down at once: its stop is recorded with
//! the report, and its slot, task or process is released without waiting
//! for the container to exit.

use std::future::Future;
use std::time::{Duration, Instant};

use platform_core::{BotId, MeetingPlatform};
use serde::Serialize;
use tracing::Instrument;

use super::BotService;

use crate::bot::{AutomaticLeaveSecs, BotState};
use crate::bot_protocol::{BotToken, hash_presented};
use crate::error::{ServiceError, ServiceResult};
use crate::meeting::{MeetingEvent, MeetingStatus};
use crate::store::{BotRecord, MeetingChange, MeetingWrite, StopOnEnding, now_ms};

/// Who a bot-protocol request comes from, once its token is checked.
#[derive(Debug)]
pub enum BotAccess {
    /// The token is valid for the bot in the path.
    Granted(Box<AuthorizedBot>),
    /// No bot was ever given this token.
    UnknownToken,
    /// The token belongs to another bot (answered as if the bot in the path
    /// did not exist).
    OtherBot,
    /// The token was this bot's, and was revoked when it ended (or deployed
    /// again).
    Revoked,
}

/// A bot whose token was checked: the bot as recorded and the attempt the
/// token was given for.
#[derive(Clone, Debug)]
pub struct AuthorizedBot {
    record: BotRecord,
    attempt: u32,
}

impl AuthorizedBot {
    /// The bot's id.
    pub fn id(&self) -> BotId {
        self.record.id()
    }

    /// The deploy attempt the token belongs to.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HeartbeatAnswer {
    /// Whether the bot must leave the meeting now, then report
    /// `call_ended` with `left_on_request` and exit.
    pub leave: bool,
    /// Why it must leave.
    pub reason: Option<String>,
}

/// The answer to a meeting-status report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventAnswer {
    /// The bot's meeting status after the report.
    pub meeting_status: MeetingStatus,
    /// Whether the report's event id was seen before (nothing was written).
    pub duplicate: bool,
    /// Whether the bot must leave the meeting now.
    pub leave: bool,
    /// Why it must leave.
    pub reason: Option<String>,
}

/// A bot's own configuration, as `GET /v1/bot/{id}/config` gives it to the
/// bot, password included. No `Debug`: it holds the meeting's secrets.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct BotOwnConfig {
    /// The bot's id.
    #[schema(value_type = u64)]
    pub bot_id: BotId,
    /// `zoom`, `teams` or `meet`.
    pub meeting_platform: MeetingPlatform,
    /// The full meeting URL, passcode included.
    pub meeting_url: String,
    /// The meeting password, when the meeting has one.
    pub meeting_password: Option<String>,
    /// The name to show in the meeting.
    pub display_name: String,
    /// Whether to record.
    pub recording_enabled: bool,
    /// When to leave on its own, in seconds.
    pub automatic_leave: AutomaticLeaveSecs,
    /// The deploy attempt this token belongs to.
    pub attempt: u32,
}

impl BotService {
    /// Checks the token a bot-protocol request presents for the bot `id`.
    pub async fn authorize_bot(&self, id: BotId, presented: &[u8]) -> ServiceResult<BotAccess> {
        let Some(owner) = self
            .store_ref()
            .find_bot_token(&hash_presented(presented))
            .await?
        else {
            return Ok(BotAccess::UnknownToken);
        };
        if owner.bot.id() != id {
            return Ok(BotAccess::OtherBot);
        }
        if owner.revoked {
            return Ok(BotAccess::Revoked);
        }
        Ok(BotAccess::Granted(Box::new(AuthorizedBot {
            record: owner.bot,
            attempt: owner.attempt,
        })))
    }

    /// Takes one request from the bot's budget (`BOT_EVENTS_PER_MINUTE`),
    /// or says how long to wait.
    pub fn charge_bot_request(&self, bot: BotId) -> Result<(), Duration> {
        self.inner.bot_limiter.check(bot, Instant::now())
    }

    /// Records a heartbeat (in memory; written in batches) and says whether
    /// the bot must leave.
    pub fn heartbeat(&self, bot: &AuthorizedBot) -> HeartbeatAnswer {
        self.inner.heartbeats.beat(bot.id(), now_ms());
        let (leave, reason) = leave_word(&bot.record);
        HeartbeatAnswer { leave, reason }
    }

    /// Records a meeting-status report. A retried report with an event id
    /// seen before changes nothing. A move the meeting order refuses is
    /// `illegal_meeting_transition`. `call_ended` and `fatal` end the bot:
    /// its stop is recorded with the report and carried out at once, in the
    /// background, so the answer does not wait for the platform.
    pub async fn report_meeting_event(
        &self,
        bot: &AuthorizedBot,
        event: MeetingEvent,
    ) -> ServiceResult<EventAnswer> {
        let id = bot.id();
        let span = tracing::info_span!("meeting_event", bot_id = %id, status = %event.status);
        async {
            let mut record = bot.record.clone();
            for _ in 0..5 {
                let written = self.write_meeting_event(&record, bot.attempt, &event).await?;
                match written {
                    MeetingWrite::Written { bot: after, stopping } => {
                        tracing::info!(
                            from = %record.meeting_status,
                            to = %event.status,
                            sub_code = event.sub_code.as_deref().unwrap_or("-"),
                            "meeting status changed"
                        );
                        if stopping {
                            self.end_in_background(after.clone());
                        }
                        return answer(&after, false);
                    }
                    MeetingWrite::Duplicate(now) => return answer(&now, true),
                    MeetingWrite::Moved => {
                        record = self.load(id).await?;
                        if record.state()?.is_terminal() {
                            // It ended meanwhile; its token is revoked now.
                            return Err(ServiceError::IllegalMeetingTransition(
                                crate::meeting::IllegalMeetingTransition {
                                    bot: id,
                                    from: record.meeting_status()?,
                                    to: event.status,
                                },
                            ));
                        }
                    }
                }
            }
            Err(ServiceError::Storage(crate::store::StoreError::Unavailable(
                format!("bot {id}'s meeting status kept changing while it was being written; report it again"),
            )))
        }
        .instrument(span)
        .await
    }

    /// Checks the meeting order and writes one event through the store's
    /// one meeting-status write, with the bot's stop when the meeting
    /// ended.
    pub(crate) async fn write_meeting_event(
        &self,
        record: &BotRecord,
        attempt: u32,
        event: &MeetingEvent,
    ) -> ServiceResult<MeetingWrite> {
        let id = record.id();
        let from = record.meeting_status()?;
        if let Err(refused) = from.check_move(id, event.status) {
            // A retried report of the event that ended the meeting is not a
            // refused move: it was taken the first time.
            if let Some(event_id) = &event.event_id
                && self.store_ref().meeting_event_seen(id, event_id).await?
            {
                return Ok(MeetingWrite::Duplicate(record.clone()));
            }
            return Err(refused.into());
        }
        let reason = event.ending_reason();
        let end = match event.status {
            MeetingStatus::CallEnded => Some(BotState::Stopped),
            MeetingStatus::Fatal => Some(BotState::Failed),
            _ => None,
        };
        let owner = self.inner.instance.clone();
        let change = MeetingChange {
            bot: id,
            attempt,
            from,
            event,
            stop: end.map(|end| StopOnEnding {
                end,
                reason: &reason,
                lease: (&owner, self.lease_until()),
            }),
        };
        Ok(self.store_ref().write_meeting_status(&change).await?)
    }

    /// Carries out the stop a meeting's end recorded, without holding the
    /// bot's request: release the slot, task or process now. If this
    /// process dies first, the reconciler finishes the `stopping` bot.
    pub(crate) fn end_in_background(&self, record: BotRecord) {
        let service = self.clone();
        let id = record.id();
        let span = tracing::info_span!("end_on_bot_word", bot_id = %id);
        tokio::spawn(
            async move {
                let owner = service.inner.instance.clone();
                match service.drive_stop(record, false).await {
                    Ok(after) => tracing::info!(status = %after.status, "bot torn down on its own word"),
                    Err(error) => tracing::warn!(error = %error, "tearing the bot down failed; the reconciler retries"),
                }
                if let Err(error) = service.store_ref().release_lease(id, &owner).await {
                    tracing::debug!(error = %error, "lease not released; it expires on its own");
                }
            }
            .instrument(span),
        );
    }

    /// The bot's own configuration, password included.
    pub async fn bot_config(&self, bot: &AuthorizedBot) -> ServiceResult<BotOwnConfig> {
        let record = self.load(bot.id()).await?;
        let config = record.config().map_err(|reason| ServiceError::BotEnded {
            bot: bot.id(),
            reason,
        })?;
        let leave = config.automatic_leave();
        Ok(BotOwnConfig {
            bot_id: bot.id(),
            meeting_platform: config.meeting_platform(),
            meeting_url: config.meeting_url().expose().to_owned(),
            meeting_password: config.meeting_password().map(|p| p.expose().to_owned()),
            display_name: config.display_name().to_string(),
            recording_enabled: config.recording_enabled(),
            automatic_leave: AutomaticLeaveSecs {
                waiting_room_timeout: leave.waiting_room_timeout.as_secs(),
                no_one_joined_timeout: leave.no_one_joined_timeout.as_secs(),
                everyone_left_timeout: leave.everyone_left_timeout.as_secs(),
            },
            attempt: bot.attempt,
        })
    }

    /// A fresh token for a deploy that gives bots the protocol, or `None`
    /// when the service has no `BOT_API_URL`.
    pub(crate) fn new_bot_token(&self) -> ServiceResult<Option<BotToken>> {
        if self.inner.options.bot_api_url.is_none() {
            return Ok(None);
        }
        BotToken::generate().map(Some).map_err(|error| {
            ServiceError::Storage(crate::store::StoreError::Unavailable(format!(
                "the operating system's random source failed ({error}); no bot token could be made"
            )))
        })
    }

    /// The latest heartbeat of `bot` this process knows: what it holds
    /// unwritten, else what the database has.
    pub(crate) fn latest_heartbeat(&self, record: &BotRecord) -> Option<i64> {
        let unwritten = self.inner.heartbeats.unwritten(record.id());
        unwritten.max(record.last_heartbeat_at_ms())
    }

    /// Writes every buffered heartbeat in one statement per 2,000 bots;
    /// what fails to be written is kept for the next flush.
    pub async fn flush_heartbeats(&self) -> ServiceResult<u64> {
        let beats = self.inner.heartbeats.take();
        if beats.is_empty() {
            return Ok(0);
        }
        match self.store_ref().flush_heartbeats(&beats).await {
            Ok(rows) => {
                self.inner.heartbeats.count_flush(rows);
                Ok(rows)
            }
            Err(error) => {
                self.inner.heartbeats.restore(beats);
                Err(error.into())
            }
        }
    }

    /// What the heartbeat buffer has done so far.
    pub fn heartbeat_counts(&self) -> crate::bot_protocol::HeartbeatCounts {
        self.inner.heartbeats.counts()
    }

    /// Flushes heartbeats every
    /// [`effective_flush_interval`](crate::ServiceOptions::effective_flush_interval)
    /// until `shutdown` completes, then once more.
    pub async fn run_heartbeat_flusher(&self, shutdown: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.inner.options.effective_flush_interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    if let Err(error) = self.flush_heartbeats().await {
                        tracing::warn!(error = %error, "heartbeats not written; kept for the next flush");
                    }
                }
            }
        }
        if let Err(error) = self.flush_heartbeats().await {
            tracing::warn!(error = %error, "the last heartbeats could not be written at shutdown");
        }
    }
}

/// Whether a bot must leave, and why.
fn leave_word(record: &BotRecord) -> (bool, Option<String>) {
    match record.state() {
        Ok(BotState::Stopping) => (true, Some("the bot is being stopped".into())),
        Ok(state) if state.is_terminal() => (true, Some(format!("the bot is {state}"))),
        _ if record.leave_requested_at_ms().is_some() => (
            true,
            Some("leave was requested (POST /v1/bots/{id}/leave)".into()),
        ),
        _ => (false, None),
    }
}

fn answer(record: &BotRecord, duplicate: bool) -> ServiceResult<EventAnswer> {
    let (leave, reason) = leave_word(record);
    Ok(EventAnswer {
        meeting_status: record.meeting_status()?,
        duplicate,
        leave,
        reason,
    })
}
