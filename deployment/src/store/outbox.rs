//! The webhook outbox: events written in the transaction of the change they
//! announce, claimed by one delivery worker at a time, with every attempt
//! recorded.
//!
//! # Claims
//!
//! A worker claims due deliveries by writing its name and a lease
//! (`claimed_by`, `claim_until`) on them; on PostgreSQL the rows are chosen
//! with `FOR UPDATE SKIP LOCKED`, so several service processes never claim
//! one row together, and on SQLite the claim runs under the single writer
//! lock. A claim that outlives its lease (the process died mid-delivery) is
//! free again once the lease expires; the lease is longer than an attempt
//! may last, so a live worker never loses a row it is still sending.
//!
//! # Every status change writes its events
//!
//! A store function that changes a bot's `status` (or its meeting status)
//! builds the events with [`announce`] (or
//! [`meeting_status_event`](crate::webhooks::event::meeting_status_event))
//! from the row it wrote, and inserts them with [`write_events!`] inside
//! the same `in_transaction!` block, before the commit.
//!
//! # Order per bot and receiver
//!
//! Only the oldest undelivered event of each (bot, receiver) pair can be
//! claimed: the next one waits until that one is delivered or failed.

use std::sync::Arc;

use platform_core::BotId;
use tokio::sync::Notify;

use super::rows::{BotRecord, timestamp};
use super::{Dialect, Store, StoreError, in_transaction, now_ms, with_pool};
use crate::bot::BotState;
use crate::webhooks::event::{EncodedEvent, lifecycle_events};

/// Where events go besides a bot's own receiver, and how the process is
/// told that new ones were written. Shared by every clone of a store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outbox {
    /// The operator's `WEBHOOK_URL`: every event is also sent there.
    pub(crate) operator_url: Option<Arc<str>>,
    /// Woken after a commit that wrote events, so this process's worker
    /// sends them at once (other processes find them on their next poll).
    pub(crate) written: Arc<Notify>,
}

/// Who receives a delivery.
pub const DESTINATION_OPERATOR: &str = "operator";
/// The bot's own `webhook_url`.
pub const DESTINATION_BOT: &str = "bot";

/// A delivery's state.
pub const PENDING: &str = "pending";
/// Delivered: a receiver answered 2xx.
pub const DELIVERED: &str = "delivered";
/// Given up after `WEBHOOK_MAX_AGE`.
pub const FAILED: &str = "failed";

/// One row of `webhook_deliveries`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRecord {
    /// The delivery's id (for `POST /v1/webhooks/{delivery}/retry`).
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    /// The bot the event is about.
    pub bot_id: i64,
    /// `operator` or `bot`.
    pub destination: String,
    /// Where it is sent.
    pub url: String,
    /// The event type.
    pub event_type: String,
    /// The exact body.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the event was written (ms).
    pub created_at: i64,
    /// Where the maximum age counts from (ms).
    pub age_from: i64,
    /// When the next attempt is due (ms).
    pub next_attempt_at: i64,
    /// The worker holding it.
    pub claimed_by: Option<String>,
    /// Until when (ms).
    pub claim_until: Option<i64>,
    /// When the last attempt started (ms).
    pub last_attempt_at: Option<i64>,
    /// The last HTTP status answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// The start of the last answer's body (at most 1 KiB).
    pub last_response: Option<String>,
    /// When a receiver accepted it (ms).
    pub delivered_at: Option<i64>,
    /// When the row last changed (ms).
    pub updated_at: i64,
}

/// One row of `webhook_attempts`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: i64,
    /// 1 for the first attempt.
    pub number: i64,
    /// When it started (ms).
    pub started_at: i64,
    /// How long it took (ms).
    pub duration_ms: i64,
    /// The HTTP status, when one came back.
    pub status_code: Option<i32>,
    /// Why it failed (timeout, refused connection, non-2xx answer).
    pub error: Option<String>,
    /// The start of the body (at most 1 KiB).
    pub response: Option<String>,
}

/// What an attempt leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    /// A 2xx: done.
    Delivered,
    /// Try again at this time (ms).
    RetryAt(i64),
    /// Given up.
    Failed,
}

/// What a manual retry found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Due now again (a failed delivery gets a fresh maximum age).
    Scheduled(DeliveryRecord),
    /// It was delivered already; nothing to do.
    AlreadyDelivered(DeliveryRecord),
    /// No such delivery.
    NotFound,
}

/// Undelivered and failed deliveries, and how old the oldest undelivered
/// event is: what `/metrics` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxSummary {
    /// Deliveries by state (`pending`, `delivered`, `failed`).
    pub by_state: Vec<(String, u64)>,
    /// When the oldest undelivered event was written (ms), if any.
    pub oldest_pending_at: Option<i64>,
}

