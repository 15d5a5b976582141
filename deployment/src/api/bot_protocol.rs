//! `/v1/bot/{id}/…`: the bot protocol, the endpoints a bot calls with its
//! own token (`Authorization: Bearer $BOT_TOKEN`).
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | `POST` | `/v1/bot/{id}/heartbeat` | "I am alive"; the answer says whether to leave |
//! | `POST` | `/v1/bot/{id}/events` | a meeting-status report, with an optional event id |
//! | `GET` | `/v1/bot/{id}/config` | the bot's own configuration, password included |
//!
//! Only a bot token is accepted here, and only for its own bot: the
//! operator's `API_TOKEN` is refused (401 `bot_token_required`), another
//! bot's token is answered as if the bot did not exist (404), and a token
//! of a bot that ended is refused (401 `bot_token_revoked`). Bodies are at
//! most 16 KiB (413), and each bot may make `BOT_EVENTS_PER_MINUTE`
//! requests a minute (429 with `Retry-After`). A refused request changes
//! nothing and writes no history.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::errors::{ApiError, ErrorBody};
use super::extract::{parse_bot_id, parse_json};
use super::state::ApiState;
use crate::meeting::{CallEndedCode, EventSource, FatalCode, MeetingEvent, MeetingStatus};
use crate::service::{AuthorizedBot, BotAccess, BotOwnConfig, EventAnswer, HeartbeatAnswer};

/// The largest body a bot may send: a report is a few hundred bytes.
pub const MAX_BOT_BODY_BYTES: usize = 16 * 1024;

/// The longest event id a bot may give.
pub const MAX_EVENT_ID_CHARS: usize = 128;

/// The longest message a bot may send with a report (it is kept as one
/// line of at most 500 characters).
pub const MAX_EVENT_MESSAGE_CHARS: usize = 2_000;

/// What a request presents as `Authorization: Bearer …`.
fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(value[7..].trim_ascii()).filter(|t| !t.is_empty())
}

/// The bot id of a `/v1/bot/{id}/…` path.
fn path_bot_id(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/bot/")?.split('/').next()
}

/// Lets a request through only with the token of the bot in its path, and
/// within that bot's request budget; hands the handler the checked bot.
pub async fn require_bot_token(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(candidate) = presented_token(request.headers()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bot_token_required",
            "this endpoint needs the bot's own token: Authorization: Bearer $BOT_TOKEN (from the bot's environment)",
        )
        .with_challenge(r#"Bearer realm="meeboter-deploy-bots""#)
        .into_response();
    };
    if state.token().matches(candidate) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bot_token_required",
            "the bot endpoints take a bot's own token (BOT_TOKEN), never the operator's API_TOKEN",
        )
        .with_challenge(r#"Bearer realm="meeboter-deploy-bots", error="invalid_token""#)
        .into_response();
    }
    let id = match parse_bot_id(path_bot_id(request.uri().path()).unwrap_or_default()) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let service = state.service();
    let bot = match service.authorize_bot(id, candidate).await {
        Ok(BotAccess::Granted(bot)) => bot,
        Ok(BotAccess::UnknownToken) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bot_token_invalid",
                "the bearer token is not one this service gave a bot; a bot finds its token in BOT_TOKEN",
            )
            .with_challenge(r#"Bearer realm="meeboter-deploy-bots", error="invalid_token""#)
            .into_response();
        }
        Ok(BotAccess::Revoked) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bot_token_revoked",
                format!(
                    "bot {id}'s token was revoked: the bot has ended (or was deployed again); exit"
                ),
            )
            .with_challenge(r#"Bearer realm="meeboter-deploy-bots", error="invalid_token""#)
            .into_response();
        }
        // The same answer as for an id nobody has: whether another bot
        // exists is none of this token's business.
        Ok(BotAccess::OtherBot) => return not_this_bots(id),
        Err(error) => return ApiError::from(error).into_response(),
    };
    if let Err(wait) = service.charge_bot_request(id) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "bot_rate_limited",
            format!(
                "bot {id} made more than {} requests in a minute (BOT_EVENTS_PER_MINUTE); retry after Retry-After",
                service.options().bot_events_per_minute
            ),
        )
        .with_retry_after(wait)
        .into_response();
    }
    request.extensions_mut().insert(*bot);
    next.run(request).await
}

