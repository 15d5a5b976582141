//! The service's database: bots, their status history, warm-pool slots and
//! idempotency keys, on SQLite (the embedded default) or PostgreSQL (for
//! production and several service processes).
//!
//! # One store that switches dialect, not `sqlx::Any`
//!
//! The two dialects share almost every statement (SQLite accepts `$1`
//! placeholders and `RETURNING`), but not all of them: a claim that is safe
//! across processes needs `FOR UPDATE SKIP LOCKED` on PostgreSQL and
//! `BEGIN IMMEDIATE` on SQLite. `sqlx::Any` hides exactly that difference,
//! decodes fewer types and cannot run dialect-specific migrations. So
//! [`Store`] holds either pool, and each operation is written once as a
//! block that the `with_pool!` and `in_transaction!` macros compile for
//! both drivers, choosing the SQL by [`Dialect`] where it must differ.

mod bot_protocol;
mod bots;
mod connect;
mod leases;
pub(crate) mod outbox;
mod placement;
mod projection;
mod query_plans;
mod rows;
mod schedule;
mod slots;

use std::fmt;

pub use bot_protocol::{MeetingChange, MeetingWrite, StopOnEnding, TokenOwner, WatchCutoffs};
pub use bots::{CreateOutcome, IdempotencyKey, ListFilter, NewBot, Transition};
pub use leases::LeaseHolder;
pub use outbox::{
    AfterAttempt, AttemptRecord, DESTINATION_BOT, DESTINATION_OPERATOR, DeliveryRecord,
    OutboxSummary, RetryOutcome,
};
pub use placement::{NoRoom, PlaceOn, Placed, QueueStats};
pub use projection::{AheadCounts, AheadQuery, BacklogJoins, WINDOWS};
pub use query_plans::QueryPlan;
pub use rows::BotRecord;
pub(crate) use rows::timestamp;
pub use schedule::ScheduleWrite;

use platform_core::InstallationId;
use sqlx::{PgPool, SqlitePool};

/// Counts read as `(name, COUNT(*))` rows, as unsigned numbers.
pub(crate) fn counts_by_name(rows: Vec<(String, i64)>) -> Vec<(String, u64)> {
    rows.into_iter()
        .map(|(name, n)| (name, u64::try_from(n).unwrap_or_default()))
        .collect()
}

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// A SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Clone)]
enum DbPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database, shared by the service, the reconciler and the slot store.
/// Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    /// The database URL without its password, for messages.
    target: String,
    /// The installation id the schema was created with.
    installation: InstallationId,
    /// Where webhook events go, and the delivery worker's wake-up.
    outbox: outbox::Outbox,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .field("target", &self.target)
            .field("installation", &self.installation)
            .finish()
    }
}

/// Runs `$body` with `$pool` bound to whichever pool the store has.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::DbPool::Sqlite($pool) => $body,
            $crate::store::DbPool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` in a transaction bound to `$tx`, committed when `$body`
/// finishes and rolled back when it returns early. On SQLite the
/// transaction takes the write lock at once (`BEGIN IMMEDIATE`), so two
/// writers wait for each other instead of failing half-way.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::DbPool::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::store::DbPool::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

pub(crate) use {in_transaction, with_pool};

impl Store {
    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            DbPool::Sqlite(_) => Dialect::Sqlite,
            DbPool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The database URL without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The installation id: random, created with the schema, never changed.
    /// Every name and mark a platform gives this database's bots includes
    /// it.
    pub fn installation(&self) -> &InstallationId {
        &self.installation
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Makes sure a meeting URL and password just erased from a bot are
    /// gone from the SQLite files too, not only from the table: the
    /// database overwrites freed content with zeros (`secure_delete`, set on
    /// every connection), and this moves the write-ahead log into the
    /// database and empties it, since the log still holds the pages as they
    /// were before the erasure. Best effort: a checkpoint that another
    /// connection's reader holds up is retried after the next erasure.
    /// Nothing to do on PostgreSQL, whose storage the operator controls.
    pub(crate) async fn purge_erased(&self) {
        if let DbPool::Sqlite(pool) = &self.pool
            && let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
        {
            tracing::debug!(error = %error, "the write-ahead log could not be emptied now; the next erasure tries again");
        }
    }

    /// Closes every connection (shutdown, tests).
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}

/// Milliseconds since the Unix epoch: how the database keeps time.
pub(crate) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What went wrong with the database. Messages name the database without
/// its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `DATABASE_URL` is not something we can use.
    #[error("DATABASE_URL is not usable: {message}")]
    InvalidUrl {
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the database {target}: {message}")]
    Open {
        /// The database, without password.
        target: String,
        /// Why.
        message: String,
        /// Whether it may work later (connection refused) rather than
        /// needing a fix (no such directory, authentication failed).
        transient: bool,
    },
    /// The schema could not be brought up to date.
    #[error("cannot update the schema of {target}: {message}")]
    Migrate {
        /// The database, without password.
        target: String,
        /// Why.
        message: String,
    },
    /// The database stopped answering.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(String),
    /// A row holds a value this version cannot read.
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether trying again later may help.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::Open {
                    transient: true,
                    ..
                }
        )
    }

    /// Whether the operator must fix the configuration.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl { .. }
                | Self::Open {
                    transient: false,
                    ..
                }
                | Self::Migrate { .. }
        )
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error.to_string()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(error.to_string())
            }
            other => Self::Query(other.to_string()),
        }
    }
}

impl From<StoreError> for platform_core::Error {
    /// The slot store's errors, as the platform contract wants them.
    fn from(error: StoreError) -> Self {
        platform_core::Error::Unavailable {
            platform: "slot-store",
            resource: "pool slots".into(),
            message: error.to_string(),
        }
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}
