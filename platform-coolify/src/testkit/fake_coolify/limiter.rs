//! Laravel's `throttle:api` limit, as the fake enforces it when asked.

use std::time::{Duration, Instant};

/// Laravel's per-user API limit: a fixed window that starts with the first
/// request counted in it and lasts a minute; past `per_minute` requests in
/// it, 429 with `Retry-After` (the seconds until it ends).
#[derive(Debug)]
pub(super) struct Limiter {
    pub(super) per_minute: u32,
    started: Option<Instant>,
    hits: u32,
}

/// Laravel's rate-limit window.
const LIMIT_WINDOW: Duration = Duration::from_secs(60);

impl Limiter {
    /// A limit of `per_minute` requests, its first window not started.
    pub(super) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            started: None,
            hits: 0,
        }
    }

    /// Counts a request arriving at `now`: `Ok(remaining)` when it is let
    /// through, `Err(retry_after_secs)` past the limit.
    pub(super) fn hit(&mut self, now: Instant) -> Result<u32, u64> {
        if self
            .started
            .is_some_and(|started| now.saturating_duration_since(started) >= LIMIT_WINDOW)
        {
            self.started = None;
            self.hits = 0;
        }
        let started = *self.started.get_or_insert(now);
        if self.hits >= self.per_minute {
            let left = LIMIT_WINDOW.saturating_sub(now.saturating_duration_since(started));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        self.hits += 1;
        Ok(self.per_minute - self.hits)
    }
}
