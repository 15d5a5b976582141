//! The platform trait: what every place that runs meeting bots must do.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{BotDeploymentConfig, BotId};
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

/// A bot resource a platform found under this installation's mark (see
/// [`PlatformService::list_marked_bots`]): what the orphan sweep compares
/// with the bots its database holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedBot {
    /// Its identifier, as [`PlatformService::stop_bot`] and
    /// [`PlatformService::cleanup`] take it.
    pub identifier: PlatformId,
    /// The bot it was started for, as its mark says.
    pub bot: BotId,
    /// The deploy attempt it was started for, when the mark says.
    pub attempt: Option<u32>,
    /// What it is, for the operator (`task …, RUNNING since …`, `slot
    /// meeboter-slot-zoom-003`).
    pub description: String,
}

/// How one of a platform's setup checks came out (see
/// [`PlatformService::check_setup`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// In order.
    Ok,
    /// Works, but the operator should know (says why).
    Warning(String),
    /// A deploy will fail because of it (says what to fix).
    Problem(String),
    /// Could not be checked from here (says why), so it is not known to be
    /// in order.
    NotChecked(String),
}

/// One thing a platform checked about its setup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupCheck {
    /// What was checked (`task definition ECS_TASK_DEF_ZOOM`).
    pub name: String,
    /// How it came out.
    #[serde(flatten)]
    pub outcome: CheckOutcome,
}

impl SetupCheck {
    /// A check that passed.
    pub fn ok(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome: CheckOutcome::Ok,
        }
    }

    /// A check that found a problem.
    pub fn problem(name: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome: CheckOutcome::Problem(problem.into()),
        }
    }

    /// A check that passed with a warning.
    pub fn warning(name: impl Into<String>, warning: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome: CheckOutcome::Warning(warning.into()),
        }
    }

    /// Something that could not be checked.
    pub fn not_checked(name: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            outcome: CheckOutcome::NotChecked(why.into()),
        }
    }

    /// Whether a deploy will fail because of it.
    pub fn is_problem(&self) -> bool {
        matches!(self.outcome, CheckOutcome::Problem(_))
    }
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
/// - **Everything a platform names after a bot carries the installation.**
///   Bot ids count from 1 in every database, so an idempotency token, a tag,
///   a label or a resource name made from the bot id alone would collide
///   with another installation's on a shared cluster. Each includes the
///   [`InstallationId`](crate::InstallationId) the platform was built with
///   ([`PlatformContext`](crate::PlatformContext)), and
///   [`list_marked_bots`](Self::list_marked_bots) lists only resources that
///   carry it.
/// - **Could not reach is not maybe started.** A call that provably never
///   reached the platform (connection refused, a name that does not
///   resolve, a TLS handshake that failed before the request was sent) is
///   [`Error::Unreachable`](crate::Error::Unreachable): the service reads it
///   as "nothing was started". A call that may have reached the platform (a
///   timeout after sending, a reset, a 5xx) is
///   [`Error::Unavailable`](crate::Error::Unavailable) or
///   [`Error::Timeout`](crate::Error::Timeout), never `Unreachable`.
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

    /// Every bot resource that still runs or holds capacity on the
    /// platform under this installation's mark (ECS tasks not yet stopped
    /// that carry the installation's tag, claimed slots, live processes),
    /// whether or not the service still knows the bot. The service's orphan
    /// sweep stops those no active bot of its database holds. Resources of
    /// another installation are never listed. A platform that cannot list
    /// its resources returns an error, never an empty list; the default
    /// says so, and the conformance suite fails a platform that keeps it.
    async fn list_marked_bots(&self) -> Result<Vec<MarkedBot>> {
        Err(crate::Error::Internal {
            platform: self.platform_name(),
            resource: "its bots".into(),
            message: "this platform does not list the bots it runs (list_marked_bots is not implemented), so leaked bots cannot be swept there".into(),
        })
    }

    /// How the platform's warm pool grows, in a sentence for an operator
    /// who finds it empty (`meeboter-deploy pool`): which variables bound
    /// it and when slots are made. `None` (the default) for a platform
    /// that starts each bot on demand.
    fn describe_pool(&self) -> Option<String> {
        None
    }

    /// How many bots the operator lets this platform hold at once
    /// (`AWS_MAX_BOTS`, the Coolify pool maxima, …). The service counts the
    /// bots holding capacity here in its database and places a bot only
    /// below the cap, atomically with the count, so several service
    /// processes together never exceed it. The default is no cap.
    fn capacity(&self) -> crate::PlatformCapacity {
        crate::PlatformCapacity::unlimited()
    }

    /// Checks what a deploy will need beyond reaching the platform (task
    /// definitions, images, networks, pools, templates), for `doctor`,
    /// which calls it only once [`check_reachable`](Self::check_reachable)
    /// succeeded. Starts nothing. The default checks nothing more.
    async fn check_setup(&self) -> Vec<SetupCheck> {
        Vec::new()
    }
}
