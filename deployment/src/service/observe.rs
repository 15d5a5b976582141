//! Acting on what the platform says about a deploying or running bot.

use std::time::Duration;

use platform_core::{BotStatus, StatusKind};

use super::BotService;

use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::store::{BotRecord, Transition, now_ms};

impl BotService {
    /// Acts on what the platform says about a deploying or running bot.
    /// Only evidence moves a bot: `unknown` and `starting` change nothing,
    /// except that a deploy past its deadline fails.
    pub(crate) async fn apply_observation(
        &self,
        record: BotRecord,
        status: &BotStatus,
    ) -> ServiceResult<BotRecord> {
        let id = record.id();
        let attempt = record.attempt();
        let state = record.state()?;
        let platform_reason = || {
            status
                .reason
                .clone()
                .or_else(|| status.raw.clone())
                .unwrap_or_else(|| "no reason given".into())
        };
        let ended = |to: BotState, reason: String| {
            let mut t = Transition::new(id, state, attempt, to, "");
            t.cleanup_pending = Some(true);
            (t, reason)
        };
        let (transition, reason) = match (state, status.kind) {
            (BotState::Deploying, StatusKind::Running) => {
                let mut t = Transition::new(id, state, attempt, BotState::Running, "");
                t.connection_url = status.connection_url.as_deref();
                (t, "the platform reports it running".to_owned())
            }
            (BotState::Deploying | BotState::Running, StatusKind::Stopped) => ended(
                BotState::Stopped,
                format!("ended on its own: {}", platform_reason()),
            ),
            (BotState::Deploying | BotState::Running, StatusKind::Failed) => ended(
                BotState::Failed,
                format!("the platform reports it failed: {}", platform_reason()),
            ),
            (BotState::Running, _) => {
                if let Some(url) = &status.connection_url
                    && record.connection_url() != Some(url.as_str())
                {
                    self.store_ref().set_connection_url(id, url).await?;
                }
                return Ok(record);
            }
            (BotState::Deploying, _) if self.past_deadline(&record) => ended(
                BotState::Failed,
                format!(
                    "not running within the deploy timeout of {} s (last platform status: {status})",
                    self.inner.options.deploy_timeout.as_secs()
                ),
            ),
            _ => return Ok(record),
        };
        let transition = Transition {
            reason: &reason,
            ..transition
        };
        let became_running = transition.to == BotState::Running;
        match self.move_bot(transition).await? {
            Some(moved) if became_running => {
                if let Some(started) = record.deploy_started_at_ms() {
                    let took = u64::try_from(now_ms().saturating_sub(started)).unwrap_or(0);
                    let platform = self.listed_for(&record)?.name();
                    self.inner
                        .metrics
                        .record_deploy_to_running(platform, Duration::from_millis(took));
                }
                Ok(moved)
            }
            Some(moved) if moved.cleanup_pending() => self.drive_cleanup(moved).await,
            Some(moved) => Ok(moved),
            None => self.load(id).await,
        }
    }

    pub(crate) fn past_deadline(&self, record: &BotRecord) -> bool {
        let timeout =
            i64::try_from(self.inner.options.deploy_timeout.as_millis()).unwrap_or(i64::MAX);
        record
            .deploy_started_at_ms()
            .is_some_and(|started| now_ms().saturating_sub(started) > timeout)
    }
}
