//! The one public error type of the platform contract.

use std::fmt;
use std::time::Duration;

use crate::meeting::MeetingPlatform;
use crate::settings::ConfigProblem;

/// A shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a platform. Every variant names the platform
/// and the resource it concerns, and knows whether trying again can help
/// ([`Error::is_retryable`]). Plugins keep their own private error types and
/// convert into this one at the trait boundary.
///
/// Messages never contain secrets: plugins put the server's error message in
/// `message`, never a request header or a credential.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The platform's configuration is missing or invalid. Lists every
    /// problem at once.
    #[error("{platform}: invalid configuration: {}", ConfigProblem::join(.problems))]
    Config {
        /// The platform (or `service`).
        platform: &'static str,
        /// Every problem found.
        problems: Vec<ConfigProblem>,
    },
    /// The platform refused the credentials (HTTP 401/403, AWS access denied).
    /// Not retryable: the operator must fix the key or its permissions.
    #[error("{platform}: not authorised to access {resource}: {message}")]
    Unauthorized {
        /// The platform.
        platform: &'static str,
        /// What was being accessed.
        resource: String,
        /// The platform's message.
        message: String,
    },
    /// The resource does not exist on the platform.
    #[error("{platform}: {resource} not found: {message}")]
    NotFound {
        /// The platform.
        platform: &'static str,
        /// What was looked for.
        resource: String,
        /// The platform's message.
        message: String,
    },
    /// The platform rejected the request as invalid (HTTP 400/409/422, ECS
    /// `InvalidParameterException`). Not retryable.
    #[error("{platform}: request for {resource} rejected: {message}")]
    Rejected {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// The platform's message.
        message: String,
    },
    /// The platform asked us to slow down (HTTP 429, ECS `ThrottlingException`).
    /// Retryable, after `retry_after` when the platform said.
    #[error("{platform}: throttled on {resource}{}: {message}", fmt_after(.retry_after))]
    Throttled {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// How long the platform asked us to wait.
        retry_after: Option<Duration>,
        /// The platform's message.
        message: String,
    },
    /// The platform could not be reached or answered with a server error
    /// (HTTP 5xx, connection refused, reset). Retryable.
    #[error("{platform}: {resource} unavailable: {message}")]
    Unavailable {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// What happened.
        message: String,
    },
    /// The platform could not be reached, and provably nothing was sent:
    /// the connection was refused, the name did not resolve, the TLS
    /// handshake failed before the request went out. Retryable, and it
    /// proves the call started nothing. Anything that may have reached the
    /// platform is [`Error::Unavailable`] or [`Error::Timeout`] instead.
    #[error(
        "{platform}: could not reach the platform about {resource}, nothing was sent: {message}"
    )]
    Unreachable {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// What happened (one sentence, no secret).
        message: String,
    },
    /// No answer in time. Retryable.
    #[error("{platform}: no answer about {resource} within {}", humanize(*.after))]
    Timeout {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// How long we waited.
        after: Duration,
    },
    /// The platform has no capacity for the bot (ECS `RESOURCE:MEMORY`,
    /// Fargate capacity unavailable). `reason` is the platform's own.
    #[error("{platform}: no capacity for {resource}: {reason}")]
    Capacity {
        /// The platform.
        platform: &'static str,
        /// What was being launched.
        resource: String,
        /// The platform's reason and detail.
        reason: String,
        /// Whether capacity may come back soon (a transient shortage) or
        /// needs the operator (a resource the task can never fit).
        retryable: bool,
    },
    /// Every slot of the warm pool for this meeting platform is in use and
    /// the pool is at its maximum. Retryable once a bot ends.
    #[error(
        "{platform}: pool exhausted: all {capacity} {meeting_platform} slots are in use and the pool is at its maximum; retry when a bot ends or raise the pool maximum"
    )]
    PoolExhausted {
        /// The platform.
        platform: &'static str,
        /// The meeting platform whose slots are all busy.
        meeting_platform: MeetingPlatform,
        /// How many slots that meeting platform has.
        capacity: usize,
    },
    /// The bot was accepted but failed to start (a failed Coolify deployment,
    /// a process that exited at once).
    #[error("{platform}: {resource} failed to start: {reason}")]
    StartFailed {
        /// The platform.
        platform: &'static str,
        /// What failed to start.
        resource: String,
        /// Why.
        reason: String,
    },
    /// A retryable error kept coming back until the retry policy gave up.
    #[error(
        "{platform}: gave up on {resource} after {attempts} attempts in {}: {}",
        humanize(*.elapsed),
        without_platform(.last)
    )]
    RetriesExhausted {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// How many attempts were made.
        attempts: u32,
        /// How long they took, waits included.
        elapsed: Duration,
        /// The last error.
        #[source]
        last: Box<Error>,
    },
    /// Something the platform answered that we could not understand, or a
    /// broken invariant. Not retryable.
    #[error("{platform}: unexpected answer about {resource}: {message}")]
    Internal {
        /// The platform.
        platform: &'static str,
        /// What the request was about.
        resource: String,
        /// What was wrong.
        message: String,
    },
}

