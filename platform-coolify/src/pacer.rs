//! Client-side pacing of API calls: a token bucket that slows down when
//! Coolify says few requests are left and stops while it says to wait.
//!
//! Coolify limits every user to `API_RATE_LIMIT` requests a minute (200 by
//! default) and answers 429 past it. A burst of deploys that ran into that
//! limit would fail together and retry together; spacing the calls out keeps
//! every call succeeding.

use std::time::Duration;

use platform_core::pacing::TokenBucket;

use crate::config::Pacing;

/// When fewer than this share of the server's limit is left, the pace drops
/// to what the remaining requests allow over a whole minute.
const LOW_WATER_SHARE: f64 = 0.2;

/// The slowest pace, as a share of the configured one: even with nothing
/// left we keep asking now and then, because the server's window may have
/// reset.
const SLOWEST_SHARE: f64 = 0.1;

/// The pace of every call of one client: a [`TokenBucket`] at the configured
/// rate, slowed while the server says it is running low.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Configured requests per second.
    full_rate: f64,
    bucket: TokenBucket,
}

impl Pacer {
    pub(crate) fn new(pacing: Pacing) -> Self {
        let full_rate = f64::from(pacing.requests_per_minute.max(1)) / 60.0;
        Self {
            full_rate,
            bucket: TokenBucket::new("Coolify API", f64::from(pacing.burst.max(1)), full_rate),
        }
    }

    /// Waits for this caller's turn. Each caller reserves the next free slot
    /// at once, so waiters go out in arrival order without waking each other.
    pub(crate) async fn acquire(&self) {
        self.bucket.acquire().await;
    }

    /// Reads `X-RateLimit-Limit` and `X-RateLimit-Remaining`: below a fifth
    /// of the limit, slow to what is left over a minute; above, go back to
    /// the configured pace.
    pub(crate) fn observe_limits(&self, limit: Option<u32>, remaining: Option<u32>) {
        let (Some(limit), Some(remaining)) = (limit, remaining) else {
            return;
        };
        self.bucket.set_rate(
            if f64::from(remaining) < f64::from(limit) * LOW_WATER_SHARE {
                (f64::from(remaining) / 60.0).clamp(self.full_rate * SLOWEST_SHARE, self.full_rate)
            } else {
                self.full_rate
            },
        );
    }

    /// Holds every call until `after` has passed (the server's
    /// `Retry-After`); then one call goes out and the rest follow at the
    /// pace.
    pub(crate) fn hold_for(&self, after: Duration) {
        self.bucket.hold_for(after);
    }

    /// The current pace in requests per second.
    #[cfg(test)]
    pub(crate) fn current_rate(&self) -> f64 {
        self.bucket.rate()
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    fn pacer(per_minute: u32, burst: u32) -> Pacer {
        Pacer::new(Pacing {
            requests_per_minute: per_minute,
            burst,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_out_at_once_then_calls_are_spaced() {
        let pacer = pacer(60, 3);
        let start = Instant::now();
        for _ in 0..3 {
            pacer.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..4 {
            pacer.acquire().await;
        }
        // 60 per minute: one a second after the burst.
        assert_eq!(start.elapsed().as_secs(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_pace() {
        let pacer = std::sync::Arc::new(pacer(120, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move { pacer.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // One at once, four more at two a second.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_everyone() {
        let pacer = pacer(6000, 10);
        pacer.hold_for(Duration::from_secs(3));
        let start = Instant::now();
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn slows_down_when_the_server_runs_low_and_recovers() {
        let pacer = pacer(180, 5);
        assert!((pacer.current_rate() - 3.0).abs() < 1e-9);
        pacer.observe_limits(Some(200), Some(150));
        assert!((pacer.current_rate() - 3.0).abs() < 1e-9);
        // 30 left of 200: 30 over a minute is half a request a second.
        pacer.observe_limits(Some(200), Some(30));
        assert!((pacer.current_rate() - 0.5).abs() < 1e-9);
        // Nothing left: the slowest pace, not a stop.
        pacer.observe_limits(Some(200), Some(0));
        assert!((pacer.current_rate() - 0.3).abs() < 1e-9);
        pacer.observe_limits(Some(200), Some(199));
        assert!((pacer.current_rate() - 3.0).abs() < 1e-9);
        // Missing headers change nothing.
        pacer.observe_limits(None, Some(0));
        assert!((pacer.current_rate() - 3.0).abs() < 1e-9);
    }
}
