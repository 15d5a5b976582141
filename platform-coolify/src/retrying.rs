//! Which calls are retried, and how.
//!
//! Reads and upserts are idempotent: any retryable failure is tried again
//! under the [`RetryPolicy`]. Creating an application and starting one are
//! not: they are sent again only when the server certainly did not act on
//! them (throttled, or no connection at all); any other failure is handed
//! back with whether the server may have acted, for the caller to reconcile.

use std::future::Future;

use platform_core::{Error, RetryPolicy, retry};

use crate::error::ApiError;

/// Runs an idempotent call under `policy`.
pub(crate) async fn idempotent<T, F, Fut>(
    policy: &RetryPolicy,
    resource: &str,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    retry(policy, resource, |_| {
        let pending = call();
        async move { pending.await.map_err(Error::from) }
    })
    .await
}

/// A non-idempotent call that failed.
#[derive(Debug)]
pub(crate) struct UnsafeCallFailure {
    /// The error to report.
    pub error: Error,
    /// Whether the server may have acted on the call anyway.
    pub may_have_been_processed: bool,
}

/// Runs a call that must not be repeated blindly: retried only while the
/// server certainly did not process it.
pub(crate) async fn unless_processed<T, F, Fut>(
    policy: &RetryPolicy,
    resource: &str,
    mut call: F,
) -> Result<T, UnsafeCallFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    // Errors that may be retried travel as `Err`; every other outcome as
    // `Ok`, which ends the retry loop.
    let outcome = retry(policy, resource, |_| {
        let pending = call();
        async move {
            match pending.await {
                Ok(value) => Ok(Ok(value)),
                Err(e) if e.certainly_not_processed() => Err(Error::from(e)),
                Err(e) => Ok(Err(e)),
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(UnsafeCallFailure {
            may_have_been_processed: e.may_have_been_processed(),
            error: e.into(),
        }),
        Err(error) => Err(UnsafeCallFailure {
            error,
            may_have_been_processed: false,
        }),
    }
}

/// Adds what we were doing to an error's resource (`applications` →
/// `applications (adopting the warm pool at start-up)`).
pub(crate) fn in_context(mut error: Error, context: &str) -> Error {
    match &mut error {
        Error::Unauthorized { resource, .. }
        | Error::NotFound { resource, .. }
        | Error::Rejected { resource, .. }
        | Error::Throttled { resource, .. }
        | Error::Unavailable { resource, .. }
        | Error::Unreachable { resource, .. }
        | Error::Timeout { resource, .. }
        | Error::Capacity { resource, .. }
        | Error::StartFailed { resource, .. }
        | Error::RetriesExhausted { resource, .. }
        | Error::Internal { resource, .. } => {
            resource.push_str(" (");
            resource.push_str(context);
            resource.push(')');
        }
        _ => {}
    }
    error
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::error::Failure;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    fn failing(code: u16) -> ApiError {
        ApiError::new(
            "application a",
            Failure::Status {
                code,
                message: "no".into(),
                retry_after: None,
            },
        )
    }

    #[tokio::test]
    async fn an_unsafe_call_is_repeated_only_while_certainly_unprocessed() {
        let calls = AtomicU32::new(0);
        let result = unless_processed(&policy(), "application a", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 2 { Err(failing(429)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 2);

        let calls = AtomicU32::new(0);
        let failure = unless_processed(&policy(), "application a", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(failing(503)) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 503 is not re-sent");
        assert!(failure.may_have_been_processed);
        assert!(failure.error.is_retryable());

        let failure = unless_processed(&policy(), "application a", || async {
            Err::<(), _>(failing(422))
        })
        .await
        .unwrap_err();
        assert!(!failure.may_have_been_processed);
        assert!(!failure.error.is_retryable());
    }

    #[tokio::test]
    async fn idempotent_calls_retry_server_errors() {
        let calls = AtomicU32::new(0);
        let result = idempotent(&policy(), "applications", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n == 0 { Err(failing(502)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 1);
    }

    #[test]
    fn context_is_added_to_the_resource() {
        let error = in_context(failing(503).into(), "adopting the warm pool at start-up");
        assert_eq!(
            error.resource(),
            Some("application a (adopting the warm pool at start-up)")
        );
    }
}
