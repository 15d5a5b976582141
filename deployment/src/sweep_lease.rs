//! The platform sweep's lease: with several service processes on one
//! PostgreSQL database, only the holder runs the reconciler's platform
//! sweep (batch status reads, re-driven deploys and stops, cleanups) and
//! the orphan sweep, so N replicas do not make N times the calls against
//! the providers' rate limits. Everything else (requests, the queue drain,
//! queue timeouts) runs in every process.
//!
//! The holder renews the lease three times per lease period
//! ([`ServiceOptions::sweep_lease`](crate::ServiceOptions), four fifths of
//! `RECONCILE_INTERVAL`) while it lives; every other process
//! tries to take it on each reconciler pass. When the holder dies (even
//! `kill -9`) the lease lapses within one period and the next pass of
//! another process takes it: within two intervals. Work under the lease is
//! safe to repeat — each bot is still leased on its own — so a holder that
//! stalls past its lease and overlaps with its successor costs calls, not
//! correctness.

use std::sync::atomic::Ordering;

use crate::error::ServiceResult;
use crate::service::BotService;

/// The name of the platform sweep's lease.
pub const SWEEP_LEASE: &str = "platform_sweep";

impl BotService {
    /// Takes or renews the platform sweep's lease; whether this process
    /// holds it now.
    pub async fn hold_sweep_lease(&self) -> ServiceResult<bool> {
        let ttl = i64::try_from(self.inner.options.sweep_lease.as_millis()).unwrap_or(i64::MAX);
        let taken = self
            .store()
            .take_lease_named(SWEEP_LEASE, &self.inner.instance, ttl)
            .await?;
        let held = taken.is_some();
        let was = self.inner.sweeping.swap(held, Ordering::AcqRel);
        match (was, held) {
            (false, true) => {
                tracing::info!(holder = %self.inner.instance, "this process now runs the platform sweep");
                self.inner.metrics.record_sweep_lease_taken();
            }
            (true, false) => {
                tracing::warn!(
                    "another process took the platform sweep over; this one stops sweeping"
                );
            }
            _ => {}
        }
        Ok(held)
    }

    /// Renews the lease if this process holds it (the heartbeat between
    /// passes).
    pub(crate) async fn renew_sweep_lease(&self) {
        if self.inner.sweeping.load(Ordering::Acquire)
            && let Err(error) = self.hold_sweep_lease().await
        {
            tracing::warn!(error = %error, "could not renew the platform sweep's lease; the next pass tries again");
        }
    }

    /// Gives the lease up (a clean shutdown), so another process takes over
    /// at once.
    pub async fn release_sweep_lease(&self) {
        if self.inner.sweeping.swap(false, Ordering::AcqRel)
            && let Err(error) = self
                .store()
                .release_lease_named(SWEEP_LEASE, &self.inner.instance)
                .await
        {
            tracing::warn!(error = %error, "could not give the platform sweep's lease up; it lapses on its own");
        }
    }
}
