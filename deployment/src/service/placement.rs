//! Placement: a bot goes to the first platform of the priority list with
//! room under its cap; a platform that answers "no capacity, nothing
//! started" sends it on to the next; when none has room it is queued.
//!
//! Every path takes the same two steps: the choice of a platform, in the
//! caller (a deploy request, the scheduler, the queue drain), and the
//! platform call with the fall-through on "nothing started", in a
//! [deploy worker](super::workers). The cap check and the
//! move to `deploying` are one transaction
//! ([`Store::place_bot`](crate::Store::place_bot)), so several service
//! processes never place more bots on a platform than its cap. The history
//! tells every fall-through: `coolify: pool full (5 of 5 zoom bots);
//! placed on aws`.

use platform_core::{ErrorKind, MeetingPlatform};

use super::{BotService, DeployCall};

use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::failpoint;
use crate::platform_set::ListedPlatform;
use crate::store::{BotRecord, NoRoom, PlaceOn, Placed};

/// What placing a bot came to.
#[derive(Debug)]
pub enum Placement {
    /// Placed on a platform and the platform called: the bot as it is now
    /// (`deploying`, `running`, or `failed` when the platform refused it).
    Deployed(BotRecord),
    /// No platform had room: the bot is `queued` (written now).
    Queued(BotRecord),
    /// The bot was queued already and still no platform has room; nothing
    /// was written. `all_full`: every platform is at its cap on all its
    /// bots, so no other queued bot fits either.
    NoRoom {
        /// Whether every platform is full for every bot.
        all_full: bool,
    },
    /// Someone else moved the bot meanwhile (a stop, another process).
    Moved,
}

/// One step of a placement: a platform chosen, or none.
pub(super) enum Step {
    Placed(BotRecord, &'static str),
    Queued(BotRecord),
    NoRoom { all_full: bool },
    Moved,
}

/// Why a platform was passed over, for the history and the metrics.
pub(super) struct PassedOver {
    platform: &'static str,
    note: String,
}

/// A platform's answer to a deploy call.
pub(super) enum DeployAnswer {
    /// Recorded on the bot (an identifier, a refusal, an answer to wait for).
    Done(BotRecord),
    /// "No capacity, nothing started": the bot is still `deploying` on that
    /// platform at that attempt, and may go to the next one.
    NothingStarted { record: BotRecord, note: String },
}

fn describe_no_room(platform: &ListedPlatform, no_room: &NoRoom) -> String {
    let what = if platform.capacity.pooled {
        "pool full"
    } else {
        "at its cap"
    };
    let bots = match &no_room.meeting_platform {
        Some(meeting) => format!("{meeting} bots"),
        None => "bots".to_owned(),
    };
    let variables = if platform.capacity.variables.is_empty() {
        String::new()
    } else {
        format!(", {}", platform.capacity.variables)
    };
    format!(
        "{}: {what} ({} of {} {bots}{variables})",
        platform.name(),
        no_room.used,
        no_room.cap
    )
}

/// The history note for a deploy that started nothing.
pub(super) fn describe_nothing_started(platform: &str, error: &platform_core::Error) -> String {
    let what = match error.kind() {
        ErrorKind::PoolExhausted => "pool full",
        ErrorKind::Unreachable => "platform_unavailable",
        _ => "no capacity",
    };
    format!("{platform}: {what}, nothing started ({error})")
}

impl BotService {
    /// The placement loop, run by a deploy worker: calls the bot's
    /// platform, and moves on down the priority list while platforms
    /// answer "no capacity, nothing started"; queues the bot when no
    /// platform has room. A definite refusal fails the bot with the
    /// platform's reason
    /// ([`ServiceError::DeployFailed`](crate::ServiceError::DeployFailed)).
    /// A `deploying` bot starts with the platform call (`call`: the first
    /// of its attempt, or a repeat after a lost answer); any other starts
    /// with the choice of a platform.
    pub(super) async fn run_placement(
        &self,
        record: BotRecord,
        call: Option<DeployCall>,
    ) -> ServiceResult<Placement> {
        let mut passed: Vec<PassedOver> = Vec::new();
        let mut tried: Vec<&'static str> = Vec::new();
        let mut current = record;
        let mut call = call;
        loop {
            let (placed, this_call) = match (current.state()?, call.take()) {
                (BotState::Deploying, Some(call)) => {
                    let name = self.listed_for(&current)?.name();
                    tried.push(name);
                    (current, call)
                }
                _ => match Box::pin(self.choose_platform(&current, &tried, &mut passed)).await? {
                    Step::Placed(placed, name) => {
                        tried.push(name);
                        (placed, DeployCall::First)
                    }
                    Step::Queued(queued) => return Ok(Placement::Queued(queued)),
                    Step::NoRoom { all_full } => return Ok(Placement::NoRoom { all_full }),
                    Step::Moved => return Ok(Placement::Moved),
                },
            };
            tracing::info!(
                bot_id = %placed.id(),
                platform = placed.platform(),
                attempt = placed.attempt(),
                "deploy intent recorded"
            );
            // Boxed: the platform call's future is large, and every path
            // that deploys (requests, drains, passes) holds this one.
            match Box::pin(self.call_platform(placed, this_call)).await? {
                DeployAnswer::Done(record) => return Ok(Placement::Deployed(record)),
                DeployAnswer::NothingStarted { record, note } => {
                    let platform = self.listed_for(&record)?.name();
                    passed.push(PassedOver { platform, note });
                    current = record;
                }
            }
        }
    }

