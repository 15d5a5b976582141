//! How a bot process ended, and what that means as a [`BotStatus`].

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::sys::signal::Signal;
use platform_core::{BotStatus, StatusKind};
use serde::{Deserialize, Serialize};

/// A bot's end as the service saw it when it collected the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordedExit {
    /// The exit code, when the process exited.
    pub(crate) code: Option<i32>,
    /// The signal that killed it, when one did.
    pub(crate) signal: Option<i32>,
    /// Whether a stop had been asked for before it ended: then any end is
    /// the stop we asked for, not a failure (many programs exit with 1 or
    /// 143 on SIGTERM).
    pub(crate) stop_requested: bool,
}

impl RecordedExit {
    pub(crate) fn from_status(status: ExitStatus, stop_requested: bool) -> Self {
        Self {
            code: status.code(),
            signal: status.signal(),
            stop_requested,
        }
    }

    pub(crate) fn from_wait(
        status: nix::sys::wait::WaitStatus,
        stop_requested: bool,
    ) -> Option<Self> {
        use nix::sys::wait::WaitStatus;
        match status {
            WaitStatus::Exited(_, code) => Some(Self {
                code: Some(code),
                signal: None,
                stop_requested,
            }),
            WaitStatus::Signaled(_, signal, _) => Some(Self {
                code: None,
                signal: Some(signal as i32),
                stop_requested,
            }),
            _ => None,
        }
    }

    /// `exited with code 3`, `killed by SIGKILL`.
    pub(crate) fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("killed by {}", signal_name(signal)),
            (None, None) => "ended".to_owned(),
        }
    }

    /// The raw status kept beside the normalised kind.
    fn raw(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exited:{code}"),
            (None, Some(signal)) => format!("signaled:{}", signal_name(signal)),
            (None, None) => "ended".to_owned(),
        }
    }

    /// Stopped when it exited with 0 or after we asked it to stop; failed
    /// for a non-zero code or a signal nobody here sent.
    pub(crate) fn to_status(self) -> BotStatus {
        let (kind, reason) = if self.stop_requested {
            (
                StatusKind::Stopped,
                format!("stopped on request; {}", self.describe()),
            )
        } else if self.code == Some(0) {
            (StatusKind::Stopped, self.describe())
        } else {
            (StatusKind::Failed, self.describe())
        };
        BotStatus::new(kind)
            .with_raw(self.raw())
            .with_reason(reason)
    }
}

fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

/// A bot whose process has ended without this service collecting its exit
/// status: it ended while the process that started it was gone (the
/// service was restarted, or a one-off `meeboter-deploy deploy` had exited),
/// so init collected it.
pub(crate) fn ended_without_status(stop_requested: bool, detail: &str) -> BotStatus {
    let mut reason = format!(
        "the process has ended; its exit status is unknown because the meeboter-deploy process that started it was no longer running when it ended (a restart, or a one-off command){detail}"
    );
    if stop_requested {
        reason = format!("stopped on request; {reason}");
    }
    BotStatus::new(StatusKind::Stopped)
        .with_raw("ended")
        .with_reason(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>, stop_requested: bool) -> BotStatus {
        RecordedExit {
            code,
            signal,
            stop_requested,
        }
        .to_status()
    }

    #[test]
    fn exits_map_to_stopped_or_failed() {
        let clean = exit(Some(0), None, false);
        assert_eq!(clean.kind, StatusKind::Stopped);
        assert_eq!(clean.reason.as_deref(), Some("exited with code 0"));
        assert_eq!(clean.raw.as_deref(), Some("exited:0"));

        let crashed = exit(Some(3), None, false);
        assert_eq!(crashed.kind, StatusKind::Failed);
        assert_eq!(crashed.reason.as_deref(), Some("exited with code 3"));

        let killed = exit(None, Some(9), false);
        assert_eq!(killed.kind, StatusKind::Failed);
        assert_eq!(killed.reason.as_deref(), Some("killed by SIGKILL"));
        assert_eq!(killed.raw.as_deref(), Some("signaled:SIGKILL"));

        let stopped = exit(None, Some(15), true);
        assert_eq!(stopped.kind, StatusKind::Stopped);
        assert_eq!(
            stopped.reason.as_deref(),
            Some("stopped on request; killed by SIGTERM")
        );
        let stopped_with_code = exit(Some(143), None, true);
        assert_eq!(stopped_with_code.kind, StatusKind::Stopped);
    }

    #[test]
    fn an_unknown_end_says_why_it_is_unknown() {
        let status = ended_without_status(false, "");
        assert_eq!(status.kind, StatusKind::Stopped);
        assert!(status.reason.unwrap().contains("exit status is unknown"));
        let status = ended_without_status(true, "");
        assert!(status.reason.unwrap().starts_with("stopped on request"));
    }
}
