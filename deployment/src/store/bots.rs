//! Bots, their status history and idempotency keys.
//!
//! Every status change is a compare-and-set on `(status, attempt)` written
//! in the same transaction as its history row, so two actors (a request and
//! the reconciler, or two service processes) can never both apply a move,
//! and no move is ever recorded without its reason.

use platform_core::{BotDeploymentConfig, BotId};

use super::outbox::{announce, write_events};
use super::rows::{BotRecord, HistoryRow};
use super::{Dialect, Store, StoreError, in_transaction, is_unique_violation, now_ms, with_pool};
use crate::bot::{BotState, HistoryEntry};
use crate::bot_protocol::BotToken;
use crate::meeting::MeetingStatus;

/// A bot to create, from a validated config.
#[derive(Clone, Debug)]
pub struct NewBot<'a> {
    /// The validated request (its bot id is ignored: the database assigns one).
    pub config: &'a BotDeploymentConfig,
    /// Its queue priority (higher first; 0 by default).
    pub priority: i64,
    /// The bot's own webhook receiver, already checked.
    pub webhook_url: Option<&'a str>,
    /// `pending`, or `scheduled` when its deploy time is ahead.
    pub status: BotState,
    /// Why it starts in that state (its first history row): `created`, or
    /// when and why it is scheduled.
    pub reason: &'a str,
    /// When it must be in its meeting (ms), if it was scheduled.
    pub join_at: Option<i64>,
    /// When its deploy is due (ms): the deploy intent, written with the
    /// bot so a crash before the platform call leaves a due row any
    /// service process finishes. `None`: created without a deploy.
    pub deploy_at: Option<i64>,
    /// The lease the creating request keeps on the bot until it has placed
    /// it, so the scheduler leaves a bot whose request is alive to that
    /// request.
    pub lease: Option<(&'a str, i64)>,
}

/// An idempotency key and the fingerprint of the request that came with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// A digest of the request body: the same key with another body is a
    /// conflict.
    pub fingerprint: String,
}

/// What [`Store::create_bot`] did.
#[derive(Debug)]
pub enum CreateOutcome {
    /// A new bot.
    Created(BotRecord),
    /// The key was used before with the same request: that bot.
    Existing(BotRecord),
    /// The key was used before with another request.
    Conflict {
        /// The bot created with the key.
        bot: BotId,
    },
}

/// A compare-and-set status change.
#[derive(Clone, Debug)]
pub struct Transition<'a> {
    /// The bot.
    pub bot: BotId,
    /// The state it must be in.
    pub from: BotState,
    /// The attempt it must be at.
    pub attempt: u32,
    /// The new state.
    pub to: BotState,
    /// Why (recorded on the bot and in its history).
    pub reason: &'a str,
    /// A connection URL learnt on the way.
    pub connection_url: Option<&'a str>,
    /// Whether the platform resource must still be released.
    pub cleanup_pending: Option<bool>,
    /// Take the bot's lease until this time (ms), for this owner.
    pub lease: Option<(&'a str, i64)>,
    /// For a move to `stopping`: how the stop ends (`stopped` or `failed`,
    /// with this reason) instead of `stopped on request`.
    pub ending: Option<(BotState, &'a str)>,
}

impl<'a> Transition<'a> {
    /// `from → to` at `attempt`, for `reason`.
    pub fn new(bot: BotId, from: BotState, attempt: u32, to: BotState, reason: &'a str) -> Self {
        Self {
            bot,
            from,
            attempt,
            to,
            reason,
            connection_url: None,
            cleanup_pending: None,
            lease: None,
            ending: None,
        }
    }
}

/// Which bots to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only bots in this state.
    pub status: Option<BotState>,
    /// Only bots on this platform.
    pub platform: Option<String>,
    /// Only bots in this meeting status.
    pub meeting_status: Option<MeetingStatus>,
    /// Only bots with a larger id (the cursor).
    pub after: Option<BotId>,
    /// At most this many.
    pub limit: u32,
}

pub(super) fn db_id(bot: BotId) -> i64 {
    i64::try_from(bot.0).unwrap_or(i64::MAX)
}

pub(super) fn bot_id(id: i64) -> BotId {
    BotId(u64::try_from(id).unwrap_or_default())
}

const INSERT_BOT: &str = "INSERT INTO bots (meeting_platform, meeting_url, meeting_url_redacted, \
     meeting_password, has_password, display_name, recording_enabled, waiting_room_timeout_secs, \
     no_one_joined_timeout_secs, everyone_left_timeout_secs, status, platform, attempt, reason, \
     cleanup_pending, created_at, updated_at, priority, join_at, deploy_at, lease_owner, lease_until) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13, '', 0, $14, FALSE, $12, $12, $11, $15, $16, $17, $18) \
     RETURNING *";

