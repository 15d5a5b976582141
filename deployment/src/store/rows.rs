//! Rows as the database returns them, and their conversion into the
//! service's types.

use std::fmt;

use platform_core::{
    AutomaticLeave, BotDeploymentConfig, BotId, DisplayName, MeetingPlatform, MeetingUrl,
    PlatformId, SecretString,
};
use time::OffsetDateTime;

use super::StoreError;
use crate::bot::{AutomaticLeaveSecs, Bot, BotState, HistoryEntry};
use crate::meeting::{EventSource, MeetingHistoryEntry, MeetingStatus};

/// Every column of the `bots` table. Its `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BotRecord {
    pub(crate) id: i64,
    pub(crate) meeting_platform: String,
    pub(crate) meeting_url: Option<String>,
    pub(crate) meeting_url_redacted: String,
    pub(crate) meeting_password: Option<String>,
    pub(crate) has_password: bool,
    pub(crate) display_name: String,
    pub(crate) recording_enabled: bool,
    pub(crate) waiting_room_timeout_secs: i64,
    pub(crate) no_one_joined_timeout_secs: i64,
    pub(crate) everyone_left_timeout_secs: i64,
    pub(crate) status: String,
    pub(crate) platform: String,
    pub(crate) platform_id: Option<String>,
    pub(crate) connection_url: Option<String>,
    pub(crate) attempt: i64,
    pub(crate) reason: Option<String>,
    pub(crate) cleanup_pending: bool,
    pub(crate) deploy_started_at: Option<i64>,
    pub(crate) lease_owner: Option<String>,
    pub(crate) lease_until: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) priority: i64,
    pub(crate) queued_at: Option<i64>,
    pub(crate) meeting_status: String,
    pub(crate) meeting_sub_code: Option<String>,
    pub(crate) meeting_message: Option<String>,
    pub(crate) meeting_recording: Option<bool>,
    pub(crate) meeting_status_at: Option<i64>,
    pub(crate) last_heartbeat_at: Option<i64>,
    pub(crate) leave_requested_at: Option<i64>,
    pub(crate) end_status: Option<String>,
    pub(crate) end_reason: Option<String>,
    pub(crate) unconfirmed_bot_token: Option<String>,
    pub(crate) join_at: Option<i64>,
    pub(crate) deploy_at: Option<i64>,
}

impl fmt::Debug for BotRecord {
    /// Shows what identifies the bot and where it is, never its meeting URL
    /// or password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotRecord")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("platform", &self.platform)
            .field("platform_id", &self.platform_id)
            .field("attempt", &self.attempt)
            .field("meeting_url", &self.meeting_url_redacted)
            .field("cleanup_pending", &self.cleanup_pending)
            .field("lease_owner", &self.lease_owner)
            .field("lease_until", &self.lease_until)
            .field("meeting_status", &self.meeting_status)
            .field("last_heartbeat_at", &self.last_heartbeat_at)
            .field("leave_requested_at", &self.leave_requested_at)
            .field("join_at", &self.join_at)
            .field("deploy_at", &self.deploy_at)
            .finish_non_exhaustive()
    }
}

impl BotRecord {
    /// The bot's id.
    pub fn id(&self) -> BotId {
        BotId(u64::try_from(self.id).unwrap_or_default())
    }

    /// Its state.
    pub fn state(&self) -> Result<BotState, StoreError> {
        self.status.parse().map_err(|_| {
            StoreError::Corrupt(format!("bot {} has status {:?}", self.id, self.status))
        })
    }

    /// The deploy attempt.
    pub fn attempt(&self) -> u32 {
        u32::try_from(self.attempt).unwrap_or(u32::MAX)
    }

    /// The platform it was placed on; empty while it is not placed
    /// (pending, queued).
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// Its queue priority (higher first).
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// When it entered the queue (ms since epoch), if it ever did.
    pub fn queued_at_ms(&self) -> Option<i64> {
        self.queued_at
    }

    /// When the bot must be in its meeting (ms since epoch), if it was
    /// scheduled.
    pub fn join_at_ms(&self) -> Option<i64> {
        self.join_at
    }

