//! The bot protocol's parts that are not the store or the service: the
//! bots' own tokens, the heartbeat buffer that coalesces database writes,
//! and the per-bot request budget.
//!
//! The protocol itself: every deploy gives the bot `MEEBOTER_API_URL` and
//! `BOT_TOKEN` (through [`platform_core::bot_environment`]); the bot calls
//! `POST /v1/bot/{id}/heartbeat` (the answer says whether to leave),
//! `POST /v1/bot/{id}/events` (its meeting status) and
//! `GET /v1/bot/{id}/config`, with `Authorization: Bearer $BOT_TOKEN`. See
//! [`BotService::heartbeat`](crate::BotService::heartbeat) and the API's
//! [`bot_protocol`](crate::api::bot_protocol) module.

mod heartbeats;
mod rate_limit;
mod token;

pub use heartbeats::{HeartbeatBuffer, HeartbeatCounts};
pub use rate_limit::BotRateLimiter;
pub use token::{BOT_TOKEN_PREFIX, BotToken, hash_presented};
