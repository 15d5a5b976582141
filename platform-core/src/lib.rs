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
//! See [`adding_a_platform`] (`docs/ADDING_A_PLATFORM.md`): a complete
//! plugin, compiled and run against the conformance suite as a doc test.

pub mod bot_env;
pub mod capacity;
pub mod config;
pub mod error;
pub mod installation;
pub mod meeting;
pub mod pacing;
pub mod platform;
pub mod reason;
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
pub use capacity::{DeployPace, DeployRate, PlatformCapacity};
pub use config::{
    AutomaticLeave, AutomaticLeaveInput, BotDeploymentConfig, BotDeploymentInput, BotId,
    BotProtocolAccess, DisplayName, FieldError, InvalidDeploymentConfig,
};
pub use error::{Error, ErrorKind, Result};
pub use installation::{InstallationId, InvalidInstallationId};
pub use meeting::{InvalidMeetingUrl, MeetingPlatform, MeetingUrl, UnknownMeetingPlatform};
pub use platform::{
    CheckOutcome, DeployResult, MarkedBot, PlatformId, PlatformService, SetupCheck,
};
pub use registry::{
    AutoSelect, BoxFuture, BuildFn, Detection, DuplicatePlatform, PlatformContext,
    PlatformDescriptor, Registry,
};
pub use retry::{RetryPolicy, retry};
pub use secret::SecretString;
pub use selection::{
    DEPLOYMENT_PLATFORM, PLATFORM_PRIORITY, SelectedBy, Selection, SelectionError, select_auto,
    select_auto_all, select_platform, select_platforms,
};
pub use settings::{
    ConfigProblem, EnvLookup, EnvValues, EnvVarSpec, MapEnv, ProcessEnv, Requirement, ValueKind,
    load_env,
};
pub use slots::{InMemorySlotStore, NewSlot, Slot, SlotState, SlotStore};
pub use status::{BotStatus, StatusKind};

/// A worked example of writing a platform plugin (`docs/ADDING_A_PLATFORM.md`),
/// compiled and run as a doc test so it stays true.
#[cfg(any(doc, doctest))]
#[doc = include_str!("../../docs/ADDING_A_PLATFORM.md")]
pub mod adding_a_platform {}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
