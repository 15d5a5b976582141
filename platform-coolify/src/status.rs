//! Coolify's status strings, read the way its server writes them.
//!
//! An application's status is `state:health`, sometimes with a third part
//! `:excluded` (see `API-NOTES.md` A.3); a value without a colon comes back
//! as `value:unhealthy`. Only the state decides what the bot is doing; the
//! health and any suffix are kept in the raw string for the operator.

use platform_core::StatusKind;

/// The state part of an application status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppState {
    /// `running`: the container is up (health may still be failing).
    Running,
    /// `starting` or `restarting`.
    Starting,
    /// `exited`: stopped, never started, or the server is unreachable.
    Exited,
    /// `degraded`: crash-looping or partly exited.
    Degraded,
    /// `paused`.
    Paused,
    /// A state this client does not know.
    Other,
}

impl AppState {
    /// Splits on the first `:` and reads the state; the rest is ignored.
    pub(crate) fn parse(raw: &str) -> Self {
        let state = raw.split(':').next().unwrap_or_default().trim();
        // The legacy form `running (healthy)` is rewritten by the server, but
        // a value read straight from an old database may still have it.
        let state = state.split(' ').next().unwrap_or_default();
        match state.to_ascii_lowercase().as_str() {
            "running" => Self::Running,
            "starting" | "restarting" => Self::Starting,
            "exited" => Self::Exited,
            "degraded" => Self::Degraded,
            "paused" => Self::Paused,
            _ => Self::Other,
        }
    }

    /// Whether the container is up or on its way up.
    pub(crate) fn is_up(self) -> bool {
        matches!(self, Self::Running | Self::Starting)
    }

    /// What the state means for a bot when no deployment is under way.
    pub(crate) fn settled_kind(self) -> (StatusKind, Option<&'static str>) {
        match self {
            Self::Running => (StatusKind::Running, None),
            Self::Starting => (StatusKind::Starting, None),
            Self::Exited => (StatusKind::Stopped, Some("the bot's container has exited")),
            Self::Paused => (StatusKind::Stopped, Some("the bot's container is paused")),
            Self::Degraded => (
                StatusKind::Failed,
                Some("the bot's container is crash-looping or partly exited (degraded)"),
            ),
            Self::Other => (
                StatusKind::Unknown,
                Some("Coolify reports a status this version does not know"),
            ),
        }
    }
}

/// The status of a deployment (`ApplicationDeploymentQueue.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeploymentState {
    /// `queued` or `in_progress`.
    Pending,
    /// `finished`.
    Finished,
    /// `failed`.
    Failed,
    /// `cancelled-by-user`.
    Cancelled,
    /// Anything else.
    Other,
}

impl DeploymentState {
    pub(crate) fn parse(raw: &str) -> Self {
        match raw.trim() {
            "queued" | "in_progress" => Self::Pending,
            "finished" => Self::Finished,
            "failed" => Self::Failed,
            "cancelled-by-user" => Self::Cancelled,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_value_reads_by_its_state() {
        let cases = [
            ("running:healthy", AppState::Running),
            ("running:unhealthy", AppState::Running),
            ("running:unknown", AppState::Running),
            ("running:healthy:excluded", AppState::Running),
            ("running:unhealthy:excluded", AppState::Running),
            ("running:unknown:excluded", AppState::Running),
            ("running (healthy)", AppState::Running),
            ("starting:unknown", AppState::Starting),
            ("starting:excluded", AppState::Starting),
            ("restarting:unknown", AppState::Starting),
            ("degraded:unhealthy", AppState::Degraded),
            ("degraded:healthy", AppState::Degraded),
            ("degraded:excluded", AppState::Degraded),
            ("paused:unknown", AppState::Paused),
            ("paused:excluded", AppState::Paused),
            ("exited:unhealthy", AppState::Exited),
            ("exited", AppState::Exited),
            ("Running:healthy:some-future-suffix", AppState::Running),
            ("removing:unknown", AppState::Other),
            ("", AppState::Other),
        ];
        for (raw, state) in cases {
            assert_eq!(AppState::parse(raw), state, "{raw}");
        }
    }

    #[test]
    fn settled_kinds() {
        assert_eq!(AppState::Running.settled_kind().0, StatusKind::Running);
        assert_eq!(AppState::Starting.settled_kind().0, StatusKind::Starting);
        assert_eq!(AppState::Exited.settled_kind().0, StatusKind::Stopped);
        assert_eq!(AppState::Paused.settled_kind().0, StatusKind::Stopped);
        assert_eq!(AppState::Degraded.settled_kind().0, StatusKind::Failed);
        assert_eq!(AppState::Other.settled_kind().0, StatusKind::Unknown);
    }

    #[test]
    fn deployment_states() {
        assert_eq!(DeploymentState::parse("queued"), DeploymentState::Pending);
        assert_eq!(
            DeploymentState::parse("in_progress"),
            DeploymentState::Pending
        );
        assert_eq!(
            DeploymentState::parse("finished"),
            DeploymentState::Finished
        );
        assert_eq!(DeploymentState::parse("failed"), DeploymentState::Failed);
        assert_eq!(
            DeploymentState::parse("cancelled-by-user"),
            DeploymentState::Cancelled
        );
        assert_eq!(DeploymentState::parse("weird"), DeploymentState::Other);
    }
}
