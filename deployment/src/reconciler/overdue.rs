//! Deploys past the deploy timeout: failed, and what they started
//! released.

use super::report::Outcome;
use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::service::{AttemptBot, BotService};
use crate::store::{BotRecord, Transition};

impl BotService {
    /// A deploy past its deadline that the platform never answered. The
    /// call may still have started a bot (it timed out, or the process died
    /// after the platform accepted it), so the platform is asked for the
    /// attempt's bot first and what it started is released with the
    /// failure. While the platform does not answer, the bot stays
    /// `deploying`: failing it now would forget a bot that may be running.
    pub(super) async fn fail_overdue_unconfirmed(
        &self,
        record: BotRecord,
    ) -> ServiceResult<Outcome> {
        match self.find_attempt_bot(&record).await? {
            AttemptBot::Found { record, .. } => self.fail_overdue(*record).await,
            AttemptBot::NothingRuns(_) => self.fail_overdue(record).await,
            AttemptBot::Unanswered(why) => {
                let reason = format!(
                    "not running within the deploy timeout of {} s; the platform must say what it started before the bot is failed ({why}); it will be retried",
                    self.inner.options.deploy_timeout.as_secs()
                );
                self.store()
                    .set_reason(record.id(), BotState::Deploying, record.attempt(), &reason)
                    .await?;
                Ok(Outcome::Nothing)
            }
            AttemptBot::Moved => Ok(Outcome::Nothing),
        }
    }

    pub(super) async fn fail_overdue(&self, record: BotRecord) -> ServiceResult<Outcome> {
        let reason = format!(
            "not running within the deploy timeout of {} s{}",
            self.inner.options.deploy_timeout.as_secs(),
            if record.platform_id().is_none() {
                "; the platform never confirmed the deploy"
            } else {
                ""
            }
        );
        let mut t = Transition::new(
            record.id(),
            BotState::Deploying,
            record.attempt(),
            BotState::Failed,
            &reason,
        );
        t.cleanup_pending = Some(record.platform_id().is_some());
        match self.move_bot(t).await? {
            Some(moved) if moved.cleanup_pending() => {
                self.drive_cleanup(moved).await?;
                Ok(Outcome::TimedOut)
            }
            Some(_) => Ok(Outcome::TimedOut),
            None => Ok(Outcome::Nothing),
        }
    }
}
