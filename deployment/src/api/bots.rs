//! `/v1/bots`: create (and deploy), deploy, stop, read, list, live status.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform_core::{AutomaticLeaveInput, BotDeploymentInput, MeetingPlatform, SecretString};
use serde::Deserialize;

use super::errors::{ApiError, ErrorBody};
use super::extract::{BotIdPath, JsonBody, ListBotsParams};
use super::prefer;
use super::state::ApiState;
use crate::bot::{Bot, BotDetails};
use crate::service::{BotPage, CreateBot, LiveStatus, Reschedule, idempotency_key};
use crate::store::IdempotencyKey;

/// The header that makes a create safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set to `true` on a create answered from an earlier request with the same
/// idempotency key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// A bot to create: the meeting it joins and how it behaves there.
///
/// No `Debug`: the meeting URL may carry a passcode.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBotRequest {
    /// `zoom`, `teams` or `meet`.
    #[schema(value_type = MeetingPlatform, example = "zoom")]
    pub meeting_platform: String,
    /// The invite link: https, on a host of that meeting platform (a Zoom
    /// link on zoom.us, a Teams link on teams.microsoft.com or
    /// teams.live.com, a Meet link on meet.google.com), with the default
    /// port and no credentials.
    #[schema(
        example = "https://us02web.zoom.us/j/81234567890?pwd=abc123",
        pattern = "^https://",
        max_length = 2048
    )]
    pub meeting_url: String,
    /// The meeting password, if any (at most 256 characters, no control
    /// characters). Never shown again.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password, max_length = 256, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub meeting_password: Option<SecretString>,
    /// The name the bot shows in the meeting (1 to 100 characters, no
    /// control characters, no whitespace at either end); default
    /// `Meeboter`.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]([^\\x00-\\x1F\\x7F-\\x9F]*[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000])?$"
    )]
    pub display_name: Option<String>,
    /// Whether the bot records; default false.
    #[serde(default)]
    pub recording_enabled: bool,
    /// When the bot leaves on its own, in seconds (1 to 86400 each);
    /// defaults 300, 300, 60.
    #[serde(default)]
    pub automatic_leave: AutomaticLeaveInput,
    /// Deploy at once (default) or only record the bot as pending, to
    /// deploy later with `POST /v1/bots/{id}/deploy`.
    #[serde(default = "deploy_by_default")]
    #[schema(default = true)]
    pub deploy: bool,
    /// Queue priority, -1000000 to 1000000 (default 0): when no platform
    /// has room the bot is queued, and a queued bot with a higher priority
    /// is placed first, then the one that waited longest.
    #[serde(default)]
    #[schema(minimum = -1_000_000, maximum = 1_000_000, default = 0)]
    pub priority: i64,
    /// This bot's own webhook receiver, besides the operator's
    /// `WEBHOOK_URL`: https, without credentials, reaching only public
    /// addresses (checked now and at every delivery). Every event about the
    /// bot is POSTed there, signed by the Standard Webhooks specification
    /// (see the `WebhookEvent` schemas). Needs the service to have a
    /// `WEBHOOK_SECRET`.
    #[serde(default)]
    #[schema(
        example = "https://app.example.com/meeboter/webhooks",
        max_length = 2048,
        pattern = "^https?://"
    )]
    pub webhook_url: Option<String>,
    /// When the bot must be in its meeting (RFC 3339 with its offset, from
    /// `SCHEDULE_MAX_LATENESS` in the past to 366 days ahead). Its deploy
    /// starts at `join_at` minus the lead time of the priority list's
    /// slowest platform (`AWS_DEPLOY_LEAD`, `COOLIFY_DEPLOY_LEAD`, …);
    /// until then the bot waits as `scheduled`. Without it, or when that
    /// time has passed, the bot deploys now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-03-02T10:00:00Z")]
    pub join_at: Option<String>,
}

fn deploy_by_default() -> bool {
    true
}

impl CreateBotRequest {
    fn into_request(self, idempotency: Option<IdempotencyKey>) -> CreateBot {
        let input = BotDeploymentInput {
            meeting_platform: self.meeting_platform,
            meeting_url: self.meeting_url,
            meeting_password: self.meeting_password,
            display_name: self.display_name,
            recording_enabled: self.recording_enabled,
            automatic_leave: self.automatic_leave,
        };
        CreateBot {
            input,
            idempotency,
            deploy: self.deploy,
            priority: self.priority,
            webhook_url: self.webhook_url,
            join_at: self.join_at,
        }
    }
}

