//! What went wrong in a Kubernetes API call, classified once, and converted
//! into the contract's [`platform_core::Error`] at the trait boundary.

use std::time::Duration;

use platform_core::Error;

use crate::PLATFORM_NAME;

/// An API call's failure, as this crate tells them apart.
///
/// Messages hold the API server's own words (its `Status.message`) and
/// never a request: a pod creation carries the bot's meeting URL and
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// 404: no such object (or namespace).
    #[error("NotFound: {message}")]
    NotFound { message: String },
    /// 409 `AlreadyExists`: a create found the name taken.
    #[error("AlreadyExists: {message}")]
    AlreadyExists { message: String },
    /// 403 from a ResourceQuota: the namespace is full, nothing was created.
    #[error("{message}")]
    QuotaExceeded { message: String },
    /// 401 or 403: the credentials were refused or lack a permission.
    #[error("{reason} ({code}): {message}")]
    Forbidden {
        code: u16,
        reason: String,
        message: String,
    },
    /// 410: a list's continue token expired; the list must start over.
    #[error("Expired: {message}")]
    Expired { message: String },
    /// 429: the API server asked us to slow down.
    #[error("TooManyRequests: {message}")]
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx: the API server (or what is in front of it) failed.
    #[error("{reason} ({code}): {message}")]
    ServerError {
        code: u16,
        reason: String,
        message: String,
    },
    /// Another 4xx: the request was refused as it is (`Invalid`,
    /// `BadRequest`, a LimitRange, a namespace being deleted).
    #[error("{reason} ({code}): {message}")]
    Refused {
        code: u16,
        reason: String,
        message: String,
    },
    /// The connection could not be made: nothing was sent.
    #[error("{message}")]
    Unreachable { message: String },
    /// The connection broke after the request may have gone out.
    #[error("{message}")]
    Broken { message: String },
    /// No answer in time (the request may have been acted on).
    #[error("no answer within {} s", .after.as_secs())]
    TimedOut { after: Duration },
    /// An answer we could not make sense of, or a request we could not build.
    #[error("{message}")]
    Unexpected { message: String },
}

impl ApiError {
    /// Classifies a client error.
    pub(crate) fn from_kube(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Self::from_status(
                status.code,
                &status.reason,
                &status.message,
                status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s))),
            ),
            kube::Error::Service(inner) => {
                let connect = inner
                    .downcast_ref::<hyper_util::client::legacy::Error>()
                    .is_some_and(hyper_util::client::legacy::Error::is_connect);
                let message = chain(inner.as_ref());
                if connect {
                    Self::Unreachable {
                        message: format!("could not connect to the API server: {message}"),
                    }
                } else {
                    Self::Broken { message }
                }
            }
            kube::Error::HyperError(e) => Self::Broken { message: chain(&e) },
            // Credentials come before the request: nothing was sent.
            kube::Error::Auth(e) => Self::Unreachable {
                message: format!(
                    "could not get credentials for the API server: {}",
                    chain(&e)
                ),
            },
            kube::Error::SerdeError(e) => Self::Unexpected {
                message: format!("the API server's answer did not parse: {e}"),
            },
            other => Self::Unexpected {
                message: chain(&other),
            },
        }
    }

    /// Classifies an error answer from its `Status`.
    pub(crate) fn from_status(
        code: u16,
        reason: &str,
        message: &str,
        retry_after: Option<Duration>,
    ) -> Self {
        let message = message.to_owned();
        let reason = if reason.is_empty() {
            "Failure".to_owned()
        } else {
            reason.to_owned()
        };
        match code {
            404 => Self::NotFound { message },
            409 if reason == "AlreadyExists" => Self::AlreadyExists { message },
            410 => Self::Expired { message },
            429 => Self::Throttled {
                retry_after,
                message,
            },
            // The API server words every ResourceQuota refusal this way
            // ("exceeded quota: <name>, requested: …, used: …, limited: …").
            403 if message.contains("exceeded quota") => Self::QuotaExceeded { message },
            403 if message.contains("because it is being terminated") => Self::Refused {
                code,
                reason,
                message,
            },
            401 | 403 => Self::Forbidden {
                code,
                reason,
                message,
            },
            500..=599 => Self::ServerError {
                code,
                reason,
                message,
            },
            _ => Self::Refused {
                code,
                reason,
                message,
            },
        }
    }

    /// The contract's error for a call about `resource`.
    pub(crate) fn into_platform(self, resource: String) -> Error {
        let platform = PLATFORM_NAME;
        let message = self.to_string();
        match self {
            Self::NotFound { .. } => Error::NotFound {
                platform,
                resource,
                message,
            },
            Self::QuotaExceeded { .. } => Error::Capacity {
                platform,
                resource,
                reason: format!(
                    "{message} (a ResourceQuota of the namespace; nothing was created, retry when a bot ends or raise the quota)"
                ),
                retryable: true,
            },
            Self::Forbidden { .. } => Error::Unauthorized {
                platform,
                resource,
                message: format!(
                    "{message} (the credentials need the Role in docs/kubernetes/rbac.yaml)"
                ),
            },
            Self::Throttled { retry_after, .. } => Error::Throttled {
                platform,
                resource,
                retry_after,
                message,
            },
            Self::ServerError { .. } | Self::Broken { .. } | Self::Expired { .. } => {
                Error::Unavailable {
                    platform,
                    resource,
                    message,
                }
            }
            Self::Unreachable { .. } => Error::Unreachable {
                platform,
                resource,
                message,
            },
            Self::TimedOut { after } => Error::Timeout {
                platform,
                resource,
                after,
            },
            Self::AlreadyExists { .. } | Self::Refused { .. } => Error::Rejected {
                platform,
                resource,
                message,
            },
            Self::Unexpected { .. } => Error::Internal {
                platform,
                resource,
                message,
            },
        }
    }
}

/// An error and its sources, `: `-joined, each said once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_refusals_are_capacity_not_rejections() {
        let quota = ApiError::from_status(
            403,
            "Forbidden",
            "pods \"meeboter-0123abcd-1-1\" is forbidden: exceeded quota: bots, requested: pods=1, used: pods=10, limited: pods=10",
            None,
        )
        .into_platform("pod".into());
        assert!(quota.is_retryable() && quota.nothing_started(), "{quota:?}");
        let rbac = ApiError::from_status(
            403,
            "Forbidden",
            "pods is forbidden: User \"system:serviceaccount:bots:meeboter\" cannot create resource \"pods\"",
            None,
        )
        .into_platform("pod".into());
        assert_eq!(rbac.kind(), platform_core::ErrorKind::Unauthorized);
        assert!(!rbac.is_retryable());
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        let throttled = ApiError::from_status(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            Some(Duration::from_secs(1)),
        )
        .into_platform("pods".into());
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
        let server = ApiError::from_status(503, "ServiceUnavailable", "etcd leader changed", None)
            .into_platform("pods".into());
        assert!(server.is_retryable() && !server.nothing_started());
        let invalid = ApiError::from_status(422, "Invalid", "Pod \"x\" is invalid", None)
            .into_platform("pods".into());
        assert!(!invalid.is_retryable());
    }
}
