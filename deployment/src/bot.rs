//! A bot as the service records it: its lifecycle state machine and the
//! views the CLI and the HTTP API show.

use std::fmt;
use std::str::FromStr;

use platform_core::{BotId, MeetingPlatform};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::meeting::{MeetingHistoryEntry, MeetingStatus};

/// Where a bot is in its life. One state machine for every platform:
///
/// ```text
/// scheduled ──(deploy time)──┬──────────────────┐
///    ▲  │                    ▼                  ▼
/// pending ──► queued ──► deploying ──► running ──► stopping ──► stopped
///    │  │      ▲  │  │     │ │ │          │  │         │
///    │  │      │  │  │     │ │ └──────────┼──┼─────────┼──► failed (with a reason)
///    │  │      └──┼──┼─────┘ │ (no platform has room)  └──► stopped (ended on its own)
///    │  └─────────┼──┼───────┘ (placed at once)
///    │            │  └──► failed (queue_timeout)
///    └────────────┴──► stopped (cancelled before deploying)
///
/// scheduled ──► stopped (cancelled, nothing started)
/// scheduled ──► failed (missed_join_time: found too late past join_at)
/// ```
///
/// A bot created with a `join_at` whose deploy time (`join_at` minus the
/// platforms' lead time) is still ahead waits as `scheduled`; at its deploy
/// time any service process takes it and places it like a new bot. A bot
/// is placed on the first platform of the priority list with room under
/// its cap (`deploying`); when none has room it waits in the durable
/// `queued` state, drained in priority order, then age.
///
/// `stopped` and `failed` are terminal: a bot that ended never comes back; a
/// new meeting gets a new bot.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BotState {
    /// Created, not deployed yet.
    Pending,
    /// Waiting for its deploy time (`join_at` minus the platforms' lead
    /// time); nothing is started. May be rescheduled or cancelled.
    Scheduled,
    /// Waiting for room: no platform of the priority list had room under
    /// its cap. Drained in order (priority, then age) as capacity frees.
    Queued,
    /// The deploy intent is recorded; the platform is starting the bot.
    Deploying,
    /// The platform reports the bot running.
    Running,
    /// A stop is recorded; the platform is stopping the bot.
    Stopping,
    /// Ended: stopped on request or exited on its own. Terminal.
    Stopped,
    /// Ended abnormally or could not start, with a reason. Terminal.
    Failed,
}

impl BotState {
    /// Every state, in lifecycle order.
    pub const ALL: [BotState; 8] = [
        Self::Pending,
        Self::Scheduled,
        Self::Queued,
        Self::Deploying,
        Self::Running,
        Self::Stopping,
        Self::Stopped,
        Self::Failed,
    ];

    /// The states the reconciler watches.
    pub const ACTIVE: [BotState; 3] = [Self::Deploying, Self::Running, Self::Stopping];

    /// The states in which a bot holds capacity on its platform (what a
    /// platform's cap counts).
    pub const HOLDING_CAPACITY: [BotState; 3] = Self::ACTIVE;

    /// The lowercase name used in the database, APIs and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Deploying => "deploying",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }

    /// Whether the bot holds capacity on its platform (deploying, running,
    /// stopping).
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Deploying | Self::Running | Self::Stopping)
    }

    /// Whether the bot has ended for good.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Failed)
    }

    /// The states a bot in this state may move to.
    pub const fn allowed_next(self) -> &'static [BotState] {
        match self {
            Self::Pending => &[
                Self::Scheduled,
                Self::Queued,
                Self::Deploying,
                Self::Stopped,
                Self::Failed,
            ],
            Self::Scheduled => &[Self::Queued, Self::Deploying, Self::Stopped, Self::Failed],
            Self::Queued => &[Self::Deploying, Self::Stopped, Self::Failed],
            Self::Deploying => &[
                Self::Running,
                Self::Queued,
                Self::Stopping,
                Self::Stopped,
                Self::Failed,
            ],
            Self::Running => &[Self::Stopping, Self::Stopped, Self::Failed],
            Self::Stopping => &[Self::Stopped, Self::Failed],
            Self::Stopped | Self::Failed => &[],
        }
    }

    /// Whether `self → next` is a legal move.
    pub fn can_move_to(self, next: BotState) -> bool {
        self.allowed_next().contains(&next)
    }

    /// Checks `self → next`, or explains why it is refused.
    pub fn check_move(self, bot: BotId, next: BotState) -> Result<(), IllegalTransition> {
        if self.can_move_to(next) {
            Ok(())
        } else {
            Err(IllegalTransition {
                bot,
                from: self,
                to: next,
            })
        }
    }
}

impl fmt::Display for BotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, for tables.
        f.pad(self.as_str())
    }
}

/// A state name that is not one of ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown bot status {given:?}; allowed: pending, scheduled, queued, deploying, running, stopping, stopped, failed"
)]
pub struct UnknownBotState {
    /// What was given (cut to 64 characters).
    pub given: String,
}

impl FromStr for BotState {
    type Err = UnknownBotState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            // Exactly as documented (the OpenAPI enum), nothing looser.
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownBotState {
                given: s.chars().take(64).collect(),
            })
    }
}

/// A move the state machine refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bot {bot} is {from} and cannot become {to}; {}", describe_allowed(*.from))]
pub struct IllegalTransition {
    /// The bot.
    pub bot: BotId,
    /// Its current state.
    pub from: BotState,
    /// The state that was asked for.
    pub to: BotState,
}

fn describe_allowed(from: BotState) -> String {
    let allowed = from.allowed_next();
    if allowed.is_empty() {
        format!("a {from} bot never comes back (no move is allowed from {from}); create a new bot")
    } else {
        let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        format!("allowed from {from}: {}", names.join(", "))
    }
}

