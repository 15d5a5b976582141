//! What went wrong in an ECS call, classified once, and converted into the
//! contract's [`platform_core::Error`] at the trait boundary.

use std::time::Duration;

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::Failure;

use crate::PLATFORM_NAME;

/// An ECS call's failure, as this crate tells them apart.
///
/// Each variant's text (its `Display`) is the message the contract's error
/// carries; [`EcsError::into_platform`] only picks the contract's variant.
/// Messages hold ECS's own words and never a request: the requests carry the
/// bot's environment (meeting URL and password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EcsError {
    /// ECS asked us to slow down (`ThrottlingException`, or a rate-exceeded
    /// message wrapped in another exception).
    #[error("{code}: {message}")]
    Throttled { code: String, message: String },
    /// The credentials were refused or lack a permission.
    #[error("{code}: {message}")]
    Unauthorized { code: String, message: String },
    /// The cluster does not exist in this account and Region.
    #[error("ClusterNotFoundException: {message} (check ECS_CLUSTER and AWS_REGION)")]
    ClusterNotFound { message: String },
    /// The task is not known (StopTask's "The referenced task was not found").
    #[error("{code}: {message}")]
    TaskNotFound { code: String, message: String },
    /// A RunTask client token was already used with different parameters,
    /// and ECS did not name the task it started (when it does, the client
    /// returns that task instead of an error).
    #[error(
        "ConflictException: {message}; the idempotency token was used by another RunTask request \
         and ECS did not say which task it started"
    )]
    TokenConflict { message: String },
    /// ECS refused the request as invalid.
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// ECS failed on its side (5xx).
    #[error("{code}: {message}")]
    ServerError { code: String, message: String },
    /// The request did not reach ECS or the connection broke.
    #[error("ECS could not be reached: {message}")]
    Unreachable { message: String },
    /// No answer in time.
    #[error("no answer within {after:?}")]
    TimedOut { after: Duration },
    /// An answer we could not make sense of, or a request we could not build.
    #[error("{message}")]
    Unexpected { message: String },
}

/// The codes AWS uses for refused credentials or missing permissions.
const AUTH_CODES: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
    "ExpiredToken",
    "SignatureDoesNotMatch",
    "NotAuthorized",
];

/// The codes AWS uses for throttling across its services.
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

fn mentions_rate_limit(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("rate exceeded")
        || message.contains("throttl")
        || message.contains("too many requests")
}

fn mentions_missing_task(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("task was not found") || message.contains("task not found")
}

impl EcsError {
    /// Classifies an error answer by its code, message and HTTP status.
    pub(crate) fn classify(code: Option<&str>, message: Option<&str>, http_status: u16) -> Self {
        let message = message.unwrap_or_default().to_owned();
        let code_text = code.map_or_else(|| format!("HTTP {http_status}"), str::to_owned);
        let code = code.unwrap_or_default();
        if THROTTLE_CODES.contains(&code) || http_status == 429 || mentions_rate_limit(&message) {
            return Self::Throttled {
                code: code_text,
                message,
            };
        }
        if AUTH_CODES.contains(&code) || matches!(http_status, 401 | 403) {
            return Self::Unauthorized {
                code: code_text,
                message,
            };
        }
        if code == "ClusterNotFoundException" {
            return Self::ClusterNotFound { message };
        }
        if matches!(code, "InvalidParameterException" | "ClientException")
            && mentions_missing_task(&message)
        {
            return Self::TaskNotFound {
                code: code_text,
                message,
            };
        }
        if code == "ConflictException" {
            return Self::TokenConflict { message };
        }
        if http_status >= 500
            || matches!(
                code,
                "ServerException"
                    | "ServiceUnavailableException"
                    | "InternalFailure"
                    | "InternalServerError"
            )
        {
            return Self::ServerError {
                code: code_text,
                message,
            };
        }
        Self::Rejected {
            code: code_text,
            message,
        }
    }

