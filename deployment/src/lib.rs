//! Meeboter deploy: the service that deploys, tracks and stops meeting bots
//! on the operator's own infrastructure — a Coolify warm pool, AWS ECS
//! Fargate tasks, or local processes — behind one platform trait.
//!
//! This crate is the product an operator runs (`meeboter-deploy`) and the
//! library behind it:
//!
//! - [`Store`]: the database (SQLite by default, PostgreSQL for production),
//!   with the bots, their status history, warm-pool slots (the core
//!   [`SlotStore`](platform_core::SlotStore) port) and idempotency keys;
//! - [`BotService`]: create, deploy, stop, inspect and list bots through the
//!   [`BotState`] state machine, written against
//!   [`PlatformService`](platform_core::PlatformService) alone;
//! - the reconciler ([`BotService::reconcile_once`],
//!   [`BotService::run_reconciler`]): keeps the database true to the
//!   platform and finishes what a crash left half-done;
//! - [`ServiceError`]: one error type with stable machine codes for the CLI
//!   and the HTTP API;
//! - the HTTP API ([`api`]) that `meeboter-deploy serve` answers;
//! - the CLI ([`cli`]) and the stand-in bot ([`sim_bot`]).
//!
//! # Features
//!
//! | feature | platform |
//! | --- | --- |
//! | `coolify` | Coolify warm slot pool |
//! | `aws` | AWS ECS Fargate tasks |
//! | `local` | local child processes |
//! | `kubernetes` | Kubernetes pods |
//! | `all-platforms` (default) | all of the above |

// Force-link each enabled platform plugin so its registration reaches the
// registry: without a reference the linker drops the crate. A `use … as _`
// survives `cargo fix`, which deletes a bare `extern crate`.
#[cfg(feature = "aws")]
use platform_aws as _;
#[cfg(feature = "coolify")]
use platform_coolify as _;
#[cfg(feature = "kubernetes")]
use platform_kubernetes as _;
#[cfg(feature = "local")]
use platform_local as _;

pub mod api;
pub mod bot;
pub mod bot_protocol;
pub mod cli;
pub mod clock;
pub mod error;
pub mod failpoint;
pub mod meeting;
pub mod metrics;
pub mod orphan_sweep;
mod platform_calls;
mod platform_set;
pub mod platforms;
pub mod reconciler;
pub mod schedule;
pub mod service;
pub mod settings;
pub mod sim_bot;
pub mod startup;
pub mod store;
pub mod sweep_lease;
pub mod telemetry;
pub mod webhooks;

pub use bot::{Bot, BotDetails, BotState, HistoryEntry, IllegalTransition};
pub use clock::Clock;
pub use error::{ErrorClass, ServiceError, ServiceResult};
pub use meeting::{MeetingEvent, MeetingStatus};
pub use orphan_sweep::SweepReport;
pub use reconciler::ReconcileReport;
pub use service::{
    BotPage, BotService, CreateBot, CreatedBot, DeployWait, DrainReport, LaneLoad, ListQuery,
    LiveStatus, Placement, PlatformsView, PoolSummary, Readiness, ServiceOptions, idempotency_key,
};
pub use settings::ServiceSettings;
pub use startup::open_service;
pub use store::{Store, StoreError};

/// The cargo features this build of the crate was compiled with.
pub const ENABLED_FEATURES: &[&str] = &[
    #[cfg(feature = "coolify")]
    "coolify",
    #[cfg(feature = "aws")]
    "aws",
    #[cfg(feature = "local")]
    "local",
    #[cfg(feature = "kubernetes")]
    "kubernetes",
];
