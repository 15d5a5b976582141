//! Stopping a bot and releasing what an ended bot holds.

use platform_core::BotId;
use tracing::Instrument;

use super::{AttemptBot, BotService};

use crate::bot::{Bot, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::failpoint;
use crate::store::{BotRecord, Transition};

impl BotService {
    /// Stops a bot: `stopping` is recorded first, then the platform stops
    /// the bot and cleans up, then `stopped`. A pending bot is stopped at
    /// once (nothing runs); a stopped or failed bot is refused.
    pub async fn stop(&self, id: BotId) -> ServiceResult<Bot> {
        let span = tracing::info_span!("stop", bot_id = %id);
        async {
            let owner = self.inner.instance.clone();
            // A bot may move (deploying → running) between our read and our
            // write; read again and retry a few times.
            for _ in 0..5 {
                let record = self.load(id).await?;
                let state = record.state()?;
                if state.is_active() {
                    // Left alone (and said so) when its platform is not
                    // configured here.
                    self.calls_for(&record)?;
                }
                let attempt = record.attempt();
                match state {
                    BotState::Pending | BotState::Scheduled | BotState::Queued => {
                        let reason = if state == BotState::Scheduled {
                            "cancelled before its deploy time; nothing was started"
                        } else {
                            "stopped before it was deployed"
                        };
                        let t = Transition::new(id, state, attempt, BotState::Stopped, reason);
                        if let Some(moved) = self.move_bot(t).await? {
                            return self.shown(moved).await;
                        }
                    }
                    BotState::Stopped | BotState::Failed => {
                        state.check_move(id, BotState::Stopping)?;
                    }
                    BotState::Stopping => {
                        self.store_ref()
                            .take_lease(id, &owner, self.lease_until())
                            .await?;
                        let outcome = self.drive_stop(record, false).await;
                        self.store_ref().release_lease(id, &owner).await?;
                        return self.shown(outcome?).await;
                    }
                    BotState::Deploying | BotState::Running => {
                        let mut t = Transition::new(
                            id,
                            state,
                            attempt,
                            BotState::Stopping,
                            "stop requested",
                        );
                        t.lease = Some((&owner, self.lease_until()));
                        if let Some(moved) = self.move_bot(t).await? {
                            failpoint::pause_if_armed(failpoint::AFTER_STOP_INTENT).await;
                            let outcome = self.drive_stop(moved, false).await;
                            self.store_ref().release_lease(id, &owner).await?;
                            return self.shown(outcome?).await;
                        }
                    }
                }
            }
            Err(ServiceError::Storage(crate::store::StoreError::Query(
                format!("bot {id} kept changing while it was being stopped; try again"),
            )))
        }
        .instrument(span)
        .await
    }

    /// Finishes a stop: `stop_bot`, `cleanup`, then `stopped`. Without an
    /// identifier (the deploy has not answered), only the reconciler
    /// (`recover_identifier`) asks the platform for the attempt's bot again
    /// ([`find_attempt_bot`](Self::find_attempt_bot)) so it can be stopped.
    pub(crate) async fn drive_stop(
        &self,
        record: BotRecord,
        recover_identifier: bool,
    ) -> ServiceResult<BotRecord> {
        let id = record.id();
        let attempt = record.attempt();
        let platform_id = match record.platform_id() {
            Some(platform_id) => platform_id,
            None if attempt == 0 => {
                let t = Transition::new(
                    id,
                    BotState::Stopping,
                    attempt,
                    BotState::Stopped,
                    "stopped before it was deployed",
                );
                return Ok(self.move_bot(t).await?.unwrap_or(record));
            }
            None if !recover_identifier => {
                let reason = "stop requested; waiting for the platform's answer to the deploy before stopping the bot";
                return Ok(self
                    .store_ref()
                    .set_reason(id, BotState::Stopping, attempt, reason)
                    .await?
                    .unwrap_or(record));
            }
            None => match self.find_attempt_bot(&record).await? {
                AttemptBot::Found { identifier, .. } => identifier,
                AttemptBot::NothingRuns(why) => {
                    let (end, reason) = match record.ending() {
                        Some((end, reason)) => (end, format!("{reason}; {why}")),
                        None => (BotState::Stopped, format!("stopped; {why}")),
                    };
                    let t = Transition::new(id, BotState::Stopping, attempt, end, &reason);
                    return match self.move_bot(t).await? {
                        Some(moved) => Ok(moved),
                        None => self.load(id).await,
                    };
                }
                AttemptBot::Unanswered(why) => {
                    let reason =
                        format!("stop waiting for the platform ({why}); it will be retried");
                    return Ok(self
                        .store_ref()
                        .set_reason(id, BotState::Stopping, attempt, &reason)
                        .await?
                        .unwrap_or(record));
                }
                AttemptBot::Moved => return self.load(id).await,
            },
        };
        let calls = self.calls_for(&record)?;
        let stopped = match calls.stop(&platform_id).await {
            Ok(()) => calls.cleanup(&platform_id).await,
            Err(e) => Err(e),
        };
        match stopped {
            Ok(()) => {
                // A stop started on the bot's word (or its silence) ends as
                // it was recorded: stopped or failed, with that reason.
                let (end, reason) = record
                    .ending()
                    .unwrap_or((BotState::Stopped, "stopped on request"));
                let mut t = Transition::new(id, BotState::Stopping, attempt, end, reason);
                t.cleanup_pending = Some(false);
                Ok(match self.move_bot(t).await? {
                    Some(moved) => moved,
                    None => self.load(id).await?,
                })
            }
            Err(error) => {
                let reason = format!("stop not confirmed yet ({error}); it will be retried");
                Ok(self
                    .store_ref()
                    .set_reason(id, BotState::Stopping, attempt, &reason)
                    .await?
                    .unwrap_or(record))
            }
        }
    }

    /// Releases what an ended bot still holds on its platform.
    pub(crate) async fn drive_cleanup(&self, record: BotRecord) -> ServiceResult<BotRecord> {
        let id = record.id();
        if let Some(platform_id) = record.platform_id() {
            let calls = self.calls_for(&record)?;
            let released = match calls.stop(&platform_id).await {
                Ok(()) => calls.cleanup(&platform_id).await,
                Err(e) => Err(e),
            };
            if let Err(error) = released {
                tracing::warn!(bot_id = %id, error = %error, "cleanup not confirmed; the reconciler retries");
                return Ok(record);
            }
        }
        self.store_ref()
            .finish_cleanup(id, record.attempt())
            .await?;
        tracing::info!(bot_id = %id, "platform resources released");
        self.load(id).await
    }
}
