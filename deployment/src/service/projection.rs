//! Ahead of capacity: when a bot not started yet is projected to start its
//! deploy, and how late that puts it in its meeting, from the bots ahead of
//! it, the platforms' paces and their room under their caps.
//!
//! # The model
//!
//! Bots deploy in deploy order (`deploy_at`, then id). A bot not started
//! yet is `scheduled`, due (`pending` with a deploy time), `queued`, or
//! placed (`deploying`) and waiting for its platform call (no platform
//! identifier yet).
//!
//! - **Where it goes.** Bots not placed yet fill the platforms' room (cap
//!   minus the bots holding capacity now) in priority order, the bots ahead
//!   of it first: it goes to the first platform with room left for it. On a
//!   platform with a cap per meeting platform (a warm pool per meeting
//!   platform), only bots of its own meeting platform compete for that
//!   room. When no platform has room left it *waits for capacity*: the
//!   projection says so, names the full platforms, and gives no time.
//! - **When it starts.** Each platform states its [`DeployPace`]: a bucket
//!   of `burst` deploys refilled at `per_second`. The bots that go through
//!   the same platform are let out greedily: the `n`-th of a group arriving
//!   at `t` (bucket full at `t`) goes at `t + max(0, (n − burst) /
//!   per_second)`. A bot's projected start is the latest such time over
//!   look-back windows ending at its own deploy time (the same instant, 5 s,
//!   30 s, 2 min, 10 min and 1 h before, each counting the bots ahead of it
//!   with a deploy time in the window), and never before its deploy time or
//!   now. Bots due already (deploy time past, queued, or placed and waiting
//!   for their call) arrive now.
//! - **How late.** `late_by` = its projected start plus the platform's
//!   typical time from the call to `running`, minus `join_at`; 0 when that
//!   is on time; absent for a bot without `join_at`.
//!
//! # Its limits
//!
//! It is a projection, not a promise: each window assumes the platform's
//! bucket full at its start (deploys started just before, or other callers
//! in the same account, make bots later); bots that end meanwhile and free
//! room are not counted (a bot said to wait for capacity may find room), nor
//! bots created later with an earlier deploy time; a throttle's slowdown is
//! not counted; rooms are as of now; bots more than an hour before it in
//! deploy order are taken to be started by then; and when bots of several
//! meeting platforms share a platform, how many of each an earlier platform
//! took is estimated in proportion.
//!
//! # What it costs
//!
//! Four counting queries per bot (capacity used, bots waiting for their
//! call, the queue by meeting platform, and the bots ahead of it in the
//! windows: one count over at most an hour of the `bots_deploy_due` index),
//! and for `GET /v1/platforms` two per platform over the due bots. None
//! reads every scheduled bot.

use platform_core::{DeployPace, MeetingPlatform};

use super::BotService;

use crate::bot::{Bot, BotState};
use crate::clock::duration_ms;
use crate::error::ServiceResult;
use crate::store::{AheadCounts, AheadQuery, BacklogJoins, BotRecord, WINDOWS, timestamp};

/// How far before a bot's deploy time each window starts, in seconds (see
/// the [module docs](self)).
pub const LOOKBACK_SECS: [i64; WINDOWS] = [0, 5, 30, 120, 600, 3600];

/// One platform of the priority list, as the projection of one bot sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    /// The platform.
    pub name: String,
    /// How fast it starts bots.
    pub pace: DeployPace,
    /// Room left on all its bots (cap − used); `None`: no cap.
    pub room: Option<u64>,
    /// Room left for the bot's meeting platform, when the platform caps it
    /// separately (a warm pool per meeting platform).
    pub meeting_room: Option<u64>,
    /// Bots placed there, waiting for their platform call, ahead of the
    /// bot.
    pub waiting: u64,
    /// What its cap is, for an explanation (`AWS_MAX_BOTS 50`).
    pub cap_note: String,
}

