//! The HTTP API that `meeboter-deploy serve` answers.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | `POST` | `/v1/bots` | create a bot and deploy it (unless `"deploy": false`); honours `Idempotency-Key` |
//! | `GET` | `/v1/bots` | list bots: `status`, `platform`, `cursor`, `limit` |
//! | `GET` | `/v1/bots/{id}` | one bot with its status history |
//! | `POST` | `/v1/bots/{id}/deploy` | deploy a pending bot |
//! | `POST` | `/v1/bots/{id}/stop` | stop a bot |
//! | `GET` | `/v1/bots/{id}/status` | a bot with what its platform says now |
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
pub mod bots;
pub mod errors;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod placement_metrics;
pub mod platforms;
pub mod pool;
pub mod request_log;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod state;

pub use auth::{ApiToken, TokenChoice, choose_token};
pub use errors::{ApiError, ErrorBody};
pub use openapi::{openapi, openapi_json_text};
pub use routes::{Access, Route, route_table, router};
pub use server::{ServeOptions, serve};
pub use shutdown::{StopSignal, terminate_signal};
pub use state::ApiState;