/// A change to a scheduled bot: any of its `join_at`, display name and
/// automatic-leave timeouts; what is left out stays as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBotRequest {
    /// The new time the bot must be in its meeting (RFC 3339 with its
    /// offset, from `SCHEDULE_MAX_LATENESS` in the past to 366 days
    /// ahead); its deploy time moves with it.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-03-02T10:30:00Z")]
    pub join_at: Option<String>,
    /// The new display name (1 to 100 characters, no control characters,
    /// no whitespace at either end).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: Option<String>,
    /// New automatic-leave timeouts in seconds (1 to 86400 each); the ones
    /// given replace the current ones.
    #[serde(default)]
    pub automatic_leave: Option<AutomaticLeaveInput>,
}

/// Creates a bot and, unless `"deploy": false`, deploys it — or, with a
/// `join_at` whose deploy time is ahead, schedules it (`scheduled`, with
/// its `deploy_at`): any service process deploys it at that time.
///
/// The answer never waits for the platform: it comes as soon as the bot is
/// placed (`deploying`, its platform call handed to the service's deploy
/// workers), queued or scheduled; follow the bot with `GET /v1/bots/{id}`
/// or webhooks. A caller that wants the bot once it is `running` or
/// `failed` sends `Prefer: wait=N` (RFC 7240, up to 300 s): the answer then
/// comes when it is, or after N seconds with the bot as it is then, and
/// carries `Preference-Applied: wait=N`; a refusal by the platform is then
/// `deploy_failed`, as it is.
///
/// With an `Idempotency-Key`, a retry with the same key and the same body
/// (byte for byte) returns the bot the first request created, with 200 and
/// `Idempotent-Replayed: true`, and deploys it if it is still pending; the
/// same key with another body is `idempotency_conflict`. Keys are kept for
/// 24 hours. The bot is placed on the first platform of the priority list
/// with room; when no platform has room the answer is still 201, with the
/// bot `queued` and its `queue_position`: it is placed as soon as capacity
/// frees, or fails as `queue_timeout` after `QUEUE_TIMEOUT`.
#[utoipa::path(
    post,
    path = "/v1/bots",
    tag = "bots",
    request_body = CreateBotRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; makes the create safe to retry", min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7E]{1,255}$"),
        ("Prefer" = Option<String>, Header, description = "RFC 7240 preferences. `wait=N` (whole seconds, honoured up to 300): answer once the bot is running or failed, or N seconds passed, instead of as soon as it is placed. Other preferences, and a `wait` that is not a whole number, are ignored", example = "wait=30"),
    ),
    responses(
        (status = 201, description = "Created (and placed unless `deploy` was false: `deploying` on a platform, its platform call in the deploy workers — or, with `Prefer: wait`, `running`/`failed`/still `deploying` — `queued` with its `queue_position` when no platform has room, or `scheduled` with its `deploy_at` when `join_at` is far enough ahead); `Location` names the bot, `Preference-Applied` the wait honoured", body = Bot),
        (status = 200, description = "An earlier request with the same Idempotency-Key and body created this bot", body = Bot),
        (status = 400, description = "`malformed_json`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_meeting_url`, `unknown_meeting_platform`, `invalid_bot_config` (including a `join_at` that is not RFC 3339 or out of range), `invalid_webhook_url`, `webhook_url_forbidden`, `webhooks_not_configured`", body = ErrorBody),
        (status = 502, description = "`deploy_failed` (with `Prefer: wait`): the platform refused the bot, which is now failed", body = ErrorBody),
        (status = 503, description = "`pool_exhausted` and other retryable errors, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_bot(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: JsonBody<CreateBotRequest>,
) -> Result<Response, ApiError> {
    let idempotency = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            let key = value.to_str().unwrap_or("\u{0}");
            Some(idempotency_key(key, &body.raw)?)
        }
    };
    let (wait, applied) = prefer::deploy_wait(&headers);
    let created = state
        .service()
        .create_bot_with(body.value.into_request(idempotency), wait, &mut |_| {})
        .await?;
    let mut response = Json(&created.bot).into_response();
    prefer::apply(&mut response, applied);
    if created.created {
        *response.status_mut() = StatusCode::CREATED;
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/bots/{}", created.bot.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    } else {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Deploys a pending bot. A bot already deploying or running is returned
/// as it is: nothing new is started. Like a create, the answer comes as
/// soon as the bot is placed, unless `Prefer: wait=N` asks to wait.
#[utoipa::path(
    post,
    path = "/v1/bots/{id}/deploy",
    tag = "bots",
    params(
        ("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64),
        ("Prefer" = Option<String>, Header, description = "RFC 7240 preferences. `wait=N` (whole seconds, honoured up to 300): answer once the bot is running or failed, or N seconds passed. Other preferences, and a `wait` that is not a whole number, are ignored", example = "wait=30"),
    ),
    responses(
        (status = 200, description = "The bot: deploying (its platform call in the deploy workers), queued, scheduled, or — with `Prefer: wait` — running, failed or still deploying (a deploy the platform did not confirm yet stays deploying, with the reason, and the reconciler finishes it)", body = Bot),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 409, description = "`illegal_transition` (a stopped or failed bot never comes back), `platform_not_configured`", body = ErrorBody),
        (status = 502, description = "`deploy_failed`", body = ErrorBody),
        (status = 503, description = "`pool_exhausted` and other retryable errors, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn deploy_bot(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (wait, applied) = prefer::deploy_wait(&headers);
    let bot = state.service().deploy_with(id, wait, &mut |_| {}).await?;
    let mut response = Json(bot).into_response();
    prefer::apply(&mut response, applied);
    Ok(response)
}

/// Changes a scheduled bot: its `join_at` (the deploy time moves with
/// it), display name or automatic-leave timeouts. Only while the bot is
/// `scheduled`: once its deploy has started the answer is 409
/// `not_scheduled`.
#[utoipa::path(
    patch,
    path = "/v1/bots/{id}",
    tag = "bots",
    request_body = UpdateBotRequest,
    params(("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot, still scheduled, with its new `join_at` and `deploy_at`", body = Bot),
        (status = 400, description = "`invalid_bot_id`, `malformed_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 409, description = "`not_scheduled`: the bot's deploy has started (or it ended); nothing was changed", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body`, `invalid_bot_config` naming the field (`join_at`, `display_name`, `automatic_leave.*`) and what is allowed", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_bot(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
    body: JsonBody<UpdateBotRequest>,
) -> Result<Json<Bot>, ApiError> {
    let change = body.value;
    Ok(Json(
        state
            .service()
            .reschedule(
                id,
                Reschedule {
                    join_at: change.join_at,
                    display_name: change.display_name,
                    automatic_leave: change.automatic_leave,
                },
            )
            .await?,
    ))
}

/// Stops a bot: the platform stops it and releases what it held. A
/// pending or queued bot is stopped at once; a scheduled bot is cancelled
/// with nothing started.
#[utoipa::path(
    post,
    path = "/v1/bots/{id}/stop",
    tag = "bots",
    params(("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot, stopped (or stopping, with the reason, when the platform has not confirmed yet; the reconciler repeats the stop)", body = Bot),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 409, description = "`illegal_transition` (already stopped or failed), `platform_not_configured`", body = ErrorBody),
        (status = 503, description = "Retryable errors, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn stop_bot(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
) -> Result<Json<Bot>, ApiError> {
    Ok(Json(state.service().stop(id).await?))
}

/// Asks a bot to leave its meeting: its next heartbeat answers `leave:
/// true`, it reports `call_ended` (`left_on_request`) and exits. One that
/// has not ended within `LEAVE_GRACE` (default 60 s) is stopped as `stop`
/// does. A pending bot is stopped at once; asking twice keeps the first
/// request's time.
#[utoipa::path(
    post,
    path = "/v1/bots/{id}/leave",
    tag = "bots",
    params(("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot, with `leave_requested_at` (or stopped, when it was pending)", body = Bot),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 409, description = "`illegal_transition` (already stopped or failed), `platform_mismatch`", body = ErrorBody),
        (status = 503, description = "Retryable errors, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn leave_bot(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
) -> Result<Json<Bot>, ApiError> {
    Ok(Json(state.service().leave(id).await?))
}

/// One bot with its whole status history, oldest first.
#[utoipa::path(
    get,
    path = "/v1/bots/{id}",
    tag = "bots",
    params(("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot and its history", body = BotDetails),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_bot(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
) -> Result<Json<BotDetails>, ApiError> {
    Ok(Json(state.service().get(id).await?))
}

/// Bots in id order, a page at a time: pass `next_cursor` as `cursor` for
/// the next page; the last page has none.
#[utoipa::path(
    get,
    path = "/v1/bots",
    tag = "bots",
    params(ListBotsParams),
    responses(
        (status = 200, description = "One page of bots", body = BotPage),
        (status = 400, description = "`invalid_query`: an unknown, repeated or invalid parameter", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_bots(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Json<BotPage>, ApiError> {
    let params = ListBotsParams::parse(query.as_deref())?;
    Ok(Json(state.service().list(&params.into_query()).await?))
}

/// The bot as recorded, with what its platform says about it right now.
#[utoipa::path(
    get,
    path = "/v1/bots/{id}/status",
    tag = "bots",
    params(("id" = u64, Path, description = "The bot's id", minimum = 1, maximum = 9_223_372_036_854_775_807_f64)),
    responses(
        (status = 200, description = "The bot and the platform's answer (`platform_error` says why there is none)", body = LiveStatus),
        (status = 400, description = "`invalid_bot_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`bot_not_found`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn bot_status(
    State(state): State<ApiState>,
    BotIdPath(id): BotIdPath,
) -> Result<Json<LiveStatus>, ApiError> {
    Ok(Json(state.service().live_status(id).await?))
}
