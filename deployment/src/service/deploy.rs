//! Deploying a bot: placement, the intent first, then the platform call,
//! then its answer recorded (see the table in the [service docs](super)).

use platform_core::{BotId, ErrorKind};
use tracing::Instrument;

use super::placement::{DeployAnswer, Step, describe_nothing_started};
use super::workers::NotHanded;
use super::{BotService, DeployWait, Job, JobHandle};

use crate::bot::{Bot, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::failpoint;
use crate::store::{BotRecord, Transition};

/// What placing a bot the caller holds came to.
pub(super) enum PlacedNow {
    /// Placed on a platform (the bot as placed), its platform call handed
    /// to the deploy workers (`None`: it ran already, or runs elsewhere).
    Handed(BotRecord, Option<JobHandle>),
    /// No platform had room: queued (the bot as queued).
    Queued(BotRecord),
    /// It moved meanwhile: read it again.
    Moved,
}

/// A deploy started: the bot as the start left it (`None`: not known
/// without reading it again), and the job that makes its platform call.
pub(super) struct Started {
    pub(super) record: Option<BotRecord>,
    pub(super) handle: Option<JobHandle>,
}

impl Started {
    fn as_it_is(record: BotRecord) -> Self {
        Self {
            record: Some(record),
            handle: None,
        }
    }
}

impl BotService {
    /// Deploys a pending bot and waits until the platform answered (see
    /// [`DeployWait::ForPlatform`]); the same as
    /// [`deploy_with`](Self::deploy_with) with that wait.
    pub async fn deploy(&self, id: BotId) -> ServiceResult<Bot> {
        self.deploy_with(id, DeployWait::ForPlatform, &mut |_| {})
            .await
    }

    /// Deploys a pending bot: placed on the first platform with room (its
    /// platform call handed to the deploy workers), or queued; one with a
    /// `join_at` whose deploy time is ahead is scheduled. The deploy intent
    /// is written first, so a crash before the platform call leaves a due
    /// bot the scheduler deploys. A bot that is already scheduled, queued,
    /// deploying or running is returned as it is: nothing new is started.
    /// `wait` says how long to wait for the platform, `progress` is told
    /// each change seen meanwhile. See the module docs for what each
    /// platform answer does.
    pub async fn deploy_with(
        &self,
        id: BotId,
        wait: DeployWait,
        progress: &mut (dyn FnMut(&Bot) + Send),
    ) -> ServiceResult<Bot> {
        let span = tracing::info_span!("deploy", bot_id = %id);
        async {
            let started = self.start_deploy(id, wait).await?;
            self.await_deploy(id, started, wait, progress).await
        }
        .instrument(span)
        .await
    }

    async fn start_deploy(&self, id: BotId, wait: DeployWait) -> ServiceResult<Started> {
        let owner = self.inner.instance.as_str();
        // The bot may move between our read and our write (another
        // request deployed it): read again and decide again, a few times.
        for _ in 0..5 {
            let record = self.load(id).await?;
            match record.state()? {
                BotState::Scheduled
                | BotState::Queued
                | BotState::Deploying
                | BotState::Running => {
                    return Ok(Started::as_it_is(record));
                }
                BotState::Pending => {}
                other => other.check_move(id, BotState::Deploying).map(|_| ())?,
            }
            if let Some(scheduled) = self.schedule_pending(&record).await? {
                return Ok(Started::as_it_is(scheduled));
            }
            // Only the intent, with no lease: any scheduler takes it now.
            let lease_until = match wait {
                DeployWait::Later => 0,
                _ => self.intent_lease_until(),
            };
            let record = if record.deploy_at_ms().is_none() || wait == DeployWait::Later {
                match self
                    .store_ref()
                    .mark_deploy_intent(id, self.clock_ms(), owner, lease_until)
                    .await?
                {
                    Some(record) => record,
                    None => continue,
                }
            } else {
                record
            };
            if wait == DeployWait::Later {
                return Ok(Started::as_it_is(record));
            }
            match self.place_now(record).await? {
                PlacedNow::Handed(record, handle) => {
                    return Ok(Started {
                        record: Some(record),
                        handle,
                    });
                }
                PlacedNow::Queued(record) => return Ok(Started::as_it_is(record)),
                PlacedNow::Moved => {}
            }
        }
        Err(ServiceError::Storage(
            crate::store::StoreError::Unavailable(format!(
                "bot {id} kept changing while it was being deployed; try again"
            )),
        ))
    }

    /// Places a bot the caller holds (`pending` with its deploy intent, or
    /// `scheduled` and due) on the first platform with room and hands its
    /// platform call to that platform's deploy workers; queues it when no
    /// platform has room. The caller's lease passes to the job; it is given
    /// back when nothing was handed over.
    pub(super) async fn place_now(&self, record: BotRecord) -> ServiceResult<PlacedNow> {
        let id = record.id();
        let mut passed = Vec::new();
        let placed = match self.choose_platform(&record, &[], &mut passed).await? {
            Step::Placed(placed, platform) => {
                let as_placed = placed.clone();
                let handle = self.hand_over_placed(placed, platform).await?;
                return Ok(PlacedNow::Handed(as_placed, handle));
            }
            Step::Queued(queued) => PlacedNow::Queued(queued),
            Step::NoRoom { .. } | Step::Moved => PlacedNow::Moved,
        };
        self.store_ref()
            .release_lease(id, &self.inner.instance)
            .await?;
        Ok(placed)
    }

    /// Hands the first platform call of a bot just placed on `platform` to
    /// that platform's deploy workers, with the placement's lease; the job
    /// gives the lease back. `None` when a job for the bot runs already, or
    /// when no worker could take it and the call was made here (its lease
    /// given back).
    pub(super) async fn hand_over_placed(
        &self,
        placed: BotRecord,
        platform: &'static str,
    ) -> ServiceResult<Option<JobHandle>> {
        let id = placed.id();
        let job = Job::Deploy {
            attempt: placed.attempt(),
            call: DeployCall::First,
        };
        match self.hand_over(id, platform, job) {
            Ok(handle) => Ok(Some(handle)),
            Err(NotHanded::Busy) => Ok(None),
            Err(NotHanded::NoWorker) => {
                let ran = self.run_placement(placed, Some(DeployCall::First)).await;
                self.store_ref()
                    .release_lease(id, &self.inner.instance)
                    .await?;
                ran.map(|_| None)
            }
        }
    }

    /// One platform call for the bot's current attempt, its answer recorded
    /// — except "no capacity, nothing started", which the placement loop
    /// acts on.
    pub(super) async fn call_platform(
        &self,
        record: BotRecord,
        call: DeployCall,
    ) -> ServiceResult<DeployAnswer> {
        let id = record.id();
        let attempt = record.attempt();
        let calls = self.calls_for(&record)?;
        let config = match record.config() {
            Ok(config) => self.with_bot_protocol(config, &record),
            Err(reason) => {
                let reason = format!("its stored configuration is no longer valid: {reason}");
                self.move_bot(Transition::new(
                    id,
                    BotState::Deploying,
                    attempt,
                    BotState::Failed,
                    &reason,
                ))
                .await?;
                return Err(ServiceError::DeployFailed { bot: id, reason });
            }
        };
        let done = |record| Ok(DeployAnswer::Done(record));
        super::workers::calling_platform();
        match calls.deploy(&config, attempt).await {
            Ok(result) => {
                failpoint::pause_if_armed(failpoint::AFTER_PLATFORM_DEPLOY).await;
                let recorded = self
                    .store_ref()
                    .record_deployed(
                        id,
                        attempt,
                        result.identifier.as_str(),
                        result.connection_url.as_deref(),
                    )
                    .await?;
                let Some(record) = recorded else {
                    self.release_stale(calls, &result.identifier).await;
                    return done(self.load(id).await?);
                };
                tracing::info!(platform_id = %result.identifier, "platform accepted the bot");
                done(match record.state()? {
                    BotState::Deploying => {
                        let Some(platform_id) = record.platform_id() else {
                            return done(record);
                        };
                        match calls.status(&platform_id).await {
                            Ok(status) => self.apply_observation(record, &status).await?,
                            // No evidence either way; the reconciler looks again.
                            Err(_) => record,
                        }
                    }
                    BotState::Stopping => self.drive_stop(record, false).await?,
                    state if state.is_terminal() && record.cleanup_pending() => {
                        self.drive_cleanup(record).await?
                    }
                    _ => record,
                })
            }
            // Only the first call of an attempt can prove by "could not
            // reach" that nothing runs for it: a repeated call cannot speak
            // for the one before it, which may have started the bot.
            Err(error) if error.kind() == ErrorKind::Unreachable && call == DeployCall::First => {
                Ok(DeployAnswer::NothingStarted {
                    note: describe_nothing_started(calls.name(), &error),
                    record,
                })
            }
            Err(error) if error.nothing_started() && error.kind() != ErrorKind::Unreachable => {
                Ok(DeployAnswer::NothingStarted {
                    note: describe_nothing_started(calls.name(), &error),
                    record,
                })
            }
            Err(error) if !error.is_retryable() => {
                let reason = format!("the platform refused the bot: {error}");
                let moved = self
                    .move_bot(Transition::new(
                        id,
                        BotState::Deploying,
                        attempt,
                        BotState::Failed,
                        &reason,
                    ))
                    .await?;
                match moved {
                    Some(_) => Err(ServiceError::DeployFailed {
                        bot: id,
                        reason: error.to_string(),
                    }),
                    None => done(self.load(id).await?),
                }
            }
            Err(error) => {
                // It may have started: never read this as "not started". The
                // reconciler calls again with the same attempt.
                let reason = format!(
                    "deploy attempt {attempt} not confirmed yet ({error}); it will be retried with the same attempt"
                );
                done(
                    self.store_ref()
                        .set_reason(id, BotState::Deploying, attempt, &reason)
                        .await?
                        .unwrap_or(record),
                )
            }
        }
    }
}

impl BotService {
    /// Gives the bot the service's URL and its attempt's token, when the
    /// service speaks the bot protocol and the attempt was given a token.
    /// A repeated call of the attempt reads the same token back, so the
    /// platform receives the same environment (ECS refuses a client token
    /// reused with other parameters).
    fn with_bot_protocol(
        &self,
        config: platform_core::BotDeploymentConfig,
        record: &BotRecord,
    ) -> platform_core::BotDeploymentConfig {
        match (
            &self.inner.options.bot_api_url,
            record.unconfirmed_bot_token(),
        ) {
            (Some(api_url), Some(token)) => {
                config.with_bot_protocol(platform_core::BotProtocolAccess {
                    api_url: api_url.clone(),
                    token: crate::bot_protocol::BotToken::from_stored(token).secret(),
                })
            }
            _ => config,
        }
    }
}

/// Whether a deploy call is the first of its attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeployCall {
    /// Right after the intent was recorded: nothing was sent for this
    /// attempt before.
    First,
    /// Again, after a crash or a lost answer: an earlier call of the same
    /// attempt may have started the bot.
    Repeat,
}