/// Inserts the outbox rows of `$events` for bot `$bot` (an `i64`) at
/// `$now` inside the transaction `$tx`: one per event for the operator's
/// `WEBHOOK_URL` when set, and one per event for the bot's own
/// `webhook_url` when it has one. Expands once per dialect, inside
/// `in_transaction!`.
macro_rules! write_events {
    ($store:expr, $tx:ident, $bot:expr, $events:expr, $now:expr) => {
        for event in $events {
            if let Some(url) = &$store.outbox.operator_url {
                sqlx::query($crate::store::outbox::INSERT_OPERATOR_DELIVERY)
                    .bind($crate::store::outbox::new_message_id())
                    .bind($bot)
                    .bind(url.as_ref())
                    .bind(event.event_type)
                    .bind(&event.body)
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
            }
            sqlx::query($crate::store::outbox::INSERT_BOT_DELIVERY)
                .bind($crate::store::outbox::new_message_id())
                .bind(event.event_type)
                .bind(&event.body)
                .bind($now)
                .bind($bot)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

pub(crate) use write_events;

pub(crate) const INSERT_OPERATOR_DELIVERY: &str = "INSERT INTO webhook_deliveries \
     (message_id, bot_id, destination, url, event_type, payload, state, attempts, created_at, \
     age_from, next_attempt_at, updated_at) \
     VALUES ($1, $2, 'operator', $3, $4, $5, 'pending', 0, $6, $6, $6, $6)";

pub(crate) const INSERT_BOT_DELIVERY: &str = "INSERT INTO webhook_deliveries \
     (message_id, bot_id, destination, url, event_type, payload, state, attempts, created_at, \
     age_from, next_attempt_at, updated_at) \
     SELECT $1, bot_id, 'bot', url, $2, $3, 'pending', 0, $4, $4, $4, $4 \
     FROM bot_webhook_urls WHERE bot_id = $5";

/// The webhook events of one lifecycle transition (`bot.status_changed`,
/// and `bot.ended` when it ends the bot), built from the bot as it is after
/// the change, at `now` (ms): what the transaction that writes the change
/// writes with it.
pub(crate) fn announce(
    record: &BotRecord,
    from: Option<BotState>,
    to: BotState,
    reason: &str,
    now: i64,
) -> Result<Vec<EncodedEvent>, StoreError> {
    let bot = record.to_bot()?;
    Ok(lifecycle_events(&bot, from, to, reason, timestamp(now)))
}

/// A new `webhook-id`: `msg_` and 32 hex digits (no `.`, as the
/// specification requires of ids that are signed).
pub(crate) fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

const CLAIM_WHERE: &str = "d.state = 'pending' AND d.next_attempt_at <= $3 \
     AND (d.claim_until IS NULL OR d.claim_until < $3) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.bot_id = d.bot_id \
     AND e.destination = d.destination AND e.state = 'pending' AND e.id < d.id) \
     ORDER BY d.next_attempt_at, d.id LIMIT $4";

fn claim_sql(dialect: Dialect) -> String {
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE webhook_deliveries SET claimed_by = $1, claim_until = $2 WHERE id IN (\
         SELECT d.id FROM webhook_deliveries d WHERE {CLAIM_WHERE}{lock}) RETURNING *"
    )
}

fn db_id(bot: BotId) -> i64 {
    i64::try_from(bot.0).unwrap_or(i64::MAX)
}

impl Store {
    /// Sends every event also to the operator's `WEBHOOK_URL` (`None`: only
    /// to the bots' own receivers).
    pub fn with_operator_webhook(mut self, url: Option<String>) -> Self {
        self.outbox.operator_url = url.map(Arc::from);
        self
    }

    /// Resolves when events were written by this process since the last
    /// wake-up (the delivery worker's signal).
    pub(crate) fn outbox_written(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox.written)
    }

    pub(crate) fn wake_outbox(&self) {
        self.outbox.written.notify_one();
    }

    /// The bot's own webhook receiver, if it has one.
    pub async fn bot_webhook_url(&self, bot: BotId) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT url FROM bot_webhook_urls WHERE bot_id = $1")
                .bind(db_id(bot))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Claims up to `limit` due deliveries for `owner` until `claim_until`
    /// (ms): each the oldest undelivered event of its bot and receiver, and
    /// none that another worker holds.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        claim_until: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let sql = claim_sql(self.dialect());
        let now = now_ms();
        let mut claimed: Vec<DeliveryRecord> = in_transaction!(self, |tx| {
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(claim_until)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?
        });
        claimed.sort_by_key(|d| (d.next_attempt_at, d.id));
        Ok(claimed)
    }

    /// Records attempts of deliveries `owner` holds, each with what
    /// follows from it, and releases their claims, all in one transaction.
    /// An attempt whose claim is no longer `owner`'s is not recorded.
    /// Returns how many were.
    pub async fn finish_attempts(
        &self,
        owner: &str,
        attempts: &[(AttemptRecord, AfterAttempt)],
    ) -> Result<usize, StoreError> {
        let now = now_ms();
        let recorded = in_transaction!(self, |tx| {
            let mut recorded = 0;
            for (attempt, after) in attempts {
                let (state, next, delivered_at) = match after {
                    AfterAttempt::Delivered => (DELIVERED, None, Some(now)),
                    AfterAttempt::RetryAt(at) => (PENDING, Some(*at), None),
                    AfterAttempt::Failed => (FAILED, None, None),
                };
                let updated = sqlx::query(
                    "UPDATE webhook_deliveries SET state = $1, \
                     next_attempt_at = COALESCE($2, next_attempt_at), attempts = $3, \
                     claimed_by = NULL, claim_until = NULL, last_attempt_at = $4, \
                     last_status_code = $5, last_error = $6, last_response = $7, \
                     delivered_at = $8, updated_at = $9 \
                     WHERE id = $10 AND claimed_by = $11 AND state = 'pending'",
                )
                .bind(state)
                .bind(next)
                .bind(attempt.number)
                .bind(attempt.started_at)
                .bind(attempt.status_code)
                .bind(attempt.error.as_deref())
                .bind(attempt.response.as_deref())
                .bind(delivered_at)
                .bind(now)
                .bind(attempt.delivery_id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated > 0 {
                    recorded += 1;
                    sqlx::query(
                        "INSERT INTO webhook_attempts (delivery_id, number, started_at, duration_ms, \
                         status_code, error, response) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(attempt.delivery_id)
                    .bind(attempt.number)
                    .bind(attempt.started_at)
                    .bind(attempt.duration_ms)
                    .bind(attempt.status_code)
                    .bind(attempt.error.as_deref())
                    .bind(attempt.response.as_deref())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            recorded
        });
        Ok(recorded)
    }

    /// A bot's deliveries, oldest first, each with its attempts.
    pub async fn bot_deliveries(
        &self,
        bot: BotId,
    ) -> Result<Vec<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let (deliveries, attempts): (Vec<DeliveryRecord>, Vec<AttemptRecord>) =
            with_pool!(self, |pool| {
                let deliveries = sqlx::query_as(
                    "SELECT * FROM webhook_deliveries WHERE bot_id = $1 ORDER BY id",
                )
                .bind(db_id(bot))
                .fetch_all(pool)
                .await?;
                let attempts = sqlx::query_as(
                    "SELECT a.* FROM webhook_attempts a JOIN webhook_deliveries d \
                     ON d.id = a.delivery_id WHERE d.bot_id = $1 ORDER BY a.delivery_id, a.number",
                )
                .bind(db_id(bot))
                .fetch_all(pool)
                .await?;
                (deliveries, attempts)
            });
        Ok(deliveries
            .into_iter()
            .map(|d| {
                let mine = attempts
                    .iter()
                    .filter(|a| a.delivery_id == d.id)
                    .cloned()
                    .collect();
                (d, mine)
            })
            .collect())
    }

    /// One delivery with its attempts.
    pub async fn delivery(
        &self,
        id: i64,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let found: Option<DeliveryRecord> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT * FROM webhook_deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let Some(delivery) = found else {
            return Ok(None);
        };
        let attempts: Vec<AttemptRecord> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT * FROM webhook_attempts WHERE delivery_id = $1 ORDER BY number")
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        Ok(Some((delivery, attempts)))
    }

    /// Makes a failed or waiting delivery due now; a failed one gets a
    /// fresh maximum age. A delivered one is left alone.
    pub async fn retry_delivery(&self, id: i64) -> Result<RetryOutcome, StoreError> {
        let now = now_ms();
        let outcome = in_transaction!(self, |tx| {
            let found: Option<DeliveryRecord> =
                sqlx::query_as("SELECT * FROM webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            match found {
                None => RetryOutcome::NotFound,
                Some(d) if d.state == DELIVERED => RetryOutcome::AlreadyDelivered(d),
                Some(_) => {
                    let record: DeliveryRecord = sqlx::query_as(
                        "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, \
                         age_from = CASE WHEN state = 'failed' THEN $1 ELSE age_from END, \
                         updated_at = $1 WHERE id = $2 RETURNING *",
                    )
                    .bind(now)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    RetryOutcome::Scheduled(record)
                }
            }
        });
        if matches!(outcome, RetryOutcome::Scheduled(_)) {
            self.wake_outbox();
        }
        Ok(outcome)
    }

    /// Deliveries by state and the oldest undelivered event, for `/metrics`.
    pub async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        let (rows, oldest): (Vec<(String, i64)>, Option<i64>) = with_pool!(self, |pool| {
            let rows =
                sqlx::query_as("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")
                    .fetch_all(pool)
                    .await?;
            let oldest = sqlx::query_scalar(
                "SELECT MIN(created_at) FROM webhook_deliveries WHERE state = 'pending'",
            )
            .fetch_one(pool)
            .await?;
            (rows, oldest)
        });
        Ok(OutboxSummary {
            by_state: rows
                .into_iter()
                .map(|(s, n)| (s, u64::try_from(n).unwrap_or_default()))
                .collect(),
            oldest_pending_at: oldest,
        })
    }
}

/// A database time (ms) as a date.
pub(crate) fn timestamp_of(ms: i64) -> time::OffsetDateTime {
    timestamp(ms)
}
