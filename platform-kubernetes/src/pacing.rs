//! Client-side pacing of Kubernetes API requests (`K8S_API_QPS`), so a
//! burst of bots at the top of the hour queues here instead of tripping the
//! API server's priority-and-fairness limits for every other client of the
//! cluster.
//!
//! One token bucket for all calls: the API server meters a client as a
//! whole, not per verb. Its capacity is one second's worth of requests, so
//! no second ever sees more than `K8S_API_QPS` of ours, and a lone call never
//! waits.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A caller logs its wait when it is at least this long, so an operator sees
/// why a deploy took longer than usual.
const NOTEWORTHY_WAIT: Duration = Duration::from_secs(1);

/// A token bucket that hands out reservations: each caller takes a token
/// now, possibly driving the count below zero, and sleeps until its token
/// would have been refilled. Callers are served in arrival order with no
/// polling.
#[derive(Debug)]
pub(crate) struct Pacer {
    capacity: f64,
    per_second: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    updated: Instant,
}

impl Pacer {
    /// A full bucket of `per_second` tokens (at least one), refilled at
    /// `per_second`.
    pub(crate) fn per_second(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            capacity: rate,
            per_second: rate,
            state: Mutex::new(BucketState {
                tokens: rate,
                updated: Instant::now(),
            }),
        }
    }

    /// Takes a token and returns how long the caller must wait to use it.
    fn reserve(&self) -> Duration {
        // A poisoned lock only means another caller panicked between two
        // arithmetic lines; the numbers are still usable.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refilled = now.saturating_duration_since(state.updated).as_secs_f64() * self.per_second;
        state.tokens = (state.tokens + refilled).min(self.capacity) - 1.0;
        state.updated = now;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / self.per_second)
        }
    }

    /// Waits for a token.
    pub(crate) async fn acquire(&self) {
        let wait = self.reserve();
        if wait.is_zero() {
            return;
        }
        if wait >= NOTEWORTHY_WAIT {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "pacing a Kubernetes API call to stay under K8S_API_QPS"
            );
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_second_holds_no_more_than_the_rate() {
        let pacer = Pacer::per_second(20);
        let started = Instant::now();
        for _ in 0..20 {
            pacer.acquire().await;
        }
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "one second's worth goes at once"
        );
        for _ in 0..40 {
            pacer.acquire().await;
        }
        // 40 more at 20 a second.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2010),
            "{elapsed:?}"
        );
    }
}
