//! A bot's meeting status: the meeting as the bot reports it over the bot
//! protocol, beside (never inside) its lifecycle.
//!
//! ```text
//! unknown ──► joining ──► in_waiting_room ──► in_call ──► call_ended (sub-code)
//!    │           │  ▲            │               │  ▲
//!    │           └──┘ (again)    └──► in_call    └──┘ (again: recording changed)
//!    └──► any of them;  every live status ──► call_ended | fatal (sub-code, message)
//! ```
//!
//! `call_ended` and `fatal` are terminal: nothing follows them. `in_call`
//! never goes back to `joining` or `in_waiting_room`, and a bot admitted from
//! the waiting room does not go back to `joining`. A refused move answers 409
//! `illegal_meeting_transition` and changes nothing.

use std::fmt;
use std::str::FromStr;

use platform_core::BotId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a bot is in its meeting, as the bot reports it.
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
#[serde(rename_all = "snake_case")]
pub enum MeetingStatus {
    /// The bot has not reported anything (a plain image that does not speak
    /// the bot protocol stays here).
    Unknown,
    /// The bot is joining the meeting.
    Joining,
    /// The bot waits in the meeting's waiting room or lobby.
    InWaitingRoom,
    /// The bot is in the call.
    InCall,
    /// The bot left the call, for the reason its sub-code gives. Terminal.
    CallEnded,
    /// The bot could not go on (sub-code and message say why). Terminal.
    Fatal,
}

impl MeetingStatus {
    /// Every status, in meeting order.
    pub const ALL: [MeetingStatus; 6] = [
        Self::Unknown,
        Self::Joining,
        Self::InWaitingRoom,
        Self::InCall,
        Self::CallEnded,
        Self::Fatal,
    ];

    /// The statuses in which a bot is in (or on its way into) the meeting:
    /// the heartbeat watchdog watches these.
    pub const IN_MEETING: [MeetingStatus; 3] = [Self::Joining, Self::InWaitingRoom, Self::InCall];

    /// The name used in the database, the APIs and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Joining => "joining",
            Self::InWaitingRoom => "in_waiting_room",
            Self::InCall => "in_call",
            Self::CallEnded => "call_ended",
            Self::Fatal => "fatal",
        }
    }

    /// Whether the meeting is over for this bot.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::CallEnded | Self::Fatal)
    }

    /// The statuses a bot in this status may report next (a live status may
    /// be reported again, for example `in_call` when recording starts).
    pub const fn allowed_next(self) -> &'static [MeetingStatus] {
        match self {
            Self::Unknown => &[
                Self::Joining,
                Self::InWaitingRoom,
                Self::InCall,
                Self::CallEnded,
                Self::Fatal,
            ],
            Self::Joining => &[
                Self::Joining,
                Self::InWaitingRoom,
                Self::InCall,
                Self::CallEnded,
                Self::Fatal,
            ],
            Self::InWaitingRoom => &[
                Self::InWaitingRoom,
                Self::InCall,
                Self::CallEnded,
                Self::Fatal,
            ],
            Self::InCall => &[Self::InCall, Self::CallEnded, Self::Fatal],
            Self::CallEnded | Self::Fatal => &[],
        }
    }

    /// Checks `self → next`, or explains why it is refused.
    pub fn check_move(
        self,
        bot: BotId,
        next: MeetingStatus,
    ) -> Result<(), IllegalMeetingTransition> {
        if self.allowed_next().contains(&next) {
            Ok(())
        } else {
            Err(IllegalMeetingTransition {
                bot,
                from: self,
                to: next,
            })
        }
    }
}

impl fmt::Display for MeetingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The names [`MeetingStatus`] accepts, for messages.
pub const MEETING_STATUS_NAMES: &str =
    "unknown, joining, in_waiting_room, in_call, call_ended, fatal";

/// A meeting status name that is not one of ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown meeting status {given:?}; allowed: {MEETING_STATUS_NAMES}")]
pub struct UnknownMeetingStatus {
    /// What was given (cut to 64 characters).
    pub given: String,
}

impl FromStr for MeetingStatus {
    type Err = UnknownMeetingStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownMeetingStatus {
                given: s.chars().take(64).collect(),
            })
    }
}

/// A meeting-status move the order refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bot {bot}'s meeting status is {from} and cannot become {to}; {}", describe_allowed(*.from))]
pub struct IllegalMeetingTransition {
    /// The bot.
    pub bot: BotId,
    /// Its current meeting status.
    pub from: MeetingStatus,
    /// The status reported.
    pub to: MeetingStatus,
}

fn describe_allowed(from: MeetingStatus) -> String {
    let allowed = from.allowed_next();
    if allowed.is_empty() {
        format!("nothing follows {from}")
    } else {
        let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        format!("allowed from {from}: {}", names.join(", "))
    }
}

/// Why a bot's call ended (the sub-code of `call_ended`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallEndedCode {
    /// Every other participant left (after `EVERYONE_LEFT_TIMEOUT`).
    EveryoneLeft,
    /// Nobody else joined within `NO_ONE_JOINED_TIMEOUT`.
    NoOneJoined,
    /// The bot was not admitted within `WAITING_ROOM_TIMEOUT`.
    WaitingRoomTimeout,
    /// The host refused to admit the bot.
    DeniedEntry,
    /// A participant removed the bot.
    Removed,
    /// The host ended the meeting.
    MeetingEnded,
    /// The bot left because the service asked it to (`leave`).
    LeftOnRequest,
    /// The bot reached the longest time it stays in a meeting.
    MaxDurationReached,
}

