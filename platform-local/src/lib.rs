//! The local-process platform for Meeboter deploy, registered as `local`:
//! each meeting bot is a child process of the service on this machine.
//!
//! It is the embedded default (what `DEPLOYMENT_PLATFORM=auto` falls back
//! to when no cloud platform is configured), what the end-to-end tests
//! drive, and a real platform for running bots on a single host.
//!
//! # How a bot runs
//!
//! Each bot runs [`LOCAL_BOT_COMMAND`] (default `meeboter-deploy sim-bot`,
//! the built-in stand-in bot) with:
//!
//! - exactly the bot environment of [`platform_core::bot_environment`]
//!   (`BOT_ID`, `MEETING_URL`, …), plus [`BOT_PORT_VAR`] (a free port on
//!   127.0.0.1; the bot's connection URL is `http://127.0.0.1:<port>`),
//!   [`INSTANCE_MARKER_VAR`] (a marker naming the installation, the bot and
//!   the attempt, that finds the bot's processes) and
//!   the few service variables of [`ALWAYS_INHERITED_ENV`] and
//!   [`LOCAL_BOT_INHERIT_ENV`] — never the service's credentials;
//! - its own process group, so a stop reaches everything it started and the
//!   service's terminal does not;
//! - stdout and stderr appended to
//!   `<state dir>/logs/<installation>/bot-<id>-attempt-<n>.log`.
//!
//! Stop is SIGTERM to the group, then SIGKILL after
//! [`LOCAL_STOP_GRACE_SECONDS`]. Status comes from `/proc` and, for bots
//! this process saw end, their exit status: exit code 0 or an end after a
//! stop request is `stopped`; another code or a signal nobody here sent is
//! `failed`, with the reason.
//!
//! # Installations
//!
//! The platform runs the bots of one installation (one database; see
//! [`platform_core::InstallationId`]), given by its
//! [`PlatformContext`]. Every name it gives a bot carries it: the
//! identifier, the record and log directories in the state directory, and
//! the marker in the bot's environment. Installations sharing a state
//! directory (two databases run from one place) never find, adopt, stop or
//! clean up each other's bots, and
//! [`list_marked_bots`](PlatformService::list_marked_bots) lists this
//! installation's alone: every bot with a record here, and every live
//! process carrying the installation's marker.
//!
//! # Identifiers and restarts
//!
//! A bot's identifier is `<pid>:<start ticks>:<installation>:<bot
//! id>-<attempt>` (see [`LocalBotId`]): the start time guards against pid
//! reuse. Bots keep running when the service stops; a restarted service
//! acts on them through their identifiers, the records kept in
//! [`LOCAL_STATE_DIR`] and their marker, which finds everything a bot
//! started even when the service restarts on another state directory. Only
//! the exit status of a bot that ended while no service was its parent is
//! lost, and its status says so. Identifiers issued before installation ids
//! existed (`<pid>:<start ticks>:<bot id>-<attempt>`) keep working with the
//! records and markers of that time.
//!
//! A deploy writes its intent before spawning, so a deploy repeated after a
//! crash (same bot, same attempt) returns the bot already started, even
//! when the crash came between spawn and record.
//!
//! # Platform support
//!
//! Linux only: it reads `/proc`.

mod children;
mod command_line;
mod config;
mod deploy_locks;
mod error;
mod exit_status;
mod identifier;
mod ports;
mod proc_table;
mod process_control;
mod redaction;
mod service;
mod state_dir;

use std::sync::Arc;

use platform_core::{
    AutoSelect, BoxFuture, Error, PlatformContext, PlatformDescriptor, PlatformService,
};

pub use command_line::{BotCommand, CommandLineError, ProgramProblem, SERVICE_BINARY_NAME};
pub use config::{
    ALWAYS_INHERITED_ENV, ENV_VARS, LOCAL_BOT_COMMAND, LOCAL_BOT_INHERIT_ENV, LOCAL_MAX_BOTS,
    LOCAL_START_CHECK_MS, LOCAL_STATE_DIR, LOCAL_STOP_GRACE_SECONDS, LocalConfig,
};
pub use identifier::{InstanceKey, InvalidLocalBotId, LocalBotId, ProcessIdentity};
pub use process_control::INSTANCE_MARKER_VAR;
pub use service::{BOT_PORT_VAR, LiveProcess, LocalPlatform};
pub use state_dir::LOG_RETENTION;

/// The local platform's registration: name `local`, brought in by the
/// `deployment` crate's `local` feature, chosen by `auto` when no cloud
/// platform is configured.
pub const LOCAL: PlatformDescriptor = PlatformDescriptor {
    name: "local",
    description: "Bots as child processes on this machine: the embedded default, for trying Meeboter deploy and for single-host use",
    feature: "local",
    env: ENV_VARS,
    auto: AutoSelect::Fallback,
    build: build_local,
};

fn build_local(
    context: PlatformContext,
) -> BoxFuture<'static, Result<Arc<dyn PlatformService>, Error>> {
    Box::pin(async move {
        let config = LocalConfig::from_env(context.env.as_ref())?;
        let platform = LocalPlatform::new(config, context.installation)?;
        Ok(Arc::new(platform) as Arc<dyn PlatformService>)
    })
}

platform_core::register_platform!(LOCAL);