    /// Picks the first platform not yet tried with room for `record` and
    /// places it there, or queues it.
    pub(super) async fn choose_platform(
        &self,
        record: &BotRecord,
        tried: &[&'static str],
        passed: &mut Vec<PassedOver>,
    ) -> ServiceResult<Step> {
        let from = record.state()?;
        let meeting = record
            .meeting_platform_name()
            .parse::<MeetingPlatform>()
            .ok();
        let lease_until = self.lease_until();
        let owner = self.inner.instance.as_str();
        // Each attempt gets its own bot-protocol token, when bots get one.
        let token = self.new_bot_token()?;
        let mut all_full = true;
        for platform in self.inner.platforms.iter() {
            if tried.contains(&platform.name()) {
                continue;
            }
            let meeting_cap = meeting.and_then(|m| {
                platform
                    .capacity
                    .for_meeting_platform(m)
                    .map(|cap| (m.as_str(), cap))
            });
            let reason = match passed.as_slice() {
                [] if from == BotState::Queued => {
                    format!("placed on {} from the queue", platform.name())
                }
                [] if from == BotState::Scheduled => {
                    format!("placed on {} at its deploy time", platform.name())
                }
                [] => format!("placed on {}", platform.name()),
                notes => format!(
                    "{}; placed on {}",
                    notes
                        .iter()
                        .map(|p| p.note.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                    platform.name()
                ),
            };
            let place = PlaceOn {
                bot: record.id(),
                from,
                attempt: record.attempt(),
                platform: platform.name(),
                max_bots: platform.capacity.max_bots,
                meeting_cap,
                reason: &reason,
                lease: (owner, lease_until),
                token: token.as_ref(),
            };
            match self.store_ref().place_bot(&place).await? {
                Placed::Placed(placed) => {
                    failpoint::pause_if_armed(failpoint::AFTER_DEPLOY_INTENT).await;
                    for skipped in passed.iter() {
                        self.inner
                            .metrics
                            .record_fallback(skipped.platform, platform.name());
                    }
                    return Ok(Step::Placed(*placed, platform.name()));
                }
                Placed::NoRoom(no_room) => {
                    all_full &= no_room.meeting_platform.is_none();
                    passed.push(PassedOver {
                        platform: platform.name(),
                        note: describe_no_room(platform, &no_room),
                    });
                }
                Placed::Moved => return Ok(Step::Moved),
            }
        }
        if from == BotState::Queued {
            return Ok(Step::NoRoom { all_full });
        }
        let notes: Vec<&str> = passed.iter().map(|p| p.note.as_str()).collect();
        let reason = format!("{}; queued until a platform has room", notes.join("; "));
        match self
            .store_ref()
            .queue_bot(record.id(), from, record.attempt(), &reason)
            .await?
        {
            Some(queued) => {
                for skipped in passed.iter() {
                    self.inner
                        .metrics
                        .record_fallback(skipped.platform, "queue");
                }
                tracing::info!(bot_id = %queued.id(), reason = %reason, "bot queued");
                Ok(Step::Queued(queued))
            }
            None => Ok(Step::Moved),
        }
    }
}