    /// Classifies an SDK error. `timeout` is the configured time limit, for
    /// the message of a request that ran out of it.
    pub(crate) fn from_sdk<E>(error: SdkError<E, HttpResponse>, timeout: Duration) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &error {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                Self::classify(service.err().code(), service.err().message(), status)
            }
            SdkError::TimeoutError(_) => Self::TimedOut { after: timeout },
            SdkError::DispatchFailure(dispatch) if dispatch.is_timeout() => {
                Self::TimedOut { after: timeout }
            }
            SdkError::DispatchFailure(dispatch) if dispatch.is_user() => Self::Unexpected {
                message: format!(
                    "the request could not be sent: {}",
                    aws_sdk_ecs::error::DisplayErrorContext(&error)
                ),
            },
            SdkError::DispatchFailure(_) => Self::Unreachable {
                message: format!("{}", aws_sdk_ecs::error::DisplayErrorContext(&error)),
            },
            SdkError::ResponseError(response) => {
                let status = response.raw().status().as_u16();
                let message = format!(
                    "an answer that could not be read (HTTP {status}): {}",
                    aws_sdk_ecs::error::DisplayErrorContext(&error)
                );
                // A proxy or load balancer in front of ECS failing with an
                // HTML page: a server-side problem, worth retrying.
                if status >= 500 || status == 429 {
                    Self::ServerError {
                        code: format!("HTTP {status}"),
                        message,
                    }
                } else {
                    Self::Unexpected { message }
                }
            }
            // Construction failures and anything newer: a bug on our side.
            _ => Self::Unexpected {
                message: format!("{}", aws_sdk_ecs::error::DisplayErrorContext(&error)),
            },
        }
    }

    /// Whether a later attempt may succeed.
    #[cfg(test)]
    pub(crate) fn is_retryable(&self) -> bool {
        self.clone().into_platform("test").is_retryable()
    }

    /// The contract's error for a failure concerning `resource`, with this
    /// error's text as its message.
    pub(crate) fn into_platform(self, resource: impl Into<String>) -> platform_core::Error {
        use platform_core::Error;
        let resource = resource.into();
        let platform = PLATFORM_NAME;
        let message = self.to_string();
        match self {
            Self::Throttled { .. } => Error::Throttled {
                platform,
                resource,
                retry_after: None,
                message,
            },
            Self::Unauthorized { .. } => Error::Unauthorized {
                platform,
                resource,
                message,
            },
            Self::ClusterNotFound { .. } | Self::TaskNotFound { .. } => Error::NotFound {
                platform,
                resource,
                message,
            },
            Self::Rejected { .. } => Error::Rejected {
                platform,
                resource,
                message,
            },
            Self::ServerError { .. } | Self::Unreachable { .. } => Error::Unavailable {
                platform,
                resource,
                message,
            },
            Self::TimedOut { after } => Error::Timeout {
                platform,
                resource,
                after,
            },
            Self::TokenConflict { .. } | Self::Unexpected { .. } => Error::Internal {
                platform,
                resource,
                message,
            },
        }
    }
}

/// RunTask failure reasons that name a shortage that passes on its own.
const TRANSIENT_LAUNCH_REASONS: &[&str] = &["AGENT", "RESOURCE:ENI", "RESOURCE:FARGATE"];
/// Words in a RunTask failure that say "not now" rather than "never".
const TRANSIENT_LAUNCH_WORDS: &[&str] = &[
    "capacity is unavailable",
    "insufficient capacity",
    "try again",
    "rate exceeded",
    "throttl",
];

