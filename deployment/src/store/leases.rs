//! Named leases: work that one service process at a time must do (the
//! platform sweep) is done by whoever holds the lease. A holder renews it
//! while it lives; when it dies the lease expires and another process takes
//! it over.

use super::{Store, StoreError, now_ms, with_pool};

/// Who holds a lease, since when, and until when.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseHolder {
    /// The holding process (`pid…-…`).
    pub holder: String,
    /// When it took the lease (ms).
    pub acquired_at: i64,
    /// When it last renewed it (ms).
    pub renewed_at: i64,
    /// When the lease lapses unless renewed (ms).
    pub expires_at: i64,
}

const TAKE: &str = "INSERT INTO service_leases (name, holder, acquired_at, renewed_at, expires_at) \
     VALUES ($1, $2, $3, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
     acquired_at = CASE WHEN service_leases.holder = excluded.holder \
         THEN service_leases.acquired_at ELSE excluded.acquired_at END, \
     renewed_at = excluded.renewed_at, expires_at = excluded.expires_at \
     WHERE service_leases.holder = excluded.holder OR service_leases.expires_at < excluded.renewed_at \
     RETURNING holder, acquired_at, renewed_at, expires_at";

impl Store {
    /// Takes or renews the lease `name` for `holder` for `ttl_ms`: granted
    /// when it is free, expired, or already `holder`'s. `None` when another
    /// holder has it.
    pub async fn take_lease_named(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<LeaseHolder>, StoreError> {
        let now = now_ms();
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(TAKE)
                .bind(name)
                .bind(holder)
                .bind(now)
                .bind(now.saturating_add(ttl_ms))
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Gives the lease `name` up if `holder` has it.
    pub async fn release_lease_named(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM service_leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Who holds the lease `name`, if anyone ever took it.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<LeaseHolder>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT holder, acquired_at, renewed_at, expires_at FROM service_leases WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?
        }))
    }
}
