//! The local platform's own errors, converted into [`platform_core::Error`]
//! at the trait boundary.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use platform_core::{ConfigProblem, Error};

use crate::command_line::ProgramProblem;
use crate::config::{LOCAL_BOT_COMMAND, LOCAL_MAX_BOTS, LOCAL_STATE_DIR};
use crate::identifier::{InstanceKey, ProcessIdentity};

pub(crate) const PLATFORM: &str = "local";

#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    /// The configured program cannot be run.
    #[error("{problem}")]
    Program { problem: ProgramProblem },

    /// The state directory could not be read or written.
    #[error("could not {action} in the state directory {}: {source}", .path.display())]
    StateDir {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },

    /// `spawn` failed.
    #[error("could not start {}: {source}", .program.display())]
    Spawn { program: PathBuf, source: io::Error },

    /// The bot ended within the start check.
    #[error("{key}: {detail}")]
    ExitedAtStart { key: InstanceKey, detail: String },

    /// `LOCAL_MAX_BOTS` bots are running.
    #[error(
        "{running} local bots are running and LOCAL_MAX_BOTS is {max}; retry when a bot ends or raise LOCAL_MAX_BOTS"
    )]
    AtCapacity { running: usize, max: usize },

    /// Another live service process wrote the intent for this bot and may be
    /// starting it right now.
    #[error(
        "bot {} attempt {} is being started by another meeboter-deploy process (pid {}) on the same state directory",
        .key.bot_id, .key.attempt, .writer.pid
    )]
    StartedElsewhere {
        key: InstanceKey,
        writer: ProcessIdentity,
    },

    /// No loopback port could be found.
    #[error("could not find a free port on 127.0.0.1: {source}")]
    Port { source: io::Error },

    /// Processes of the bot survived SIGKILL.
    #[error("bot process(es) {pids:?} still running {} after SIGKILL", humanize(*.after))]
    StillRunning { pids: Vec<u32>, after: Duration },

    /// The kernel refused a signal.
    #[error("could not send {signal} to process group {group}: {errno}")]
    Signal {
        group: u32,
        signal: &'static str,
        errno: Errno,
    },

    /// A deploy failed before any process of the bot existed, and no
    /// earlier call of the same deploy had started one: the service may
    /// read it as "nothing was started" (see [`LocalError::nothing_started`]).
    #[error(transparent)]
    NothingStarted(Box<LocalError>),
}

impl LocalError {
    /// Marks a deploy's failure as one that provably started nothing.
    /// Converted, a failure that would read as "may have started"
    /// ([`Error::Unavailable`]) becomes [`Error::Unreachable`], which the
    /// service reads as "nothing was started": the bot goes back to
    /// `pending` instead of waiting for a bot that does not exist. Errors
    /// that already say so (a retryable capacity shortage), or that need the
    /// operator (configuration), keep their kind.
    pub(crate) fn nothing_started(self) -> Self {
        match self {
            already @ Self::NothingStarted(_) => already,
            other => Self::NothingStarted(Box::new(other)),
        }
    }

    pub(crate) fn state_dir(
        path: &std::path::Path,
        action: &'static str,
        source: io::Error,
    ) -> Self {
        Self::StateDir {
            path: path.to_owned(),
            action,
            source,
        }
    }

    pub(crate) fn into_platform_error(self, resource: impl Into<String>) -> Error {
        let resource = resource.into();
        let message = self.to_string();
        match self {
            Self::NothingStarted(inner) => match inner.into_platform_error(resource) {
                Error::Unavailable {
                    platform,
                    resource,
                    message,
                } => Error::Unreachable {
                    platform,
                    resource,
                    message,
                },
                other => other,
            },
            Self::Program { .. } => config_error(LOCAL_BOT_COMMAND.name, message),
            Self::StateDir { ref source, .. }
                if matches!(
                    source.kind(),
                    io::ErrorKind::PermissionDenied
                        | io::ErrorKind::ReadOnlyFilesystem
                        | io::ErrorKind::NotADirectory
                ) =>
            {
                config_error(LOCAL_STATE_DIR.name, message)
            }
            Self::StateDir { .. } | Self::StartedElsewhere { .. } => Error::Unavailable {
                platform: PLATFORM,
                resource,
                message,
            },
            // The host is short of loopback ports (or of file descriptors
            // to find one) for now.
            Self::Port { .. } => Error::Capacity {
                platform: PLATFORM,
                resource,
                reason: message,
                retryable: true,
            },
            Self::StillRunning { after, .. } => Error::Timeout {
                platform: PLATFORM,
                resource: format!("{resource} ({message})"),
                after,
            },
            Self::Spawn { ref source, .. } => match source.raw_os_error().map(Errno::from_raw) {
                // The program is wrong: not found, not executable, not a
                // binary the kernel can run.
                Some(Errno::ENOENT | Errno::EACCES | Errno::ENOEXEC | Errno::ENOTDIR) => {
                    config_error(LOCAL_BOT_COMMAND.name, message)
                }
                // The machine is short of processes or memory for now.
                Some(Errno::EAGAIN | Errno::ENOMEM) => Error::Capacity {
                    platform: PLATFORM,
                    resource,
                    reason: message,
                    retryable: true,
                },
                _ => Error::Unavailable {
                    platform: PLATFORM,
                    resource,
                    message,
                },
            },
            Self::ExitedAtStart { detail, .. } => Error::StartFailed {
                platform: PLATFORM,
                resource,
                reason: detail,
            },
            Self::AtCapacity { .. } => Error::Capacity {
                platform: PLATFORM,
                resource,
                reason: format!("{message} (see {})", LOCAL_MAX_BOTS.name),
                retryable: true,
            },
            Self::Signal {
                errno: Errno::EPERM,
                ..
            } => Error::Unauthorized {
                platform: PLATFORM,
                resource,
                message,
            },
            Self::Signal { .. } => Error::Internal {
                platform: PLATFORM,
                resource,
                message,
            },
        }
    }
}