/// A bot as the service shows it. Holds no secret: the meeting URL is
/// redacted and the password is only said to exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Bot {
    /// The bot's id.
    #[schema(value_type = u64)]
    pub id: BotId,
    /// Its lifecycle state.
    pub status: BotState,
    /// Why it is in that state (the last transition's reason).
    pub reason: Option<String>,
    /// The platform it was placed on (`coolify`, `aws`, `local`, …);
    /// `null` until it is placed (pending, queued).
    pub platform: Option<String>,
    /// Its queue priority: a queued bot with a higher priority is placed
    /// first, then the one that waited longest. Default 0.
    pub priority: i64,
    /// Its place in the queue while it is `queued` (1 is next), else
    /// `null`.
    pub queue_position: Option<u64>,
    /// Its identifier on that platform, once known.
    pub platform_id: Option<String>,
    /// Where it can be reached, once known.
    pub connection_url: Option<String>,
    /// How many deploys were started (the platform's idempotency key with the id).
    pub attempt: u32,
    /// `zoom`, `teams` or `meet`.
    pub meeting_platform: MeetingPlatform,
    /// The meeting URL with passcodes hidden.
    pub meeting_url: String,
    /// Whether the meeting has a password (never shown).
    pub has_password: bool,
    /// The name the bot shows in the meeting.
    pub display_name: String,
    /// Whether the bot records.
    pub recording_enabled: bool,
    /// Automatic-leave timeouts in seconds.
    pub automatic_leave: AutomaticLeaveSecs,
    /// Whether the platform resource still has to be released (the
    /// reconciler does it).
    pub cleanup_pending: bool,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The meeting as the bot reports it over the bot protocol, beside its
    /// lifecycle (`unknown` until the bot speaks; a bot image that does not
    /// speak the protocol stays `unknown`).
    pub meeting_status: MeetingStatus,
    /// The sub-code of `call_ended` or `fatal` (`left_on_request`,
    /// `heartbeat_timeout`, …).
    pub meeting_sub_code: Option<String>,
    /// The bot's message with its last report.
    pub meeting_message: Option<String>,
    /// Whether the bot said it records (with `in_call`).
    pub meeting_recording: Option<bool>,
    /// When the meeting status last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub meeting_status_at: Option<OffsetDateTime>,
    /// When the bot last heartbeat. Written in batches: up to a few seconds
    /// behind the bot (see DEPLOYMENT.md).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_heartbeat_at: Option<OffsetDateTime>,
    /// When leave was requested (`POST /v1/bots/{id}/leave`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub leave_requested_at: Option<OffsetDateTime>,
    /// When the bot must be in its meeting, if it was scheduled
    /// (`join_at` on create).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub join_at: Option<OffsetDateTime>,
    /// When its deploy is (or was) due: `join_at` minus the platforms' lead
    /// time for a scheduled bot, the creation time for one deployed at
    /// once; `null` for a bot created without a deploy.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deploy_at: Option<OffsetDateTime>,
    /// For a bot whose deploy has not started (scheduled, due, queued, or
    /// placed and waiting for its platform call): when its platform call
    /// is projected to go out, from the bots ahead of it and the
    /// platforms' paces and room (a projection, not a promise; see
    /// DEPLOYMENT.md). `null` otherwise, and when it waits for capacity.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub projected_deploy_at: Option<OffsetDateTime>,
    /// With `projected_deploy_at`, for a bot with a `join_at`: how many
    /// seconds late it is projected to be in its meeting (its projected
    /// start plus the platform's typical start time, minus `join_at`); 0
    /// when on time.
    pub late_by_seconds: Option<u64>,
    /// For a bot whose deploy has not started, when no platform has room
    /// left for it under its cap: why, in a sentence (it deploys as bots
    /// end; no time is projected). `null` otherwise.
    pub waiting_for_capacity: Option<String>,
}

/// The three automatic-leave timeouts, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AutomaticLeaveSecs {
    /// Waiting-room timeout.
    pub waiting_room_timeout: u64,
    /// No-one-joined timeout.
    pub no_one_joined_timeout: u64,
    /// Everyone-left timeout.
    pub everyone_left_timeout: u64,
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The state before (`None` for the creation).
    pub from: Option<BotState>,
    /// The state after.
    pub to: BotState,
    /// Why.
    pub reason: String,
    /// The deploy attempt at the time.
    pub attempt: u32,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// A bot with its whole status history, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BotDetails {
    /// The bot.
    #[serde(flatten)]
    pub bot: Bot,
    /// Every transition, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Every meeting-status change, oldest first.
    pub meeting_history: Vec<MeetingHistoryEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_allow_nothing() {
        for state in [BotState::Stopped, BotState::Failed] {
            for next in BotState::ALL {
                assert!(!state.can_move_to(next), "{state} -> {next}");
            }
        }
    }

    #[test]
    fn every_live_state_can_fail() {
        for state in BotState::ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(state.can_move_to(BotState::Failed), "{state}");
        }
    }

    #[test]
    fn refusals_name_the_state_and_the_allowed_moves() {
        let err = BotState::Stopped
            .check_move(BotId(5), BotState::Stopping)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bot 5 is stopped and cannot become stopping; a stopped bot never comes back (no move is allowed from stopped); create a new bot"
        );
        let err = BotState::Running
            .check_move(BotId(5), BotState::Deploying)
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("allowed from running: stopping, stopped, failed"),
            "{err}"
        );
    }

    #[test]
    fn names_round_trip() {
        for state in BotState::ALL {
            assert_eq!(state.as_str().parse::<BotState>().unwrap(), state);
        }
        let err = "gone".parse::<BotState>().unwrap_err();
        assert!(err.to_string().contains("allowed: pending"), "{err}");
    }
}
