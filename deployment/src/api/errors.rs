//! Every error the API answers: one JSON shape with a stable machine code,
//! a human message, and `Retry-After` when trying again later can help.
//!
//! ```json
//! {"error": {"code": "pool_exhausted", "message": "…", "retryable": true,
//!            "retry_after_secs": 30, "fields": [], "bot_id": 12}}
//! ```
//!
//! The codes and their HTTP statuses are listed once, in [`ERROR_CODES`],
//! which the OpenAPI document prints for clients.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform_core::BotId;
use serde::Serialize;

use crate::error::{ErrorClass, ServiceError};

/// How long a client should wait before retrying a retryable error whose
/// cause gave no hint (a database or platform that did not answer).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Every error code the API answers with: code, HTTP status, meaning.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "malformed_json",
        400,
        "the body is not JSON (syntax error or cut short)",
    ),
    (
        "invalid_query",
        400,
        "a query parameter is unknown, repeated or has a bad value",
    ),
    (
        "invalid_bot_id",
        400,
        "the bot id in the path is not a whole number from 1 to 9223372036854775807",
    ),
    (
        "invalid_delivery_id",
        400,
        "the webhook delivery id in the path is not a whole number from 1 to 9223372036854775807",
    ),
    (
        "invalid_idempotency_key",
        400,
        "the Idempotency-Key header is not 1 to 255 visible ASCII characters",
    ),
    (
        "unauthorized",
        401,
        "the Authorization: Bearer token is missing or wrong",
    ),
    (
        "bot_token_required",
        401,
        "a bot-protocol endpoint (/v1/bot/…) was called without a bot's own token (BOT_TOKEN); the operator's API_TOKEN is refused there",
    ),
    (
        "bot_token_invalid",
        401,
        "the bearer token is not a token this service gave a bot",
    ),
    (
        "bot_token_revoked",
        401,
        "the bot's token was revoked: the bot ended (or was deployed again)",
    ),
    (
        "bot_not_found",
        404,
        "no bot has this id (or, on /v1/bot/…, none the token belongs to)",
    ),
    ("not_found", 404, "no such endpoint"),
    (
        "method_not_allowed",
        405,
        "the endpoint exists but not with this method",
    ),
    (
        "illegal_transition",
        409,
        "the bot's state forbids it (e.g. stopping a stopped bot)",
    ),
    (
        "illegal_meeting_transition",
        409,
        "the meeting-status order refuses the report (nothing follows call_ended or fatal; in_call never goes back)",
    ),
    (
        "bot_ended",
        409,
        "the bot has ended and no longer has what was asked for",
    ),
    (
        "not_scheduled",
        409,
        "only a scheduled bot can be changed (PATCH /v1/bots/{id}); this one is deploying, running or ended, or is being deployed right now",
    ),
    (
        "idempotency_conflict",
        409,
        "this Idempotency-Key was used with a different request body",
    ),
    (
        "platform_not_configured",
        409,
        "the bot was placed on a platform this service is not configured for; it is left alone",
    ),
    (
        "body_too_large",
        413,
        "the body is larger than API_MAX_BODY_BYTES",
    ),
    (
        "unsupported_media_type",
        415,
        "the body is not sent as Content-Type: application/json",
    ),
    (
        "invalid_body",
        422,
        "the JSON has a wrong type, an unknown field or misses a required one",
    ),
    (
        "unknown_meeting_status",
        422,
        "a bot's event names a meeting status (its type) that does not exist",
    ),
    (
        "invalid_event",
        422,
        "a bot's event has a bad field (sub-code, message, event id) or a field its status does not take",
    ),
    (
        "bot_rate_limited",
        429,
        "the bot made more than BOT_EVENTS_PER_MINUTE requests in a minute; retry after Retry-After",
    ),
    (
        "invalid_meeting_url",
        422,
        "meeting_url is not an https link of that meeting platform",
    ),
    (
        "unknown_meeting_platform",
        422,
        "meeting_platform is not zoom, teams or meet",
    ),
    (
        "invalid_bot_config",
        422,
        "another field of the bot request is invalid (see fields)",
    ),
    (
        "invalid_webhook_url",
        422,
        "webhook_url is not an https URL without credentials (http only with WEBHOOK_ALLOW_PRIVATE=true)",
    ),
    (
        "webhook_url_forbidden",
        422,
        "webhook_url reaches or resolves to a loopback, private, link-local (metadata) or reserved address",
    ),
    (
        "webhooks_not_configured",
        422,
        "webhook_url was given but the service has no WEBHOOK_SECRET to sign webhooks with",
    ),
    ("delivery_not_found", 404, "no webhook delivery has this id"),
    (
        "delivery_already_delivered",
        409,
        "the webhook delivery was accepted already; it is not sent again",
    ),
    (
        "internal_error",
        500,
        "a bug in the service; the request may or may not have taken effect",
    ),
    (
        "server_error",
        500,
        "the HTTP server itself failed (the CLI reports it when serve stops)",
    ),
    (
        "database_error",
        500,
        "a database statement failed unexpectedly",
    ),
    (
        "database_config",
        500,
        "the database is misconfigured (operator action needed)",
    ),
    (
        "invalid_configuration",
        500,
        "the service or platform configuration is invalid (operator action needed)",
    ),
    (
        "platform_selection",
        500,
        "no platform could be chosen (operator action needed)",
    ),
    (
        "platform_config",
        500,
        "the platform refused our configuration (operator action needed)",
    ),
    (
        "platform_unauthorized",
        500,
        "the platform refused our credentials (operator action needed)",
    ),
    (
        "deploy_failed",
        502,
        "the platform refused the bot; it is now failed, with the reason",
    ),
    (
        "platform_rejected",
        502,
        "the platform rejected a request about the bot",
    ),
    (
        "platform_not_found",
        502,
        "the platform does not know a resource it should",
    ),
    ("start_failed", 502, "the platform could not start the bot"),
    (
        "platform_capacity",
        502,
        "the platform can never fit the bot (operator action needed)",
    ),
    ("platform_internal", 502, "the platform failed unexpectedly"),
    (
        "pool_exhausted",
        503,
        "every slot is busy; the bot is pending again; retry after Retry-After",
    ),
    (
        "database_unavailable",
        503,
        "the database does not answer; retry after Retry-After",
    ),
    (
        "platform_unavailable",
        503,
        "the platform does not answer (for a deploy: it could not be reached, nothing was sent and the bot is pending again); retry after Retry-After",
    ),
    (
        "platform_unreachable",
        503,
        "the platform could not be reached and nothing was sent; retry after Retry-After",
    ),
    (
        "platform_timeout",
        503,
        "the platform did not answer in time; retry after Retry-After",
    ),
    (
        "platform_throttled",
        503,
        "the platform asked us to slow down; retry after Retry-After",
    ),
];

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error, for machines (`code`, `retryable`, `retry_after_secs`,
/// `fields`) and for people (`message`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable machine code; see the list in the API description.
    #[schema(example = "invalid_meeting_url")]
    pub code: &'static str,
    /// What went wrong and what is allowed, for a person. Never contains a
    /// secret.
    pub message: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// How long to wait before retrying (also sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
    /// Each invalid field of the request, when the error is about fields.
    pub fields: Vec<FieldProblem>,
    /// The bot the error is about, when there is one (for example the bot
    /// a `pool_exhausted` create left pending).
    pub bot_id: Option<u64>,
}

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field as a client spells it (`meeting_url`,
    /// `automatic_leave.waiting_room_timeout`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// An error answer: an HTTP status and an [`ErrorBody`].
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    // Boxed: errors travel through every handler's `Result`, which stays
    // small for the success path.
    detail: Box<ErrorDetail>,
    retry_after: Option<Duration>,
    challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with `code` (one of [`ERROR_CODES`]) and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: Box::new(ErrorDetail {
                code,
                message: message.into(),
                retryable: false,
                retry_after_secs: None,
                fields: Vec::new(),
                bot_id: None,
            }),
            retry_after: None,
            challenge: None,
        }
    }

    /// Adds the problem of one field.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.detail.fields.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    /// Names the bot the error is about.
    pub fn with_bot(mut self, bot: BotId) -> Self {
        self.detail.bot_id = Some(bot.0);
        self
    }

    /// Says when to try again (`Retry-After` and `retry_after_secs`), and
    /// that trying again can help.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        let secs = after.as_secs_f64().ceil().max(1.0);
        let after = Duration::from_secs_f64(secs);
        self.detail.retryable = true;
        self.detail.retry_after_secs = Some(after.as_secs());
        self.retry_after = Some(after);
        self
    }

    /// Adds a `WWW-Authenticate` challenge (401 answers).
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.detail.code
    }

    /// The body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: (*self.detail).clone(),
        }
    }
}

