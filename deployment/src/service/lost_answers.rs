//! Asking the platform again for the bot of an attempt whose answer was
//! lost (a crash, a call that timed out).

use platform_core::PlatformId;

use super::BotService;

use crate::error::ServiceResult;
use crate::platform_calls::PlatformCalls;
use crate::store::BotRecord;
use platform_core::ErrorKind;

/// What the platform answers when asked again for the bot of a deploy
/// attempt whose answer was lost (see [`BotService::find_attempt_bot`]).
pub(crate) enum AttemptBot {
    /// The attempt's bot, now recorded on the bot.
    Found {
        /// Its identifier.
        identifier: PlatformId,
        /// The bot with the identifier recorded (boxed: a record is large
        /// beside the other answers).
        record: Box<BotRecord>,
    },
    /// No bot runs for the attempt (the platform started nothing or refused,
    /// or the stored config cannot be asked with): why.
    NothingRuns(String),
    /// The platform did not answer (a retryable error): why. Ask again on
    /// the next pass.
    Unanswered(String),
    /// The bot moved to another attempt or identifier meanwhile; what the
    /// platform answered was released.
    Moved,
}

impl BotService {
    /// Asks the platform again for the bot of the current attempt, whose
    /// answer was lost (a crash, a call that timed out): by contract it
    /// returns the bot already started, or starts it so it can be stopped.
    /// A found identifier is recorded on the bot.
    pub(crate) async fn find_attempt_bot(&self, record: &BotRecord) -> ServiceResult<AttemptBot> {
        let id = record.id();
        let attempt = record.attempt();
        let Ok(config) = record.config() else {
            // Nothing can be asked; nothing is known to run.
            return Ok(AttemptBot::NothingRuns(
                "the deploy never reported a bot".into(),
            ));
        };
        let calls = self.calls_for(record)?;
        match calls.deploy(&config, attempt).await {
            Ok(result) => {
                let recorded = self
                    .store_ref()
                    .record_deployed(
                        id,
                        attempt,
                        result.identifier.as_str(),
                        result.connection_url.as_deref(),
                    )
                    .await?;
                match recorded {
                    Some(record) => Ok(AttemptBot::Found {
                        identifier: result.identifier,
                        record: Box::new(record),
                    }),
                    None => {
                        self.release_stale(calls, &result.identifier).await;
                        Ok(AttemptBot::Moved)
                    }
                }
            }
            // A repeated call that could not reach the platform says nothing
            // about the call whose answer was lost: ask again later.
            Err(error) if error.kind() == ErrorKind::Unreachable => {
                Ok(AttemptBot::Unanswered(error.to_string()))
            }
            Err(error) if error.nothing_started() || !error.is_retryable() => {
                Ok(AttemptBot::NothingRuns(format!(
                    "the platform started nothing for this attempt ({error})"
                )))
            }
            Err(error) => Ok(AttemptBot::Unanswered(error.to_string())),
        }
    }

    /// Stops and cleans up what the platform started for an attempt the bot
    /// has moved past (another attempt, another identifier), rather than
    /// leak it. Best effort: the answer is stale, nothing records it.
    pub(super) async fn release_stale(&self, calls: &PlatformCalls, identifier: &PlatformId) {
        tracing::warn!(platform_id = %identifier, "stale deploy answer; releasing it");
        let _ = calls.stop(identifier).await;
        let _ = calls.cleanup(identifier).await;
    }
}
