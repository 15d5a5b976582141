//! The core [`SlotStore`] port on the service's database.
//!
//! A claim is one statement that picks the least recently used idle slot
//! and takes it. On PostgreSQL the pick locks the row with
//! `FOR UPDATE SKIP LOCKED`, so claims from several service processes never
//! get the same slot and never wait on each other; on SQLite the claim runs
//! in a `BEGIN IMMEDIATE` transaction, which serialises writers. A unique
//! index on `(pool, bot_id)` makes "one slot per bot" a database fact.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use platform_core::{BotId, MeetingPlatform, NewSlot, Slot, SlotState, SlotStore};

use super::{Dialect, Store, StoreError, in_transaction, is_unique_violation, now_ms, with_pool};

#[derive(sqlx::FromRow)]
struct SlotRow {
    pool: String,
    slot_id: String,
    meeting_platform: String,
    connection_url: Option<String>,
    state: String,
    bot_id: Option<i64>,
    failure_reason: Option<String>,
    updated_at: i64,
}

impl SlotRow {
    fn into_slot(self) -> Result<Slot, StoreError> {
        let meeting_platform: MeetingPlatform = self.meeting_platform.parse().map_err(|_| {
            StoreError::Corrupt(format!(
                "slot {} has meeting platform {:?}",
                self.slot_id, self.meeting_platform
            ))
        })?;
        let state = match (self.state.as_str(), self.bot_id) {
            ("idle", _) => SlotState::Idle,
            ("claimed", Some(bot)) => SlotState::Claimed {
                bot_id: BotId(u64::try_from(bot).unwrap_or_default()),
            },
            ("failed", _) => SlotState::Failed {
                reason: self.failure_reason.unwrap_or_default(),
            },
            (other, _) => {
                return Err(StoreError::Corrupt(format!(
                    "slot {} has state {other:?}",
                    self.slot_id
                )));
            }
        };
        let millis = u64::try_from(self.updated_at).unwrap_or_default();
        Ok(Slot {
            pool: self.pool,
            slot_id: self.slot_id,
            meeting_platform,
            connection_url: self.connection_url,
            state,
            updated_at: SystemTime::UNIX_EPOCH + Duration::from_millis(millis),
        })
    }
}

fn db_bot(bot: BotId) -> i64 {
    i64::try_from(bot.0).unwrap_or(i64::MAX)
}

const SELECT_HELD: &str =
    "SELECT * FROM pool_slots WHERE pool = $1 AND bot_id = $2 AND state = 'claimed'";

const CLAIM_SQLITE: &str = "UPDATE pool_slots SET state = 'claimed', bot_id = $3, updated_at = $4 \
     WHERE pool = $1 AND slot_id = (SELECT slot_id FROM pool_slots \
     WHERE pool = $1 AND meeting_platform = $2 AND state = 'idle' \
     ORDER BY updated_at, slot_id LIMIT 1) RETURNING *";

const CLAIM_POSTGRES: &str = "UPDATE pool_slots SET state = 'claimed', bot_id = $3, updated_at = $4 \
     WHERE pool = $1 AND slot_id = (SELECT slot_id FROM pool_slots \
     WHERE pool = $1 AND meeting_platform = $2 AND state = 'idle' \
     ORDER BY updated_at, slot_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *";

impl Store {
    async fn claim_once(
        &self,
        pool_name: &str,
        meeting_platform: MeetingPlatform,
        bot: BotId,
    ) -> Result<Option<SlotRow>, sqlx::Error> {
        let claim = match self.dialect() {
            Dialect::Sqlite => CLAIM_SQLITE,
            Dialect::Postgres => CLAIM_POSTGRES,
        };
        Ok(in_transaction!(self, |tx| {
            let held: Option<SlotRow> = sqlx::query_as(SELECT_HELD)
                .bind(pool_name)
                .bind(db_bot(bot))
                .fetch_optional(&mut *tx)
                .await?;
            match held {
                Some(held) => Some(held),
                None => {
                    sqlx::query_as(claim)
                        .bind(pool_name)
                        .bind(meeting_platform.as_str())
                        .bind(db_bot(bot))
                        .bind(now_ms())
                        .fetch_optional(&mut *tx)
                        .await?
                }
            }
        }))
    }

    /// Gives back every slot still claimed by a bot of `platform` that
    /// ended, was cleaned up, and has not changed since `ended_before` (ms):
    /// a platform whose cleanup did not release it would otherwise hold it
    /// forever. Returns `(pool, slot, bot)` of each slot given back.
    pub async fn release_orphan_slots(
        &self,
        platform: &str,
        ended_before: i64,
    ) -> Result<Vec<(String, String, BotId)>, StoreError> {
        let rows: Vec<(String, String, i64)> = in_transaction!(self, |tx| {
            let orphans: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT pool, slot_id, bot_id FROM pool_slots WHERE state = 'claimed' \
                 AND bot_id IN (SELECT id FROM bots WHERE platform = $1 \
                 AND status IN ('stopped', 'failed') AND NOT cleanup_pending AND updated_at < $2)",
            )
            .bind(platform)
            .bind(ended_before)
            .fetch_all(&mut *tx)
            .await?;
            let mut released = Vec::with_capacity(orphans.len());
            for (pool, slot, bot) in orphans {
                let done = sqlx::query(
                    "UPDATE pool_slots SET state = 'idle', bot_id = NULL, updated_at = $1 \
                     WHERE pool = $2 AND slot_id = $3 AND state = 'claimed' AND bot_id = $4",
                )
                .bind(now_ms())
                .bind(&pool)
                .bind(&slot)
                .bind(bot)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done > 0 {
                    released.push((pool, slot, bot));
                }
            }
            released
        });
        Ok(rows
            .into_iter()
            .map(|(pool, slot, bot)| (pool, slot, BotId(u64::try_from(bot).unwrap_or_default())))
            .collect())
    }

    /// Every pool name that has slots, sorted.
    pub async fn pool_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |p| {
            sqlx::query_scalar("SELECT DISTINCT pool FROM pool_slots ORDER BY pool")
                .fetch_all(p)
                .await?
        }))
    }
}

