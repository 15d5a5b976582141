//! What can go wrong on one Coolify API call, and how it becomes a
//! [`platform_core::Error`].
//!
//! The private [`ApiError`] keeps what the conversion and the retry logic
//! need: the HTTP status, the server's own message, `Retry-After`, and
//! whether the request may have reached the server.
//!
//! One rule decides that last question, [`ApiError::never_sent`]: only a
//! call that failed while connecting (refused, a name that does not
//! resolve, a TLS handshake that failed) provably never reached Coolify. It
//! becomes [`Error::Unreachable`], which tells the service nothing was
//! started, and it is what lets a call that is not idempotent (create,
//! start) be sent again. Everything after the request went out (no answer
//! in time, a broken connection, a 5xx) may have been acted on.

use std::time::Duration;

use platform_core::Error;

use crate::PLATFORM;
use platform_core::reason::{MAX_MESSAGE_CHARS, one_line};

/// One failed API call.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// What the call was about (`application abc123`, `applications`).
    pub resource: String,
    /// What happened.
    pub failure: Failure,
}

/// How a call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with an error status.
    Status {
        /// The HTTP status code.
        code: u16,
        /// The server's `message` (plus validation details), or the status
        /// line when the body was not Coolify's JSON.
        message: String,
        /// `Retry-After`, on a 429.
        retry_after: Option<Duration>,
    },
    /// No connection could be made (refused, a name that does not
    /// resolve, a failed TLS handshake): the request never left. Holds one
    /// sentence saying which.
    Connect(String),
    /// No answer within the request timeout.
    Timeout(Duration),
    /// The connection broke after the request was sent, or another
    /// transport failure: the server may have acted on it.
    Transport(String),
    /// A success answer we could not read.
    Body(String),
}

impl ApiError {
    pub(crate) fn new(resource: impl Into<String>, failure: Failure) -> Self {
        Self {
            resource: resource.into(),
            failure,
        }
    }

    /// Whether the request provably never reached the server: the
    /// connection could not be made. The one rule for "may have reached
    /// the server"; everything else may have.
    pub(crate) fn never_sent(&self) -> bool {
        matches!(self.failure, Failure::Connect(_))
    }

    /// Whether the server certainly did not act on the request, so that
    /// even a call that is not idempotent (create, start) can be sent again:
    /// it never left this process, or it was throttled (Laravel's limiter
    /// answers before any controller runs).
    pub(crate) fn certainly_not_processed(&self) -> bool {
        self.never_sent() || matches!(self.failure, Failure::Status { code: 429, .. })
    }