/// Everything one projection reads.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionInput {
    /// Now (ms, the scheduler's clock).
    pub now_ms: i64,
    /// The bot's deploy time (ms); now for one without.
    pub deploy_at_ms: i64,
    /// When it must be in its meeting (ms), if it was scheduled.
    pub join_at_ms: Option<i64>,
    /// The lane it is placed on and waits in for its call, if it is.
    pub placed_on: Option<usize>,
    /// The platforms, in priority order.
    pub lanes: Vec<Lane>,
    /// The bots not placed yet ahead of it, in the windows of
    /// [`window_starts`] (bots due already in every window that reaches
    /// back to now).
    pub ahead: AheadCounts,
}

/// What the projection of one bot came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Its deploy is projected to start at `at_ms` on `platform`.
    Starts {
        /// The platform it goes to.
        platform: String,
        /// When its platform call goes out (ms).
        at_ms: i64,
        /// How late it would be in its meeting (ms, 0 when on time); `None`
        /// without a `join_at`.
        late_by_ms: Option<i64>,
    },
    /// No platform has room left for it: it waits for bots to end.
    WaitsForCapacity {
        /// Why, in a sentence.
        explanation: String,
    },
}

/// Where each window starts for a bot deploying at `deploy_at_ms` (ms);
/// `None` for a window that reaches back to `now_ms` or before (it counts
/// every bot ahead, those due already included).
pub fn window_starts(now_ms: i64, deploy_at_ms: i64) -> [Option<i64>; WINDOWS] {
    let arrival = deploy_at_ms.max(now_ms);
    LOOKBACK_SECS.map(|secs| {
        let start = arrival.saturating_sub(secs.saturating_mul(1000));
        (start > now_ms).then_some(start)
    })
}

/// Projects one bot (see the [module docs](self)).
pub fn project(input: &ProjectionInput) -> Projection {
    let now = input.now_ms;
    let arrival = input.deploy_at_ms.max(now);
    let starts = window_starts(now, input.deploy_at_ms);
    let start_on = |lane: &Lane, through: [u64; WINDOWS]| {
        let mut at = arrival;
        for (j, start) in starts.iter().enumerate() {
            let (from, waiting) = match start {
                Some(t) => (*t, 0),
                None => (now, lane.waiting),
            };
            let n = through[j] + waiting + 1;
            at = at.max(from.saturating_add(duration_ms(lane.pace.delay_of(n))));
        }
        at
    };
    let starts_at = |lane: &Lane, at_ms: i64| Projection::Starts {
        platform: lane.name.clone(),
        at_ms,
        late_by_ms: input.join_at_ms.map(|join_at| {
            (at_ms + duration_ms(lane.pace.typical_start))
                .saturating_sub(join_at)
                .max(0)
        }),
    };
    if let Some(lane) = input.placed_on.and_then(|i| input.lanes.get(i)) {
        // Placed: only the bots waiting on its platform are ahead of it.
        return starts_at(lane, start_on(lane, [0; WINDOWS]));
    }
    let widest = WINDOWS - 1;
    let mut all = input.ahead.all[widest];
    let mut same = input.ahead.same_meeting[widest];
    let mut full = Vec::new();
    for lane in &input.lanes {
        let pooled = lane.meeting_room.is_some();
        let competing = if pooled { same } else { all };
        let room = match (lane.room, lane.meeting_room) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if room.is_none_or(|room| competing < room) {
            // The bots ahead that go elsewhere are the earliest: what is
            // left of each window is its latest bots.
            let window = if pooled {
                input.ahead.same_meeting
            } else {
                input.ahead.all
            };
            return starts_at(lane, start_on(lane, window.map(|n| n.min(competing))));
        }
        let room = room.unwrap_or_default();
        full.push(format!("{} {}", lane.name, lane.cap_note));
        if pooled {
            // Its pool for this meeting platform fills up; the rest of the
            // platform's room goes to the other meeting platforms.
            let taken_same = same.min(room);
            let others = all.saturating_sub(same);
            let room_others = lane.room.unwrap_or(u64::MAX).saturating_sub(taken_same);
            all = all.saturating_sub(taken_same + others.min(room_others));
            same -= taken_same;
        } else {
            let taken = all.min(room);
            // Of those, bots of its meeting platform in proportion.
            let taken_same = if all == 0 {
                0
            } else {
                ((u128::from(taken) * u128::from(same) + u128::from(all) / 2) / u128::from(all))
                    as u64
            };
            all -= taken;
            same = same.saturating_sub(taken_same);
        }
    }
    let ahead = input.ahead.all[widest];
    Projection::WaitsForCapacity {
        explanation: format!(
            "no platform has room for it now ({}) with {ahead} bot{} ahead of it; it deploys as bots end",
            full.join(", "),
            if ahead == 1 { "" } else { "s" }
        ),
    }
}

