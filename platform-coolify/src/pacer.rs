//! Client-side pacing of API calls under Coolify's per-minute limit, using
//! the whole of it, and believing what the server says about it.
//!
//! Coolify (Laravel's `throttle:api`) allows every user `API_RATE_LIMIT`
//! requests a minute (200 by default) and answers 429 past it, with
//! `Retry-After`; every answer carries `X-RateLimit-Limit` and
//! `X-RateLimit-Remaining`. Laravel counts in fixed one-minute windows, so
//! the burst that limit allows is the whole minute's budget at once. The
//! pacer models it as a sliding window: at most
//! `COOLIFY_API_REQUESTS_PER_MINUTE` requests in any 60 seconds, which never
//! exceeds the budget of any fixed window wherever it starts. A burst of
//! deploys goes out at once up to that many requests, and the rest follow
//! as the requests of a minute before leave the window.
//!
//! What the server says wins over our own count:
//! - `X-RateLimit-Remaining` below what our window would still allow (the
//!   same user's other tokens, or another replica, spend it too): the
//!   window is filled up so that no more than that goes out within the next
//!   minute.
//! - A 429: nothing goes out until its `Retry-After` has passed (when
//!   Laravel's window starts again, so the requests counted so far are
//!   forgotten), every call already waiting takes a new turn, and the budget
//!   per window is halved, then grows back by a tenth of the configured
//!   budget per second (the AIMD rule of
//!   [`platform_core::pacing::AdaptiveRate`]).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use platform_core::pacing::AdaptiveRate;
use tokio::time::Instant;

use crate::config::Pacing;

/// Laravel's rate-limit window.
const WINDOW: Duration = Duration::from_secs(60);

/// The back-off after a 429 that did not say how long to wait.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// The pace of every call of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// When the requests of the last minute went out, and when the callers
    /// waiting may send theirs, with how many requests each entry stands
    /// for (one, or what the server said others spent): sorted, oldest
    /// first.
    sends: VecDeque<(Instant, usize)>,
    /// Requests per window: the configured number, halved after a 429.
    budget: AdaptiveRate,
    /// Nothing goes out before this (a `Retry-After`).
    held_until: Option<Instant>,
    /// Counts 429s: a turn taken under an older count is void.
    generation: u64,
}

impl Window {
    /// Drops sends that left the window by `now`: they no longer limit
    /// anything.
    fn prune(&mut self, now: Instant) {
        while self
            .sends
            .front()
            .is_some_and(|(sent, _)| now.saturating_duration_since(*sent) >= WINDOW)
        {
            self.sends.pop_front();
        }
    }

    /// Requests allowed per window now (at least one).
    fn allowed(&mut self, now: Instant) -> usize {
        // Whole requests; a budget in the millions is no limit anyway.
        let budget = self.budget.at(now).floor().clamp(1.0, 1e9);
        budget as usize
    }
}

