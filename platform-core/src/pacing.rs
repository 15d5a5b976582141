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
//!
//! # When the provider throttles anyway
//!
//! Other callers in the same account draw on the provider's bucket too, so
//! a call can be throttled although ours had a token. The bucket then
//! adapts, additive-increase / multiplicative-decrease (AIMD) like TCP:
//! [`TokenBucket::throttled`] halves the refill rate (never below a tenth of
//! the configured one), empties the bucket and lets nothing out for a
//! back-off; every reservation taken before is void, so callers already
//! waiting take a new turn at the lower pace instead of going out on the old
//! schedule. Throttles reported within a second of a decrease are answers to
//! calls sent before it and do not cut again. From the end of the back-off
//! the rate grows back by a tenth of the configured rate per second, so a
//! halved pace is whole again after five quiet seconds.

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

/// A throttle multiplies the refill rate by this.
const DECREASE_FACTOR: f64 = 0.5;

/// The refill rate never drops below this share of the configured one: the
/// provider's bucket keeps refilling, and a pace of zero would never learn
/// that it did.
const SLOWEST_SHARE: f64 = 0.1;

/// After a throttle the rate grows back by this share of the configured
/// rate per second.
const RECOVERY_SHARE_PER_SECOND: f64 = 0.1;

/// Throttles reported within this long of a decrease answer calls sent
/// before it: they do not lower the rate again.
const DECREASE_SPACING: Duration = Duration::from_secs(1);

/// A rate that adapts to a provider's throttling, AIMD-like (see the
/// [module docs](self)): [`lower`](Self::lower) halves it (not below a tenth
/// of the configured rate, and once per second at most), and from the
/// moment given there it grows back by a tenth of the configured rate per
/// second. The one rule every pacer of this workspace adapts by.
#[derive(Clone, Debug)]
pub struct AdaptiveRate {
    /// The configured rate.
    full: f64,
    /// The rate now (as of `since`).
    current: f64,
    /// Until when `current` is accounted for; in the future while a
    /// back-off lasts.
    since: Instant,
    last_decrease: Option<Instant>,
}

impl AdaptiveRate {
    /// At `full` (per second, or any unit the caller counts in) until told
    /// otherwise. Not a number, zero or less is read as the slowest rate.
    pub fn new(full: f64) -> Self {
        let full = valid_rate(full);
        Self {
            full,
            current: full,
            since: Instant::now(),
            last_decrease: None,
        }
    }

    /// The configured rate.
    pub fn full(&self) -> f64 {
        self.full
    }

    /// The rate at `now`, grown back since the last decrease.
    pub fn at(&mut self, now: Instant) -> f64 {
        if now > self.since {
            if self.current < self.full {
                let elapsed = now.duration_since(self.since).as_secs_f64();
                self.current =
                    (self.current + elapsed * self.full * RECOVERY_SHARE_PER_SECOND).min(self.full);
            }
            self.since = now;
        }
        self.current
    }

    /// The provider throttled at `now`: halves the rate, which grows back
    /// from `resume_at` on. Within a second of the last decrease nothing
    /// changes (the throttle answers a call sent before it). Returns
    /// whether the rate was lowered.
    pub fn lower(&mut self, now: Instant, resume_at: Instant) -> bool {
        if self
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) < DECREASE_SPACING)
        {
            return false;
        }
        self.at(now);
        self.current = valid_rate((self.current * DECREASE_FACTOR).max(self.full * SLOWEST_SHARE));
        self.since = resume_at.max(now);
        self.last_decrease = Some(now);
        true
    }
}

/// A token bucket that hands out reservations (see the [module
/// docs](self)). Its refill rate can change while it is in use (a provider
/// that says it is running low, or throttles), and it can be held shut for a
/// while (a provider's `Retry-After`).
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
    /// Tokens refilled per second: the configured rate, lowered after a
    /// throttle.
    rate: AdaptiveRate,
    /// Counts throttles: a reservation taken under an older count is void.
    generation: u64,
}

impl BucketState {
    /// Adds what was refilled between `updated` and `now`, and lets a
    /// lowered rate grow back for that time.
    fn refill(&mut self, now: Instant, capacity: f64) {
        if now > self.updated {
            let elapsed = now.duration_since(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate.current).min(capacity);
            self.updated = now;
            self.rate.at(now);
        }
    }