/// A platform's due backlog, and when it is worked off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneBacklog {
    /// Due bots not started that are placed on it or expected to go to it.
    pub due: u64,
    /// When the last of them is projected to start (ms); `None` without
    /// any.
    pub worked_off_at_ms: Option<i64>,
    /// The largest `late_by` among them (ms); `None` when none has a
    /// `join_at`.
    pub max_late_by_ms: Option<i64>,
}

/// The backlog of `due` bots on a platform of pace `pace` from `now_ms`,
/// with the lateness of its parts (`joins`, ranked at
/// [`ms_per_deploy`]`(pace)`).
pub fn lane_backlog(
    now_ms: i64,
    pace: &DeployPace,
    due: u64,
    joins: &[BacklogJoins],
) -> LaneBacklog {
    let burst_ms = pace
        .rate
        .map_or(0.0, |rate| rate.burst * ms_per_deploy(pace));
    let mut worst: Option<f64> = None;
    for part in joins {
        if let Some(earliest) = part.earliest_join_at {
            // Bots within the burst go now.
            worst = Some(worst.unwrap_or(f64::MIN).max(-(earliest as f64)));
        }
        if let Some(latest) = part.latest_by_rank {
            worst = Some(worst.unwrap_or(f64::MIN).max(latest - burst_ms));
        }
    }
    LaneBacklog {
        due,
        worked_off_at_ms: (due > 0).then(|| now_ms.saturating_add(duration_ms(pace.delay_of(due)))),
        max_late_by_ms: worst.map(|worst| {
            let late = now_ms as f64 + duration_ms(pace.typical_start) as f64 + worst;
            late.max(0.0).ceil() as i64
        }),
    }
}

/// The time one deploy takes at a pace's refill rate, in ms (0 without a
/// limit).
pub fn ms_per_deploy(pace: &DeployPace) -> f64 {
    pace.rate.map_or(0.0, |rate| 1000.0 / rate.per_second)
}

/// Whole seconds, rounded up, of a ms figure (0 for one below zero).
pub(crate) fn ceil_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0)).unwrap_or_default().div_ceil(1000)
}

impl BotService {
    /// The pace the projection uses for a platform: its own, or no limit
    /// with no start time when it states none.
    fn pace_of(capacity: &platform_core::PlatformCapacity) -> DeployPace {
        capacity
            .deploy_pace
            .unwrap_or(DeployPace::unlimited(std::time::Duration::ZERO))
    }

