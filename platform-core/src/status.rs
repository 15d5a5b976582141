//! The normalised status of a bot on its platform.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a platform says about a bot, normalised across platforms.
///
/// Never compare a platform's raw status strings: Coolify alone reports
/// `running:healthy`, `running:unknown`, `exited:unhealthy` and more. Each
/// platform maps its own strings to these kinds and keeps the raw string in
/// [`BotStatus::raw`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    /// Accepted by the platform and on its way up: queued, provisioning,
    /// pulling the image, starting. Not yet able to join a meeting.
    Starting,
    /// The bot's container or process is running.
    Running,
    /// Asked to stop, not yet stopped.
    Stopping,
    /// Ended: exited on its own or stopped on request. Terminal.
    Stopped,
    /// Ended abnormally or can never run (failed to start, crash loop,
    /// capacity). Terminal; [`BotStatus::reason`] says why.
    Failed,
    /// The platform does not know this identifier, or not yet (ECS is
    /// eventually consistent right after a launch). This is not evidence
    /// that the bot is gone.
    Unknown,
}

impl StatusKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [StatusKind; 6] = [
        Self::Starting,
        Self::Running,
        Self::Stopping,
        Self::Stopped,
        Self::Failed,
        Self::Unknown,
    ];

    /// The lowercase name used in APIs and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the bot has ended for good (`stopped` or `failed`).
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed)
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bot's status: the normalised kind, the platform's own words, and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotStatus {
    /// The normalised kind.
    pub kind: StatusKind,
    /// The platform's raw status (`running:healthy`, `STOPPED`, `exited`).
    pub raw: Option<String>,
    /// Why, when the platform says: an ECS `stopCode` and `stoppedReason`, a
    /// container exit code, a Coolify deployment failure, `MISSING`.
    pub reason: Option<String>,
    /// The bot's connection URL once the platform knows it (an ECS task's IP
    /// is known only after its network interface is attached).
    pub connection_url: Option<String>,
}

impl BotStatus {
    /// A status of `kind` with nothing else known.
    pub fn new(kind: StatusKind) -> Self {
        Self {
            kind,
            raw: None,
            reason: None,
            connection_url: None,
        }
    }

    /// `Unknown`, with the reason the platform gave.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self::new(StatusKind::Unknown).with_reason(reason)
    }

    /// Sets the raw platform status.
    pub fn with_raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the connection URL.
    pub fn with_connection_url(mut self, url: impl Into<String>) -> Self {
        self.connection_url = Some(url.into());
        self
    }
}

impl fmt::Display for BotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(raw) = &self.raw {
            write!(f, " ({raw})")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}
