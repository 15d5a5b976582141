//! The bot protocol's records: token lookups, meeting-status changes with
//! their history, coalesced heartbeats, leave requests and the watchdog's
//! scan.
//!
//! Every meeting-status change goes through [`Store::write_meeting_status`]:
//! one transaction that checks the event id, moves the status with a
//! compare-and-set, writes the history row and, when the meeting ended,
//! records the stop in the lifecycle too; the webhook events announcing
//! them (`bot.meeting_status_changed`, and `bot.status_changed` for the
//! stop) are written to the outbox in the same transaction.

use platform_core::BotId;

use super::bots::{INSERT_HISTORY, db_id, readable};
use super::outbox::{announce, write_events};
use super::rows::timestamp;
use super::rows::{BotRecord, MeetingHistoryRow};
use super::{DbPool, Store, StoreError, in_transaction, is_unique_violation, now_ms, with_pool};
use crate::bot::BotState;
use crate::meeting::{MeetingEvent, MeetingHistoryEntry, MeetingStatus};
use crate::webhooks::event::meeting_status_event;

/// A token found by its digest, with the bot it belongs to.
#[derive(Debug)]
pub struct TokenOwner {
    /// The bot, as recorded now.
    pub bot: BotRecord,
    /// The deploy attempt the token was given for.
    pub attempt: u32,
    /// Whether the token was revoked (the bot ended or deployed again).
    pub revoked: bool,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    #[sqlx(flatten)]
    bot: BotRecord,
    token_attempt: i64,
    token_revoked_at: Option<i64>,
}

/// A meeting-status change to write.
#[derive(Debug)]
pub struct MeetingChange<'a> {
    /// The bot.
    pub bot: BotId,
    /// The attempt the reporter belongs to (the bot must still be at it).
    pub attempt: u32,
    /// The meeting status the bot must still be in.
    pub from: MeetingStatus,
    /// What was reported.
    pub event: &'a MeetingEvent,
    /// When the meeting ended: stop the bot in the same transaction.
    pub stop: Option<StopOnEnding<'a>>,
}

/// The lifecycle's side of a meeting that ended: a live bot moves to
/// `stopping`, and its stop ends in `end` with `reason`.
#[derive(Clone, Copy, Debug)]
pub struct StopOnEnding<'a> {
    /// `stopped` (the call ended) or `failed` (fatal).
    pub end: BotState,
    /// The reason the bot ends with.
    pub reason: &'a str,
    /// Who takes the bot's lease to drive the stop, and until when (ms).
    pub lease: (&'a str, i64),
}

/// What [`Store::write_meeting_status`] did.
#[derive(Debug)]
pub enum MeetingWrite {
    /// Written; the bot as it is now, and whether its stop was recorded
    /// with it.
    Written {
        /// The bot after the change.
        bot: BotRecord,
        /// Whether the bot moved to `stopping` with it.
        stopping: bool,
    },
    /// The event id was seen before: nothing written.
    Duplicate(BotRecord),
    /// The bot is no longer in `from` at that attempt (or no longer live):
    /// read it again and decide again.
    Moved,
}

/// Which live bots the watchdog looks at.
#[derive(Clone, Copy, Debug)]
pub struct WatchCutoffs {
    /// Bots in a meeting whose last heartbeat is older than this (ms).
    pub heartbeat_before: i64,
    /// Bots asked to leave before this (ms).
    pub leave_before: i64,
    /// With `BOT_PROTOCOL_REQUIRED`: running bots that never spoke and were
    /// deployed before this (ms).
    pub silent_deployed_before: Option<i64>,
}

const WRITE_MEETING: &str = "UPDATE bots SET meeting_status = $1, meeting_sub_code = $2, \
     meeting_message = $3, meeting_recording = COALESCE($4, meeting_recording), \
     meeting_status_at = $5, updated_at = $5 \
     WHERE id = $6 AND meeting_status = $7 AND attempt = $8 \
     AND status IN ('deploying', 'running', 'stopping') RETURNING *";

