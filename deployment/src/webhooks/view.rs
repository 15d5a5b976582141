//! What the operator sees of a bot's webhooks (`GET /v1/bots/{id}/webhooks`,
//! `meeboter-deploy webhooks`).

use serde::Serialize;
use time::OffsetDateTime;

use super::destination::shown;
use crate::store::outbox::PENDING;
use crate::store::{AttemptRecord, DeliveryRecord};

/// One event on its way to one receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// The delivery's id (for `POST /v1/webhooks/{delivery}/retry`).
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt.
    #[schema(example = "msg_2b1c9e0f4a7d4c55a0d9f1e3b6c8a712")]
    pub webhook_id: String,
    /// The bot.
    pub bot_id: i64,
    /// `bot.status_changed`, `bot.meeting_status_changed` or `bot.ended`.
    pub event_type: String,
    /// `operator` (WEBHOOK_URL) or `bot` (the bot's webhook_url).
    pub destination: String,
    /// The receiver, without its query (which may hold a token).
    pub url: String,
    /// `pending` (waiting for an attempt), `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the event was written.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the next attempt is due (pending deliveries only).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When a receiver accepted it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<OffsetDateTime>,
    /// The last HTTP status answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<WebhookAttempt>,
    /// The exact body sent (and signed).
    pub payload: String,
}

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    /// 1 for the first.
    pub number: u32,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the answer's body (at most 1 KiB).
    pub response: Option<String>,
}

fn at(ms: i64) -> OffsetDateTime {
    crate::store::outbox::timestamp_of(ms)
}

impl WebhookDelivery {
    /// The view of a delivery and its attempts.
    pub fn new(delivery: DeliveryRecord, attempts: Vec<AttemptRecord>) -> Self {
        let pending = delivery.state == PENDING;
        Self {
            id: delivery.id,
            webhook_id: delivery.message_id,
            bot_id: delivery.bot_id,
            event_type: delivery.event_type,
            destination: delivery.destination,
            url: shown(&delivery.url),
            state: delivery.state,
            attempts: u32::try_from(delivery.attempts).unwrap_or(u32::MAX),
            created_at: at(delivery.created_at),
            next_attempt_at: pending.then(|| at(delivery.next_attempt_at)),
            delivered_at: delivery.delivered_at.map(at),
            last_status_code: delivery
                .last_status_code
                .and_then(|c| u16::try_from(c).ok()),
            last_error: delivery.last_error,
            attempt_log: attempts
                .into_iter()
                .map(|a| WebhookAttempt {
                    number: u32::try_from(a.number).unwrap_or(u32::MAX),
                    at: at(a.started_at),
                    duration_ms: u64::try_from(a.duration_ms).unwrap_or_default(),
                    status_code: a.status_code.and_then(|c| u16::try_from(c).ok()),
                    error: a.error,
                    response: a.response,
                })
                .collect(),
            payload: delivery.payload,
        }
    }
}

/// A bot's webhooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BotWebhooks {
    /// The bot.
    pub bot_id: i64,
    /// Its deliveries, oldest first.
    pub deliveries: Vec<WebhookDelivery>,
}
