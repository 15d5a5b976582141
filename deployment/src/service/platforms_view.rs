//! What `platforms` and `GET /v1/platforms` show an operator: each platform
//! in placement order with its bots against its cap and its due backlog,
//! the queue, and who runs the platform sweep.

use platform_core::MeetingPlatform;
use serde::Serialize;

use super::BotService;

use super::projection::ceil_secs;
use crate::error::ServiceResult;
use crate::store::{now_ms, timestamp};
use crate::sweep_lease::SWEEP_LEASE;

/// One platform's capacity as the database counts it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformUsage {
    /// The platform.
    pub name: String,
    /// Whether this service holds it (it is in the priority list). Bots on
    /// a platform that is not are listed too, and left alone.
    pub configured: bool,
    /// Its place in the priority list (1 is tried first); absent when not
    /// configured.
    pub position: Option<u32>,
    /// Bots holding capacity there now (deploying, running, stopping), as
    /// every replica counts them.
    pub used: u64,
    /// Its cap; absent when it has none.
    pub cap: Option<u32>,
    /// Caps per meeting platform (a warm pool per meeting platform), if
    /// any.
    pub cap_by_meeting_platform: Vec<MeetingPlatformCap>,
    /// How many bots it holds beyond its cap (a cap lowered below the bots
    /// already running: none is stopped, new bots go elsewhere).
    pub over_cap: u64,
    /// Queued bots this platform could take (of a meeting platform it has
    /// room for when a bot ends).
    pub queued: u64,
    /// The variables that set its caps.
    pub cap_variables: String,
    /// How fast it starts bots, as the platform states it (`80 at once,
    /// then 16 a second; running about 70 s after the call`); absent when
    /// it does not say.
    pub deploy_pace: Option<String>,
    /// Due bots not started yet that are placed on it (waiting for their
    /// platform call) or expected to go to it (by its room under its cap).
    pub deploy_backlog: u64,
    /// When the last of them is projected to start its deploy, at the
    /// platform's pace; absent without a backlog.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub backlog_worked_off_at: Option<time::OffsetDateTime>,
    /// The largest `late_by_seconds` among the bots of its backlog (0: all
    /// on time); absent when none of them has a `join_at`.
    pub max_late_by_seconds: Option<u64>,
}

/// One meeting platform's cap on a platform.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MeetingPlatformCap {
    /// `zoom`, `teams` or `meet`.
    pub meeting_platform: MeetingPlatform,
    /// At most this many of its bots.
    pub cap: u32,
}

/// The queue of bots no platform had room for.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// Queued bots.
    pub length: u64,
    /// How long the bot that waited longest has waited, in seconds.
    pub oldest_age_seconds: Option<u64>,
    /// After how many seconds a queued bot fails as `queue_timeout`.
    pub timeout_seconds: u64,
}

/// Who runs the platform sweep (one service process at a time).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SweepLeaseView {
    /// The holding process, if the lease is held.
    pub holder: Option<String>,
    /// Whether that is this process.
    pub held_here: bool,
    /// Milliseconds until it lapses unless renewed (negative: lapsed).
    pub expires_in_ms: Option<i64>,
}

/// Every platform's capacity, the queue and the sweep lease.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformsView {
    /// The platforms bots are placed on, in order.
    pub priority: Vec<String>,
    /// The configured platforms in priority order, then any platform that
    /// still has bots but is not configured.
    pub platforms: Vec<PlatformUsage>,
    /// The queue.
    pub queue: QueueView,
    /// The platform sweep's lease.
    pub sweep_lease: SweepLeaseView,
}

impl BotService {
    /// What the operator sees in `platforms` and `GET /v1/platforms`.
    pub async fn platforms_view(&self) -> ServiceResult<PlatformsView> {
        let store = self.store_ref();
        let used = store.capacity_used().await?;
        let needing = store.needing_platform().await?;
        let queued_by_meeting = store.queued_by_meeting_platform().await?;
        let stats = store.queue_stats().await?;
        let lease = store.lease_holder(SWEEP_LEASE).await?;
        let backlogs = self.deploy_backlogs().await?;
        let used_on = |name: &str| used.iter().find(|(p, _)| p == name).map_or(0, |(_, n)| *n);
        let mut platforms = Vec::new();
        for (index, platform) in self.inner.platforms.iter().enumerate() {
            let capacity = &platform.capacity;
            let used = used_on(platform.name());
            let backlog = backlogs
                .get(index)
                .map(|(_, backlog)| *backlog)
                .unwrap_or_default();
            let queued = queued_by_meeting
                .iter()
                .filter(|(meeting, _)| {
                    meeting
                        .parse::<MeetingPlatform>()
                        .ok()
                        .is_none_or(|m| capacity.for_meeting_platform(m) != Some(0))
                })
                .map(|(_, n)| *n)
                .sum();
            platforms.push(PlatformUsage {
                name: platform.name().to_owned(),
                configured: true,
                position: u32::try_from(index + 1).ok(),
                used,
                cap: capacity.max_bots,
                cap_by_meeting_platform: capacity
                    .per_meeting_platform
                    .iter()
                    .map(|(meeting_platform, cap)| MeetingPlatformCap {
                        meeting_platform: *meeting_platform,
                        cap: *cap,
                    })
                    .collect(),
                over_cap: capacity
                    .max_bots
                    .map_or(0, |cap| used.saturating_sub(u64::from(cap))),
                queued,
                cap_variables: capacity.variables.to_owned(),
                deploy_pace: capacity.deploy_pace.map(|pace| pace.to_string()),
                deploy_backlog: backlog.due,
                backlog_worked_off_at: backlog.worked_off_at_ms.map(timestamp),
                max_late_by_seconds: backlog.max_late_by_ms.map(ceil_secs),
            });
        }
        for (name, _) in &needing {
            if self.inner.platforms.get(name).is_none() {
                platforms.push(PlatformUsage {
                    name: name.clone(),
                    configured: false,
                    position: None,
                    used: used_on(name),
                    cap: None,
                    cap_by_meeting_platform: Vec::new(),
                    over_cap: 0,
                    queued: 0,
                    cap_variables: String::new(),
                    deploy_pace: None,
                    deploy_backlog: 0,
                    backlog_worked_off_at: None,
                    max_late_by_seconds: None,
                });
            }
        }
        let now = now_ms();
        Ok(PlatformsView {
            priority: self
                .platform_names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            platforms,
            queue: QueueView {
                length: stats.length,
                oldest_age_seconds: stats
                    .oldest_queued_at
                    .map(|at| u64::try_from(now.saturating_sub(at) / 1000).unwrap_or(0)),
                timeout_seconds: self.inner.options.queue_timeout.as_secs(),
            },
            sweep_lease: SweepLeaseView {
                held_here: lease
                    .as_ref()
                    .is_some_and(|l| l.holder == self.inner.instance && l.expires_at > now),
                expires_in_ms: lease.as_ref().map(|l| l.expires_at - now),
                holder: lease.map(|l| l.holder),
            },
        })
    }
}