    /// When its deploy is due (ms since epoch): the scheduled deploy time,
    /// or the creation time of a bot created to deploy at once. `None` for
    /// a bot created without a deploy.
    pub fn deploy_at_ms(&self) -> Option<i64> {
        self.deploy_at
    }

    /// Its meeting platform, as recorded.
    pub fn meeting_platform_name(&self) -> &str {
        &self.meeting_platform
    }

    /// Its identifier on the platform, once known.
    pub fn platform_id(&self) -> Option<PlatformId> {
        self.platform_id.clone().map(PlatformId::new)
    }

    /// Whether the platform resource still has to be released.
    pub fn cleanup_pending(&self) -> bool {
        self.cleanup_pending
    }

    /// When the current deploy attempt's intent was written (ms since epoch).
    pub fn deploy_started_at_ms(&self) -> Option<i64> {
        self.deploy_started_at
    }

    /// The connection URL, once known.
    pub fn connection_url(&self) -> Option<&str> {
        self.connection_url.as_deref()
    }

    /// Whether the row still holds the meeting URL or password (they are
    /// erased when the bot ends).
    pub fn holds_secrets(&self) -> bool {
        self.meeting_url.is_some()
            || self.meeting_password.is_some()
            || self.unconfirmed_bot_token.is_some()
    }

    /// Its meeting status, as the bot last reported it.
    pub fn meeting_status(&self) -> Result<MeetingStatus, StoreError> {
        self.meeting_status.parse().map_err(|_| {
            StoreError::Corrupt(format!(
                "bot {} has meeting status {:?}",
                self.id, self.meeting_status
            ))
        })
    }

    /// When the bot last heartbeat, as far as the database knows (see
    /// [`HeartbeatBuffer`](crate::bot_protocol::HeartbeatBuffer) for how
    /// stale it may be).
    pub fn last_heartbeat_at_ms(&self) -> Option<i64> {
        self.last_heartbeat_at
    }

    /// When leave was requested, if it was.
    pub fn leave_requested_at_ms(&self) -> Option<i64> {
        self.leave_requested_at
    }

    /// How a stop in progress ends when the service started it on the bot's
    /// word or silence: the final state and its reason.
    pub fn ending(&self) -> Option<(BotState, &str)> {
        let state = self.end_status.as_deref()?.parse().ok()?;
        Some((state, self.end_reason.as_deref().unwrap_or("stopped")))
    }

    /// The token of the current attempt while the platform has not answered
    /// its deploy (so a repeated call sends the same environment).
    pub(crate) fn unconfirmed_bot_token(&self) -> Option<&str> {
        self.unconfirmed_bot_token.as_deref()
    }

    /// Whether the bot ever spoke the bot protocol (a heartbeat or a
    /// meeting-status report).
    pub fn spoke_protocol(&self) -> bool {
        self.last_heartbeat_at.is_some() || self.meeting_status != MeetingStatus::Unknown.as_str()
    }

    fn meeting_platform(&self) -> Result<MeetingPlatform, StoreError> {
        self.meeting_platform.parse().map_err(|_| {
            StoreError::Corrupt(format!(
                "bot {} has meeting platform {:?}",
                self.id, self.meeting_platform
            ))
        })
    }

    /// The deployment config, rebuilt (and re-validated) from the row. Fails
    /// once the bot has ended and its secrets were erased.
    pub fn config(&self) -> Result<BotDeploymentConfig, String> {
        let platform = self.meeting_platform().map_err(|e| e.to_string())?;
        let url = self.meeting_url.as_deref().ok_or_else(|| {
            format!(
                "bot {} no longer has its meeting URL (it is erased when a bot ends)",
                self.id
            )
        })?;
        let url = MeetingUrl::parse(platform, url).map_err(|e| e.to_string())?;
        let leave = AutomaticLeave::from_secs(
            secs(self.waiting_room_timeout_secs),
            secs(self.no_one_joined_timeout_secs),
            secs(self.everyone_left_timeout_secs),
        )
        .map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let name = DisplayName::new(self.display_name.clone()).map_err(|e| e.to_string())?;
        BotDeploymentConfig::new(self.id(), url)
            .with_meeting_password(self.meeting_password.clone().map(SecretString::from))
            .map_err(|e| e.to_string())
            .map(|config| {
                config
                    .with_display_name(name)
                    .with_recording(self.recording_enabled)
                    .with_automatic_leave(leave)
            })
    }