impl CallEndedCode {
    /// The name used on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EveryoneLeft => "everyone_left",
            Self::NoOneJoined => "no_one_joined",
            Self::WaitingRoomTimeout => "waiting_room_timeout",
            Self::DeniedEntry => "denied_entry",
            Self::Removed => "removed",
            Self::MeetingEnded => "meeting_ended",
            Self::LeftOnRequest => "left_on_request",
            Self::MaxDurationReached => "max_duration_reached",
        }
    }
}

/// Why a bot could not go on (the sub-code of `fatal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FatalCode {
    /// The meeting link leads nowhere.
    MeetingNotFound,
    /// The meeting needs a password the bot does not have or that is wrong.
    InvalidPassword,
    /// The meeting needs a signed-in account.
    SignInRequired,
    /// Joining failed for another reason (see the message).
    JoinFailed,
    /// Recording was asked for and could not be done.
    RecordingFailed,
    /// The bot itself failed (a crash it caught, a browser that died).
    BotError,
    /// The service's verdict: the bot spoke and then went silent for
    /// `HEARTBEAT_TIMEOUT`. Never accepted from a bot.
    HeartbeatTimeout,
}

impl FatalCode {
    /// The name used on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MeetingNotFound => "meeting_not_found",
            Self::InvalidPassword => "invalid_password",
            Self::SignInRequired => "sign_in_required",
            Self::JoinFailed => "join_failed",
            Self::RecordingFailed => "recording_failed",
            Self::BotError => "bot_error",
            Self::HeartbeatTimeout => "heartbeat_timeout",
        }
    }
}

/// A meeting-status report, validated: what a bot said (or what the service
/// concluded about a bot, such as a heartbeat timeout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeetingEvent {
    /// The reported status.
    pub status: MeetingStatus,
    /// The sub-code (`call_ended` and `fatal` only).
    pub sub_code: Option<String>,
    /// The bot's own words (one line, at most 500 characters).
    pub message: Option<String>,
    /// Whether the bot records (`in_call` only).
    pub recording: Option<bool>,
    /// The bot's id for this report, so a retried report counts once.
    pub event_id: Option<String>,
    /// Who said it.
    pub source: EventSource,
}

impl MeetingEvent {
    /// The report in words: the reason a bot that ended on it is recorded
    /// with, and what its webhook event says.
    pub fn ending_reason(&self) -> String {
        let said = match (self.source, self.sub_code.as_deref()) {
            // The service's verdicts lead with their code: "heartbeat_timeout: …".
            (EventSource::Service, Some(code)) => code.to_owned(),
            (EventSource::Service, None) => format!("the service concluded {}", self.status),
            (EventSource::Bot, Some(code)) => format!("the bot reported {} ({code})", self.status),
            (EventSource::Bot, None) => format!("the bot reported {}", self.status),
        };
        match &self.message {
            Some(message) => format!("{said}: {message}"),
            None => said,
        }
    }
}

/// Who wrote a meeting-status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The bot, over the bot protocol.
    Bot,
    /// The service (a heartbeat timeout).
    Service,
}

impl EventSource {
    /// The name used in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Service => "service",
        }
    }
}

/// One recorded meeting-status change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MeetingHistoryEntry {
    /// The meeting status before.
    pub from: MeetingStatus,
    /// The meeting status after.
    pub to: MeetingStatus,
    /// The sub-code, for `call_ended` and `fatal`.
    pub sub_code: Option<String>,
    /// The bot's message.
    pub message: Option<String>,
    /// Whether the bot records (reports of `in_call`).
    pub recording: Option<bool>,
    /// The report's event id, when the bot gave one.
    pub event_id: Option<String>,
    /// Who said it.
    pub source: EventSource,
    /// The deploy attempt at the time.
    pub attempt: u32,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_follows_the_end_of_a_meeting() {
        for end in [MeetingStatus::CallEnded, MeetingStatus::Fatal] {
            for next in MeetingStatus::ALL {
                assert!(end.check_move(BotId(1), next).is_err(), "{end} -> {next}");
            }
        }
    }

    #[test]
    fn in_call_never_goes_back() {
        for back in [
            MeetingStatus::Unknown,
            MeetingStatus::Joining,
            MeetingStatus::InWaitingRoom,
        ] {
            let err = MeetingStatus::InCall
                .check_move(BotId(3), back)
                .unwrap_err();
            assert!(
                err.to_string()
                    .ends_with("allowed from in_call: in_call, call_ended, fatal"),
                "{err}"
            );
        }
        assert!(
            MeetingStatus::InWaitingRoom
                .check_move(BotId(3), MeetingStatus::Joining)
                .is_err()
        );
    }

    #[test]
    fn every_live_status_can_end() {
        for status in MeetingStatus::ALL.into_iter().filter(|s| !s.is_terminal()) {
            for end in [MeetingStatus::CallEnded, MeetingStatus::Fatal] {
                assert!(status.check_move(BotId(1), end).is_ok(), "{status}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for status in MeetingStatus::ALL {
            assert_eq!(status.as_str().parse::<MeetingStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("in-call".parse::<MeetingStatus>().is_err());
    }
}