    /// The wait of a token just taken.
    fn wait(&self, now: Instant) -> Duration {
        let held = self.updated.saturating_duration_since(now);
        let refill = if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.rate.current).unwrap_or(Duration::MAX)
        };
        held.saturating_add(refill)
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
                rate: AdaptiveRate::new(per_second),
                generation: 0,
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
        self.reserve_in_generation().0
    }

    /// Takes a token; its wait, and the throttle count it was taken under.
    fn reserve_in_generation(&self) -> (Duration, u64) {
        let mut state = self.state();
        let now = Instant::now();
        state.refill(now, self.capacity);
        state.tokens -= 1.0;
        (state.wait(now), state.generation)
    }

    /// Takes a token and waits until it may be used. Returns how long it
    /// waited. A throttle reported while it waited voids its turn: it takes
    /// a new one at the lowered pace (see the [module docs](self)).
    pub async fn acquire(&self) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            let (wait, generation) = self.reserve_in_generation();
            if wait >= NOTEWORTHY_WAIT {
                tracing::debug!(
                    bucket = self.name,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "pacing a call to stay under the provider's rate limit"
                );
            }
            if wait.is_zero() {
                return waited;
            }
            tokio::time::sleep(wait).await;
            waited = waited.saturating_add(wait);
            if self.state().generation == generation {
                return waited;
            }
        }
    }

    /// The provider throttled a call although the bucket had let it out:
    /// halves the refill rate (not below a tenth of the configured one),
    /// empties the bucket, lets nothing out for `backoff`, and voids every
    /// reservation taken so far. A throttle within a second of the last
    /// decrease changes nothing. Returns whether the rate was lowered.
    pub fn throttled(&self, backoff: Duration) -> bool {
        let mut state = self.state();
        let now = Instant::now();
        state.refill(now, self.capacity);
        let until = now.checked_add(backoff).unwrap_or(now);
        if !state.rate.lower(now, until) {
            return false;
        }
        state.tokens = 0.0;
        if until > state.updated {
            state.updated = until;
        }
        state.generation += 1;
        tracing::info!(
            bucket = self.name,
            per_second = state.rate.current,
            backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
            "the provider throttled a call: backing off and lowering the pace"
        );
        true
    }

    /// The refill rate now, in tokens per second (as recovered by now
    /// after a throttle).
    pub fn rate(&self) -> f64 {
        let mut state = self.state();
        state.refill(Instant::now(), self.capacity);
        state.rate.current
    }

    /// The refill rate it was configured with, in tokens per second: what
    /// it returns to after a throttle.
    pub fn configured_rate(&self) -> f64 {
        self.state().rate.full()
    }

    /// The most tokens the bucket holds.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// How fast bots start when each deploy takes one token of this
    /// bucket: its burst and its configured rate (a throttle's slowdown is
    /// not counted: it recovers within seconds), `typical_start` from the
    /// call to `running`.
    pub fn deploy_pace(&self, typical_start: Duration) -> crate::DeployPace {
        crate::DeployPace::limited(self.capacity, self.configured_rate(), typical_start)
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
    async fn a_throttle_halves_the_pace_backs_off_and_the_pace_recovers() {
        let bucket = TokenBucket::new("test", 10.0, 10.0);
        for _ in 0..10 {
            bucket.acquire().await;
        }
        assert!(bucket.throttled(Duration::from_secs(1)));
        assert!((bucket.rate() - 5.0).abs() < 1e-9);
        // Empty, held for a second, then refilled at 5 a second.
        assert_eq!(bucket.reserve(), Duration::from_millis(1200));
        // A second throttle at once answers a call sent before the first.
        assert!(!bucket.throttled(Duration::from_secs(1)));
        assert!((bucket.rate() - 5.0).abs() < 1e-9);
        // One second of hold, then 1 a second more each second.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!((bucket.rate() - 7.0).abs() < 1e-6, "{}", bucket.rate());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!((bucket.rate() - 10.0).abs() < 1e-9);
        // Throttled every second (it regains 1 a second in between): the
        // rate settles at a tenth of the configured one, never below.
        for _ in 0..30 {
            tokio::time::sleep(DECREASE_SPACING).await;
            bucket.throttled(Duration::ZERO);
            assert!(bucket.rate() >= 1.0, "{}", bucket.rate());
        }
        assert!(bucket.rate() < 1.001, "{}", bucket.rate());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_callers_take_a_new_turn_after_a_throttle() {
        let bucket = Arc::new(TokenBucket::new("test", 1.0, 10.0));
        let started = Instant::now();
        bucket.acquire().await;
        // Nine callers queue at 10 a second: the last due at 0.9 s.
        let callers: Vec<_> = (0..9)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.acquire().await;
                    started.elapsed()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Throttled: 5 a second after a one-second hold.
        bucket.throttled(Duration::from_secs(1));
        let mut times = Vec::new();
        for caller in callers {
            times.push(caller.await.unwrap());
        }
        times.sort();
        assert!(times[0] >= Duration::from_millis(1050), "{times:?}");
        // Nine calls after the hold at no more than 5 a second (while the
        // rate grows back): the last no sooner than 1.6 s after the hold.
        assert!(times[8] >= Duration::from_millis(2650), "{times:?}");
    }

    #[test]
    fn nonsense_sizes_are_read_as_the_smallest_bucket() {
        let bucket = TokenBucket::new("test", f64::NAN, 0.0);
        assert!((bucket.capacity() - 1.0).abs() < f64::EPSILON);
        assert!(bucket.rate() > 0.0);
        let bucket = TokenBucket::new("test", 0.4, -3.0);
        assert!((bucket.capacity() - 1.0).abs() < f64::EPSILON);
        assert!(bucket.rate() > 0.0);
    }
}
