//! The one error type of the deployment service, with stable machine codes
//! that the CLI (exit codes) and the HTTP API (status codes) both map.

use std::time::Duration;

use platform_core::{BotId, FieldError, InvalidDeploymentConfig};

use crate::bot::IllegalTransition;
use crate::meeting::IllegalMeetingTransition;
use crate::store::StoreError;

/// A shorthand for results whose error is [`ServiceError`].
pub type ServiceResult<T> = Result<T, ServiceError>;

/// What went wrong, in words an operator or a client can act on. Never
/// contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The bot request failed validation; every problem is listed.
    #[error("{0}")]
    InvalidRequest(InvalidDeploymentConfig),
    /// A query parameter (filter, cursor, limit, idempotency key) is invalid.
    #[error("invalid {parameter}: {message}")]
    InvalidQuery {
        /// The parameter.
        parameter: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// An idempotency key that is not 1 to 255 visible ASCII characters.
    #[error(
        "the idempotency key must be 1 to 255 visible ASCII characters (no spaces, no control characters)"
    )]
    InvalidIdempotencyKey,
    /// No bot has this id.
    #[error("bot {0} does not exist")]
    BotNotFound(BotId),
    /// The state machine refuses the move.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// The meeting-status order refuses a bot's report.
    #[error(transparent)]
    IllegalMeetingTransition(#[from] IllegalMeetingTransition),
    /// Only a scheduled bot can be changed (its `join_at`, display name or
    /// timeouts).
    #[error(
        "bot {bot} is {status}, not scheduled: {why}; only a scheduled bot's join_at, display_name and automatic_leave can be changed"
    )]
    NotScheduled {
        /// The bot.
        bot: BotId,
        /// Its state.
        status: crate::bot::BotState,
        /// What that means for the change.
        why: &'static str,
    },
    /// The bot ended and no longer has what was asked for.
    #[error("bot {bot} has ended: {reason}")]
    BotEnded {
        /// The bot.
        bot: BotId,
        /// What is gone.
        reason: String,
    },
    /// The same idempotency key was used with another request body.
    #[error(
        "idempotency key {key:?} was already used for bot {bot} with a different request; use a new key for a new bot"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The bot created with it.
        bot: BotId,
    },
    /// The bot was placed on a platform this service is not configured
    /// for: it is left alone.
    #[error(
        "bot {bot} runs on the {bot_platform} platform, which this service is not configured for (it holds: {configured}); the bot is left alone: add {bot_platform} to PLATFORM_PRIORITY and configure it to manage the bot"
    )]
    PlatformNotConfigured {
        /// The bot.
        bot: BotId,
        /// Its platform.
        bot_platform: String,
        /// The platforms the service holds, comma-separated.
        configured: String,
    },
    /// Every slot is busy (or the platform has no capacity right now): the
    /// bot is back to `pending` and nothing was started.
    #[error("bot {bot} was not deployed: {reason}; it is pending again, retry in {} s", .retry_after.as_secs())]
    PoolExhausted {
        /// The bot.
        bot: BotId,
        /// The platform's words.
        reason: String,
        /// When trying again makes sense.
        retry_after: Duration,
    },
    /// The platform could not be reached and nothing was sent: the bot is
    /// back to `pending`, and the same deploy may succeed once the platform
    /// answers.
    #[error("bot {bot} was not deployed: {reason}; it is pending again, retry in {} s", .retry_after.as_secs())]
    PlatformUnavailable {
        /// The bot.
        bot: BotId,
        /// What failed.
        reason: String,
        /// When trying again makes sense.
        retry_after: Duration,
    },
    /// The platform definitely refused the bot; it is now `failed`.
    #[error("bot {bot} failed to deploy: {reason}")]
    DeployFailed {
        /// The bot.
        bot: BotId,
        /// Why.
        reason: String,
    },
    /// A platform call failed (outside a deploy or stop, whose failures are
    /// recorded on the bot).
    #[error(transparent)]
    Platform(#[from] platform_core::Error),
    /// The database could not be used.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The service's own configuration, or the chosen platform's, is
    /// invalid.
    #[error(transparent)]
    Config(platform_core::Error),
    /// No platform could be chosen from `DEPLOYMENT_PLATFORM`.
    #[error(transparent)]
    Selection(#[from] platform_core::SelectionError),
    /// The HTTP server of `serve` failed.
    #[error("the HTTP server stopped: {0}")]
    Server(String),
    /// A bot's `webhook_url` is refused (form, or a private address).
    #[error(transparent)]
    InvalidWebhookUrl(#[from] crate::webhooks::DestinationError),
    /// A bot asked for a `webhook_url` but this service signs no webhooks.
    #[error(
        "webhook_url cannot be used: this service has no WEBHOOK_SECRET to sign webhooks with; ask the operator to set it, or leave webhook_url out"
    )]
    WebhooksNotConfigured,
    /// No webhook delivery has this id.
    #[error("webhook delivery {0} does not exist")]
    DeliveryNotFound(i64),
    /// A delivered webhook is not sent again.
    #[error(
        "webhook delivery {0} was delivered already; only pending or failed deliveries are retried"
    )]
    DeliveryAlreadyDelivered(i64),
    /// `pool recover` named a slot that is not failed (or does not exist).
    #[error(
        "slot {slot} of the {pool} pool cannot be recovered: it is {state}; only a failed slot is returned to the pool (see `meeboter-deploy pool`)"
    )]
    SlotNotRecoverable {
        /// The pool.
        pool: &'static str,
        /// The slot asked for.
        slot: String,
        /// Its state, or `unknown` when the pool has no such slot.
        state: &'static str,
    },
}