fn not_this_bots(id: platform_core::BotId) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "bot_not_found",
        format!("no bot {id} belongs to this token"),
    )
    .with_bot(id)
    .into_response()
}

/// Reads a bot's body: at most [`MAX_BOT_BODY_BYTES`].
async fn read_body(request: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("a bot's body is at most {MAX_BOT_BODY_BYTES} bytes (16 KiB)"),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the body could not be read completely",
                )
            }
        })
}

/// A heartbeat's body: nothing, or an empty JSON object.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {}

/// Says "I am alive". The answer says whether to leave the meeting now
/// (after `POST /v1/bots/{id}/leave`, or when the bot is being stopped).
/// Heartbeats are written in batches: `last_heartbeat_at` may lag a few
/// seconds.
#[utoipa::path(
    post,
    path = "/v1/bot/{id}/heartbeat",
    tag = "bot protocol",
    params(("id" = u64, Path, description = "The bot's own id (BOT_ID)", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    request_body(content = Option<HeartbeatBody>, description = "Nothing, or {}", content_type = "application/json"),
    responses(
        (status = 200, description = "Whether to leave", body = HeartbeatAnswer),
        (status = 400, description = "`invalid_bot_id`, `malformed_json`", body = ErrorBody),
        (status = 401, description = "`bot_token_required`, `bot_token_invalid`, `bot_token_revoked`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`: the token is another bot's", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 16 KiB", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 429, description = "`bot_rate_limited`, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bot_token" = []))
)]
pub async fn heartbeat(
    State(state): State<ApiState>,
    Extension(bot): Extension<AuthorizedBot>,
    request: Request,
) -> Result<Json<HeartbeatAnswer>, ApiError> {
    let body = read_body(request).await?;
    if !body.trim_ascii().is_empty() {
        parse_json::<HeartbeatBody>(&body)?;
    }
    Ok(Json(state.service().heartbeat(&bot)))
}

/// A meeting-status report. Its `status` is the event's type; each status
/// takes its own fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum MeetingReport {
    /// The bot is joining the meeting.
    Joining {
        /// Makes a retried report count once (1 to 128 visible ASCII characters).
        #[serde(default)]
        event_id: Option<String>,
        /// The bot's words.
        #[serde(default)]
        message: Option<String>,
    },
    /// The bot waits in the waiting room or lobby.
    InWaitingRoom {
        /// Makes a retried report count once.
        #[serde(default)]
        event_id: Option<String>,
        /// The bot's words.
        #[serde(default)]
        message: Option<String>,
    },
    /// The bot is in the call.
    InCall {
        /// Makes a retried report count once.
        #[serde(default)]
        event_id: Option<String>,
        /// Whether the bot records.
        recording: bool,
        /// The bot's words.
        #[serde(default)]
        message: Option<String>,
    },
    /// The bot left the call; the service tears it down at once and it
    /// ends `stopped`.
    CallEnded {
        /// Makes a retried report count once.
        #[serde(default)]
        event_id: Option<String>,
        /// Why the call ended.
        sub_code: CallEndedCode,
        /// The bot's words.
        #[serde(default)]
        message: Option<String>,
    },
    /// The bot cannot go on; the service tears it down at once and it ends
    /// `failed` with this reason. `heartbeat_timeout` is the service's own
    /// verdict and refused from a bot.
    Fatal {
        /// Makes a retried report count once.
        #[serde(default)]
        event_id: Option<String>,
        /// Why.
        sub_code: FatalCode,
        /// What happened, in the bot's words.
        message: String,
    },
}

/// The statuses a bot may report.
const REPORTABLE: [MeetingStatus; 5] = [
    MeetingStatus::Joining,
    MeetingStatus::InWaitingRoom,
    MeetingStatus::InCall,
    MeetingStatus::CallEnded,
    MeetingStatus::Fatal,
];

fn invalid_event(field: &str, problem: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_event",
        format!("{field} {problem}"),
    )
    .with_field(field.to_owned(), problem.to_owned())
}

