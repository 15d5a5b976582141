//! The orphan sweep: stops what runs on the platform under this
//! installation's mark but that no active bot of this database holds.
//!
//! Such a bot costs money and nobody would ever stop it: a task from a run
//! whose database was lost, a duplicate from a deploy retried after the
//! platform forgot its idempotency token, a slot claimed in a crash window.
//! The sweep asks the platform for everything under the mark
//! ([`PlatformService::list_marked_bots`](platform_core::PlatformService::list_marked_bots)),
//! compares it with the bots this database holds, and stops (then cleans up)
//! what nobody holds — on evidence only:
//!
//! - a resource is *held* when its bot is active here (pending, deploying,
//!   running, stopping, or ended with its cleanup still to do) and it is
//!   that bot's resource: the identifier the bot records, or, while the bot
//!   has none yet (a deploy in flight), the bot's current attempt;
//! - an unheld resource is stopped only when it was already seen unheld by
//!   an earlier sweep at least `PLATFORM_CALL_TIMEOUT` before, and it is
//!   checked against the database once more just before, so a deploy whose
//!   answer is on its way is never hit;
//! - a platform that cannot list its bots changes nothing; the next sweep
//!   asks again;
//! - resources of another installation are never listed, so never touched.
//!
//! Sightings are kept in memory: a restart starts counting afresh, which
//! only delays a stop.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use platform_core::{BotId, MarkedBot, PlatformId};
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;

use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::platform_set::ListedPlatform;
use crate::service::BotService;
use crate::store::BotRecord;

/// What one sweep found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Resources the platform runs under this installation's mark.
    pub listed: usize,
    /// Of those, held by an active bot.
    pub held: usize,
    /// Seen unheld for the first time (stopped by a later sweep if still
    /// unheld then).
    pub suspected: usize,
    /// Stopped and cleaned up as orphans.
    pub stopped: usize,
    /// Orphans whose stop or cleanup failed (tried again next sweep).
    pub errors: usize,
    /// Nothing was swept: another service process holds the platform
    /// sweep's lease.
    pub not_lease_holder: bool,
}

/// When each unheld resource was first seen unheld, by platform.
#[derive(Debug, Default)]
pub(crate) struct Sightings {
    first_seen: Mutex<HashMap<&'static str, HashMap<PlatformId, Instant>>>,
}

impl Sightings {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<&'static str, HashMap<PlatformId, Instant>>> {
        self.first_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn forget(sightings: &Sightings, platform: &'static str, id: &PlatformId) {
    if let Some(seen) = sightings.lock().get_mut(platform) {
        seen.remove(id);
    }
}

/// Whether `marked` is the resource of `record`, an active bot of this
/// service's platform.
fn holds(record: &BotRecord, platform: &str, marked: &MarkedBot) -> bool {
    let active = match record.state() {
        Ok(state) => !state.is_terminal() || record.cleanup_pending(),
        // A record this version cannot read is never swept from under it.
        Err(_) => true,
    };
    if !active || record.platform() != platform {
        return false;
    }
    match record.platform_id() {
        Some(recorded) => recorded == marked.identifier,
        // A deploy in flight: its resource is the current attempt's.
        None => marked.attempt.is_none_or(|a| a == record.attempt()),
    }
}

/// What an orphan's bot is in this database, for the log line.
fn whose(record: Option<&BotRecord>) -> String {
    match record {
        None => "a bot this database does not hold".to_owned(),
        Some(record) => format!(
            "bot {} is {} at attempt {}{}",
            record.id(),
            record.state().map_or("unreadable", BotState::as_str),
            record.attempt(),
            record
                .platform_id()
                .map(|id| format!(" holding {id}"))
                .unwrap_or_default()
        ),
    }
}

impl BotService {
    /// Runs one orphan sweep on every platform the service holds (see the
    /// [module docs](crate::orphan_sweep)), when this process holds the
    /// platform sweep's lease: with several replicas only one sweeps at a
    /// time.
    pub async fn sweep_orphans(&self) -> ServiceResult<SweepReport> {
        if !self.hold_sweep_lease().await? {
            return Ok(SweepReport {
                not_lease_holder: true,
                ..SweepReport::default()
            });
        }
        let mut total = SweepReport::default();
        for platform in self.inner.platforms.iter() {
            let report = self.sweep_platform_orphans(platform).await?;
            total.listed += report.listed;
            total.held += report.held;
            total.suspected += report.suspected;
            total.stopped += report.stopped;
            total.errors += report.errors;
        }
        Ok(total)
    }