pub(super) const INSERT_HISTORY: &str = "INSERT INTO bot_status_history (bot_id, from_status, to_status, reason, attempt, at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

const SELECT_KEY: &str = "SELECT bot_id, fingerprint FROM idempotency_keys WHERE key = $1";

const TRANSITION: &str = "UPDATE bots SET status = $1, reason = $2, \
     connection_url = COALESCE($3, connection_url), \
     cleanup_pending = COALESCE($4, cleanup_pending), \
     meeting_url = CASE WHEN $5 THEN NULL ELSE meeting_url END, \
     meeting_password = CASE WHEN $5 THEN NULL ELSE meeting_password END, \
     unconfirmed_bot_token = CASE WHEN $5 THEN NULL ELSE unconfirmed_bot_token END, \
     lease_owner = COALESCE($6, lease_owner), lease_until = COALESCE($7, lease_until), \
     end_status = COALESCE($12, end_status), end_reason = COALESCE($13, end_reason), \
     updated_at = $8 \
     WHERE id = $9 AND status = $10 AND attempt = $11 RETURNING *";

/// Revokes every live token of a bot (it ended, or deploys again).
pub(super) const REVOKE_TOKENS: &str =
    "UPDATE bot_tokens SET revoked_at = $1 WHERE bot_id = $2 AND revoked_at IS NULL";

pub(super) const INSERT_TOKEN: &str = "INSERT INTO bot_tokens (token_hash, bot_id, attempt, created_at) \
     VALUES ($1, $2, $3, $4)";

const BEGIN_DEPLOY: &str = "UPDATE bots SET status = 'deploying', reason = $1, attempt = attempt + 1, \
     platform_id = NULL, connection_url = NULL, deploy_started_at = $2, \
     lease_owner = $3, lease_until = $4, updated_at = $2, unconfirmed_bot_token = $6, platform = $7 \
     WHERE id = $5 AND status = 'pending' RETURNING *";

/// Records the platform's identifier for an attempt. A bot that ended
/// meanwhile (stopped or failed while the platform was answering) is marked
/// for cleanup, so what the platform started is released.
const RECORD_DEPLOYED: &str = "UPDATE bots SET platform_id = $1, \
     connection_url = COALESCE($2, connection_url), unconfirmed_bot_token = NULL, \
     cleanup_pending = CASE WHEN status IN ('stopped', 'failed') THEN TRUE ELSE cleanup_pending END, \
     updated_at = $3 \
     WHERE id = $4 AND attempt = $5 AND (platform_id IS NULL OR platform_id = $1) RETURNING *";

const LEASE_BATCH_SQLITE: &str = "UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id IN (\
     SELECT id FROM bots WHERE platform = $3 \
     AND (status IN ('deploying', 'running', 'stopping') OR cleanup_pending) \
     AND (lease_until IS NULL OR lease_until < $4) AND id > $5 ORDER BY id LIMIT $6) \
     RETURNING *";

const LEASE_BATCH_POSTGRES: &str = "UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id IN (\
     SELECT id FROM bots WHERE platform = $3 \
     AND (status IN ('deploying', 'running', 'stopping') OR cleanup_pending) \
     AND (lease_until IS NULL OR lease_until < $4) AND id > $5 ORDER BY id LIMIT $6 \
     FOR UPDATE SKIP LOCKED) RETURNING *";

