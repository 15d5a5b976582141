//! Client-side pacing under a provider's request rate limits: one token
//! bucket that every platform's pacer is built from.
//!
//! Providers meter API calls with token buckets (ECS per account and Region,
//! Coolify per user and minute) and refuse calls past them. A platform that
//! keeps its own bucket a little below the provider's sends a burst of bots
//! out smoothly instead of having it throttled, failed and retried together.
//!
//! The bucket hands out *reservations*: a caller takes a token at once, even
//! one that has not been refilled yet (the count goes below zero), and
//! sleeps until that token would have been there. Callers are served in
//! arrival order, with no polling and no thundering herd when tokens come
//! back.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The slowest refill accepted, in tokens per second: a rate of zero (or
/// less, or not a number) would make every wait infinite, so it is read as
/// this, one token in about eleven days.
const SLOWEST_RATE: f64 = 1e-6;

/// A caller logs when its wait is at least this long, so an operator sees
/// why a call took longer than usual.
const NOTEWORTHY_WAIT: Duration = Duration::from_secs(1);

/// A token bucket that hands out reservations (see the [module
/// docs](self)). Its refill rate can change while it is in use (a provider
/// that says it is running low), and it can be held shut for a while (a
/// provider's `Retry-After`).
#[derive(Debug)]
pub struct TokenBucket {
    name: &'static str,
    capacity: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    /// Tokens at `updated`; below zero when callers have reserved tokens
    /// that are not refilled yet.
    tokens: f64,
    /// When `tokens` was counted. In the future while the bucket is held:
    /// nothing refills, and nothing goes out, before then.
    updated: Instant,
    /// Tokens refilled per second.
    per_second: f64,
}

impl BucketState {
    /// Adds what was refilled between `updated` and `now`.
    fn refill(&mut self, now: Instant, capacity: f64) {
        if now > self.updated {
            let elapsed = now.duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(capacity);
            self.updated = now;
        }
    }
}

fn valid_rate(per_second: f64) -> f64 {
    // `max` returns the other operand when one is NaN.
    per_second.max(SLOWEST_RATE)
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens (whole tokens, at least one),
    /// refilled at `per_second` tokens a second. `name` says in logs which
    /// limit a wait was for (`ECS RunTask`).
    pub fn new(name: &'static str, capacity: f64, per_second: f64) -> Self {
        // `max` also turns a NaN capacity into one token.
        let capacity = capacity.floor().max(1.0);
        Self {
            name,
            capacity,
            state: Mutex::new(BucketState {
                tokens: capacity,
                updated: Instant::now(),
                per_second: valid_rate(per_second),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, BucketState> {
        // A poisoned lock only means another caller panicked between two
        // arithmetic lines; the numbers are still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token and returns how long the caller must wait before
    /// using it (zero when one was there).
    pub fn reserve(&self) -> Duration {
        let mut state = self.state();
        let now = Instant::now();
        state.refill(now, self.capacity);
        state.tokens -= 1.0;
        let held = state.updated.saturating_duration_since(now);
        let refill = if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-state.tokens / state.per_second).unwrap_or(Duration::MAX)
        };
        held.saturating_add(refill)
    }

    /// Takes a token and waits until it may be used. Returns how long it
    /// waited.
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if wait >= NOTEWORTHY_WAIT {
            tracing::debug!(
                bucket = self.name,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "pacing a call to stay under the provider's rate limit"
            );
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Changes the refill rate from now on; what was refilled until now
    /// counts at the old rate.
    pub fn set_rate(&self, per_second: f64) {
        let mut state = self.state();
        state.refill(Instant::now(), self.capacity);
        state.per_second = valid_rate(per_second);
    }

    /// The refill rate, in tokens per second.
    pub fn rate(&self) -> f64 {
        self.state().per_second
    }

    /// The most tokens the bucket holds.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Lets nothing out until `after` has passed (a provider's
    /// `Retry-After`), then one call at once and the rest at the refill
    /// rate: a provider that just asked us to wait gets one request, not a
    /// burst, when the wait is over. Callers that already hold a
    /// reservation keep it.
    pub fn hold_for(&self, after: Duration) {
        let mut state = self.state();
        let now = Instant::now();
        state.refill(now, self.capacity);
        // A wait past what an `Instant` can hold is a wait of a year.
        let until = now
            .checked_add(after)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        if until > state.updated {
            state.updated = until;
        }
        state.tokens = state.tokens.min(1.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_serves_its_burst_at_once_then_paces() {
        let bucket = TokenBucket::new("test", 3.0, 10.0);
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.acquire().await, Duration::ZERO);
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(bucket.acquire().await, Duration::from_millis(100));
        bucket.acquire().await;
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_only_to_its_capacity() {
        let bucket = TokenBucket::new("test", 2.0, 10.0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let started = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert_eq!(started.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_go_out_in_turn() {
        let bucket = Arc::new(TokenBucket::new("test", 1.0, 2.0));
        let started = Instant::now();
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.acquire().await;
                    started.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for caller in callers {
            times.push(caller.await.unwrap());
        }
        times.sort();
        let expected: Vec<Duration> = (0..5u64).map(|n| Duration::from_millis(500 * n)).collect();
        assert_eq!(times, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_rate_applies_from_the_moment_it_is_set() {
        let bucket = TokenBucket::new("test", 1.0, 1.0);
        bucket.acquire().await;
        // Half a token refills at 1 a second, the other half at 10 a second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        bucket.set_rate(10.0);
        assert!((bucket.rate() - 10.0).abs() < 1e-9);
        assert_eq!(bucket.reserve(), Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_lets_one_call_out_when_it_ends_then_paces() {
        let bucket = TokenBucket::new("test", 10.0, 100.0);
        bucket.hold_for(Duration::from_secs(3));
        let started = Instant::now();
        bucket.acquire().await;
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        bucket.acquire().await;
        assert_eq!(started.elapsed(), Duration::from_millis(3010));
        // A shorter hold does not shorten a longer one.
        let bucket = TokenBucket::new("test", 10.0, 100.0);
        bucket.hold_for(Duration::from_secs(5));
        bucket.hold_for(Duration::from_secs(1));
        assert_eq!(bucket.reserve(), Duration::from_secs(5));
    }

    #[test]
    fn nonsense_sizes_are_read_as_the_smallest_bucket() {
        let bucket = TokenBucket::new("test", f64::NAN, 0.0);
        assert!((bucket.capacity() - 1.0).abs() < f64::EPSILON);
        assert!(bucket.rate() > 0.0);
        let bucket = TokenBucket::new("test", 0.4, -3.0);
        assert!((bucket.capacity() - 1.0).abs() < f64::EPSILON);
        assert!(bucket.rate() > 0.0);
        bucket.set_rate(f64::NAN);
        assert!(bucket.rate() > 0.0);
    }
}
