//! The HTTP API that `meeboter-deploy serve` answers.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | `POST` | `/v1/bots` | create a bot and deploy it (unless `"deploy": false`); honours `Idempotency-Key` |
//! | `GET` | `/v1/bots` | list bots: `status`, `platform`, `cursor`, `limit` |
//! | `GET` | `/v1/bots/{id}` | one bot with its status history |
//! | `POST` | `/v1/bots/{id}/deploy` | deploy a pending bot |
//! | `POST` | `/v1/bots/{id}/stop` | stop a bot |
//! | `POST` | `/v1/bots/{id}/leave` | ask a bot to leave its meeting (stopped after `LEAVE_GRACE`) |
//! | `GET` | `/v1/bots/{id}/status` | a bot with what its platform says now |
//! | `POST` | `/v1/bot/{id}/heartbeat` | the bot protocol (bot token): heartbeat, answered with leave |
//! | `POST` | `/v1/bot/{id}/events` | the bot protocol (bot token): meeting-status report |
//! | `GET` | `/v1/bot/{id}/config` | the bot protocol (bot token): the bot's own configuration |
//! | `GET` | `/v1/bots/{id}/webhooks` | a bot's webhook deliveries and their attempts |
//! | `POST` | `/v1/webhooks/{delivery}/retry` | send a pending or failed webhook again now |
//! | `GET` | `/v1/platforms` | compiled-in platforms and the active one |
//! | `GET` | `/v1/pool` | warm-pool slots and bots by status |
//! | `GET` | `/openapi.json` | this API's OpenAPI 3 document |
//! | `GET` | `/healthz` | the process answers (no token) |
//! | `GET` | `/readyz` | the database and the platform answer (no token) |
//! | `GET` | `/metrics` | Prometheus metrics (no token) |
//!
//! The route list lives in [`routes::routes`]; errors in [`errors`]; the
//! OpenAPI document in [`openapi()`].

pub mod auth;
pub mod bot_protocol;
pub mod bots;
pub mod errors;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod placement_metrics;
pub mod platforms;
pub mod pool;
pub mod prefer;
pub mod request_log;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod webhooks;

pub use auth::{ApiToken, TokenChoice, choose_token};
pub use errors::{ApiError, ErrorBody};
pub use openapi::{openapi, openapi_json_text};
pub use routes::{Access, Route, route_table, router};
pub use server::{ServeOptions, serve};
pub use shutdown::{StopSignal, terminate_signal};
pub use state::ApiState;
