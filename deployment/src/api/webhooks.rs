//! Webhooks as the operator sees them: a bot's deliveries, and sending one
//! again.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::errors::{ApiError, ErrorBody};
use super::extract::BotIdPath;
use super::state::ApiState;
use crate::webhooks::view::{BotWebhooks, WebhookDelivery};

/// A delivery id from the path (`/v1/webhooks/{delivery}`), checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryIdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for DeliveryIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_delivery_id",
                format!(
                    "the delivery id in the path must be a whole number from 1 to {}",
                    i64::MAX
                ),
            )
            .with_field("delivery", "is not a delivery id")
        };
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| invalid())?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        match text.parse::<i64>() {
            Ok(id) if id >= 1 => Ok(Self(id)),
            _ => Err(invalid()),
        }
    }
}

/// A bot's webhook deliveries, oldest first: each event, its receiver,
/// state, attempts (status, error, the start of the answer) and next try.
#[utoipa::path(
    get,
    path = "/v1/bots/{id}/webhooks",
    tag = "webhooks",
    params(("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot's deliveries", body = BotWebhooks),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn bot_webhooks(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
) -> Result<Json<BotWebhooks>, ApiError> {
    Ok(Json(state.service().webhooks(id).await?))
}

/// Sends a pending or failed delivery again now, with the same
/// `webhook-id`; a failed one gets a fresh `WEBHOOK_MAX_AGE`. The bot's
/// later events keep waiting behind it, so order per bot holds.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{delivery}/retry",
    tag = "webhooks",
    params(("delivery" = i64, Path, description = "The delivery's id (from GET /v1/bots/{id}/webhooks)", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The delivery, due now", body = WebhookDelivery),
        (status = 400, description = "`invalid_delivery_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`delivery_not_found`", body = ErrorBody),
        (status = 409, description = "`delivery_already_delivered`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry_delivery(
    State(state): State<ApiState>,
    DeliveryIdPath(delivery): DeliveryIdPath,
) -> Result<Json<WebhookDelivery>, ApiError> {
    Ok(Json(state.service().retry_webhook(delivery).await?))
}