const INSERT_MEETING_HISTORY: &str = "INSERT INTO bot_meeting_history \
     (bot_id, event_id, from_status, to_status, sub_code, message, recording, source, attempt, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

const STOP_ON_ENDING: &str = "UPDATE bots SET status = 'stopping', reason = $1, end_status = $2, \
     end_reason = $3, lease_owner = $4, lease_until = $5, updated_at = $6 \
     WHERE id = $7 AND status = $8 AND attempt = $9 RETURNING *";

const FLUSH_SQLITE: &str = "UPDATE bots SET last_heartbeat_at = beat.at FROM (\
     SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at \
     FROM json_each($1)) AS beat \
     WHERE bots.id = beat.id AND (bots.last_heartbeat_at IS NULL OR bots.last_heartbeat_at < beat.at)";

const FLUSH_POSTGRES: &str = "UPDATE bots SET last_heartbeat_at = beat.at \
     FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS beat(id, at) \
     WHERE bots.id = beat.id AND (bots.last_heartbeat_at IS NULL OR bots.last_heartbeat_at < beat.at)";

/// A meeting-status write that failed: a statement, or a row that cannot
/// be read back into a bot.
#[derive(Debug)]
enum WriteError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<StoreError> for WriteError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Heartbeats written per statement.
const FLUSH_CHUNK: usize = 2_000;

