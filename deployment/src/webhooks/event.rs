//! The events integrators receive: one small envelope,
//! `{"type", "timestamp", "data"}`, whose `data` carries the bot as the API
//! shows it (meeting URL redacted, no password) and what changed.
//!
//! | type | when | data |
//! | --- | --- | --- |
//! | `bot.status_changed` | every lifecycle transition, creation included (`from` is null then) | `bot`, `from`, `to`, `reason` |
//! | `bot.meeting_status_changed` | the bot reports a new meeting status | `bot`, `from`, `to`, `reason` |
//! | `bot.ended` | once per bot, when it becomes stopped or failed | `bot`, `status`, `reason` |
//!
//! The body is built once, when the change is committed, and sent byte for
//! byte on every attempt (the signature covers it).

use serde::Serialize;
use time::OffsetDateTime;

use crate::bot::{Bot, BotState};

/// `bot.status_changed`.
pub const STATUS_CHANGED: &str = "bot.status_changed";
/// `bot.meeting_status_changed`.
pub const MEETING_STATUS_CHANGED: &str = "bot.meeting_status_changed";
/// `bot.ended`.
pub const ENDED: &str = "bot.ended";

/// Every event type, for documentation and checks.
pub const EVENT_TYPES: [&str; 3] = [STATUS_CHANGED, MEETING_STATUS_CHANGED, ENDED];

/// The envelope of every webhook. The OpenAPI document describes it under
/// this name, with one schema per `data`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookEvent<D> {
    /// `bot.status_changed`, `bot.meeting_status_changed` or `bot.ended`.
    #[serde(rename = "type")]
    #[schema(example = "bot.status_changed")]
    pub event_type: &'static str,
    /// When the change was committed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: OffsetDateTime,
    /// What happened.
    pub data: D,
}

/// The `data` of `bot.status_changed`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StatusChangedData {
    /// The bot after the change, as `GET /v1/bots/{id}` shows it.
    pub bot: Bot,
    /// The status before (null when the bot was just created).
    pub from: Option<BotState>,
    /// The status after.
    pub to: BotState,
    /// Why.
    pub reason: String,
}

/// The `data` of `bot.meeting_status_changed`: the bot's own report of
/// where it is in the meeting.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MeetingStatusChangedData {
    /// The bot after the change.
    pub bot: Bot,
    /// The meeting status before (null for the first report).
    pub from: Option<String>,
    /// The meeting status after (`joining`, `in_waiting_room`, `in_call`,
    /// `call_ended`, `fatal`).
    pub to: String,
    /// Why, as the bot said.
    pub reason: String,
}

/// The `data` of `bot.ended`: sent once per bot.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EndedData {
    /// The bot, ended.
    pub bot: Bot,
    /// `stopped` or `failed`.
    pub status: BotState,
    /// Why it ended.
    pub reason: String,
}

/// An event ready for the outbox: its type and the exact body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The event type.
    pub event_type: &'static str,
    /// The JSON body.
    pub body: String,
}

fn encode<D: Serialize>(event_type: &'static str, at: OffsetDateTime, data: D) -> EncodedEvent {
    let envelope = WebhookEvent {
        event_type,
        timestamp: at,
        data,
    };
    EncodedEvent {
        event_type,
        // Serialising plain data with string keys cannot fail.
        body: serde_json::to_string(&envelope).unwrap_or_default(),
    }
}

/// The events one lifecycle transition announces: `bot.status_changed`,
/// and `bot.ended` too when the bot ended.
pub fn lifecycle_events(
    bot: &Bot,
    from: Option<BotState>,
    to: BotState,
    reason: &str,
    at: OffsetDateTime,
) -> Vec<EncodedEvent> {
    let mut events = vec![encode(
        STATUS_CHANGED,
        at,
        StatusChangedData {
            bot: bot.clone(),
            from,
            to,
            reason: reason.to_owned(),
        },
    )];
    if to.is_terminal() {
        events.push(encode(
            ENDED,
            at,
            EndedData {
                bot: bot.clone(),
                status: to,
                reason: reason.to_owned(),
            },
        ));
    }
    events
}

/// The event a meeting-status change announces.
pub fn meeting_status_event(
    bot: &Bot,
    from: Option<&str>,
    to: &str,
    reason: &str,
    at: OffsetDateTime,
) -> EncodedEvent {
    encode(
        MEETING_STATUS_CHANGED,
        at,
        MeetingStatusChangedData {
            bot: bot.clone(),
            from: from.map(str::to_owned),
            to: to.to_owned(),
            reason: reason.to_owned(),
        },
    )
}
