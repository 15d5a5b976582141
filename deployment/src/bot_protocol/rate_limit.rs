//! `BOT_EVENTS_PER_MINUTE`: how many bot-protocol requests one bot may make
//! per minute, as a token bucket per bot kept in this process's memory
//! (each service process counts its own requests; a bot talks to whichever
//! one its load balancer picks, so with N processes a bot may get up to N
//! times the budget, never less).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use platform_core::BotId;

/// The per-bot buckets.
#[derive(Debug)]
pub struct BotRateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<BotId, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before the full ones are forgotten (a full bucket is the
/// same as none).
const PRUNE_ABOVE: usize = 10_000;

impl BotRateLimiter {
    /// A limiter allowing `per_minute` requests per bot per minute, in
    /// bursts of up to `per_minute`.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// How many requests a bot may make per minute.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    fn rate_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes one request from `bot`'s budget, or says how long until the
    /// next one is allowed.
    pub fn check(&self, bot: BotId, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let rate = self.rate_per_sec();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(bot).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Err(Duration::from_secs_f64(wait.max(0.001)))
        }
    }

    /// Forgets a bot (it ended).
    pub fn forget(&self, bot: BotId) {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&bot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_budget_passes_and_the_next_waits() {
        let limiter = BotRateLimiter::new(120);
        let start = Instant::now();
        for _ in 0..120 {
            limiter.check(BotId(1), start).unwrap();
        }
        let wait = limiter.check(BotId(1), start).unwrap_err();
        // 120 per minute refills one every half second.
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another bot has its own budget.
        limiter.check(BotId(2), start).unwrap();
        // Half a second later one more is allowed, and only one.
        let later = start + Duration::from_millis(500);
        limiter.check(BotId(1), later).unwrap();
        assert!(limiter.check(BotId(1), later).is_err());
    }
}