    async fn sweep_platform_orphans(
        &self,
        platform: &ListedPlatform,
    ) -> ServiceResult<SweepReport> {
        let name = platform.name();
        let span = tracing::info_span!("orphan_sweep", platform = name);
        async {
            let mut report = SweepReport::default();
            let marked = match platform.calls.list_marked().await {
                Ok(marked) => marked,
                Err(error) => {
                    tracing::warn!(error = %error, "the platform could not list its bots; no orphan is looked for this time");
                    report.errors += 1;
                    return Ok(report);
                }
            };
            report.listed = marked.len();
            let unheld = self.unheld(name, marked).await?;
            report.held = report.listed - unheld.len();
            let now = Instant::now();
            let min_gap = self.inner.options.platform_call_timeout;
            let due: Vec<MarkedBot> = {
                let mut sightings = self.inner.sightings.lock();
                let first_seen = sightings.entry(name).or_default();
                let current: HashSet<&PlatformId> = unheld.iter().map(|m| &m.identifier).collect();
                first_seen.retain(|id, _| current.contains(id));
                let mut due = Vec::new();
                for marked in unheld {
                    match first_seen.get(&marked.identifier) {
                        Some(seen) if now.duration_since(*seen) >= min_gap => due.push(marked),
                        Some(_) => {}
                        None => {
                            tracing::info!(
                                platform_id = %marked.identifier,
                                bot_id = %marked.bot,
                                what = %marked.description,
                                "runs under this installation's mark but no active bot holds it; it is stopped if the next sweep finds it so"
                            );
                            first_seen.insert(marked.identifier.clone(), now);
                            report.suspected += 1;
                        }
                    }
                }
                due
            };
            for marked in due {
                // Once more against the database: a deploy may have recorded
                // it since the listing.
                let record = self.store().get_bot(marked.bot).await?;
                if record
                    .as_ref()
                    .is_some_and(|r| holds(r, name, &marked))
                {
                    forget(&self.inner.sightings, name, &marked.identifier);
                    report.held += 1;
                    continue;
                }
                match self.stop_orphan(platform, &marked, record.as_ref()).await {
                    true => report.stopped += 1,
                    false => report.errors += 1,
                }
            }
            if report.stopped > 0 || report.suspected > 0 || report.errors > 0 {
                tracing::info!(?report, "orphan sweep done");
            } else {
                tracing::debug!(?report, "orphan sweep done");
            }
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// The listed resources no active bot of this database holds.
    async fn unheld(
        &self,
        platform: &str,
        marked: Vec<MarkedBot>,
    ) -> ServiceResult<Vec<MarkedBot>> {
        let mut ids: Vec<BotId> = marked.iter().map(|m| m.bot).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut records: HashMap<BotId, BotRecord> = HashMap::new();
        for chunk in ids.chunks(500) {
            for record in self.store().get_bots(chunk).await? {
                records.insert(record.id(), record);
            }
        }
        Ok(marked
            .into_iter()
            .filter(|m| !records.get(&m.bot).is_some_and(|r| holds(r, platform, m)))
            .collect())
    }

    /// Stops and cleans up one orphan; whether both succeeded.
    async fn stop_orphan(
        &self,
        platform: &ListedPlatform,
        marked: &MarkedBot,
        record: Option<&BotRecord>,
    ) -> bool {
        let id = &marked.identifier;
        let why = whose(record);
        let stopped = match platform.calls.stop(id).await {
            Ok(()) => platform.calls.cleanup(id).await,
            Err(error) => Err(error),
        };
        match stopped {
            Ok(()) => {
                forget(&self.inner.sightings, platform.name(), id);
                self.metrics().record_orphan_stopped(platform.name());
                tracing::warn!(
                    platform_id = %id,
                    bot_id = %marked.bot,
                    attempt = marked.attempt,
                    what = %marked.description,
                    why = %why,
                    "stopped a bot that ran under this installation's mark with no active bot holding it, on two sweeps"
                );
                true
            }
            Err(error) => {
                tracing::warn!(platform_id = %id, error = %error, "could not stop an orphan; the next sweep tries again");
                false
            }
        }
    }
}