/// A coarse, stable classification of [`Error`] for metrics labels and API
/// error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Config`].
    Config,
    /// [`Error::Unauthorized`].
    Unauthorized,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::Rejected`].
    Rejected,
    /// [`Error::Throttled`].
    Throttled,
    /// [`Error::Unavailable`].
    Unavailable,
    /// [`Error::Unreachable`].
    Unreachable,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::Capacity`].
    Capacity,
    /// [`Error::PoolExhausted`].
    PoolExhausted,
    /// [`Error::StartFailed`].
    StartFailed,
    /// [`Error::Internal`].
    Internal,
}

impl ErrorKind {
    /// A stable snake_case code (`pool_exhausted`, `throttled`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Config => "platform_config",
            Self::Unauthorized => "platform_unauthorized",
            Self::NotFound => "platform_not_found",
            Self::Rejected => "platform_rejected",
            Self::Throttled => "platform_throttled",
            Self::Unavailable => "platform_unavailable",
            Self::Unreachable => "platform_unreachable",
            Self::Timeout => "platform_timeout",
            Self::Capacity => "platform_capacity",
            Self::PoolExhausted => "pool_exhausted",
            Self::StartFailed => "start_failed",
            Self::Internal => "platform_internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// Whether trying the same call again may succeed: throttling, server
    /// errors, timeouts, a busy pool, transient capacity shortages.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. }
            | Self::Unavailable { .. }
            | Self::Unreachable { .. }
            | Self::Timeout { .. }
            | Self::PoolExhausted { .. } => true,
            Self::Capacity { retryable, .. } => *retryable,
            Self::RetriesExhausted { last, .. } => last.is_retryable(),
            Self::Config { .. }
            | Self::Unauthorized { .. }
            | Self::NotFound { .. }
            | Self::Rejected { .. }
            | Self::StartFailed { .. }
            | Self::Internal { .. } => false,
        }
    }

    /// How long the platform asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            Self::RetriesExhausted { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// The classification, looking through [`Error::RetriesExhausted`] to the
    /// last error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config { .. } => ErrorKind::Config,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Rejected { .. } => ErrorKind::Rejected,
            Self::Throttled { .. } => ErrorKind::Throttled,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Unreachable { .. } => ErrorKind::Unreachable,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Capacity { .. } => ErrorKind::Capacity,
            Self::PoolExhausted { .. } => ErrorKind::PoolExhausted,
            Self::StartFailed { .. } => ErrorKind::StartFailed,
            Self::Internal { .. } => ErrorKind::Internal,
            Self::RetriesExhausted { last, .. } => last.kind(),
        }
    }

    /// The platform the error came from.
    pub fn platform(&self) -> &'static str {
        match self {
            Self::Config { platform, .. }
            | Self::Unauthorized { platform, .. }
            | Self::NotFound { platform, .. }
            | Self::Rejected { platform, .. }
            | Self::Throttled { platform, .. }
            | Self::Unavailable { platform, .. }
            | Self::Unreachable { platform, .. }
            | Self::Timeout { platform, .. }
            | Self::Capacity { platform, .. }
            | Self::PoolExhausted { platform, .. }
            | Self::StartFailed { platform, .. }
            | Self::RetriesExhausted { platform, .. }
            | Self::Internal { platform, .. } => platform,
        }
    }

    /// The resource the error concerns (`application abc`, `task arn:…`, a
    /// pool), when there is one.
    pub fn resource(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { resource, .. }
            | Self::NotFound { resource, .. }
            | Self::Rejected { resource, .. }
            | Self::Throttled { resource, .. }
            | Self::Unavailable { resource, .. }
            | Self::Unreachable { resource, .. }
            | Self::Timeout { resource, .. }
            | Self::Capacity { resource, .. }
            | Self::StartFailed { resource, .. }
            | Self::RetriesExhausted { resource, .. }
            | Self::Internal { resource, .. } => Some(resource),
            Self::Config { .. } | Self::PoolExhausted { .. } => None,
        }
    }

    /// Whether the call provably started nothing and holds nothing on the
    /// platform: a full pool, a capacity shortage the platform calls
    /// transient, or a platform that could not be reached at all (looking
    /// through retries: [`retry()`](crate::retry()) reports the last error
    /// as `Unreachable` only when no attempt may have reached the
    /// platform).
    pub fn nothing_started(&self) -> bool {
        match self {
            Self::PoolExhausted { .. } | Self::Unreachable { .. } => true,
            Self::Capacity { retryable, .. } => *retryable,
            Self::RetriesExhausted { last, .. } => last.nothing_started(),
            _ => false,
        }
    }

    /// Whether this is a not-found answer (looking through retries).
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }
}