    /// The projection of a bot not started yet; `None` for any other (and
    /// for one placed on a platform this service does not hold).
    pub async fn projection(&self, record: &BotRecord) -> ServiceResult<Option<Projection>> {
        let state = record.state()?;
        let placed = match state {
            BotState::Scheduled | BotState::Pending if record.deploy_at_ms().is_some() => false,
            BotState::Queued => false,
            BotState::Deploying if record.platform_id().is_none() => true,
            _ => return Ok(None),
        };
        let store = self.store_ref();
        let now = self.clock_ms();
        let deploy_at = record.deploy_at_ms().unwrap_or(now);
        let meeting = record.meeting_platform_name();
        let used = store.capacity_used_by_meeting().await?;
        let waiting = store
            .waiting_for_call(placed.then(|| (deploy_at, record.id())))
            .await?;
        let mut lanes = Vec::new();
        for platform in self.inner.platforms.iter() {
            let capacity = &platform.capacity;
            let on = |row: &&(String, String, u64)| row.0 == platform.name();
            let used_all: u64 = used.iter().filter(on).map(|row| row.2).sum();
            let used_meeting: u64 = used
                .iter()
                .filter(on)
                .filter(|row| row.1 == meeting)
                .map(|row| row.2)
                .sum();
            let meeting_cap = meeting
                .parse::<MeetingPlatform>()
                .ok()
                .and_then(|m| capacity.for_meeting_platform(m));
            let cap_note = match (meeting_cap, capacity.max_bots) {
                (Some(cap), _) => format!(
                    "{used_meeting} of {cap} {meeting} bots, {}",
                    capacity.variables
                ),
                (None, Some(cap)) => format!("{used_all} of {cap}, {}", capacity.variables),
                (None, None) => String::new(),
            };
            lanes.push(Lane {
                name: platform.name().to_owned(),
                pace: Self::pace_of(capacity),
                room: capacity
                    .max_bots
                    .map(|cap| u64::from(cap).saturating_sub(used_all)),
                meeting_room: meeting_cap.map(|cap| u64::from(cap).saturating_sub(used_meeting)),
                waiting: waiting
                    .iter()
                    .find(|(p, _)| p == platform.name())
                    .map_or(0, |(_, n)| *n),
                cap_note: format!("({cap_note})"),
            });
        }
        let placed_on = if placed {
            match lanes.iter().position(|l| l.name == record.platform()) {
                Some(i) => Some(i),
                None => return Ok(None),
            }
        } else {
            None
        };
        let starts = window_starts(now, deploy_at);
        let ahead = match state {
            _ if placed => AheadCounts::default(),
            BotState::Queued => {
                // The queue drains in its own order: the bots before it
                // there are ahead, all due now.
                let before = store.queue_position(record).await?.saturating_sub(1);
                AheadCounts {
                    all: [before; WINDOWS],
                    same_meeting: [before; WINDOWS],
                }
            }
            _ => {
                let widest = starts[WINDOWS - 1];
                let mut ahead = store
                    .unplaced_ahead(&AheadQuery {
                        bot: record.id(),
                        deploy_at,
                        meeting_platform: meeting,
                        from: widest.unwrap_or(i64::MIN),
                        starts,
                    })
                    .await?;
                if widest.is_none() {
                    // Queued bots are due now: ahead in every window that
                    // reaches back to now.
                    let queued = store.queued_by_meeting_platform().await?;
                    let all: u64 = queued.iter().map(|(_, n)| n).sum();
                    let same: u64 = queued
                        .iter()
                        .filter(|(m, _)| m == meeting)
                        .map(|(_, n)| n)
                        .sum();
                    for (j, start) in starts.iter().enumerate() {
                        if start.is_none() {
                            ahead.all[j] += all;
                            ahead.same_meeting[j] += same;
                        }
                    }
                }
                ahead
            }
        };
        Ok(Some(project(&ProjectionInput {
            now_ms: now,
            deploy_at_ms: deploy_at,
            join_at_ms: record.join_at_ms(),
            placed_on,
            lanes,
            ahead,
        })))
    }

    /// Adds the projection of a bot not started yet to its view.
    pub(crate) async fn project_onto(
        &self,
        bot: &mut Bot,
        record: &BotRecord,
    ) -> ServiceResult<()> {
        match self.projection(record).await? {
            Some(Projection::Starts {
                at_ms, late_by_ms, ..
            }) => {
                bot.projected_deploy_at = Some(timestamp(at_ms));
                bot.late_by_seconds = late_by_ms.map(ceil_secs);
            }
            Some(Projection::WaitsForCapacity { explanation }) => {
                bot.waiting_for_capacity = Some(explanation);
            }
            None => {}
        }
        Ok(())
    }