/// Parses and checks a report into the event the service records.
pub fn parse_report(raw: &[u8]) -> Result<MeetingEvent, ApiError> {
    let value: Value = parse_json(raw)?;
    let Some(object) = value.as_object() else {
        return Err(invalid_event("body", "must be a JSON object"));
    };
    let allowed = REPORTABLE.map(MeetingStatus::as_str).join(", ");
    match object.get("status") {
        None => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_meeting_status",
                format!("status is missing; it names the event: one of {allowed}"),
            )
            .with_field("status", "is missing"));
        }
        Some(Value::String(status)) if REPORTABLE.iter().any(|s| s.as_str() == status.as_str()) => {
        }
        Some(_) => {
            // The value is not repeated: it is whatever the bot sent.
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_meeting_status",
                format!("status is not a meeting status a bot reports; allowed: {allowed}"),
            )
            .with_field("status", format!("allowed: {allowed}")));
        }
    }
    let report: MeetingReport = parse_json(raw)?;
    let (status, event_id, sub_code, message, recording) = match report {
        MeetingReport::Joining { event_id, message } => {
            (MeetingStatus::Joining, event_id, None, message, None)
        }
        MeetingReport::InWaitingRoom { event_id, message } => {
            (MeetingStatus::InWaitingRoom, event_id, None, message, None)
        }
        MeetingReport::InCall {
            event_id,
            recording,
            message,
        } => (
            MeetingStatus::InCall,
            event_id,
            None,
            message,
            Some(recording),
        ),
        MeetingReport::CallEnded {
            event_id,
            sub_code,
            message,
        } => (
            MeetingStatus::CallEnded,
            event_id,
            Some(sub_code.as_str()),
            message,
            None,
        ),
        MeetingReport::Fatal {
            event_id,
            sub_code,
            message,
        } => {
            if sub_code == FatalCode::HeartbeatTimeout {
                return Err(invalid_event(
                    "sub_code",
                    "heartbeat_timeout is the service's own verdict; a bot reports another fatal sub-code",
                ));
            }
            (
                MeetingStatus::Fatal,
                event_id,
                Some(sub_code.as_str()),
                Some(message),
                None,
            )
        }
    };
    if let Some(id) = &event_id {
        let visible = id.bytes().all(|b| b.is_ascii_graphic());
        if id.is_empty() || id.chars().count() > MAX_EVENT_ID_CHARS || !visible {
            return Err(invalid_event(
                "event_id",
                "must be 1 to 128 visible ASCII characters",
            ));
        }
    }
    if let Some(text) = &message
        && text.chars().count() > MAX_EVENT_MESSAGE_CHARS
    {
        return Err(invalid_event(
            "message",
            "must be at most 2000 characters (it is kept as one line of at most 500)",
        ));
    }
    Ok(MeetingEvent {
        status,
        sub_code: sub_code.map(str::to_owned),
        message: message.filter(|m| !m.trim().is_empty()),
        recording,
        event_id,
        source: EventSource::Bot,
    })
}

