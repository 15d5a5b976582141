//! The platform trait: what every place that runs meeting bots must do.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::BotDeploymentConfig;
use crate::error::Result;
use crate::status::BotStatus;

/// A bot's identifier on its platform: a Coolify slot claim, an ECS task
/// ARN, a local process handle. Opaque to everyone but the platform that
/// issued it, which must be able to act on it after a restart of the service
/// (it is stored in the database).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlatformId(String);

impl PlatformId {
    /// Wraps a platform's identifier.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlatformId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for PlatformId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for PlatformId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl AsRef<str> for PlatformId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a platform answers when it accepted a bot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResult {
    /// The bot's identifier on the platform.
    pub identifier: PlatformId,
    /// Where the bot can be reached (health checks), when already known. An
    /// ECS task's address is known only once its network interface is
    /// attached; [`PlatformService::get_bot_status`] fills it in later.
    pub connection_url: Option<String>,
}

/// A place that runs meeting bots: a Coolify warm pool, AWS ECS, local
/// processes, or your own.
///
/// # The contract
///
/// The deployment service is written against this trait alone and keeps its
/// own record of every bot, so implementations can stay small, but they must
/// keep these promises:
///
/// - **`deploy_bot` starts at most one bot per `(bot id, attempt)`.** The
///   service writes its intent to its database before calling, so after a
///   crash it calls `deploy_bot` again with the same config and attempt. A
///   platform that can recognise the earlier call (an ECS `clientToken`
///   derived from bot id and attempt, a slot already claimed by this bot, a
///   local state file) must return the bot it already started instead of a
///   second one. A new attempt number means "start afresh": the previous
///   attempt has been stopped and cleaned up.
/// - **`deploy_bot` leaks nothing when it fails.** If it returns an error,
///   whatever it reserved (a slot, a half-started task) has been given back
///   or is recorded so that [`cleanup`](Self::cleanup) of a later identifier
///   or a start-up sweep frees it. An error that leaves the bot possibly
///   started must not be reported as a rejection: report it as retryable.
/// - **`stop_bot` and `cleanup` are idempotent.** Calling either twice, or on
///   a bot that already ended, or on an identifier the platform no longer
///   knows, succeeds. `stop_bot` asks the bot to stop (it may still be
///   stopping when the call returns); `cleanup` releases what the bot held —
///   returns a slot to its pool, makes sure a task is stopped, reaps a
///   process. The service always calls `stop_bot` and then `cleanup`.
/// - **Unknown is not an error and not "gone".** Status of an identifier the
///   platform does not know (yet, or any more) is
///   [`StatusKind::Unknown`](crate::StatusKind::Unknown), never an error.
///   Errors are for failures to *ask* (throttled, unreachable, unauthorised),
///   and the service never reads an error as "the bot is gone".
/// - **Statuses of many bots come from one batch call** where the platform
///   has one (Coolify lists all applications at once, ECS describes 100
///   tasks per call). The answer has an entry for every identifier asked
///   about.
/// - **A stale identifier never touches another bot.** On a platform that
///   reuses resources (a pool slot), an identifier from a claim that has
///   ended must not stop, report or release the bot that now uses the slot.
/// - **Errors say whether to retry.** Return [`Error`](crate::Error)
///   variants that match what happened. A platform retries its own API calls
///   (throttling, 5xx) with a [`RetryPolicy`](crate::RetryPolicy) and paces
///   them under the provider's limits; an error it returns has already been
///   retried. The service does not wrap platform calls in a second retry
///   loop: it leaves a retryable failure to its reconciler or its caller
///   (a `pool_exhausted` with `Retry-After`).
/// - **Secrets stay secret.** Nothing a platform logs or returns in an error
///   contains an API key, a token or a meeting password.
///
/// # Statuses
///
/// See [`StatusKind`](crate::StatusKind): `starting` (accepted, not yet
/// running), `running`, `stopping`, `stopped` (ended), `failed` (ended
/// abnormally or cannot run, with a reason), `unknown` (not known to the
/// platform). Keep the platform's raw status and its reason in
/// [`BotStatus`].
#[async_trait]
pub trait PlatformService: Send + Sync {
    /// The platform's registered name (`coolify`, `aws`, `local`), for logs
    /// and the database.
    fn platform_name(&self) -> &'static str;

    /// Starts a bot for `config`. `attempt` counts deploys of this bot from 1;
    /// see the contract above for what a repeated `(bot id, attempt)` means.
    async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult>;

    /// Asks the bot to stop. Idempotent; an unknown identifier is success.
    async fn stop_bot(&self, identifier: &PlatformId) -> Result<()>;

    /// The bot's current status. An unknown identifier is
    /// [`StatusKind::Unknown`](crate::StatusKind::Unknown), not an error.
    async fn get_bot_status(&self, identifier: &PlatformId) -> Result<BotStatus>;

    /// The statuses of many bots, from as few platform calls as the platform
    /// allows. The map has an entry for every identifier in `identifiers`.
    async fn get_bot_statuses(
        &self,
        identifiers: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>>;

    /// Releases what the bot held. Idempotent; an unknown identifier is
    /// success.
    async fn cleanup(&self, identifier: &PlatformId) -> Result<()>;

    /// Checks that the platform can be reached with the configured
    /// credentials, with one cheap read. Used by `doctor` and readiness
    /// checks; it starts nothing.
    async fn check_reachable(&self) -> Result<()>;
}
