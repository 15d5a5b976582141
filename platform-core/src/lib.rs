//! The contract between Meeboter deploy and the platforms that run meeting
//! bots.
//!
//! A meeting bot is one container (or process) per Zoom, Teams or Google Meet
//! call. This crate says what a platform that runs them must do, in a form
//! small enough to implement in an afternoon:
//!
//! - [`PlatformService`]: deploy, stop, status of one or many, cleanup — with
//!   the contract (idempotency, what "unknown" means) written on the trait;
//! - [`BotDeploymentConfig`], validated on construction, and
//!   [`bot_environment`], the one function that turns it into the
//!   container environment;
//! - [`BotStatus`], normalised across platforms, keeping the raw status and
//!   the reason;
//! - [`Error`], one `#[non_exhaustive]` enum that names platform and resource
//!   and knows whether a retry can help; [`RetryPolicy`] and [`retry()`];
//! - configuration as data ([`EnvVarSpec`], [`load_env`]) read through an
//!   injected [`EnvLookup`];
//! - the plugin registry ([`PlatformDescriptor`], [`register_platform!`],
//!   [`Registry`]) and platform selection from `DEPLOYMENT_PLATFORM`
//!   ([`select_platform`]);
//! - the [`SlotStore`] port for pool-based platforms, with an in-memory
//!   implementation;
//! - with the `testkit` feature, the conformance suite every platform runs
//!   and an in-memory fake platform.
//!
//! It has no HTTP client, no cloud SDK and no database: a project that
//! writes its own platform depends on this crate alone.
//!
//! # Writing a platform
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use platform_core::{
//!     AutoSelect, BotDeploymentConfig, BotStatus, DeployResult, EnvVarSpec, PlatformContext,
//!     PlatformDescriptor, PlatformId, PlatformService, Result, StatusKind, load_env,
//! };
//!
//! const ACME_URL: EnvVarSpec = EnvVarSpec::required("ACME_URL", "Where the Acme scheduler listens.");
//!
//! struct Acme;
//!
//! #[async_trait]
//! impl PlatformService for Acme {
//!     fn platform_name(&self) -> &'static str {
//!         "acme"
//!     }
//!     async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult> {
//!         let env = platform_core::bot_environment(config);
//!         // … hand `env` to the scheduler …
//!         # let _ = env;
//!         Ok(DeployResult {
//!             identifier: PlatformId::new(format!("acme-{}-{attempt}", config.bot_id())),
//!             connection_url: None,
//!         })
//!     }
//!     async fn stop_bot(&self, _id: &PlatformId) -> Result<()> {
//!         Ok(())
//!     }
//!     async fn get_bot_status(&self, _id: &PlatformId) -> Result<BotStatus> {
//!         Ok(BotStatus::new(StatusKind::Running))
//!     }
//!     async fn get_bot_statuses(&self, ids: &[PlatformId]) -> Result<HashMap<PlatformId, BotStatus>> {
//!         Ok(ids.iter().map(|id| (id.clone(), BotStatus::new(StatusKind::Running))).collect())
//!     }
//!     async fn cleanup(&self, _id: &PlatformId) -> Result<()> {
//!         Ok(())
//!     }
//!     async fn check_reachable(&self) -> Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! pub const ACME: PlatformDescriptor = PlatformDescriptor {
//!     name: "acme",
//!     description: "Bots on the Acme scheduler",
//!     feature: "acme",
//!     env: &[ACME_URL],
//!     auto: AutoSelect::Never,
//!     build: |ctx: PlatformContext| {
//!         Box::pin(async move {
//!             let _values = load_env("acme", ACME.env, ctx.env.as_ref())?;
//!             Ok(Arc::new(Acme) as Arc<dyn PlatformService>)
//!         })
//!     },
//! };
//!
//! platform_core::register_platform!(ACME);
//! ```

pub mod bot_env;
pub mod config;
pub mod error;
pub mod meeting;
pub mod platform;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod selection;
pub mod settings;
pub mod slots;
pub mod status;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bot_env::{BotEnvVar, BotEnvironment, bot_environment};
pub use config::{
    AutomaticLeave, AutomaticLeaveInput, BotDeploymentConfig, BotDeploymentInput, BotId,
    DisplayName, FieldError, InvalidDeploymentConfig,
};
pub use error::{Error, ErrorKind, Result};
pub use meeting::{InvalidMeetingUrl, MeetingPlatform, MeetingUrl, UnknownMeetingPlatform};
pub use platform::{DeployResult, PlatformId, PlatformService};
pub use registry::{
    AutoSelect, BoxFuture, BuildFn, Detection, DuplicatePlatform, PlatformContext,
    PlatformDescriptor, Registry,
};
pub use retry::{RetryPolicy, retry};
pub use secret::SecretString;
pub use selection::{
    DEPLOYMENT_PLATFORM, SelectedBy, Selection, SelectionError, select_auto, select_platform,
};
pub use settings::{
    ConfigProblem, EnvLookup, EnvValues, EnvVarSpec, MapEnv, ProcessEnv, Requirement, ValueKind,
    load_env,
};
pub use slots::{InMemorySlotStore, NewSlot, Slot, SlotState, SlotStore};
pub use status::{BotStatus, StatusKind};

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