impl Store {
    /// Creates a bot in `pending` (or `scheduled`), with its first history
    /// row and its deploy intent, and records the idempotency key if there
    /// is one — all or nothing.
    pub async fn create_bot(
        &self,
        new: NewBot<'_>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError> {
        match self.try_create_bot(&new, idempotency).await {
            Ok(outcome) => {
                if matches!(outcome, CreateOutcome::Created(_)) {
                    self.wake_outbox();
                }
                Ok(outcome)
            }
            // Two requests with one new key raced and the other one won:
            // answer as it would have been answered a moment later.
            Err(e) if is_unique_violation(&e) => match idempotency {
                Some(key) => self.find_by_idempotency_key(key).await,
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn try_create_bot(
        &self,
        new: &NewBot<'_>,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, sqlx::Error> {
        let config = new.config;
        let leave = config.automatic_leave();
        let now = now_ms();
        let password = config.meeting_password().map(|p| p.expose().to_owned());
        let reason = readable(new.reason);
        Ok(in_transaction!(self, |tx| {
            let seen: Option<(i64, String)> = match idempotency {
                Some(key) => {
                    sqlx::query_as(SELECT_KEY)
                        .bind(&key.key)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
            };
            match (seen, idempotency) {
                (Some((id, fingerprint)), Some(key)) if fingerprint != key.fingerprint => {
                    CreateOutcome::Conflict { bot: bot_id(id) }
                }
                (Some((id, _)), _) => {
                    let record: BotRecord = sqlx::query_as("SELECT * FROM bots WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    CreateOutcome::Existing(record)
                }
                (None, _) => {
                    let record: BotRecord = sqlx::query_as(INSERT_BOT)
                        .bind(config.meeting_platform().as_str())
                        .bind(config.meeting_url().expose())
                        .bind(config.meeting_url().redacted())
                        .bind(password.as_deref())
                        .bind(password.is_some())
                        .bind(config.display_name().as_str())
                        .bind(config.recording_enabled())
                        .bind(secs_i64(leave.waiting_room_timeout))
                        .bind(secs_i64(leave.no_one_joined_timeout))
                        .bind(secs_i64(leave.everyone_left_timeout))
                        .bind(new.priority)
                        .bind(now)
                        .bind(new.status.as_str())
                        .bind(&reason)
                        .bind(new.join_at)
                        .bind(new.deploy_at)
                        .bind(new.lease.map(|(owner, _)| owner))
                        .bind(new.lease.map(|(_, until)| until))
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(INSERT_HISTORY)
                        .bind(record.id)
                        .bind(None::<&str>)
                        .bind(new.status.as_str())
                        .bind(&reason)
                        .bind(0_i64)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(url) = new.webhook_url {
                        sqlx::query("INSERT INTO bot_webhook_urls (bot_id, url) VALUES ($1, $2)")
                            .bind(record.id)
                            .bind(url)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let events = announce(&record, None, new.status, &reason, now)
                        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
                    write_events!(self, tx, record.id, &events, now);
                    if let Some(key) = idempotency {
                        sqlx::query(
                            "INSERT INTO idempotency_keys (key, fingerprint, bot_id, created_at) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(&key.key)
                        .bind(&key.fingerprint)
                        .bind(record.id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    CreateOutcome::Created(record)
                }
            }
        }))
    }

    async fn find_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<CreateOutcome, StoreError> {
        let seen: Option<(i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_KEY)
                .bind(&key.key)
                .fetch_optional(pool)
                .await?
        });
        let Some((id, fingerprint)) = seen else {
            return Err(StoreError::Query(
                "an idempotency key conflicted and then vanished".into(),
            ));
        };
        let bot = bot_id(id);
        if fingerprint != key.fingerprint {
            return Ok(CreateOutcome::Conflict { bot });
        }
        match self.get_bot(bot).await? {
            Some(record) => Ok(CreateOutcome::Existing(record)),
            None => Err(StoreError::Query(format!(
                "idempotency key points at bot {bot}, which does not exist"
            ))),
        }
    }

    /// One bot.
    pub async fn get_bot(&self, bot: BotId) -> Result<Option<BotRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT * FROM bots WHERE id = $1")
                .bind(db_id(bot))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Several bots by id, in id order; unknown ids are left out.
    pub async fn get_bots(&self, bots: &[BotId]) -> Result<Vec<BotRecord>, StoreError> {
        let mut found = Vec::with_capacity(bots.len());
        // One statement per id keeps the SQL identical in both dialects; the
        // CLI asks for a handful, the API for one.
        for bot in bots {
            if let Some(record) = self.get_bot(*bot).await? {
                found.push(record);
            }
        }
        found.sort_by_key(|r| r.id);
        found.dedup_by_key(|r| r.id);
        Ok(found)
    }

    /// A bot's history, oldest first.
    pub async fn history(&self, bot: BotId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows: Vec<HistoryRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT from_status, to_status, reason, attempt, at FROM bot_status_history \
                 WHERE bot_id = $1 ORDER BY id",
            )
            .bind(db_id(bot))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(HistoryRow::into_entry).collect()
    }

    /// Bots matching `filter`, in id order.
    pub async fn list_bots(&self, filter: &ListFilter) -> Result<Vec<BotRecord>, StoreError> {
        let status = filter.status.map(BotState::as_str);
        let meeting_status = filter.meeting_status.map(MeetingStatus::as_str);
        let after = filter.after.map(db_id).unwrap_or(0);
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT * FROM bots WHERE ($1 IS NULL OR status = $1) \
                 AND ($2 IS NULL OR platform = $2) AND ($5 IS NULL OR meeting_status = $5) \
                 AND id > $3 ORDER BY id LIMIT $4",
            )
            .bind(status)
            .bind(filter.platform.as_deref())
            .bind(after)
            .bind(i64::from(filter.limit))
            .bind(meeting_status)
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many bots are in each state, for `platform` (or all).
    pub async fn count_by_status(
        &self,
        platform: Option<&str>,
    ) -> Result<Vec<(BotState, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM bots WHERE ($1 IS NULL OR platform = $1) GROUP BY status",
            )
            .bind(platform)
            .fetch_all(pool)
            .await?
        });
        let mut counts: Vec<(BotState, u64)> = rows
            .into_iter()
            .filter_map(|(s, n)| Some((s.parse().ok()?, u64::try_from(n).unwrap_or_default())))
            .collect();
        counts.sort();
        Ok(counts)
    }

    /// `pending → deploying` on `platform`: writes the deploy intent
    /// (attempt + 1, a history row, a lease for `owner` until
    /// `lease_until`) without looking at the platform's cap — the service
    /// places bots with [`place_bot`](Self::place_bot), which does. `None`
    /// when the bot is not pending any more (someone else moved it first).
    pub async fn begin_deploy(
        &self,
        bot: BotId,
        platform: &str,
        reason: &str,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<BotRecord>, StoreError> {
        self.begin_deploy_with_token(bot, platform, reason, owner, lease_until, None)
            .await
    }

    /// [`begin_deploy`](Self::begin_deploy), and, when the
    /// bot gets the bot protocol, its `token` for the new attempt (the hash
    /// for good, the token itself until the platform answers; earlier
    /// attempts' tokens are revoked). `None` when the bot is not pending any
    /// more (someone else moved it first).
    pub async fn begin_deploy_with_token(
        &self,
        bot: BotId,
        platform: &str,
        reason: &str,
        owner: &str,
        lease_until: i64,
        token: Option<&BotToken>,
    ) -> Result<Option<BotRecord>, StoreError> {
        let now = now_ms();
        let record = in_transaction!(self, |tx| {
            let record: Option<BotRecord> = sqlx::query_as(BEGIN_DEPLOY)
                .bind(reason)
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .bind(db_id(bot))
                .bind(token.map(BotToken::expose))
                .bind(platform)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(record) = &record {
                sqlx::query(REVOKE_TOKENS)
                    .bind(now)
                    .bind(record.id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(token) = token {
                    sqlx::query(INSERT_TOKEN)
                        .bind(token.hash())
                        .bind(record.id)
                        .bind(record.attempt)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(INSERT_HISTORY)
                    .bind(record.id)
                    .bind(BotState::Pending.as_str())
                    .bind(BotState::Deploying.as_str())
                    .bind(reason)
                    .bind(record.attempt)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let events = announce(
                    record,
                    Some(BotState::Pending),
                    BotState::Deploying,
                    reason,
                    now,
                )?;
                write_events!(self, tx, record.id, &events, now);
            }
            record
        });
        if record.is_some() {
            self.wake_outbox();
        }
        Ok(record)
    }

    /// Applies `t` if the bot is still in `t.from` at `t.attempt`, with its
    /// history row. `None` when it is not (someone else moved it first).
    /// Entering a terminal state erases the meeting URL and password.
    pub async fn transition(&self, t: &Transition<'_>) -> Result<Option<BotRecord>, StoreError> {
        let now = now_ms();
        let reason = readable(t.reason);
        let record = in_transaction!(self, |tx| {
            let record: Option<BotRecord> = sqlx::query_as(TRANSITION)
                .bind(t.to.as_str())
                .bind(&reason)
                .bind(t.connection_url)
                .bind(t.cleanup_pending)
                .bind(t.to.is_terminal())
                .bind(t.lease.map(|(owner, _)| owner))
                .bind(t.lease.map(|(_, until)| until))
                .bind(now)
                .bind(db_id(t.bot))
                .bind(t.from.as_str())
                .bind(i64::from(t.attempt))
                .bind(t.ending.map(|(state, _)| state.as_str()))
                .bind(t.ending.map(|(_, reason)| readable(reason)))
                .fetch_optional(&mut *tx)
                .await?;
            if record.is_some() && t.to.is_terminal() {
                // An ended bot's token is refused from now on.
                sqlx::query(REVOKE_TOKENS)
                    .bind(now)
                    .bind(db_id(t.bot))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(record) = &record {
                sqlx::query(INSERT_HISTORY)
                    .bind(db_id(t.bot))
                    .bind(t.from.as_str())
                    .bind(t.to.as_str())
                    .bind(&reason)
                    .bind(i64::from(t.attempt))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let events = announce(record, Some(t.from), t.to, &reason, now)?;
                write_events!(self, tx, record.id, &events, now);
            }
            record
        });
        if record.is_some() {
            self.wake_outbox();
        }
        if t.to.is_terminal() && record.is_some() {
            self.purge_erased().await;
        }
        Ok(record)
    }

    /// Records the platform's answer to deploy `attempt`: its identifier and
    /// connection URL. `None` when the bot is at another attempt or already
    /// has another identifier.
    pub async fn record_deployed(
        &self,
        bot: BotId,
        attempt: u32,
        platform_id: &str,
        connection_url: Option<&str>,
    ) -> Result<Option<BotRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(RECORD_DEPLOYED)
                .bind(platform_id)
                .bind(connection_url)
                .bind(now_ms())
                .bind(db_id(bot))
                .bind(i64::from(attempt))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Notes why a bot is still where it is (a platform call that will be
    /// retried) without changing its state or history.
    pub async fn set_reason(
        &self,
        bot: BotId,
        status: BotState,
        attempt: u32,
        reason: &str,
    ) -> Result<Option<BotRecord>, StoreError> {
        let reason = readable(reason);
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE bots SET reason = $1, updated_at = $2 WHERE id = $3 AND status = $4 \
                 AND attempt = $5 RETURNING *",
            )
            .bind(&reason)
            .bind(now_ms())
            .bind(db_id(bot))
            .bind(status.as_str())
            .bind(i64::from(attempt))
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Updates the connection URL of a bot that has one now.
    pub async fn set_connection_url(&self, bot: BotId, url: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE bots SET connection_url = $1, updated_at = $2 WHERE id = $3 \
                 AND (connection_url IS NULL OR connection_url <> $1)",
            )
            .bind(url)
            .bind(now_ms())
            .bind(db_id(bot))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks an ended bot's platform resource as released (and erases any
    /// secret left). Returns whether it did.
    pub async fn finish_cleanup(&self, bot: BotId, attempt: u32) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE bots SET cleanup_pending = FALSE, meeting_url = NULL, meeting_password = NULL, \
                 unconfirmed_bot_token = NULL, updated_at = $1 WHERE id = $2 AND attempt = $3 AND status IN ('stopped', 'failed')",
            )
            .bind(now_ms())
            .bind(db_id(bot))
            .bind(i64::from(attempt))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Leases up to `limit` bots of `platform` that need the reconciler
    /// (active, or ended with cleanup pending) and whose lease is free or
    /// expired, with ids above `after`, for `owner` until `lease_until`.
    /// Another process never gets the same bot until the lease is released
    /// or expires.
    pub async fn lease_batch(
        &self,
        platform: &str,
        owner: &str,
        lease_until: i64,
        after: BotId,
        limit: u32,
    ) -> Result<Vec<BotRecord>, StoreError> {
        let sql = match self.dialect() {
            Dialect::Sqlite => LEASE_BATCH_SQLITE,
            Dialect::Postgres => LEASE_BATCH_POSTGRES,
        };
        let now = now_ms();
        let mut records: Vec<BotRecord> = in_transaction!(self, |tx| {
            sqlx::query_as(sql)
                .bind(owner)
                .bind(lease_until)
                .bind(platform)
                .bind(now)
                .bind(db_id(after))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?
        });
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    /// Forgets idempotency keys created before `before` (ms). Returns how
    /// many were forgotten.
    pub async fn forget_idempotency_keys(&self, before: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Takes a bot's lease for `owner` until `lease_until`, whoever holds it
    /// (a request acting on the bot now keeps the reconciler away).
    pub async fn take_lease(
        &self,
        bot: BotId,
        owner: &str,
        lease_until: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id = $3")
                .bind(owner)
                .bind(lease_until)
                .bind(db_id(bot))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Takes a bot's lease for `owner` until `lease_until` unless another
    /// owner holds it unexpired, and returns the bot as it is now; `None`
    /// when another process holds it (or the bot does not exist).
    pub async fn take_free_lease(
        &self,
        bot: BotId,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<BotRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
                 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until IS NULL OR lease_until < $4) \
                 RETURNING *",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(db_id(bot))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Releases a bot's lease if `owner` holds it.
    pub async fn release_lease(&self, bot: BotId, owner: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE bots SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
            )
            .bind(db_id(bot))
            .bind(owner)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

fn secs_i64(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The most characters a bot's reason keeps: a sentence or two with the
/// provider's code and message, never a page.
pub const MAX_REASON_CHARS: usize = 500;

/// A reason as it is recorded: one line, cut at a word (see
/// [`platform_core::reason::one_line`]).
pub(super) fn readable(reason: &str) -> String {
    platform_core::reason::one_line(reason, MAX_REASON_CHARS)
}
