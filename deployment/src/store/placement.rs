//! Placement and the queue in the database: a bot placed on a platform
//! only below its cap, counted in the same transaction; the durable queue
//! of bots no platform had room for; the capacity each platform holds.
//!
//! # Why the count and the placement are one step
//!
//! Several service processes place bots at once. Each placement on a
//! platform first locks that platform's row of `platform_capacity`
//! (PostgreSQL `SELECT … FOR UPDATE`; on SQLite the transaction holds the
//! single write lock from its first statement), then counts the bots
//! holding capacity there (deploying, running, stopping) and moves the bot
//! to `deploying` on that platform only if the count is below the cap. The
//! next placement on the same platform waits for the lock and, reading
//! after the commit, counts the bot just placed. Only placements add to a
//! platform's count, so no interleaving exceeds a cap.

use platform_core::BotId;

use super::bots::{INSERT_HISTORY, INSERT_TOKEN, REVOKE_TOKENS, db_id, readable};
use super::outbox::{announce, write_events};
use super::rows::BotRecord;
use super::{Dialect, Store, StoreError, counts_by_name, in_transaction, now_ms, with_pool};
use crate::bot::BotState;

/// A placement to try: move `bot` from `from` at `attempt` to `deploying`
/// on `platform`, if it has room.
#[derive(Clone, Debug)]
pub struct PlaceOn<'a> {
    /// The bot.
    pub bot: BotId,
    /// The state it must be in (`pending`, `queued`, or `deploying` on a
    /// platform that started nothing).
    pub from: BotState,
    /// The attempt it must be at.
    pub attempt: u32,
    /// Where to place it.
    pub platform: &'a str,
    /// The platform's cap on all its bots (`None`: no cap).
    pub max_bots: Option<u32>,
    /// The bot's meeting platform and the platform's cap on bots of it, when
    /// the platform has one (a warm pool per meeting platform).
    pub meeting_cap: Option<(&'a str, u32)>,
    /// Why (history and reason) when it is placed.
    pub reason: &'a str,
    /// The lease the caller keeps on the bot while it deploys it.
    pub lease: (&'a str, i64),
    /// The bot-protocol token of the new attempt, when bots get one.
    pub token: Option<&'a crate::bot_protocol::BotToken>,
}

/// A cap that left no room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoRoom {
    /// Bots holding capacity under that cap.
    pub used: u64,
    /// The cap.
    pub cap: u32,
    /// The meeting platform, when the cap is that meeting platform's.
    pub meeting_platform: Option<String>,
}

/// What [`Store::place_bot`] did.
#[derive(Debug)]
pub enum Placed {
    /// The bot is `deploying` on the platform with a new attempt (boxed: a
    /// record is large beside the other answers).
    Placed(Box<BotRecord>),
    /// The platform is at its cap; nothing was written.
    NoRoom(NoRoom),
    /// The bot is not where the caller thought (someone else moved it).
    Moved,
}

/// How many bots wait in the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queued bots.
    pub length: u64,
    /// When the one that waited longest entered the queue (ms).
    pub oldest_queued_at: Option<i64>,
}

const HOLDING: &str = "status IN ('deploying', 'running', 'stopping')";

const PLACE: &str = "UPDATE bots SET status = 'deploying', platform = $1, reason = $2, \
     attempt = attempt + 1, platform_id = NULL, connection_url = NULL, deploy_started_at = $3, \
     lease_owner = $4, lease_until = $5, updated_at = $3, unconfirmed_bot_token = $9 \
     WHERE id = $6 AND status = $7 AND attempt = $8 RETURNING *";

const QUEUE: &str = "UPDATE bots SET status = 'queued', platform = '', platform_id = NULL, \
     connection_url = NULL, reason = $1, queued_at = COALESCE(queued_at, $2), \
     lease_owner = NULL, lease_until = NULL, updated_at = $2 \
     WHERE id = $3 AND status = $4 AND attempt = $5 RETURNING *";

const CLAIM_QUEUED_SQLITE: &str = "UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id = (\
     SELECT id FROM bots WHERE status = 'queued' AND (lease_until IS NULL OR lease_until < $3) \
     AND meeting_platform NOT IN ($4, $5, $6) \
     ORDER BY priority DESC, queued_at, id LIMIT 1) RETURNING *";

const CLAIM_QUEUED_POSTGRES: &str = "UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id = (\
     SELECT id FROM bots WHERE status = 'queued' AND (lease_until IS NULL OR lease_until < $3) \
     AND meeting_platform NOT IN ($4, $5, $6) \
     ORDER BY priority DESC, queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *";

