//! Scheduled bots and deploy intents in the database: the bots whose deploy
//! is due, claimed by one service process at a time in `join_at` order,
//! then creation order; a scheduled bot's new time or settings.
//!
//! A bot's deploy is due when it is `pending` or `scheduled` with a
//! `deploy_at` at or before now. Only the due bots are read (the partial
//! index `bots_deploy_due` on `deploy_at`), so a hundred thousand bots
//! scheduled for tomorrow cost a tick nothing.

use platform_core::BotId;

use super::bots::{INSERT_HISTORY, db_id, readable};
use super::outbox::{announce, write_events};
use super::rows::BotRecord;
use super::{Dialect, Store, StoreError, in_transaction, now_ms, with_pool};
use crate::bot::BotState;

pub(super) const DUE: &str = "status IN ('pending', 'scheduled') AND deploy_at IS NOT NULL";

/// The bots table read through `bots_deploy_due`, for a query whose WHERE
/// holds [`DUE`] and a range of `deploy_at`. SQLite without statistics
/// (the service never runs `ANALYZE`) prefers `bots_by_status` for the
/// status test, which reads every scheduled bot; `INDEXED BY` makes it read
/// only the range. PostgreSQL chooses by its own statistics.
pub(super) fn due_rows(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "bots INDEXED BY bots_deploy_due",
        Dialect::Postgres => "bots",
    }
}

/// The scheduler's claim of due bots (see [`Store::claim_due`]).
pub(super) fn claim_due_sql(dialect: Dialect) -> String {
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let rows = due_rows(dialect);
    format!(
        "UPDATE bots SET lease_owner = $1, lease_until = $2 WHERE id IN (\
         SELECT id FROM {rows} WHERE {DUE} AND deploy_at <= $3 \
         AND (lease_until IS NULL OR lease_until < $4) \
         ORDER BY COALESCE(join_at, deploy_at), id LIMIT $5{lock}) RETURNING *"
    )
}

/// The count of the deploys due and not started (see
/// [`Store::due_backlog`]).
pub(super) fn due_backlog_sql(dialect: Dialect) -> String {
    format!(
        "SELECT COUNT(*), MIN(deploy_at) FROM {} WHERE {DUE} AND deploy_at <= $1",
        due_rows(dialect)
    )
}

/// A scheduled bot's new time and settings, or a pending bot scheduled.
#[derive(Clone, Debug)]
pub struct ScheduleWrite<'a> {
    /// The bot.
    pub bot: BotId,
    /// The state it must be in: `scheduled` (a change), or `pending` (a
    /// bot created without a deploy, now deployed with a `join_at` ahead).
    pub from: BotState,
    /// When it must be in its meeting (ms).
    pub join_at: i64,
    /// When its deploy is due (ms).
    pub deploy_at: i64,
    /// A new display name, already checked.
    pub display_name: Option<&'a str>,
    /// New automatic-leave timeouts in seconds (waiting room, no one
    /// joined, everyone left), already checked.
    pub timeouts: Option<[i64; 3]>,
    /// The bot's reason from now on.
    pub reason: &'a str,
}

impl Store {
    /// Takes the lease of up to `limit` bots whose deploy is due at
    /// `due_at` (ms, the scheduler's clock) and whose lease is free, for
    /// `owner` until `lease_until`, in `join_at` order, then creation
    /// order. Another process skips them (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, the single writer on SQLite) and, once the lease is
    /// written, leaves them alone until it is released or lapses.
    pub async fn claim_due(
        &self,
        owner: &str,
        lease_until: i64,
        due_at: i64,
        limit: u32,
    ) -> Result<Vec<BotRecord>, StoreError> {
        let sql = claim_due_sql(self.dialect());
        let now = now_ms();
        let mut claimed: Vec<BotRecord> = in_transaction!(self, |tx| {
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(lease_until)
                .bind(due_at)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?
        });
        claimed.sort_by_key(|r| (r.join_at.or(r.deploy_at), r.id));
        Ok(claimed)
    }

    /// How many bots' deploys are due at `due_at` (ms) and not started,
    /// and the earliest of their deploy times (ms). Reads only the due
    /// rows.
    pub async fn due_backlog(&self, due_at: i64) -> Result<(u64, Option<i64>), StoreError> {
        let sql = due_backlog_sql(self.dialect());
        let (n, earliest): (i64, Option<i64>) = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(due_at).fetch_one(pool).await?
        });
        Ok((u64::try_from(n).unwrap_or_default(), earliest))
    }

    /// Records the deploy intent of a pending bot (its deploy is due from
    /// `at`), unless it has one, with the lease of the request that places
    /// it now (`owner` until `lease_until`). `None` when it is not pending
    /// any more.
    pub async fn mark_deploy_intent(
        &self,
        bot: BotId,
        at: i64,
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<BotRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "UPDATE bots SET deploy_at = COALESCE(deploy_at, $1), lease_owner = $3, \
                 lease_until = $4 WHERE id = $2 AND status = 'pending' RETURNING *",
            )
            .bind(at)
            .bind(db_id(bot))
            .bind(owner)
            .bind(lease_until)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Writes a scheduled bot's new time and settings (or schedules a
    /// pending bot, with its history row and event), if it is still in
    /// `w.from` and no process holds its lease (none is deploying it now).
    /// `None` otherwise.
    pub async fn write_schedule(
        &self,
        w: &ScheduleWrite<'_>,
    ) -> Result<Option<BotRecord>, StoreError> {
        let now = now_ms();
        let reason = readable(w.reason);
        let [waiting, no_one, everyone] = match w.timeouts {
            Some(t) => t.map(Some),
            None => [None; 3],
        };
        let record = in_transaction!(self, |tx| {
            let record: Option<BotRecord> = sqlx::query_as(
                "UPDATE bots SET status = 'scheduled', join_at = $1, deploy_at = $2, \
                 display_name = COALESCE($3, display_name), \
                 waiting_room_timeout_secs = COALESCE($4, waiting_room_timeout_secs), \
                 no_one_joined_timeout_secs = COALESCE($5, no_one_joined_timeout_secs), \
                 everyone_left_timeout_secs = COALESCE($6, everyone_left_timeout_secs), \
                 reason = $7, updated_at = $8 \
                 WHERE id = $9 AND status = $10 AND (lease_until IS NULL OR lease_until < $8) \
                 RETURNING *",
            )
            .bind(w.join_at)
            .bind(w.deploy_at)
            .bind(w.display_name)
            .bind(waiting)
            .bind(no_one)
            .bind(everyone)
            .bind(&reason)
            .bind(now)
            .bind(db_id(w.bot))
            .bind(w.from.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(record) = &record
                && w.from != BotState::Scheduled
            {
                sqlx::query(INSERT_HISTORY)
                    .bind(record.id)
                    .bind(w.from.as_str())
                    .bind(BotState::Scheduled.as_str())
                    .bind(&reason)
                    .bind(record.attempt)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let events = announce(record, Some(w.from), BotState::Scheduled, &reason, now)?;
                write_events!(self, tx, record.id, &events, now);
            }
            record
        });
        if record.is_some() && w.from != BotState::Scheduled {
            self.wake_outbox();
        }
        Ok(record)
    }
}