/// The HTTP status for a service error.
pub fn status_for(error: &ServiceError) -> StatusCode {
    match error.class() {
        ErrorClass::InvalidInput => match error {
            // Well-formed JSON whose values are wrong.
            ServiceError::InvalidRequest(_)
            | ServiceError::InvalidWebhookUrl(_)
            | ServiceError::WebhooksNotConfigured => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        },
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Refused => StatusCode::BAD_GATEWAY,
        ErrorClass::Configuration | ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn bot_of(error: &ServiceError) -> Option<BotId> {
    match error {
        ServiceError::BotNotFound(bot)
        | ServiceError::IdempotencyConflict { bot, .. }
        | ServiceError::PlatformNotConfigured { bot, .. }
        | ServiceError::PoolExhausted { bot, .. }
        | ServiceError::PlatformUnavailable { bot, .. }
        | ServiceError::DeployFailed { bot, .. } => Some(*bot),
        ServiceError::IllegalTransition(illegal) => Some(illegal.bot),
        ServiceError::IllegalMeetingTransition(illegal) => Some(illegal.bot),
        ServiceError::BotEnded { bot, .. } => Some(*bot),
        _ => None,
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let retryable = error.is_retryable();
        let retry_after = retryable.then(|| error.retry_after().unwrap_or(DEFAULT_RETRY_AFTER));
        Self {
            status: status_for(&error),
            detail: Box::new(ErrorDetail {
                code: error.code(),
                message: error.to_string(),
                retryable,
                retry_after_secs: retry_after.map(|d| d.as_secs().max(1)),
                fields: error
                    .field_errors()
                    .iter()
                    .map(|f| FieldProblem {
                        field: f.field.to_owned(),
                        message: f.message.clone(),
                    })
                    .collect(),
                bot_id: bot_of(&error).map(|b| b.0),
            }),
            retry_after,
            challenge: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.detail.code, message = %self.detail.message, "request failed");
        }
        let retry_after = self.retry_after;
        let challenge = self.challenge;
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(after) = retry_after {
            // Whole seconds, at least 1: `Retry-After: 0` invites a busy loop.
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_is_listed_once_with_a_matching_status() {
        let mut seen = HashSet::new();
        for (code, status, meaning) in ERROR_CODES {
            assert!(seen.insert(*code), "{code} listed twice");
            assert!(StatusCode::from_u16(*status).is_ok(), "{code}");
            assert!(!meaning.is_empty());
        }
        let listed = |error: ServiceError| {
            let status = status_for(&error).as_u16();
            let code = error.code();
            assert!(
                ERROR_CODES.contains(&(
                    code,
                    status,
                    ERROR_CODES
                        .iter()
                        .find(|(c, _, _)| *c == code)
                        .map_or("", |e| e.2)
                )),
                "{code} ({status}) is not listed"
            );
        };
        listed(ServiceError::BotNotFound(BotId(1)));
        listed(ServiceError::PoolExhausted {
            bot: BotId(1),
            reason: "full".into(),
            retry_after: Duration::from_secs(30),
        });
        listed(ServiceError::DeployFailed {
            bot: BotId(1),
            reason: "no".into(),
        });
        listed(ServiceError::Platform(platform_core::Error::Timeout {
            platform: "local",
            resource: "bot 1".into(),
            after: Duration::from_secs(1),
        }));
        listed(ServiceError::Platform(platform_core::Error::Unauthorized {
            platform: "aws",
            resource: "cluster".into(),
            message: "denied".into(),
        }));
    }

    #[test]
    fn retryable_errors_carry_retry_after() {
        let response = ApiError::from(ServiceError::PoolExhausted {
            bot: BotId(4),
            reason: "all 2 zoom slots are in use".into(),
            retry_after: Duration::from_secs(30),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
        let not_retryable = ApiError::from(ServiceError::BotNotFound(BotId(4))).into_response();
        assert!(not_retryable.headers().get(header::RETRY_AFTER).is_none());
    }
}