impl Pacer {
    pub(crate) fn new(pacing: Pacing) -> Self {
        Self {
            state: Mutex::new(Window {
                sends: VecDeque::new(),
                budget: AdaptiveRate::new(f64::from(pacing.requests_per_minute.max(1))),
                held_until: None,
                generation: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, Window> {
        // A poisoned lock only means another caller panicked between two
        // lines; the window is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next turn: how long to wait for it, and the 429 count it
    /// was taken under.
    fn reserve(&self) -> (Duration, u64) {
        let mut window = self.state();
        let now = Instant::now();
        window.prune(now);
        let allowed = window.allowed(now);
        // In arrival order, after any hold, and once the send `allowed`
        // places back has left the window.
        let mut at = now;
        if let Some(held) = window.held_until {
            at = at.max(held);
        }
        if let Some((last, _)) = window.sends.back() {
            at = at.max(*last);
        }
        // The send `allowed` places back must have left the window.
        let mut counted = 0;
        for (sent, weight) in window.sends.iter().rev() {
            counted += weight;
            if counted >= allowed {
                at = at.max(*sent + WINDOW);
                break;
            }
        }
        window.sends.push_back((at, 1));
        (at.saturating_duration_since(now), window.generation)
    }

    /// Waits for this caller's turn. Each caller takes the next free turn at
    /// once, so waiters go out in arrival order without waking each other;
    /// a 429 while it waited voids its turn and it takes a new one.
    pub(crate) async fn acquire(&self) {
        loop {
            let (wait, generation) = self.reserve();
            if wait.is_zero() {
                return;
            }
            if wait >= Duration::from_secs(1) {
                tracing::debug!(
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "pacing a call to stay under Coolify's rate limit"
                );
            }
            tokio::time::sleep(wait).await;
            if self.state().generation == generation {
                return;
            }
        }
    }

    /// Reads `X-RateLimit-Limit` and `X-RateLimit-Remaining`: when the
    /// server has fewer requests left than our window would still send
    /// within the minute, the window is filled up to what it says.
    pub(crate) fn observe_limits(&self, limit: Option<u32>, remaining: Option<u32>) {
        let (Some(_), Some(remaining)) = (limit, remaining) else {
            return;
        };
        let mut window = self.state();
        let now = Instant::now();
        window.prune(now);
        let allowed = window.allowed(now);
        let sent: usize = window
            .sends
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, weight)| weight)
            .sum();
        let ours_left = allowed.saturating_sub(sent);
        let remaining = usize::try_from(remaining).unwrap_or(usize::MAX);
        if remaining < ours_left {
            // Counted as sent now: they leave the window a minute from now,
            // by when the server's window has certainly started again.
            let position = window.sends.partition_point(|(at, _)| *at <= now);
            window.sends.insert(position, (now, ours_left - remaining));
        }
    }

    /// Coolify answered 429: nothing goes out until `retry_after` (or a
    /// second) has passed, the window starts afresh then, every turn taken
    /// so far is void, and the budget per window halves, then grows back.
    pub(crate) fn throttled(&self, retry_after: Option<Duration>) {
        let mut window = self.state();
        let now = Instant::now();
        let until = now + retry_after.unwrap_or(DEFAULT_BACKOFF);
        if window.held_until.is_none_or(|held| held < until) {
            // The server's window starts again when its `Retry-After` ends:
            // what was sent before no longer counts, and turns not yet used
            // are forgotten (their callers, asleep on them, wake and take
            // new ones after the hold), however recent the last 429.
            window.held_until = Some(until);
            window.sends.clear();
            window.generation += 1;
        }
        if window.budget.lower(now, until) {
            tracing::info!(
                requests_per_minute = window.budget.at(now),
                retry_after_s = retry_after.map(|d| d.as_secs()),
                "Coolify answered 429: waiting as it asked and lowering the pace"
            );
        }
    }

    /// How fast this pacer lets bots start when each deploy costs
    /// `calls_per_deploy` requests: the minute's budget at once, then the
    /// budget spread over the minute (a sliding window lets a request out
    /// as one a minute older leaves it), as configured (a 429's slowdown is
    /// not counted: it recovers within seconds).
    pub(crate) fn deploy_pace(
        &self,
        calls_per_deploy: u32,
        typical_start: Duration,
    ) -> platform_core::DeployPace {
        let calls = f64::from(calls_per_deploy.max(1));
        let per_window = self.state().budget.full() / calls;
        platform_core::DeployPace::limited(
            per_window,
            per_window / WINDOW.as_secs_f64(),
            typical_start,
        )
    }

    /// The budget per window now.
    #[cfg(test)]
    fn budget(&self) -> f64 {
        self.state().budget.at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform_core::testkit::release_times;

    use super::*;

    fn window_of(per_minute: u32) -> Arc<Pacer> {
        Arc::new(Pacer::new(Pacing {
            requests_per_minute: per_minute,
        }))
    }

    /// When each of `count` concurrent callers was let out, sorted.
    async fn send_times(pacer: &Arc<Pacer>, count: usize) -> Vec<Duration> {
        release_times(count, || {
            let pacer = pacer.clone();
            async move { pacer.acquire().await }
        })
        .await
    }

    /// The most instants in any window of a minute.
    fn busiest_minute(times: &[Duration]) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + WINDOW)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_spends_the_minute_at_once_then_follows_the_window() {
        let pacer = window_of(180);
        let times = send_times(&pacer, 400).await;
        // The whole minute's budget at once, the next one a minute later.
        assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 180);
        assert_eq!(times[180], WINDOW);
        assert_eq!(times[359], WINDOW);
        assert_eq!(times[360], WINDOW * 2);
        assert_eq!(busiest_minute(&times), 180);
    }

    #[test]
    fn the_deploy_pace_is_the_minute_budget_over_the_calls_of_a_deploy() {
        let pace = window_of(180).deploy_pace(3, Duration::from_secs(15));
        let rate = pace.rate.unwrap();
        assert!((rate.burst - 60.0).abs() < 1e-9, "{pace:?}");
        assert!((rate.per_second - 1.0).abs() < 1e-9, "{pace:?}");
        assert_eq!(pace.typical_start, Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_spread_over_a_minute_leave_room_as_they_age() {
        let pacer = window_of(3);
        for _ in 0..3 {
            pacer.acquire().await;
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
        // At 60 s the first call has left the window: one more at once,
        // then the next when the second leaves, at 80 s.
        let start = Instant::now();
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_everyone_and_halves_the_budget_which_recovers() {
        let pacer = window_of(200);
        send_times(&pacer, 10).await;
        pacer.throttled(Some(Duration::from_secs(3)));
        assert!((pacer.budget() - 100.0).abs() < 1e-9);
        let start = Instant::now();
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        // A tenth of 200 per second from the end of the hold.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!((pacer.budget() - 140.0).abs() < 1e-6, "{}", pacer.budget());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!((pacer.budget() - 200.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_waiting_for_the_window_take_new_turns_after_a_429() {
        let pacer = window_of(10);
        send_times(&pacer, 10).await;
        let started = Instant::now();
        // Ten more would go a minute from now.
        let waiting = {
            let pacer = pacer.clone();
            tokio::spawn(async move { send_times(&pacer, 10).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The server says: wait 90 s.
        pacer.throttled(Some(Duration::from_secs(90)));
        let times = waiting.await.unwrap();
        // Not before the hold ends; then at most the halved budget (5) at
        // once, which grows back by one a second.
        assert!(
            times
                .iter()
                .all(|t| *t + Duration::from_secs(1) >= Duration::from_secs(91)),
            "{times:?}"
        );
        assert!(started.elapsed() >= Duration::from_secs(91));
        assert!(busiest_minute(&times) <= 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_429_soon_after_the_first_holds_the_callers_already_waiting() {
        let pacer = window_of(200);
        pacer.throttled(Some(Duration::from_secs(2)));
        // A caller takes its turn at the end of the first hold...
        let waiting = {
            let pacer = pacer.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                pacer.acquire().await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        // ...and half a second later the server says: wait 10 s more.
        pacer.throttled(Some(Duration::from_secs(10)));
        let waited = waiting.await.unwrap();
        assert!(waited >= Duration::from_millis(10_500), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn few_requests_left_on_the_server_fill_the_window() {
        let pacer = window_of(200);
        send_times(&pacer, 20).await;
        // Another client of the same user spent most of the minute.
        pacer.observe_limits(Some(200), Some(5));
        let times = send_times(&pacer, 6).await;
        assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 5);
        assert_eq!(times[5], WINDOW);
        // As much left as our own window allows changes nothing; missing
        // headers neither.
        let roomy = window_of(200);
        send_times(&roomy, 1).await;
        roomy.observe_limits(Some(200), Some(199));
        roomy.observe_limits(None, Some(0));
        let times = send_times(&roomy, 199).await;
        assert!(times.iter().all(|t| t.is_zero()));
    }
}
