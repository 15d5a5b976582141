//! Deploying a bot: the intent first, then the platform call, then its
//! answer recorded (see the table in the [service docs](super)).

use platform_core::{BotId, ErrorKind};
use tracing::Instrument;

use super::BotService;

use crate::bot::{Bot, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::failpoint;
use crate::store::{BotRecord, Transition};

impl BotService {
    /// Deploys a pending bot. A bot that is already deploying or running is
    /// returned as it is: nothing new is started. See the module docs for
    /// what each platform answer does.
    pub async fn deploy(&self, id: BotId) -> ServiceResult<Bot> {
        let span = tracing::info_span!("deploy", bot_id = %id);
        async {
            let owner = self.inner.instance.as_str();
            // The bot may move between our read and our write (another
            // request deployed it, or a full pool sent it back to pending):
            // read again and decide again, a few times.
            let mut intent = None;
            for _ in 0..5 {
                let record = self.load(id).await?;
                self.check_platform(&record)?;
                match record.state()? {
                    BotState::Deploying | BotState::Running => return Ok(record.to_bot()?),
                    BotState::Pending => {}
                    other => other.check_move(id, BotState::Deploying).map(|_| ())?,
                }
                let token = self.new_bot_token()?;
                intent = self
                    .store_ref()
                    .begin_deploy_with_token(
                        id,
                        "deploy requested",
                        owner,
                        self.lease_until(),
                        token.as_ref(),
                    )
                    .await?;
                if intent.is_some() {
                    break;
                }
            }
            let Some(record) = intent else {
                return Err(ServiceError::Storage(
                    crate::store::StoreError::Unavailable(format!(
                        "bot {id} kept changing while it was being deployed; try again"
                    )),
                ));
            };
            tracing::info!(attempt = record.attempt(), "deploy intent recorded");
            failpoint::pause_if_armed(failpoint::AFTER_DEPLOY_INTENT).await;
            let outcome = self.drive_deploy(record, DeployCall::First).await;
            self.store_ref().release_lease(id, owner).await?;
            outcome.and_then(|r| Ok(r.to_bot()?))
        }
        .instrument(span)
        .await
    }

    /// Calls the platform for the bot's current attempt and records the
    /// answer. Used by [`deploy`](Self::deploy) right after the intent
    /// ([`DeployCall::First`]) and by the reconciler to re-drive a deploy a
    /// crash left half-done, with the same attempt ([`DeployCall::Repeat`]).
    pub(crate) async fn drive_deploy(
        &self,
        record: BotRecord,
        call: DeployCall,
    ) -> ServiceResult<BotRecord> {
        let id = record.id();
        let attempt = record.attempt();
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
        match self.calls().deploy(&config, attempt).await {
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
                    self.release_stale(&result.identifier).await;
                    return self.load(id).await;
                };
                tracing::info!(platform_id = %result.identifier, "platform accepted the bot");
                match record.state()? {
                    BotState::Deploying => {
                        let Some(platform_id) = record.platform_id() else {
                            return Ok(record);
                        };
                        match self.calls().status(&platform_id).await {
                            Ok(status) => self.apply_observation(record, &status).await,
                            // No evidence either way; the reconciler looks again.
                            Err(_) => Ok(record),
                        }
                    }
                    BotState::Stopping => self.drive_stop(record, false).await,
                    state if state.is_terminal() && record.cleanup_pending() => {
                        self.drive_cleanup(record).await
                    }
                    _ => Ok(record),
                }
            }
            // Only the first call of an attempt can prove by "could not
            // reach" that nothing runs for it: a repeated call cannot speak
            // for the one before it, which may have started the bot.
            Err(error) if error.kind() == ErrorKind::Unreachable && call == DeployCall::First => {
                let reason = format!(
                    "not deployed: the platform could not be reached and nothing was sent ({error}); deploy it again once the platform answers"
                );
                let moved = self
                    .move_bot(Transition::new(
                        id,
                        BotState::Deploying,
                        attempt,
                        BotState::Pending,
                        &reason,
                    ))
                    .await?;
                match moved {
                    Some(_) => Err(ServiceError::PlatformUnavailable {
                        bot: id,
                        reason: error.to_string(),
                        retry_after: self.inner.options.pool_retry_after,
                    }),
                    None => self.load(id).await,
                }
            }
            Err(error) if error.nothing_started() && error.kind() != ErrorKind::Unreachable => {
                let reason = format!("not deployed, nothing was started: {error}");
                let moved = self
                    .move_bot(Transition::new(
                        id,
                        BotState::Deploying,
                        attempt,
                        BotState::Pending,
                        &reason,
                    ))
                    .await?;
                match moved {
                    Some(_) => Err(ServiceError::PoolExhausted {
                        bot: id,
                        reason: error.to_string(),
                        retry_after: self.inner.options.pool_retry_after,
                    }),
                    None => self.load(id).await,
                }
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
                    None => self.load(id).await,
                }
            }
            Err(error) => {
                // It may have started: never read this as "not started". The
                // reconciler calls again with the same attempt.
                let reason = format!(
                    "deploy attempt {attempt} not confirmed yet ({error}); it will be retried with the same attempt"
                );
                Ok(self
                    .store_ref()
                    .set_reason(id, BotState::Deploying, attempt, &reason)
                    .await?
                    .unwrap_or(record))
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