    /// Whether the request may have changed something on the server even
    /// though it failed: no answer, a broken connection, a server error
    /// (Coolify may fail after writing to its database), or a success
    /// answer we could not read (the server did act).
    pub(crate) fn may_have_been_processed(&self) -> bool {
        match &self.failure {
            Failure::Timeout(_) | Failure::Transport(_) | Failure::Body(_) => true,
            Failure::Status { code, .. } => *code >= 500,
            Failure::Connect(_) => false,
        }
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        let ApiError { resource, failure } = error;
        match failure {
            Failure::Status {
                code,
                message,
                retry_after,
            } => {
                let message = format!("HTTP {code}: {}", one_line(&message, MAX_MESSAGE_CHARS));
                match code {
                    401 | 403 => Error::Unauthorized {
                        platform: PLATFORM,
                        resource,
                        message,
                    },
                    404 => Error::NotFound {
                        platform: PLATFORM,
                        resource,
                        message,
                    },
                    429 => Error::Throttled {
                        platform: PLATFORM,
                        resource,
                        retry_after,
                        message,
                    },
                    500..=599 => Error::Unavailable {
                        platform: PLATFORM,
                        resource,
                        message,
                    },
                    // 400 (bad request, "Invalid token."), 405, 409, 422 and
                    // anything else a client error: repeating the same
                    // request will not help.
                    _ => Error::Rejected {
                        platform: PLATFORM,
                        resource,
                        message,
                    },
                }
            }
            Failure::Connect(message) => Error::Unreachable {
                platform: PLATFORM,
                resource,
                message: one_line(&message, MAX_MESSAGE_CHARS),
            },
            Failure::Transport(message) => Error::Unavailable {
                platform: PLATFORM,
                resource,
                message: one_line(&message, MAX_MESSAGE_CHARS),
            },
            Failure::Timeout(after) => Error::Timeout {
                platform: PLATFORM,
                resource,
                after,
            },
            Failure::Body(message) => Error::Internal {
                platform: PLATFORM,
                resource,
                message: one_line(&message, MAX_MESSAGE_CHARS),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use platform_core::ErrorKind;

    use super::*;

    fn status(code: u16, message: &str) -> ApiError {
        ApiError::new(
            "application abc",
            Failure::Status {
                code,
                message: message.into(),
                retry_after: (code == 429).then(|| Duration::from_secs(7)),
            },
        )
    }

    #[test]
    fn statuses_map_to_the_contract_errors() {
        let cases = [
            (400, ErrorKind::Rejected, false),
            (401, ErrorKind::Unauthorized, false),
            (403, ErrorKind::Unauthorized, false),
            (404, ErrorKind::NotFound, false),
            (405, ErrorKind::Rejected, false),
            (409, ErrorKind::Rejected, false),
            (422, ErrorKind::Rejected, false),
            (429, ErrorKind::Throttled, true),
            (500, ErrorKind::Unavailable, true),
            (502, ErrorKind::Unavailable, true),
            (503, ErrorKind::Unavailable, true),
        ];
        for (code, kind, retryable) in cases {
            let error = Error::from(status(code, "Server said so."));
            assert_eq!(error.kind(), kind, "HTTP {code}");
            assert_eq!(error.is_retryable(), retryable, "HTTP {code}");
            assert_eq!(error.platform(), "coolify");
            assert_eq!(error.resource(), Some("application abc"));
            assert!(error.to_string().contains("Server said so."), "{error}");
        }
        assert_eq!(
            Error::from(status(429, "Too Many Attempts.")).retry_after(),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn transport_failures_are_retryable() {
        let timeout = Error::from(ApiError::new(
            "applications",
            Failure::Timeout(Duration::from_secs(30)),
        ));
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        assert!(timeout.is_retryable());
        let connect = Error::from(ApiError::new(
            "applications",
            Failure::Connect("could not connect to 127.0.0.1:9: connection refused".into()),
        ));
        assert_eq!(connect.kind(), ErrorKind::Unreachable);
        assert!(connect.is_retryable());
        assert!(connect.nothing_started());
        assert!(
            connect.to_string().contains("nothing was sent"),
            "{connect}"
        );
        let body = Error::from(ApiError::new(
            "applications",
            Failure::Body("expected an array".into()),
        ));
        assert_eq!(body.kind(), ErrorKind::Internal);
        assert!(!body.is_retryable());
    }

    #[test]
    fn what_may_be_sent_again() {
        assert!(status(429, "").certainly_not_processed());
        assert!(ApiError::new("x", Failure::Connect("refused".into())).certainly_not_processed());
        assert!(!status(503, "").certainly_not_processed());
        assert!(status(503, "").may_have_been_processed());
        assert!(
            ApiError::new("x", Failure::Timeout(Duration::from_secs(1))).may_have_been_processed()
        );
        assert!(!status(422, "").may_have_been_processed());
        assert!(!status(429, "").may_have_been_processed());
        assert!(
            ApiError::new("x", Failure::Body("not JSON".into())).may_have_been_processed(),
            "a success answer we could not read was acted on"
        );
    }

    #[test]
    fn only_a_failed_connection_was_never_sent() {
        let sent = [
            status(500, ""),
            status(429, ""),
            status(404, ""),
            ApiError::new("x", Failure::Timeout(Duration::from_secs(1))),
            ApiError::new("x", Failure::Transport("connection reset".into())),
            ApiError::new("x", Failure::Body("not JSON".into())),
        ];
        for error in sent {
            assert!(!error.never_sent(), "{error:?}");
            assert!(!Error::from(error).nothing_started());
        }
        let refused = ApiError::new("x", Failure::Connect("refused".into()));
        assert!(refused.never_sent());
        assert!(!refused.may_have_been_processed());
        assert!(refused.certainly_not_processed());
    }

    #[test]
    fn long_server_messages_are_cut_to_one_line() {
        let long = format!(
            "Validation failed.\n{}",
            "The value is not allowed here. ".repeat(40)
        );
        let error = Error::from(status(422, &long));
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.ends_with('…'), "{text}");
        assert!(text.chars().count() < MAX_MESSAGE_CHARS + 80, "{text}");
    }
}