impl Store {
    /// Records the cap a platform runs with, for the operator's view, and
    /// makes sure its capacity row exists.
    pub async fn record_platform_cap(
        &self,
        platform: &str,
        max_bots: Option<u32>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO platform_capacity (platform, max_bots, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (platform) DO UPDATE SET max_bots = excluded.max_bots, \
                 updated_at = excluded.updated_at",
            )
            .bind(platform)
            .bind(max_bots.map(i64::from))
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Places a bot on a platform if the platform has room, counting and
    /// placing in one transaction (see this module's docs).
    pub async fn place_bot(&self, p: &PlaceOn<'_>) -> Result<Placed, StoreError> {
        let now = now_ms();
        let reason = readable(p.reason);
        let lock = match self.dialect() {
            Dialect::Postgres => {
                "SELECT platform FROM platform_capacity WHERE platform = $1 FOR UPDATE"
            }
            Dialect::Sqlite => "SELECT platform FROM platform_capacity WHERE platform = $1",
        };
        let count_all = format!("SELECT COUNT(*) FROM bots WHERE platform = $1 AND {HOLDING}");
        let count_meeting = format!(
            "SELECT COUNT(*) FROM bots WHERE platform = $1 AND meeting_platform = $2 AND {HOLDING}"
        );
        let placed = in_transaction!(self, |tx| {
            let locked: Option<(String,)> = sqlx::query_as(lock)
                .bind(p.platform)
                .fetch_optional(&mut *tx)
                .await?;
            if locked.is_none() {
                sqlx::query(
                    "INSERT INTO platform_capacity (platform, max_bots, updated_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (platform) DO NOTHING",
                )
                .bind(p.platform)
                .bind(p.max_bots.map(i64::from))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let _: Option<(String,)> = sqlx::query_as(lock)
                    .bind(p.platform)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            // A meeting platform's own cap first (a warm pool per meeting
            // platform says more than the platform's sum), then the total.
            let mut full = None;
            if let Some((meeting, cap)) = p.meeting_cap {
                let (used,): (i64,) = sqlx::query_as(&count_meeting)
                    .bind(p.platform)
                    .bind(meeting)
                    .fetch_one(&mut *tx)
                    .await?;
                let used = u64::try_from(used).unwrap_or_default();
                if used >= u64::from(cap) {
                    full = Some(NoRoom {
                        used,
                        cap,
                        meeting_platform: Some(meeting.to_owned()),
                    });
                }
            }
            if let (None, Some(cap)) = (&full, p.max_bots) {
                let (used,): (i64,) = sqlx::query_as(&count_all)
                    .bind(p.platform)
                    .fetch_one(&mut *tx)
                    .await?;
                let used = u64::try_from(used).unwrap_or_default();
                if used >= u64::from(cap) {
                    full = Some(NoRoom {
                        used,
                        cap,
                        meeting_platform: None,
                    });
                }
            }
            match full {
                Some(no_room) => Placed::NoRoom(no_room),
                None => {
                    let record: Option<BotRecord> = sqlx::query_as(PLACE)
                        .bind(p.platform)
                        .bind(&reason)
                        .bind(now)
                        .bind(p.lease.0)
                        .bind(p.lease.1)
                        .bind(db_id(p.bot))
                        .bind(p.from.as_str())
                        .bind(i64::from(p.attempt))
                        .bind(p.token.map(crate::bot_protocol::BotToken::expose))
                        .fetch_optional(&mut *tx)
                        .await?;
                    match record {
                        Some(record) => {
                            sqlx::query(REVOKE_TOKENS)
                                .bind(now)
                                .bind(record.id)
                                .execute(&mut *tx)
                                .await?;
                            if let Some(token) = p.token {
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
                                .bind(p.from.as_str())
                                .bind(BotState::Deploying.as_str())
                                .bind(&reason)
                                .bind(record.attempt)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            let events =
                                announce(&record, Some(p.from), BotState::Deploying, &reason, now)?;
                            write_events!(self, tx, record.id, &events, now);
                            Placed::Placed(Box::new(record))
                        }
                        None => Placed::Moved,
                    }
                }
            }
        });
        if matches!(placed, Placed::Placed(_)) {
            self.wake_outbox();
        }
        Ok(placed)
    }

    /// Puts a bot in the queue (`pending`, or `deploying` on a platform
    /// that started nothing, → `queued`), keeping the time it first entered
    /// the queue. `None` when it moved meanwhile.
    pub async fn queue_bot(
        &self,
        bot: BotId,
        from: BotState,
        attempt: u32,
        reason: &str,
    ) -> Result<Option<BotRecord>, StoreError> {
        let now = now_ms();
        let reason = readable(reason);
        let queued = in_transaction!(self, |tx| {
            let record: Option<BotRecord> = sqlx::query_as(QUEUE)
                .bind(&reason)
                .bind(now)
                .bind(db_id(bot))
                .bind(from.as_str())
                .bind(i64::from(attempt))
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(record) = &record {
                sqlx::query(INSERT_HISTORY)
                    .bind(record.id)
                    .bind(from.as_str())
                    .bind(BotState::Queued.as_str())
                    .bind(&reason)
                    .bind(record.attempt)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let events = announce(record, Some(from), BotState::Queued, &reason, now)?;
                write_events!(self, tx, record.id, &events, now);
            }
            record
        });
        if queued.is_some() {
            self.wake_outbox();
        }
        Ok(queued)
    }

    /// Takes the lease of the next queued bot in drain order (priority,
    /// then the time it entered the queue) whose lease is free, for
    /// `owner` until `lease_until`. Another process skips it (`FOR UPDATE
    /// SKIP LOCKED` on PostgreSQL, the single writer on SQLite) and, once
    /// the lease is written, leaves it alone until it is released. Bots of
    /// the meeting platforms in `skip` (at most three: no room for them)
    /// are passed over.
    pub async fn claim_next_queued(
        &self,
        owner: &str,
        lease_until: i64,
        skip: &[&str],
    ) -> Result<Option<BotRecord>, StoreError> {
        let skipped = |i: usize| skip.get(i).copied().unwrap_or("");
        let sql = match self.dialect() {
            Dialect::Sqlite => CLAIM_QUEUED_SQLITE,
            Dialect::Postgres => CLAIM_QUEUED_POSTGRES,
        };
        let now = now_ms();
        Ok(in_transaction!(self, |tx| {
            sqlx::query_as(sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind(skipped(0))
                .bind(skipped(1))
                .bind(skipped(2))
                .fetch_optional(&mut *tx)
                .await?
        }))
    }

    /// A queued bot's place in the queue (1 is next).
    pub async fn queue_position(&self, record: &BotRecord) -> Result<u64, StoreError> {
        let queued_at = record.queued_at.unwrap_or(record.updated_at);
        let (ahead,): (i64,) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM bots WHERE status = 'queued' AND (priority > $1 \
                 OR (priority = $1 AND (queued_at < $2 OR (queued_at = $2 AND id < $3))))",
            )
            .bind(record.priority)
            .bind(queued_at)
            .bind(record.id)
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(ahead).unwrap_or_default() + 1)
    }

    /// The queue's length and the age of its oldest bot.
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let (length, oldest): (i64, Option<i64>) = with_pool!(self, |pool| {
            sqlx::query_as("SELECT COUNT(*), MIN(queued_at) FROM bots WHERE status = 'queued'")
                .fetch_one(pool)
                .await?
        });
        Ok(QueueStats {
            length: u64::try_from(length).unwrap_or_default(),
            oldest_queued_at: oldest,
        })
    }

    /// Queued bots that entered the queue before `before` (ms), oldest
    /// first, at most `limit`.
    pub async fn queued_before(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<BotRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT * FROM bots WHERE status = 'queued' AND queued_at < $1 \
                 ORDER BY queued_at, id LIMIT $2",
            )
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many bots hold capacity on each platform (deploying, running,
    /// stopping), by platform name.
    pub async fn capacity_used(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = format!(
            "SELECT platform, COUNT(*) FROM bots WHERE {HOLDING} GROUP BY platform ORDER BY platform"
        );
        let rows: Vec<(String, i64)> =
            with_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        Ok(counts_by_name(rows))
    }

    /// How many bots need a platform (active, or ended with cleanup
    /// pending), by platform name: what the reconciler looks after, and
    /// what it must report when their platform is not configured.
    pub async fn needing_platform(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT platform, COUNT(*) FROM bots WHERE platform <> '' AND \
                 (status IN ('deploying', 'running', 'stopping') OR cleanup_pending) \
                 GROUP BY platform ORDER BY platform",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(counts_by_name(rows))
    }

    /// How many bots wait in the queue, by meeting platform.
    pub async fn queued_by_meeting_platform(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT meeting_platform, COUNT(*) FROM bots WHERE status = 'queued' \
                 GROUP BY meeting_platform ORDER BY meeting_platform",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(counts_by_name(rows))
    }
}