fn config_error(variable: &'static str, problem: String) -> Error {
    Error::Config {
        platform: PLATFORM,
        problems: vec![ConfigProblem::new(variable, problem)],
    }
}

fn humanize(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use platform_core::{BotId, ErrorKind, InstallationId};

    use super::*;

    #[test]
    fn errors_say_whether_to_retry() {
        let program = LocalError::Program {
            problem: ProgramProblem::NotOnPath {
                program: "my-bot".into(),
            },
        }
        .into_platform_error("bot 1 attempt 1");
        assert_eq!(program.kind(), ErrorKind::Config);
        assert!(!program.is_retryable());
        let text = program.to_string();
        assert!(
            text.contains("LOCAL_BOT_COMMAND") && text.contains("my-bot"),
            "{text}"
        );

        let capacity =
            LocalError::AtCapacity { running: 3, max: 3 }.into_platform_error("bot 1 attempt 1");
        assert!(capacity.is_retryable());
        assert!(
            capacity.to_string().contains("LOCAL_MAX_BOTS is 3"),
            "{capacity}"
        );

        let elsewhere = LocalError::StartedElsewhere {
            key: InstanceKey::new(&InstallationId::random(), BotId(1), 1),
            writer: ProcessIdentity {
                pid: 99,
                start_ticks: 1,
            },
        }
        .into_platform_error("bot 1 attempt 1");
        assert!(elsewhere.is_retryable());

        let denied = LocalError::state_dir(
            std::path::Path::new("/x"),
            "write",
            io::Error::from(io::ErrorKind::PermissionDenied),
        )
        .into_platform_error("bot 1 attempt 1");
        assert_eq!(denied.kind(), ErrorKind::Config);
        assert!(denied.to_string().contains("LOCAL_STATE_DIR"), "{denied}");

        let not_found = LocalError::Spawn {
            program: "/bin/nope".into(),
            source: io::Error::from_raw_os_error(Errno::ENOENT as i32),
        }
        .into_platform_error("bot 1 attempt 1");
        assert_eq!(not_found.kind(), ErrorKind::Config);
        let busy = LocalError::Spawn {
            program: "/bin/bot".into(),
            source: io::Error::from_raw_os_error(Errno::EAGAIN as i32),
        }
        .into_platform_error("bot 1 attempt 1");
        assert!(busy.is_retryable());
    }

    #[test]
    fn a_deploy_that_started_nothing_says_so_and_keeps_what_needs_the_operator() {
        let disk_full = LocalError::state_dir(
            std::path::Path::new("/x"),
            "write a bot record",
            io::Error::from_raw_os_error(Errno::ENOSPC as i32),
        );
        // Unmarked, a state directory failure may follow a spawn.
        let maybe = LocalError::state_dir(
            std::path::Path::new("/x"),
            "write a bot record",
            io::Error::from_raw_os_error(Errno::ENOSPC as i32),
        )
        .into_platform_error("bot 1 attempt 1");
        assert!(!maybe.nothing_started(), "{maybe}");
        let before_spawn = disk_full
            .nothing_started()
            .nothing_started()
            .into_platform_error("bot 1 attempt 1");
        assert_eq!(
            before_spawn.kind(),
            ErrorKind::Unreachable,
            "{before_spawn}"
        );
        assert!(before_spawn.nothing_started());
        assert!(before_spawn.is_retryable());
        assert!(
            before_spawn
                .to_string()
                .contains("could not write a bot record in the state directory /x"),
            "{before_spawn}"
        );

        let no_port = LocalError::Port {
            source: io::Error::from_raw_os_error(Errno::EMFILE as i32),
        }
        .nothing_started()
        .into_platform_error("bot 1 attempt 1");
        assert_eq!(no_port.kind(), ErrorKind::Capacity, "{no_port}");
        assert!(no_port.nothing_started());

        let full = LocalError::AtCapacity { running: 1, max: 1 }
            .nothing_started()
            .into_platform_error("bot 1 attempt 1");
        assert!(full.nothing_started(), "{full}");
        assert!(full.to_string().contains("LOCAL_MAX_BOTS"), "{full}");

        let program = LocalError::Program {
            problem: ProgramProblem::NotOnPath {
                program: "my-bot".into(),
            },
        }
        .nothing_started()
        .into_platform_error("bot 1 attempt 1");
        assert_eq!(program.kind(), ErrorKind::Config, "{program}");
        assert!(!program.is_retryable());
    }
}