/// A coarse class of [`ServiceError`] that CLI exit codes and HTTP status
/// codes are derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The request is wrong (HTTP 400/422, exit 2).
    InvalidInput,
    /// Nothing has that id (HTTP 404, exit 3).
    NotFound,
    /// The bot's state or an earlier request forbids it (HTTP 409, exit 4).
    Conflict,
    /// Try again later (HTTP 503/429, exit 5).
    Unavailable,
    /// The configuration is wrong (HTTP 500, exit 6).
    Configuration,
    /// The platform refused the bot (HTTP 502, exit 7).
    Refused,
    /// Anything else (HTTP 500, exit 1).
    Internal,
}

impl ServiceError {
    /// The stable machine code: `invalid_meeting_url`, `bot_not_found`,
    /// `illegal_transition`, `pool_exhausted`, …
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(invalid) => {
                if invalid.concerns("meeting_platform") {
                    "unknown_meeting_platform"
                } else if invalid.concerns("meeting_url") {
                    "invalid_meeting_url"
                } else {
                    "invalid_bot_config"
                }
            }
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidIdempotencyKey => "invalid_idempotency_key",
            Self::BotNotFound(_) => "bot_not_found",
            Self::IllegalTransition(_) => "illegal_transition",
            Self::IllegalMeetingTransition(_) => "illegal_meeting_transition",
            Self::BotEnded { .. } => "bot_ended",
            Self::NotScheduled { .. } => "not_scheduled",
            Self::IdempotencyConflict { .. } => "idempotency_conflict",
            Self::PlatformNotConfigured { .. } => "platform_not_configured",
            Self::PoolExhausted { .. } => "pool_exhausted",
            Self::PlatformUnavailable { .. } => "platform_unavailable",
            Self::DeployFailed { .. } => "deploy_failed",
            Self::Platform(e) => e.kind().as_str(),
            Self::Storage(e) if e.is_unavailable() => "database_unavailable",
            Self::Storage(e) if e.is_configuration() => "database_config",
            Self::Storage(_) => "database_error",
            Self::Config(_) => "invalid_configuration",
            Self::Selection(_) => "platform_selection",
            Self::Server(_) => "server_error",
            Self::SlotNotRecoverable { .. } => "slot_not_recoverable",
            Self::InvalidWebhookUrl(e) => e.code(),
            Self::WebhooksNotConfigured => "webhooks_not_configured",
            Self::DeliveryNotFound(_) => "delivery_not_found",
            Self::DeliveryAlreadyDelivered(_) => "delivery_already_delivered",
        }
    }

    /// The class the code belongs to.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidRequest(_) | Self::InvalidQuery { .. } | Self::InvalidIdempotencyKey => {
                ErrorClass::InvalidInput
            }
            Self::BotNotFound(_) => ErrorClass::NotFound,
            Self::IllegalTransition(_)
            | Self::IllegalMeetingTransition(_)
            | Self::BotEnded { .. }
            | Self::NotScheduled { .. }
            | Self::IdempotencyConflict { .. }
            | Self::PlatformNotConfigured { .. } => ErrorClass::Conflict,
            Self::PoolExhausted { .. } | Self::PlatformUnavailable { .. } => {
                ErrorClass::Unavailable
            }
            Self::DeployFailed { .. } => ErrorClass::Refused,
            Self::Platform(e) if e.is_retryable() => ErrorClass::Unavailable,
            Self::Platform(e) => match e.kind() {
                platform_core::ErrorKind::Config | platform_core::ErrorKind::Unauthorized => {
                    ErrorClass::Configuration
                }
                _ => ErrorClass::Refused,
            },
            Self::Storage(e) if e.is_unavailable() => ErrorClass::Unavailable,
            Self::Storage(e) if e.is_configuration() => ErrorClass::Configuration,
            Self::Storage(_) => ErrorClass::Internal,
            Self::Config(_) | Self::Selection(_) => ErrorClass::Configuration,
            Self::Server(_) => ErrorClass::Internal,
            Self::SlotNotRecoverable {
                state: "unknown", ..
            } => ErrorClass::NotFound,
            Self::SlotNotRecoverable { .. } => ErrorClass::Conflict,
            Self::InvalidWebhookUrl(_) | Self::WebhooksNotConfigured => ErrorClass::InvalidInput,
            Self::DeliveryNotFound(_) => ErrorClass::NotFound,
            Self::DeliveryAlreadyDelivered(_) => ErrorClass::Conflict,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }

    /// How long to wait before retrying, when known (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::PoolExhausted { retry_after, .. }
            | Self::PlatformUnavailable { retry_after, .. } => Some(*retry_after),
            Self::Platform(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The field problems of an invalid request, for clients that show
    /// them next to their inputs.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::InvalidRequest(invalid) => &invalid.errors,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use platform_core::{BotDeploymentInput, BotId};

    use super::*;
    use crate::bot::BotState;

    fn invalid(platform: &str, url: &str) -> ServiceError {
        let input = BotDeploymentInput {
            meeting_platform: platform.into(),
            meeting_url: url.into(),
            ..Default::default()
        };
        ServiceError::InvalidRequest(input.validate(BotId(0)).unwrap_err())
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            invalid("webex", "https://zoom.us/j/1").code(),
            "unknown_meeting_platform"
        );
        assert_eq!(
            invalid("zoom", "https://example.com/j/1").code(),
            "invalid_meeting_url"
        );
        assert_eq!(ServiceError::BotNotFound(BotId(9)).code(), "bot_not_found");
        let illegal = BotState::Stopped
            .check_move(BotId(1), BotState::Stopping)
            .unwrap_err();
        let err = ServiceError::from(illegal);
        assert_eq!(err.code(), "illegal_transition");
        assert_eq!(err.class(), ErrorClass::Conflict);
        let full = ServiceError::PoolExhausted {
            bot: BotId(3),
            reason: "all 4 zoom slots are in use".into(),
            retry_after: Duration::from_secs(30),
        };
        assert_eq!(full.code(), "pool_exhausted");
        assert!(full.is_retryable());
        assert_eq!(full.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn an_invalid_url_error_never_echoes_the_passcode() {
        let err = invalid("zoom", "http://zoom.us/j/812?pwd=s3cr3t");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(!format!("{err:?}").contains("s3cr3t"));
    }
}