/// The last error of a retry loop, without the platform name its own
/// message starts with (the outer message already says it once).
fn without_platform(last: &Error) -> String {
    let text = last.to_string();
    let prefix = format!("{}: ", last.platform());
    match text.strip_prefix(&prefix) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

fn fmt_after(after: &Option<Duration>) -> String {
    after
        .map(|d| format!(" (retry after {})", humanize(d)))
        .unwrap_or_default()
}

/// `1.5 s`, `250 ms`, `3 min 20 s`.
pub(crate) fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        let tenths = ms / 100;
        if tenths.is_multiple_of(10) {
            format!("{} s", tenths / 10)
        } else {
            format!("{}.{} s", tenths / 10, tenths % 10)
        }
    } else {
        let secs = d.as_secs();
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let throttled = Error::Throttled {
            platform: "coolify",
            resource: "application abc".into(),
            retry_after: Some(Duration::from_secs(2)),
            message: "Too Many Attempts.".into(),
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(
            throttled.to_string(),
            "coolify: throttled on application abc (retry after 2 s): Too Many Attempts."
        );
        let unauthorized = Error::Unauthorized {
            platform: "coolify",
            resource: "applications".into(),
            message: "Unauthenticated.".into(),
        };
        assert!(!unauthorized.is_retryable());
        let wrapped = Error::RetriesExhausted {
            platform: "coolify",
            resource: "application abc".into(),
            attempts: 5,
            elapsed: Duration::from_millis(7300),
            last: Box::new(throttled),
        };
        assert!(wrapped.is_retryable());
        assert_eq!(wrapped.kind(), ErrorKind::Throttled);
        assert_eq!(
            wrapped.to_string(),
            "coolify: gave up on application abc after 5 attempts in 7.3 s: throttled on application abc (retry after 2 s): Too Many Attempts."
        );
        let capacity = Error::Capacity {
            platform: "aws",
            resource: "task for bot 1".into(),
            reason: "RESOURCE:MEMORY".into(),
            retryable: false,
        };
        assert!(!capacity.is_retryable());
        assert_eq!(capacity.platform(), "aws");
        assert_eq!(capacity.resource(), Some("task for bot 1"));
    }

    #[test]
    fn pool_exhausted_says_so() {
        let e = Error::PoolExhausted {
            platform: "coolify",
            meeting_platform: MeetingPlatform::Zoom,
            capacity: 20,
        };
        assert!(e.is_retryable());
        assert_eq!(e.kind().as_str(), "pool_exhausted");
        assert!(e.to_string().contains("all 20 zoom slots are in use"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(humanize(Duration::from_millis(250)), "250 ms");
        assert_eq!(humanize(Duration::from_secs(3)), "3 s");
        assert_eq!(humanize(Duration::from_secs(200)), "3 min 20 s");
    }
}