    /// Each platform's due backlog in priority order: the bots placed there
    /// and waiting for their call, then the due bots not placed yet, which
    /// fill the platforms' room in priority order (a cap per meeting
    /// platform is not told apart here).
    pub async fn deploy_backlogs(&self) -> ServiceResult<Vec<(&'static str, LaneBacklog)>> {
        let store = self.store_ref();
        let now = self.clock_ms();
        let waiting = store.waiting_for_call(None).await?;
        let used = store.capacity_used().await?;
        let (mut unplaced, _) = store.due_backlog(now).await?;
        let mut placed_before = 0;
        let mut backlogs = Vec::new();
        for platform in self.inner.platforms.iter() {
            let name = platform.name();
            let pace = Self::pace_of(&platform.capacity);
            let per = ms_per_deploy(&pace);
            let waits = waiting
                .iter()
                .find(|(p, _)| p == name)
                .map_or(0, |(_, n)| *n);
            let used = used.iter().find(|(p, _)| p == name).map_or(0, |(_, n)| *n);
            let take = platform.capacity.max_bots.map_or(unplaced, |cap| {
                unplaced.min(u64::from(cap).saturating_sub(used))
            });
            let mut joins = Vec::new();
            if waits > 0 {
                joins.push(store.waiting_joins(name, per).await?);
            }
            if take > 0 {
                joins.push(
                    store
                        .due_joins(now, placed_before, take, waits, per)
                        .await?,
                );
            }
            placed_before += take;
            unplaced -= take;
            backlogs.push((name, lane_backlog(now, &pace, waits + take, &joins)));
        }
        Ok(backlogs)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    /// ECS at the default share: 80 at once, then 16 a second, running 70 s
    /// after the call.
    fn aws(room: Option<u64>) -> Lane {
        Lane {
            name: "aws".into(),
            pace: DeployPace::limited(80.0, 16.0, Duration::from_secs(70)),
            room,
            meeting_room: None,
            waiting: 0,
            cap_note: "(50 of 50, AWS_MAX_BOTS)".into(),
        }
    }

    fn input(ahead_same_instant: u64, lanes: Vec<Lane>) -> ProjectionInput {
        // Everyone scheduled for the same deploy time, 10 minutes ahead.
        let deploy_at = NOW + 600_000;
        ProjectionInput {
            now_ms: NOW,
            deploy_at_ms: deploy_at,
            join_at_ms: Some(deploy_at + 180_000),
            placed_on: None,
            lanes,
            ahead: AheadCounts {
                all: [ahead_same_instant; WINDOWS],
                same_meeting: [ahead_same_instant; WINDOWS],
            },
        }
    }

    fn starts(p: &Projection) -> (i64, Option<i64>) {
        match p {
            Projection::Starts {
                at_ms, late_by_ms, ..
            } => (*at_ms, *late_by_ms),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_burst_within_the_pace_is_on_time() {
        // The 80th bot goes with the burst; the 1,000th after 57.5 s, in
        // its meeting 127.5 s after its deploy time: within the 180 s lead.
        let first = input(0, vec![aws(None)]);
        assert_eq!(starts(&project(&first)), (NOW + 600_000, Some(0)));
        let last_of_burst = input(79, vec![aws(None)]);
        assert_eq!(starts(&project(&last_of_burst)), (NOW + 600_000, Some(0)));
        let thousandth = input(999, vec![aws(None)]);
        assert_eq!(
            starts(&project(&thousandth)),
            (NOW + 600_000 + 57_500, Some(0))
        );
    }

    #[test]
    fn a_burst_beyond_the_pace_makes_its_last_bots_late() {
        // 3,000 bots: the last starts (3,000 − 80) / 16 = 182.5 s after its
        // deploy time, and is running 70 s later: 72.5 s after join_at.
        let last = input(2999, vec![aws(None)]);
        assert_eq!(
            starts(&project(&last)),
            (NOW + 600_000 + 182_500, Some(72_500))
        );
        // The first late one: started more than 110 s after the deploy time.
        let on_time = input(80 + 16 * 110 - 1, vec![aws(None)]);
        assert_eq!(starts(&project(&on_time)).1, Some(0));
        let late = input(80 + 16 * 110 + 15, vec![aws(None)]);
        assert_eq!(starts(&project(&late)).1, Some(1_000));
    }

    #[test]
    fn bots_spread_over_time_do_not_add_up_as_one_burst() {
        // 2,000 bots ahead, but only 10 in the last 2 minutes: the window
        // of the hour sees 2,000 arriving over an hour, which the pace
        // works off long before.
        let mut spread = input(0, vec![aws(None)]);
        spread.ahead.all = [0, 2, 5, 10, 200, 2000];
        spread.ahead.same_meeting = spread.ahead.all;
        assert_eq!(starts(&project(&spread)), (NOW + 600_000, Some(0)));
    }

    #[test]
    fn bots_beyond_a_cap_go_to_the_next_platform_and_beyond_every_cap_wait() {
        let coolify = Lane {
            name: "coolify".into(),
            pace: DeployPace::limited(60.0, 1.0, Duration::from_secs(15)),
            room: Some(5),
            meeting_room: Some(5),
            waiting: 0,
            cap_note: "(0 of 5 zoom bots, COOLIFY_POOL_MAX_*)".into(),
        };
        // The sixth zoom bot falls through to ECS, first in its burst.
        let sixth = input(5, vec![coolify.clone(), aws(None)]);
        match project(&sixth) {
            Projection::Starts {
                platform, at_ms, ..
            } => {
                assert_eq!(platform, "aws");
                assert_eq!(at_ms, NOW + 600_000);
            }
            other => panic!("{other:?}"),
        }
        // With ECS capped at 10 more, the 16th waits for capacity.
        let sixteenth = input(15, vec![coolify, aws(Some(10))]);
        match project(&sixteenth) {
            Projection::WaitsForCapacity { explanation } => {
                assert!(
                    explanation.contains("coolify (0 of 5 zoom bots"),
                    "{explanation}"
                );
                assert!(explanation.contains("aws (50 of 50"), "{explanation}");
                assert!(explanation.contains("15 bots ahead"), "{explanation}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_placed_bot_waits_behind_the_bots_placed_before_it() {
        let mut lane = aws(None);
        lane.waiting = 96;
        let placed = ProjectionInput {
            now_ms: NOW,
            deploy_at_ms: NOW - 1_000,
            join_at_ms: None,
            placed_on: Some(0),
            lanes: vec![lane],
            ahead: AheadCounts::default(),
        };
        // The 97th: 17 beyond the burst, at 16 a second.
        assert_eq!(starts(&project(&placed)), (NOW + 1_062, None));
    }

    #[test]
    fn a_backlog_is_worked_off_at_the_pace_and_its_worst_lateness_found() {
        let pace = DeployPace::limited(80.0, 16.0, Duration::from_secs(70));
        // 1,000 due bots, all joining 60 s from now: the last (rank 1,000)
        // starts at 57.5 s and runs at 127.5 s, 67.5 s late.
        let join = NOW + 60_000;
        let joins = BacklogJoins {
            earliest_join_at: Some(join),
            latest_by_rank: Some(1000.0 * 62.5 - join as f64),
        };
        let backlog = lane_backlog(NOW, &pace, 1000, &[joins]);
        assert_eq!(backlog.worked_off_at_ms, Some(NOW + 57_500));
        assert_eq!(backlog.max_late_by_ms, Some(67_500));
        let none = lane_backlog(NOW, &pace, 0, &[]);
        assert_eq!(none, LaneBacklog::default());
    }

    #[test]
    fn windows_that_reach_back_to_now_count_everything() {
        let starts = window_starts(NOW, NOW + 60_000);
        assert_eq!(
            starts,
            [
                Some(NOW + 60_000),
                Some(NOW + 55_000),
                Some(NOW + 30_000),
                None,
                None,
                None
            ]
        );
        assert_eq!(window_starts(NOW, NOW - 5_000), [None; WINDOWS]);
    }
}