/// Reports the bot's meeting status. With an `event_id`, a retried report
/// counts once (`duplicate: true`). `call_ended` and `fatal` end the bot:
/// its slot, task or process is released at once.
#[utoipa::path(
    post,
    path = "/v1/bot/{id}/events",
    tag = "bot protocol",
    params(("id" = u64, Path, description = "The bot's own id (BOT_ID)", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    request_body(content = MeetingReport, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded (or recognised as a retry)", body = EventAnswer),
        (status = 400, description = "`invalid_bot_id`, `malformed_json`", body = ErrorBody),
        (status = 401, description = "`bot_token_required`, `bot_token_invalid`, `bot_token_revoked`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`: the token is another bot's", body = ErrorBody),
        (status = 409, description = "`illegal_meeting_transition`: nothing follows call_ended or fatal; in_call never goes back", body = ErrorBody),
        (status = 413, description = "`body_too_large`: over 16 KiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`unknown_meeting_status`, `invalid_event`, `invalid_body`", body = ErrorBody),
        (status = 429, description = "`bot_rate_limited`, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bot_token" = []))
)]
pub async fn report_event(
    State(state): State<ApiState>,
    Extension(bot): Extension<AuthorizedBot>,
    request: Request,
) -> Result<Json<EventAnswer>, ApiError> {
    if !super::extract::is_json_content_type(request.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with the header Content-Type: application/json",
        ));
    }
    let body = read_body(request).await?;
    let event = parse_report(&body)?;
    Ok(Json(
        state.service().report_meeting_event(&bot, event).await?,
    ))
}

/// The bot's own configuration, meeting password included, for bots that
/// prefer to pull it (a Coolify slot's environment outlives a claim).
#[utoipa::path(
    get,
    path = "/v1/bot/{id}/config",
    tag = "bot protocol",
    params(("id" = u64, Path, description = "The bot's own id (BOT_ID)", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot's configuration", body = BotOwnConfig),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`bot_token_required`, `bot_token_invalid`, `bot_token_revoked`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`: the token is another bot's", body = ErrorBody),
        (status = 409, description = "`bot_ended`", body = ErrorBody),
        (status = 429, description = "`bot_rate_limited`, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bot_token" = []))
)]
pub async fn bot_config(
    State(state): State<ApiState>,
    Extension(bot): Extension<AuthorizedBot>,
) -> Result<Json<BotOwnConfig>, ApiError> {
    Ok(Json(state.service().bot_config(&bot).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_per_status() {
        let event =
            parse_report(br#"{"status":"in_call","recording":true,"event_id":"e-1"}"#).unwrap();
        assert_eq!(event.status, MeetingStatus::InCall);
        assert_eq!(event.recording, Some(true));
        assert_eq!(event.event_id.as_deref(), Some("e-1"));
        let event =
            parse_report(br#"{"status":"call_ended","sub_code":"left_on_request"}"#).unwrap();
        assert_eq!(event.sub_code.as_deref(), Some("left_on_request"));
        let event =
            parse_report(br#"{"status":"fatal","sub_code":"join_failed","message":"no"}"#).unwrap();
        assert_eq!(event.status, MeetingStatus::Fatal);
    }

    #[test]
    fn bad_reports_name_what_is_wrong() {
        for (body, code) in [
            (&br#"{"status":"dancing"}"#[..], "unknown_meeting_status"),
            (br#"{"status":"unknown"}"#, "unknown_meeting_status"),
            (br#"{"recording":true}"#, "unknown_meeting_status"),
            (br#"{"status":7}"#, "unknown_meeting_status"),
            (br#"{"status":"in_call"}"#, "invalid_body"),
            (br#"{"status":"joining","recording":true}"#, "invalid_body"),
            (
                br#"{"status":"call_ended","sub_code":"bored"}"#,
                "invalid_body",
            ),
            (
                br#"{"status":"fatal","sub_code":"heartbeat_timeout","message":"x"}"#,
                "invalid_event",
            ),
            (br#"{"status":"joining","event_id":""}"#, "invalid_event"),
            (br#"{"status":"joining","event_id":"a b"}"#, "invalid_event"),
            (br#"[1]"#, "invalid_event"),
            (br#"{"status":"#, "malformed_json"),
        ] {
            let error = parse_report(body).unwrap_err();
            assert_eq!(error.code(), code, "{}", String::from_utf8_lossy(body));
        }
        let error = parse_report(br#"{"status":"hunter2-secret"}"#).unwrap_err();
        let text = serde_json::to_string(&error.body()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