    /// The view the CLI and API show (no secrets).
    pub fn to_bot(&self) -> Result<Bot, StoreError> {
        Ok(Bot {
            id: self.id(),
            status: self.state()?,
            reason: self.reason.clone(),
            platform: (!self.platform.is_empty()).then(|| self.platform.clone()),
            priority: self.priority,
            queue_position: None,
            platform_id: self.platform_id.clone(),
            connection_url: self.connection_url.clone(),
            attempt: self.attempt(),
            meeting_platform: self.meeting_platform()?,
            meeting_url: self.meeting_url_redacted.clone(),
            has_password: self.has_password,
            display_name: self.display_name.clone(),
            recording_enabled: self.recording_enabled,
            automatic_leave: AutomaticLeaveSecs {
                waiting_room_timeout: secs(self.waiting_room_timeout_secs),
                no_one_joined_timeout: secs(self.no_one_joined_timeout_secs),
                everyone_left_timeout: secs(self.everyone_left_timeout_secs),
            },
            cleanup_pending: self.cleanup_pending,
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            meeting_status: self.meeting_status()?,
            meeting_sub_code: self.meeting_sub_code.clone(),
            meeting_message: self.meeting_message.clone(),
            meeting_recording: self.meeting_recording,
            meeting_status_at: self.meeting_status_at.map(timestamp),
            last_heartbeat_at: self.last_heartbeat_at.map(timestamp),
            leave_requested_at: self.leave_requested_at.map(timestamp),
            join_at: self.join_at.map(timestamp),
            deploy_at: self.deploy_at.map(timestamp),
            projected_deploy_at: None,
            late_by_seconds: None,
            waiting_for_capacity: None,
        })
    }
}

fn secs(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

pub(crate) fn timestamp(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A `bot_status_history` row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct HistoryRow {
    pub(crate) from_status: Option<String>,
    pub(crate) to_status: String,
    pub(crate) reason: String,
    pub(crate) attempt: i64,
    pub(crate) at: i64,
}

impl HistoryRow {
    pub(crate) fn into_entry(self) -> Result<HistoryEntry, StoreError> {
        let parse = |s: &str| {
            s.parse::<BotState>()
                .map_err(|_| StoreError::Corrupt(format!("history holds status {s:?}")))
        };
        Ok(HistoryEntry {
            from: self.from_status.as_deref().map(parse).transpose()?,
            to: parse(&self.to_status)?,
            reason: self.reason,
            attempt: u32::try_from(self.attempt).unwrap_or_default(),
            at: timestamp(self.at),
        })
    }
}

/// A `bot_meeting_history` row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct MeetingHistoryRow {
    pub(crate) event_id: Option<String>,
    pub(crate) from_status: String,
    pub(crate) to_status: String,
    pub(crate) sub_code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) recording: Option<bool>,
    pub(crate) source: String,
    pub(crate) attempt: i64,
    pub(crate) at: i64,
}

impl MeetingHistoryRow {
    pub(crate) fn into_entry(self) -> Result<MeetingHistoryEntry, StoreError> {
        let parse = |s: &str| {
            s.parse::<MeetingStatus>()
                .map_err(|_| StoreError::Corrupt(format!("meeting history holds status {s:?}")))
        };
        Ok(MeetingHistoryEntry {
            from: parse(&self.from_status)?,
            to: parse(&self.to_status)?,
            sub_code: self.sub_code,
            message: self.message,
            recording: self.recording,
            event_id: self.event_id,
            source: if self.source == EventSource::Service.as_str() {
                EventSource::Service
            } else {
                EventSource::Bot
            },
            attempt: u32::try_from(self.attempt).unwrap_or_default(),
            at: timestamp(self.at),
        })
    }
}
