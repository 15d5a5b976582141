//! Asking a bot to leave its meeting politely: the next heartbeat answers
//! `leave: true`, the bot reports `call_ended`/`left_on_request` and exits;
//! one that has not ended within `LEAVE_GRACE` is stopped as `stop` does
//! (by the [watchdog](super::watchdog)). `stop` stays the hard stop.

use platform_core::BotId;
use tracing::Instrument;

use super::BotService;

use crate::bot::{Bot, BotState};
use crate::error::ServiceResult;

impl BotService {
    /// Asks a bot to leave. A pending bot (nothing runs) is stopped at
    /// once; a stopping bot is already on its way out; an ended bot is
    /// refused (`illegal_transition`). Asking twice keeps the first time.
    pub async fn leave(&self, id: BotId) -> ServiceResult<Bot> {
        let span = tracing::info_span!("leave", bot_id = %id);
        async {
            for _ in 0..5 {
                let record = self.load(id).await?;
                if record.state()?.is_active() {
                    // Left alone (and said so) when its platform is not
                    // configured here.
                    self.calls_for(&record)?;
                }
                match record.state()? {
                    BotState::Pending | BotState::Scheduled | BotState::Queued => {
                        return self.stop(id).await;
                    }
                    BotState::Stopping => return Ok(record.to_bot()?),
                    state @ (BotState::Stopped | BotState::Failed) => {
                        state.check_move(id, BotState::Stopping)?;
                    }
                    BotState::Deploying | BotState::Running => {
                        if let Some(asked) = self.store_ref().request_leave(id).await? {
                            tracing::info!(
                                grace_s = self.inner.options.leave_grace.as_secs(),
                                "leave requested; the bot's next heartbeat tells it"
                            );
                            return Ok(asked.to_bot()?);
                        }
                    }
                }
            }
            Err(crate::ServiceError::Storage(
                crate::StoreError::Unavailable(format!(
                    "bot {id} kept changing while leave was being requested; try again"
                )),
            ))
        }
        .instrument(span)
        .await
    }
}
