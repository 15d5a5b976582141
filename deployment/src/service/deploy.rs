//! Deploying a bot: placement, the intent first, then the platform call,
//! then its answer recorded (see the table in the [service docs](super)).

use platform_core::{BotId, ErrorKind};
use tracing::Instrument;

use super::BotService;
use super::placement::{DeployAnswer, Placement, describe_nothing_started};

use crate::bot::{Bot, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::failpoint;
use crate::store::{BotRecord, Transition};

impl BotService {
    /// Deploys a pending bot: placed on the first platform with room, or
    /// queued; one with a `join_at` whose deploy time is ahead is
    /// scheduled. The deploy intent is written first, so a crash before the
    /// platform call leaves a due bot the scheduler deploys. A bot that is
    /// already scheduled, queued, deploying or running is returned as it
    /// is: nothing new is started. See the module docs for
    /// what each platform answer does.
    pub async fn deploy(&self, id: BotId) -> ServiceResult<Bot> {
        let span = tracing::info_span!("deploy", bot_id = %id);
        async {
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
                        return self.shown(record).await;
                    }
                    BotState::Pending => {}
                    other => other.check_move(id, BotState::Deploying).map(|_| ())?,
                }
                if let Some(scheduled) = self.schedule_pending(&record).await? {
                    return self.shown(scheduled).await;
                }
                let record = if record.deploy_at_ms().is_none() {
                    match self
                        .store_ref()
                        .mark_deploy_intent(id, self.clock_ms(), owner, self.intent_lease_until())
                        .await?
                    {
                        Some(record) => record,
                        None => continue,
                    }
                } else {
                    record
                };
                let placed = self.place_and_deploy(record).await;
                self.store_ref().release_lease(id, owner).await?;
                match placed? {
                    Placement::Deployed(record) | Placement::Queued(record) => {
                        return self.shown(record).await;
                    }
                    Placement::NoRoom { .. } | Placement::Moved => {}
                }
            }
            Err(ServiceError::Storage(
                crate::store::StoreError::Unavailable(format!(
                    "bot {id} kept changing while it was being deployed; try again"
                )),
            ))
        }
        .instrument(span)
        .await
    }

    /// Calls the bot's platform for its current attempt and records the
    /// answer; a platform that started nothing sends the bot on to the next
    /// platform with room, or to the queue. Used by the reconciler to
    /// re-drive a deploy a crash left half-done, with the same attempt
    /// ([`DeployCall::Repeat`]).
    pub(crate) async fn drive_deploy(
        &self,
        record: BotRecord,
        call: DeployCall,
    ) -> ServiceResult<BotRecord> {
        let id = record.id();
        match self.run_placement(record, Some(call)).await? {
            Placement::Deployed(record) | Placement::Queued(record) => Ok(record),
            Placement::NoRoom { .. } | Placement::Moved => self.load(id).await,
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
