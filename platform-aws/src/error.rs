//! What went wrong in an ECS call, classified once, and converted into the
//! contract's [`platform_core::Error`] at the trait boundary.

use std::error::Error as StdError;
use std::time::Duration;

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::Failure;

use crate::PLATFORM_NAME;
use platform_core::reason::{
    MAX_MESSAGE_CHARS, causes, describe_causes, describe_foreign_body, one_line,
};

/// An ECS call's failure, as this crate tells them apart.
///
/// Each variant's text (its `Display`) is the message the contract's error
/// carries; [`EcsError::into_platform`] only picks the contract's variant.
/// Messages hold ECS's own words, on one line and cut to a few hundred
/// characters, and never a request: the requests carry the bot's
/// environment (meeting URL and password).
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
    /// ECS failed on its side (5xx), or something in front of it did.
    #[error("{code}: {message}")]
    ServerError { code: String, message: String },
    /// No connection to ECS could be made (refused, a name that does not
    /// resolve, a TLS handshake that failed): the request was never sent.
    #[error("{message}")]
    NotSent { message: String },
    /// The connection broke once it was made: the request may have reached
    /// ECS.
    #[error("the connection to ECS failed, and the request may have reached it: {message}")]
    ConnectionFailed { message: String },
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

/// Whether a connection failure happened while the connection was being
/// made (TCP connect, name resolution, TLS handshake, a proxy's tunnel):
/// hyper-util's client reports every failure of its connector, and only
/// those, as a connect error, and the request is written only once the
/// connector has handed over a connection. Anything else may have sent the
/// request.
fn failed_before_sending(error: &(dyn StdError + 'static)) -> bool {
    causes(error).any(|cause| {
        cause
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
    })
}

/// The most of an unreadable answer's body the debug log keeps.
const MAX_LOGGED_BODY: usize = 4000;

/// Logs the body of an error answer that is not ECS's, for whoever has to
/// find out what stands in front of ECS. Bodies of successful answers are
/// never logged: a RunTask answer echoes the bot's environment.
fn log_error_body(http_status: u16, body: Option<&[u8]>) {
    if http_status < 300 {
        return;
    }
    let body = String::from_utf8_lossy(body.unwrap_or_default());
    let body: String = body.chars().take(MAX_LOGGED_BODY).collect();
    tracing::debug!(http_status, %body, "the ECS endpoint answered with something that is not an ECS answer");
}

impl EcsError {
    /// Classifies an error answer by its code, message and HTTP status.
    pub(crate) fn classify(code: Option<&str>, message: Option<&str>, http_status: u16) -> Self {
        let message = one_line(message.unwrap_or_default(), MAX_MESSAGE_CHARS);
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

    /// Classifies an answer that is not ECS's (no error code, or a body
    /// that does not parse): an HTML page of a proxy or load balancer, an
    /// empty body. Named by its HTTP status and what the body looks like,
    /// never copied.
    fn foreign_answer(http_status: u16, body: Option<&[u8]>) -> Self {
        // A successful answer is never quoted: a RunTask answer echoes the
        // bot's environment.
        if http_status < 300 {
            return Self::Unexpected {
                message: format!(
                    "ECS answered HTTP {http_status} with a body this client could not read"
                ),
            };
        }
        let looks = describe_foreign_body(body.unwrap_or_default());
        let message = format!(
            "the endpoint answered with {looks}, not with an ECS answer (a proxy or load balancer \
             in front of ECS, or an endpoint that is not ECS: check AWS_ENDPOINT_URL_ECS)"
        );
        Self::classify(None, Some(&message), http_status)
    }

    /// Classifies an SDK error. `timeout` is the configured time limit, for
    /// the message of a request that ran out of it. The SDK's own account
    /// of the failure goes to the debug log (it can hold a whole HTML page
    /// and Rust `Debug` output, never a request).
    pub(crate) fn from_sdk<E>(error: SdkError<E, HttpResponse>, timeout: Duration) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let classified = match &error {
            SdkError::ServiceError(service) => {
                let raw = service.raw();
                let status = raw.status().as_u16();
                match (service.err().code(), service.err().message()) {
                    (None, None) => {
                        log_error_body(status, raw.body().bytes());
                        Self::foreign_answer(status, raw.body().bytes())
                    }
                    (code, message) => Self::classify(code, message, status),
                }
            }
            SdkError::TimeoutError(_) => Self::TimedOut { after: timeout },
            SdkError::DispatchFailure(dispatch) => {
                let detail = match dispatch.as_connector_error() {
                    Some(connector) => describe_causes(connector),
                    None => describe_causes(&error),
                };
                let before_sending = dispatch
                    .as_connector_error()
                    .is_some_and(|connector| failed_before_sending(connector));
                if before_sending {
                    Self::NotSent { message: detail }
                } else if dispatch.is_timeout() {
                    Self::TimedOut { after: timeout }
                } else if dispatch.is_user() {
                    Self::Unexpected {
                        message: format!("the request could not be sent: {detail}"),
                    }
                } else {
                    Self::ConnectionFailed { message: detail }
                }
            }
            SdkError::ResponseError(response) => {
                let raw = response.raw();
                let status = raw.status().as_u16();
                log_error_body(status, raw.body().bytes());
                Self::foreign_answer(status, raw.body().bytes())
            }
            // Construction failures and anything newer: a bug on our side.
            _ => Self::Unexpected {
                message: format!(
                    "the request could not be built: {}",
                    describe_causes(&error)
                ),
            },
        };
        tracing::debug!(
            failure = %classified,
            sdk_error = %causes(&error).map(ToString::to_string).collect::<Vec<_>>().join(": "),
            "an ECS call failed"
        );
        classified
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
            Self::ServerError { .. } | Self::ConnectionFailed { .. } => Error::Unavailable {
                platform,
                resource,
                message,
            },
            Self::NotSent { .. } => Error::Unreachable {
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
            one_line(&reasons.join("; "), MAX_MESSAGE_CHARS)
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
            text(EcsError::NotSent {
                message: "tcp connect error: connection refused".into()
            }),
            "aws: could not reach the platform about task 1, nothing was sent: tcp connect error: connection refused"
        );
        assert_eq!(
            text(EcsError::ConnectionFailed {
                message: "connection reset by peer".into()
            }),
            "aws: task 1 unavailable: the connection to ECS failed, and the request may have reached it: connection reset by peer"
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
        let not_sent = EcsError::NotSent {
            message: "connection refused".into(),
        }
        .into_platform("task");
        assert!(not_sent.is_retryable());
        assert!(not_sent.nothing_started());
        let broken = EcsError::ConnectionFailed {
            message: "connection reset by peer".into(),
        }
        .into_platform("task");
        assert!(broken.is_retryable());
        assert!(!broken.nothing_started());
    }

    #[test]
    fn a_long_or_many_line_message_is_one_cut_line() {
        let message = format!("Invalid request:\n{}", "the value is wrong ".repeat(40));
        let error = EcsError::classify(Some("InvalidParameterException"), Some(&message), 400);
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        // Cut after a whole word of the message.
        let kept = text
            .strip_prefix("InvalidParameterException: ")
            .and_then(|t| t.strip_suffix('…'))
            .unwrap();
        let whole = message.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(whole.starts_with(kept), "{text}");
        assert_eq!(whole[kept.len()..].chars().next(), Some(' '), "{text}");
        assert!(
            text.chars().count() <= "InvalidParameterException: ".len() + MAX_MESSAGE_CHARS,
            "{text}"
        );
    }

    #[test]
    fn an_html_page_is_named_by_its_title_not_copied() {
        let page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n";
        let error = EcsError::foreign_answer(502, Some(page.as_bytes()));
        let contract = error.clone().into_platform("task 1");
        assert_eq!(contract.kind(), ErrorKind::Unavailable);
        let text = contract.to_string();
        assert!(
            text.starts_with(
                "aws: task 1 unavailable: HTTP 502: the endpoint answered with an HTML page titled \"502 Bad Gateway\", not with an ECS answer"
            ),
            "{text}"
        );
        assert!(!text.contains('<'), "{text}");
        assert!(!text.contains("awselb"), "{text}");
        let not_found = EcsError::foreign_answer(404, Some(b"<h1>Not Found</h1>"));
        assert_eq!(not_found.into_platform("task").kind(), ErrorKind::Rejected);
    }
}