#[async_trait]
impl SlotStore for Store {
    async fn add_slot(&self, slot: NewSlot) -> platform_core::Result<Slot> {
        let row: SlotRow = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO pool_slots (pool, slot_id, meeting_platform, connection_url, state, updated_at) \
                 VALUES ($1, $2, $3, $4, 'idle', $5) ON CONFLICT (pool, slot_id) DO NOTHING",
            )
            .bind(&slot.pool)
            .bind(&slot.slot_id)
            .bind(slot.meeting_platform.as_str())
            .bind(slot.connection_url.as_deref())
            .bind(now_ms())
            .execute(pool)
            .await
            .map_err(StoreError::from)?;
            sqlx::query_as("SELECT * FROM pool_slots WHERE pool = $1 AND slot_id = $2")
                .bind(&slot.pool)
                .bind(&slot.slot_id)
                .fetch_one(pool)
                .await
                .map_err(StoreError::from)?
        });
        Ok(row.into_slot()?)
    }

    async fn claim_slot(
        &self,
        pool: &str,
        meeting_platform: MeetingPlatform,
        bot: BotId,
    ) -> platform_core::Result<Option<Slot>> {
        let row = match self.claim_once(pool, meeting_platform, bot).await {
            Ok(row) => row,
            // The same bot claimed concurrently from elsewhere and won the
            // unique (pool, bot_id) index: it holds that slot; return it.
            Err(e) if is_unique_violation(&e) => self
                .claim_once(pool, meeting_platform, bot)
                .await
                .map_err(StoreError::from)?,
            Err(e) => return Err(StoreError::from(e).into()),
        };
        Ok(row.map(SlotRow::into_slot).transpose()?)
    }

    async fn release_slot(
        &self,
        pool: &str,
        slot_id: &str,
        bot: BotId,
    ) -> platform_core::Result<bool> {
        let released = with_pool!(self, |p| {
            sqlx::query(
                "UPDATE pool_slots SET state = 'idle', bot_id = NULL, updated_at = $1 \
                 WHERE pool = $2 AND slot_id = $3 AND state = 'claimed' AND bot_id = $4",
            )
            .bind(now_ms())
            .bind(pool)
            .bind(slot_id)
            .bind(db_bot(bot))
            .execute(p)
            .await
            .map_err(StoreError::from)?
            .rows_affected()
        });
        Ok(released > 0)
    }

    async fn mark_slot_failed(
        &self,
        pool: &str,
        slot_id: &str,
        reason: &str,
    ) -> platform_core::Result<bool> {
        let marked = with_pool!(self, |p| {
            sqlx::query(
                "UPDATE pool_slots SET state = 'failed', bot_id = NULL, failure_reason = $1, \
                 updated_at = $2 WHERE pool = $3 AND slot_id = $4",
            )
            .bind(reason)
            .bind(now_ms())
            .bind(pool)
            .bind(slot_id)
            .execute(p)
            .await
            .map_err(StoreError::from)?
            .rows_affected()
        });
        Ok(marked > 0)
    }

    async fn recover_slot(&self, pool: &str, slot_id: &str) -> platform_core::Result<bool> {
        let recovered = with_pool!(self, |p| {
            sqlx::query(
                "UPDATE pool_slots SET state = 'idle', failure_reason = NULL, updated_at = $1 \
                 WHERE pool = $2 AND slot_id = $3 AND state = 'failed'",
            )
            .bind(now_ms())
            .bind(pool)
            .bind(slot_id)
            .execute(p)
            .await
            .map_err(StoreError::from)?
            .rows_affected()
        });
        Ok(recovered > 0)
    }

    async fn remove_slot(&self, pool: &str, slot_id: &str) -> platform_core::Result<bool> {
        let removed = with_pool!(self, |p| {
            sqlx::query(
                "DELETE FROM pool_slots WHERE pool = $1 AND slot_id = $2 AND state <> 'claimed'",
            )
            .bind(pool)
            .bind(slot_id)
            .execute(p)
            .await
            .map_err(StoreError::from)?
            .rows_affected()
        });
        Ok(removed > 0)
    }

    async fn get_slot(&self, pool: &str, slot_id: &str) -> platform_core::Result<Option<Slot>> {
        let row: Option<SlotRow> = with_pool!(self, |p| {
            sqlx::query_as("SELECT * FROM pool_slots WHERE pool = $1 AND slot_id = $2")
                .bind(pool)
                .bind(slot_id)
                .fetch_optional(p)
                .await
                .map_err(StoreError::from)?
        });
        Ok(row.map(SlotRow::into_slot).transpose()?)
    }

    async fn list_slots(&self, pool: &str) -> platform_core::Result<Vec<Slot>> {
        let rows: Vec<SlotRow> = with_pool!(self, |p| {
            sqlx::query_as("SELECT * FROM pool_slots WHERE pool = $1 ORDER BY slot_id")
                .bind(pool)
                .fetch_all(p)
                .await
                .map_err(StoreError::from)?
        });
        Ok(rows
            .into_iter()
            .map(SlotRow::into_slot)
            .collect::<Result<_, _>>()?)
    }
}
