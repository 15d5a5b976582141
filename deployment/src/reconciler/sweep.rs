//! The platform sweep of a pass: each platform's bots in leased batches,
//! one batch status call each, a decision per bot, its leaked slots.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use platform_core::{BotId, BotStatus, PlatformId};
use tracing::Instrument;

use super::report::{Outcome, ReconcileReport};
use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::platform_set::ListedPlatform;
use crate::service::{BotService, DeployCall, Job, JobHandle, NotHanded};
use crate::store::{BotRecord, now_ms};

impl BotService {
    /// One platform's part of the sweep: its bots in leased batches, one
    /// batch status call each, then its leaked slots.
    pub(super) async fn sweep_platform(
        &self,
        platform: &ListedPlatform,
        report: &mut ReconcileReport,
        handed: &mut HandedOver,
    ) -> ServiceResult<()> {
        let span = tracing::info_span!("reconcile_platform", platform = platform.name());
        async {
            let owner = self.inner.instance.clone();
            let batch_size = self.inner.options.reconcile_batch.max(1);
            let mut after = BotId(0);
            loop {
                let batch = self
                    .store()
                    .lease_batch(
                        platform.name(),
                        &owner,
                        self.reconcile_lease_until(),
                        after,
                        batch_size,
                    )
                    .await?;
                let Some(last) = batch.last() else { break };
                after = last.id();
                let full_batch = batch.len() >= batch_size as usize;
                report.examined += batch.len();
                let statuses = self.batch_statuses(platform, &batch, report).await;
                let statuses = &statuses;
                let owner = &owner;
                let decisions: Vec<Decision> = futures::stream::iter(batch)
                    .map(|record| async move {
                        let id = record.id();
                        let decision = self
                            .reconcile_bot(record, statuses.as_ref())
                            .instrument(tracing::info_span!("reconcile_bot", bot_id = %id))
                            .await
                            .unwrap_or_else(|error| {
                                tracing::warn!(bot_id = %id, error = %error, "reconciling the bot failed; the next pass retries");
                                Decision::Done(Outcome::Error)
                            });
                        // A bot handed over keeps the lease until its job
                        // takes it: no other process takes the bot meanwhile.
                        if !matches!(decision, Decision::Handed { .. })
                            && let Err(error) = self.store().release_lease(id, owner).await
                        {
                            tracing::warn!(bot_id = %id, error = %error, "could not release the lease; it expires on its own");
                        }
                        decision
                    })
                    .buffer_unordered(self.inner.options.reconcile_concurrency.max(1))
                    .collect()
                    .await;
                for decision in decisions {
                    match decision {
                        Decision::Done(outcome) => report.add(outcome),
                        Decision::Handed { outcome, job } => {
                            report.add(outcome);
                            handed.jobs.extend(job);
                        }
                    }
                }
                if !full_batch {
                    break;
                }
            }
            report.released_slots += self.release_orphan_slots(platform.name()).await?;
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Says plainly which bots sit on platforms this service is not
    /// configured for: they are left alone, never swept or orphaned.
    pub(super) async fn report_unconfigured(
        &self,
        report: &mut ReconcileReport,
    ) -> ServiceResult<()> {
        for (platform, bots) in self.store().needing_platform().await? {
            if self.inner.platforms.get(&platform).is_none() {
                report.unconfigured += usize::try_from(bots).unwrap_or(usize::MAX);
                tracing::warn!(
                    platform = %platform,
                    bots,
                    configured = %self.platform_names().join(", "),
                    "bots run on a platform this service is not configured for; they are left alone (add the platform to PLATFORM_PRIORITY to manage them)"
                );
            }
        }
        Ok(())
    }

    /// One batch status call for the batch's deploying and running bots.
    /// `None` when the call failed: no evidence either way.
    async fn batch_statuses(
        &self,
        platform: &ListedPlatform,
        batch: &[BotRecord],
        report: &mut ReconcileReport,
    ) -> Option<HashMap<PlatformId, BotStatus>> {
        let asked: Vec<PlatformId> = batch
            .iter()
            .filter(|r| matches!(r.state(), Ok(BotState::Deploying | BotState::Running)))
            .filter_map(BotRecord::platform_id)
            .collect();
        if asked.is_empty() {
            return Some(HashMap::new());
        }
        match platform.calls.statuses(&asked).await {
            Ok(statuses) => Some(statuses),
            Err(error) => {
                tracing::warn!(error = %error, "batch status read failed; no evidence taken from it");
                report.status_errors += 1;
                None
            }
        }
    }

    /// Gives back slots that ended bots still hold (see
    /// [`Store::release_orphan_slots`](crate::Store::release_orphan_slots)).
    async fn release_orphan_slots(&self, platform: &str) -> ServiceResult<usize> {
        let grace =
            i64::try_from(self.inner.options.orphan_slot_grace.as_millis()).unwrap_or(i64::MAX);
        let released = self
            .store()
            .release_orphan_slots(platform, now_ms().saturating_sub(grace))
            .await?;
        for (pool, slot, bot) in &released {
            tracing::warn!(pool, slot, bot_id = %bot, "slot still held by an ended bot after its cleanup; given back");
        }
        Ok(released.len())
    }

    fn reconcile_lease_until(&self) -> i64 {
        // A batch may re-drive deploys, each bounded by the call timeout and
        // run concurrently; allow a few rounds of them.
        let lease = self.inner.options.platform_call_timeout * 3 + Duration::from_secs(30);
        now_ms() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    async fn reconcile_bot(
        &self,
        record: BotRecord,
        statuses: Option<&HashMap<PlatformId, BotStatus>>,
    ) -> ServiceResult<Decision> {
        let state = record.state()?;
        let observed = record
            .platform_id()
            .and_then(|id| statuses.and_then(|s| s.get(&id)).cloned());
        let done = |outcome| Ok(Decision::Done(outcome));
        match state {
            BotState::Deploying => match (record.platform_id(), observed) {
                (None, _) if self.past_deadline(&record) => {
                    done(self.fail_overdue_unconfirmed(record).await?)
                }
                (None, _) => {
                    tracing::info!(
                        attempt = record.attempt(),
                        "handing over again a deploy left without an answer"
                    );
                    let job = Job::Deploy {
                        attempt: record.attempt(),
                        call: DeployCall::Repeat,
                    };
                    Ok(self.hand(&record, job, Outcome::RedrivenDeploy, Waited::Deploy))
                }
                (Some(_), Some(status)) => {
                    let after = self.apply_observation(record, &status).await?;
                    done(match after.state()? {
                        BotState::Running => Outcome::Promoted,
                        BotState::Failed if !status.kind.is_terminal() => Outcome::TimedOut,
                        s if s.is_terminal() => Outcome::Ended,
                        _ => Outcome::Nothing,
                    })
                }
                // The status read failed: no evidence, unless overdue.
                (Some(_), None) if self.past_deadline(&record) => {
                    done(self.fail_overdue(record).await?)
                }
                (Some(_), None) => done(Outcome::Nothing),
            },
            BotState::Running => match observed {
                Some(status) => {
                    let after = self.apply_observation(record, &status).await?;
                    done(if after.state()?.is_terminal() {
                        Outcome::Ended
                    } else {
                        Outcome::Nothing
                    })
                }
                None => done(Outcome::Nothing),
            },
            BotState::Stopping => {
                Ok(self.hand(&record, Job::Finish, Outcome::HandedOver, Waited::Stop))
            }
            BotState::Stopped | BotState::Failed if record.cleanup_pending() => {
                Ok(self.hand(&record, Job::Finish, Outcome::HandedOver, Waited::Cleanup))
            }
            _ => done(Outcome::Nothing),
        }
    }

    /// Hands a bot's job to the deploy workers; a bot whose job waits or
    /// runs already is left to it.
    fn hand(&self, record: &BotRecord, job: Job, outcome: Outcome, waited: Waited) -> Decision {
        match self.hand_over(record.id(), record.platform(), job) {
            Ok(handle) => Decision::Handed {
                outcome,
                job: Some((waited, handle)),
            },
            Err(NotHanded::Busy) => Decision::Handed { outcome, job: None },
            // Only for a platform the service does not hold, which the
            // sweep never walks; the next pass tries again.
            Err(NotHanded::NoWorker) => Decision::Done(Outcome::Nothing),
        }
    }
}

/// What the reconciler decided for one bot.
enum Decision {
    /// Done within the pass (a status applied, nothing to do).
    Done(Outcome),
    /// A platform call handed to the deploy workers (`job` is `None` when
    /// one was waiting or running already).
    Handed {
        outcome: Outcome,
        job: Option<(Waited, JobHandle)>,
    },
}

/// What a handed-over job was for, to count its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waited {
    Deploy,
    Stop,
    Cleanup,
}

/// The jobs a pass handed to the deploy workers, for a pass that waits for
/// them.
#[derive(Default)]
pub(super) struct HandedOver {
    jobs: Vec<(Waited, JobHandle)>,
}

impl HandedOver {
    /// Waits for every job and counts what the stops and cleanups came to.
    pub(super) async fn finished(self, report: &mut ReconcileReport) {
        for (waited, handle) in self.jobs {
            match (waited, handle.finished().await) {
                (Waited::Deploy, _) => {}
                (Waited::Stop, Ok(Some(record)))
                    if record.state().is_ok_and(|s| s == BotState::Stopped) =>
                {
                    report.add(Outcome::FinishedStop);
                }
                (Waited::Cleanup, Ok(Some(record))) if !record.cleanup_pending() => {
                    report.add(Outcome::CleanedUp);
                }
                (_, Ok(_)) => {}
                (_, Err(_)) => report.add(Outcome::Error),
            }
        }
    }
}
