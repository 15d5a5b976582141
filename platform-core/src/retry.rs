//! Retrying retryable platform errors with exponential backoff.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// How to retry a platform call. Only [retryable](Error::is_retryable)
/// errors are retried; anything else is returned at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 5: rides out a short
    /// burst of throttling or a server restart without hiding a real outage
    /// for long.
    pub max_attempts: u32,
    /// Wait before the second attempt. Default 250 ms: enough for a token
    /// bucket (ECS refills 20–40 tokens a second) to recover.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default 10 s.
    pub max_backoff: Duration,
    /// How much each wait grows. Default 2.
    pub factor: f64,
    /// Whether waits are randomised between half and all of their length
    /// ("equal jitter"). Default on: a burst of bots that were throttled
    /// together must not retry together.
    pub jitter: bool,
    /// Longest time spent on one call, waits included. Default 60 s; a wait
    /// that would end past the budget is not started.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            factor: 2.0,
            jitter: true,
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed attempt `attempt` (1-based), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .factor
            .max(1.0)
            .powi(attempt.saturating_sub(1).min(30) as i32);
        let secs = self.initial_backoff.as_secs_f64() * exp;
        Duration::from_secs_f64(secs.min(self.max_backoff.as_secs_f64()))
    }

    fn wait(&self, attempt: u32, error: &Error) -> Duration {
        let base = self.backoff(attempt);
        let base = if self.jitter {
            base.mul_f64(0.5 + fastrand::f64() * 0.5)
        } else {
            base
        };
        // A server that said how long to wait is believed.
        error.retry_after().map_or(base, |after| after.max(base))
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retryable,
/// or `policy` gives up. `op` receives the attempt number (1-based).
///
/// When retries run out the error is [`Error::RetriesExhausted`] with the
/// number of attempts, the time spent and the last error (unless there was
/// only one attempt, whose error is returned as it is).
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, resource: &str, mut op: F) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let started = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    // Whether an earlier attempt may have reached the platform: then a last
    // "could not reach" no longer proves that nothing was started.
    let mut may_have_reached = false;
    loop {
        let error = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) if !error.is_retryable() => {
                return Err(unproven_if(may_have_reached, error));
            }
            Err(error) => error,
        };
        let wait = policy.wait(attempt, &error);
        let elapsed = started.elapsed();
        if attempt >= max_attempts || elapsed + wait > policy.budget {
            let error = unproven_if(may_have_reached, error);
            if attempt == 1 {
                return Err(error);
            }
            return Err(Error::RetriesExhausted {
                platform: error.platform(),
                resource: resource.to_owned(),
                attempts: attempt,
                elapsed,
                last: Box::new(error),
            });
        }
        may_have_reached |= !matches!(
            error,
            Error::Unreachable { .. } | Error::Throttled { .. } | Error::PoolExhausted { .. }
        );
        tracing::debug!(
            platform = error.platform(),
            resource,
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "retrying after a retryable error"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// An [`Error::Unreachable`] after an attempt that may have reached the
/// platform proves nothing any more: it is reported as
/// [`Error::Unavailable`], which the service reads as "may have started".
fn unproven_if(may_have_reached: bool, error: Error) -> Error {
    match error {
        Error::Unreachable {
            platform,
            resource,
            message,
        } if may_have_reached => Error::Unavailable {
            platform,
            resource,
            message: format!(
                "{message} (an earlier attempt may have reached the platform, so the call may have taken effect)"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn unavailable() -> Error {
        Error::Unavailable {
            platform: "test",
            resource: "thing".into(),
            message: "503 Service Unavailable".into(),
        }
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(250));
        assert_eq!(p.backoff(2), Duration::from_millis(500));
        assert_eq!(p.backoff(3), Duration::from_secs(1));
        assert_eq!(p.backoff(10), Duration::from_secs(10));
        assert_eq!(p.backoff(1000), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result = retry(&RetryPolicy::default(), "thing", |attempt| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(attempt, n);
            async move { if n < 3 { Err(unavailable()) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_other_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&RetryPolicy::default(), "thing", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(Error::Rejected {
                    platform: "test",
                    resource: "thing".into(),
                    message: "bad".into(),
                })
            }
        })
        .await;
        assert!(matches!(result, Err(Error::Rejected { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn reports_attempts_and_time_when_giving_up() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        let result: Result<(), _> = retry(&policy, "application abc", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(unavailable()) }
        })
        .await;
        let err = result.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        let Error::RetriesExhausted {
            attempts,
            elapsed,
            ref last,
            ..
        } = err
        else {
            panic!("expected RetriesExhausted, got {err:?}");
        };
        assert_eq!(attempts, 5);
        // 250 + 500 + 1000 + 2000 ms of waits.
        assert_eq!(elapsed, Duration::from_millis(3750));
        assert_eq!(started.elapsed(), Duration::from_millis(3750));
        assert!(matches!(**last, Error::Unavailable { .. }));
        assert!(
            err.to_string()
                .contains("gave up on application abc after 5 attempts in 3.7 s"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn respects_the_budget_and_retry_after() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            jitter: false,
            budget: Duration::from_secs(30),
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        let result: Result<(), _> = retry(&policy, "thing", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(Error::Throttled {
                    platform: "test",
                    resource: "thing".into(),
                    retry_after: Some(Duration::from_secs(20)),
                    message: "Too Many Attempts.".into(),
                })
            }
        })
        .await;
        // First wait is the server's 20 s; a second 20 s wait would pass the 30 s budget.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        assert!(matches!(
            result,
            Err(Error::RetriesExhausted { attempts: 2, .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_attempt_policy_returns_the_error_itself() {
        let result: Result<(), _> = retry(&RetryPolicy::no_retry(), "thing", |_| async {
            Err(unavailable())
        })
        .await;
        assert!(matches!(result, Err(Error::Unavailable { .. })));
    }

    fn unreachable() -> Error {
        Error::Unreachable {
            platform: "test",
            resource: "thing".into(),
            message: "connection refused".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_every_time_still_proves_nothing_started() {
        let result: Result<(), _> = retry(&RetryPolicy::default(), "thing", |_| async {
            Err(unreachable())
        })
        .await;
        let err = result.unwrap_err();
        assert!(err.nothing_started(), "{err:?}");
        assert_eq!(err.kind(), crate::ErrorKind::Unreachable);
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_after_an_attempt_that_may_have_reached_proves_nothing() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&RetryPolicy::default(), "thing", |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt == 1 {
                    Err(unavailable())
                } else {
                    Err(unreachable())
                }
            }
        })
        .await;
        let err = result.unwrap_err();
        assert!(!err.nothing_started(), "{err:?}");
        assert_eq!(err.kind(), crate::ErrorKind::Unavailable);
        assert!(err.to_string().contains("may have reached"), "{err}");
    }
}