/// The error for a RunTask answer with no task: a capacity error carrying
/// every reason and detail ECS gave, retryable when the shortage is one that
/// passes (Fargate or Spot capacity, network interfaces), not when the task
/// can never fit (`RESOURCE:MEMORY` on every instance, a placement
/// constraint nothing meets).
pub(crate) fn refused_launch(failures: &[Failure], resource: String) -> platform_core::Error {
    let reasons: Vec<String> = failures
        .iter()
        .map(|f| {
            let reason = f.reason().unwrap_or("no reason given");
            match f.detail().filter(|d| !d.is_empty()) {
                Some(detail) => format!("{reason} ({detail})"),
                None => reason.to_owned(),
            }
        })
        .collect();
    let retryable = !failures.is_empty()
        && failures.iter().all(|f| {
            let reason = f.reason().unwrap_or_default();
            let text = format!("{reason} {}", f.detail().unwrap_or_default()).to_ascii_lowercase();
            TRANSIENT_LAUNCH_REASONS.contains(&reason)
                || TRANSIENT_LAUNCH_WORDS.iter().any(|w| text.contains(w))
        });
    platform_core::Error::Capacity {
        platform: PLATFORM_NAME,
        resource,
        reason: if reasons.is_empty() {
            "RunTask started no task and gave no reason".to_owned()
        } else {
            reasons.join("; ")
        },
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use platform_core::ErrorKind;

    use super::*;

    fn kind(code: Option<&str>, message: &str, status: u16) -> ErrorKind {
        EcsError::classify(code, Some(message), status)
            .into_platform("task")
            .kind()
    }

    #[test]
    fn throttling_in_any_wrapping_is_retryable() {
        assert_eq!(
            kind(Some("ThrottlingException"), "Rate exceeded", 400),
            ErrorKind::Throttled
        );
        assert_eq!(
            kind(Some("InvalidParameterException"), "Rate exceeded", 400),
            ErrorKind::Throttled
        );
        assert_eq!(
            kind(
                Some("ClientException"),
                "Request was throttled, please retry",
                400
            ),
            ErrorKind::Throttled
        );
        assert_eq!(kind(None, "", 429), ErrorKind::Throttled);
        assert!(
            EcsError::classify(Some("ThrottlingException"), Some("Rate exceeded"), 400)
                .is_retryable()
        );
    }

    #[test]
    fn refused_credentials_are_unauthorized() {
        for code in [
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ExpiredTokenException",
        ] {
            assert_eq!(
                kind(Some(code), "no", 400),
                ErrorKind::Unauthorized,
                "{code}"
            );
        }
        assert_eq!(kind(None, "", 403), ErrorKind::Unauthorized);
        assert!(!EcsError::classify(Some("AccessDeniedException"), None, 400).is_retryable());
    }

    #[test]
    fn server_side_failures_are_unavailable_and_retryable() {
        assert_eq!(
            kind(Some("ServerException"), "Service error", 500),
            ErrorKind::Unavailable
        );
        assert_eq!(kind(None, "", 503), ErrorKind::Unavailable);
        assert!(EcsError::classify(None, None, 502).is_retryable());
    }

    #[test]
    fn not_found_and_rejections() {
        let cluster = EcsError::classify(
            Some("ClusterNotFoundException"),
            Some("Cluster not found."),
            400,
        );
        assert_eq!(
            cluster,
            EcsError::ClusterNotFound {
                message: "Cluster not found.".into()
            }
        );
        let text = cluster.into_platform("task for bot 1").to_string();
        assert!(text.contains("check ECS_CLUSTER and AWS_REGION"), "{text}");
        assert!(matches!(
            EcsError::classify(
                Some("InvalidParameterException"),
                Some("The referenced task was not found."),
                400
            ),
            EcsError::TaskNotFound { .. }
        ));
        assert_eq!(
            kind(
                Some("InvalidParameterException"),
                "Task Identifier is invalid",
                400
            ),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind(Some("ClientException"), "TaskDefinition not found.", 400),
            ErrorKind::Rejected
        );
        assert_eq!(kind(Some("SomethingNew"), "?", 400), ErrorKind::Rejected);
        assert!(
            !EcsError::classify(Some("InvalidParameterException"), Some("bad"), 400).is_retryable()
        );
    }

    #[test]
    fn refused_launches_carry_the_reason_and_say_whether_it_passes() {
        let failure = |reason: &str, detail: Option<&str>| {
            let mut f = Failure::builder()
                .arn("arn:aws:ecs:eu-west-1:123456789012:cluster/bots")
                .reason(reason);
            if let Some(detail) = detail {
                f = f.detail(detail);
            }
            f.build()
        };
        let memory = refused_launch(&[failure("RESOURCE:MEMORY", None)], "task for bot 7".into());
        assert_eq!(memory.kind(), ErrorKind::Capacity);
        assert!(!memory.is_retryable());
        assert_eq!(
            memory.to_string(),
            "aws: no capacity for task for bot 7: RESOURCE:MEMORY"
        );
        let fargate = refused_launch(
            &[failure(
                "Capacity is unavailable at this time. Please try again later or in a different availability zone",
                None,
            )],
            "task".into(),
        );
        assert!(fargate.is_retryable());
        let eni = refused_launch(
            &[failure("RESOURCE:ENI", Some("no free network interfaces"))],
            "task".into(),
        );
        assert!(eni.is_retryable());
        assert!(
            eni.to_string()
                .ends_with("RESOURCE:ENI (no free network interfaces)"),
            "{eni}"
        );
        let empty = refused_launch(&[], "task".into());
        assert!(!empty.is_retryable());
        assert!(empty.to_string().contains("gave no reason"));
    }

    #[test]
    fn the_contract_error_carries_the_failures_own_text() {
        let text = |error: EcsError| error.into_platform("task 1").to_string();
        assert_eq!(
            text(EcsError::classify(
                Some("ThrottlingException"),
                Some("Rate exceeded"),
                400
            )),
            "aws: throttled on task 1: ThrottlingException: Rate exceeded"
        );
        assert_eq!(
            text(EcsError::Unreachable {
                message: "connection refused".into()
            }),
            "aws: task 1 unavailable: ECS could not be reached: connection refused"
        );
        let conflict = text(EcsError::classify(
            Some("ConflictException"),
            Some("The specified clientToken is already in use."),
            400,
        ));
        assert!(
            conflict.starts_with(
                "aws: unexpected answer about task 1: ConflictException: The specified clientToken is already in use.;"
            ),
            "{conflict}"
        );
        assert!(
            conflict.ends_with("ECS did not say which task it started"),
            "{conflict}"
        );
    }

    #[test]
    fn timeouts_and_unreachable_are_retryable() {
        let timeout = EcsError::TimedOut {
            after: Duration::from_secs(20),
        }
        .into_platform("task");
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        assert!(timeout.is_retryable());
        assert!(
            EcsError::Unreachable {
                message: "connection refused".into()
            }
            .is_retryable()
        );
    }
}