impl Store {
    /// The token whose digest is `hash`, with its bot. `None` when no bot
    /// was ever given it.
    pub async fn find_bot_token(&self, hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        let row: Option<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT b.*, t.attempt AS token_attempt, t.revoked_at AS token_revoked_at \
                 FROM bot_tokens t JOIN bots b ON b.id = t.bot_id WHERE t.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|row| TokenOwner {
            attempt: u32::try_from(row.token_attempt).unwrap_or_default(),
            revoked: row.token_revoked_at.is_some(),
            bot: row.bot,
        }))
    }

    /// How many tokens of `bot` are still valid (tests and `doctor`).
    pub async fn live_bot_tokens(&self, bot: BotId) -> Result<u64, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM bot_tokens WHERE bot_id = $1 AND revoked_at IS NULL",
            )
            .bind(db_id(bot))
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Writes one meeting-status change: the one place a bot's meeting
    /// status is written (see the module docs).
    pub async fn write_meeting_status(
        &self,
        change: &MeetingChange<'_>,
    ) -> Result<MeetingWrite, StoreError> {
        match self.try_write_meeting_status(change).await {
            Ok(write) => {
                if matches!(write, MeetingWrite::Written { .. }) {
                    self.wake_outbox();
                }
                Ok(write)
            }
            // The same event id raced in twice and the other one won.
            Err(WriteError::Sql(e)) if is_unique_violation(&e) => {
                match self.get_bot(change.bot).await? {
                    Some(bot) => Ok(MeetingWrite::Duplicate(bot)),
                    None => Ok(MeetingWrite::Moved),
                }
            }
            Err(WriteError::Sql(e)) => Err(e.into()),
            Err(WriteError::Store(e)) => Err(e),
        }
    }

    async fn try_write_meeting_status(
        &self,
        change: &MeetingChange<'_>,
    ) -> Result<MeetingWrite, WriteError> {
        let event = change.event;
        let now = now_ms();
        let message = event.message.as_deref().map(readable);
        Ok(in_transaction!(self, |tx| {
            let seen: Option<i64> =
                match &event.event_id {
                    Some(event_id) => sqlx::query_scalar(
                        "SELECT id FROM bot_meeting_history WHERE bot_id = $1 AND event_id = $2",
                    )
                    .bind(db_id(change.bot))
                    .bind(event_id)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => None,
                };
            if seen.is_some() {
                let bot: BotRecord = sqlx::query_as("SELECT * FROM bots WHERE id = $1")
                    .bind(db_id(change.bot))
                    .fetch_one(&mut *tx)
                    .await?;
                MeetingWrite::Duplicate(bot)
            } else {
                let written: Option<BotRecord> = sqlx::query_as(WRITE_MEETING)
                    .bind(event.status.as_str())
                    .bind(event.sub_code.as_deref())
                    .bind(message.as_deref())
                    .bind(event.recording)
                    .bind(now)
                    .bind(db_id(change.bot))
                    .bind(change.from.as_str())
                    .bind(i64::from(change.attempt))
                    .fetch_optional(&mut *tx)
                    .await?;
                match written {
                    None => MeetingWrite::Moved,
                    Some(record) => {
                        sqlx::query(INSERT_MEETING_HISTORY)
                            .bind(record.id)
                            .bind(event.event_id.as_deref())
                            .bind(change.from.as_str())
                            .bind(event.status.as_str())
                            .bind(event.sub_code.as_deref())
                            .bind(message.as_deref())
                            .bind(event.recording)
                            .bind(event.source.as_str())
                            .bind(record.attempt)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        let announced = meeting_status_event(
                            &record.to_bot()?,
                            Some(change.from.as_str()),
                            event.status.as_str(),
                            &event.ending_reason(),
                            timestamp(now),
                        );
                        write_events!(self, tx, record.id, [&announced], now);
                        let live =
                            matches!(record.state(), Ok(BotState::Deploying | BotState::Running));
                        match change.stop {
                            Some(stop) if live => {
                                let from = record.status.clone();
                                let reason = readable(&format!("{}; stopping it", stop.reason));
                                let stopped: Option<BotRecord> = sqlx::query_as(STOP_ON_ENDING)
                                    .bind(&reason)
                                    .bind(stop.end.as_str())
                                    .bind(readable(stop.reason))
                                    .bind(stop.lease.0)
                                    .bind(stop.lease.1)
                                    .bind(now)
                                    .bind(record.id)
                                    .bind(&from)
                                    .bind(record.attempt)
                                    .fetch_optional(&mut *tx)
                                    .await?;
                                match stopped {
                                    Some(stopped) => {
                                        sqlx::query(INSERT_HISTORY)
                                            .bind(record.id)
                                            .bind(&from)
                                            .bind(BotState::Stopping.as_str())
                                            .bind(&reason)
                                            .bind(record.attempt)
                                            .bind(now)
                                            .execute(&mut *tx)
                                            .await?;
                                        let events = announce(
                                            &stopped,
                                            record.state().ok(),
                                            BotState::Stopping,
                                            &reason,
                                            now,
                                        )?;
                                        write_events!(self, tx, record.id, &events, now);
                                        MeetingWrite::Written {
                                            bot: stopped,
                                            stopping: true,
                                        }
                                    }
                                    None => MeetingWrite::Written {
                                        bot: record,
                                        stopping: false,
                                    },
                                }
                            }
                            _ => MeetingWrite::Written {
                                bot: record,
                                stopping: false,
                            },
                        }
                    }
                }
            }
        }))
    }

    /// Whether `bot` reported an event with this id before.
    pub async fn meeting_event_seen(&self, bot: BotId, event_id: &str) -> Result<bool, StoreError> {
        let seen: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM bot_meeting_history WHERE bot_id = $1 AND event_id = $2",
            )
            .bind(db_id(bot))
            .bind(event_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(seen.is_some())
    }

    /// A bot's meeting-status history, oldest first.
    pub async fn meeting_history(
        &self,
        bot: BotId,
    ) -> Result<Vec<MeetingHistoryEntry>, StoreError> {
        let rows: Vec<MeetingHistoryRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT event_id, from_status, to_status, sub_code, message, recording, source, \
                 attempt, at FROM bot_meeting_history WHERE bot_id = $1 ORDER BY id",
            )
            .bind(db_id(bot))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(MeetingHistoryRow::into_entry)
            .collect()
    }

    /// Writes the latest heartbeat of each bot, never moving one back, in
    /// one statement per 2,000 bots. Returns how many rows changed.
    pub async fn flush_heartbeats(&self, beats: &[(BotId, i64)]) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in beats.chunks(FLUSH_CHUNK) {
            written += match &self.pool {
                DbPool::Sqlite(pool) => {
                    let json = serde_json::to_string(
                        &chunk
                            .iter()
                            .map(|(bot, at)| [db_id(*bot), *at])
                            .collect::<Vec<_>>(),
                    )
                    .map_err(|e| StoreError::Query(e.to_string()))?;
                    sqlx::query(FLUSH_SQLITE)
                        .bind(json)
                        .execute(pool)
                        .await?
                        .rows_affected()
                }
                DbPool::Postgres(pool) => {
                    let ids: Vec<i64> = chunk.iter().map(|(bot, _)| db_id(*bot)).collect();
                    let ats: Vec<i64> = chunk.iter().map(|(_, at)| *at).collect();
                    sqlx::query(FLUSH_POSTGRES)
                        .bind(&ids)
                        .bind(&ats)
                        .execute(pool)
                        .await?
                        .rows_affected()
                }
            };
        }
        Ok(written)
    }

    /// Records that `bot` is asked to leave (the first request's time is
    /// kept). `None` when the bot is not deploying or running.
    pub async fn request_leave(&self, bot: BotId) -> Result<Option<BotRecord>, StoreError> {
        let now = now_ms();
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE bots SET leave_requested_at = COALESCE(leave_requested_at, $1), \
                 updated_at = $1 WHERE id = $2 AND status IN ('deploying', 'running') RETURNING *",
            )
            .bind(now)
            .bind(db_id(bot))
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Live bots of `platform` (ids above `after`, at most `limit`) that
    /// the watchdog must act on: silent for too long in a meeting, asked to
    /// leave too long ago, or (when the protocol is required) never heard
    /// from since a deploy longer ago than the deploy timeout.
    pub async fn watched_bots(
        &self,
        platform: &str,
        cutoffs: WatchCutoffs,
        after: BotId,
        limit: u32,
    ) -> Result<Vec<BotRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT * FROM bots WHERE platform = $1 AND status IN ('deploying', 'running') \
                 AND id > $2 AND ( \
                 (last_heartbeat_at IS NOT NULL AND last_heartbeat_at < $3 \
                  AND meeting_status IN ('joining', 'in_waiting_room', 'in_call')) \
                 OR (leave_requested_at IS NOT NULL AND leave_requested_at < $4) \
                 OR ($5 AND status = 'running' AND meeting_status = 'unknown' \
                  AND last_heartbeat_at IS NULL AND deploy_started_at < $6)) \
                 ORDER BY id LIMIT $7",
            )
            .bind(platform)
            .bind(db_id(after))
            .bind(cutoffs.heartbeat_before)
            .bind(cutoffs.leave_before)
            .bind(cutoffs.silent_deployed_before.is_some())
            .bind(cutoffs.silent_deployed_before.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many bots are in each meeting status, for `platform` (or all).
    pub async fn count_by_meeting_status(
        &self,
        platform: Option<&str>,
    ) -> Result<Vec<(MeetingStatus, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT meeting_status, COUNT(*) FROM bots WHERE ($1 IS NULL OR platform = $1) \
                 GROUP BY meeting_status",
            )
            .bind(platform)
            .fetch_all(pool)
            .await?
        });
        let mut counts: Vec<(MeetingStatus, u64)> = rows
            .into_iter()
            .filter_map(|(s, n)| Some((s.parse().ok()?, u64::try_from(n).unwrap_or_default())))
            .collect();
        counts.sort();
        Ok(counts)
    }
}
