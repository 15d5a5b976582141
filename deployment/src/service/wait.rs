//! How long a caller of a deploy waits for it: not at all (the API's
//! default: the platform call runs in the deploy workers), until the
//! platform answered, or until the bot runs or ended (`Prefer: wait=N`, the
//! CLI) — with its progress shown as it goes.

use std::time::Duration;

use platform_core::BotId;

use super::{BotService, JobHandle};

use crate::bot::{Bot, BotState};
use crate::error::ServiceResult;
use crate::store::BotRecord;

/// How often a waiting caller looks at its bot.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How often a waiting caller asks the platform about a bot it accepted,
/// when no reconciler may be running to do it (a one-shot command).
const ASK_PLATFORM_EVERY: Duration = Duration::from_secs(2);

/// How long a deploy's caller waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployWait {
    /// Not at all: the bot is placed (or queued, or scheduled) and its
    /// platform call handed to the deploy workers; the answer is the bot as
    /// placed. A refusal by the platform shows on the bot (`failed`, with
    /// the reason) and in webhooks. The API's default.
    No,
    /// Not at all, and nothing is started in this process: only the deploy
    /// intent is recorded, and the scheduler of any `serve` or `reconcile`
    /// process deploys the bot on its next round (within a second under
    /// `serve`). For one-shot commands, whose process ends with them.
    Later,
    /// Until the platform answered the deploy call (the bot `deploying`
    /// with its identifier, `running`, `queued` or `failed`); a refusal is
    /// the caller's error (`deploy_failed`). What the library's
    /// [`create_bot`](BotService::create_bot) and
    /// [`deploy`](BotService::deploy) do.
    ForPlatform,
    /// Until the bot is `running` or ended, or this long passed
    /// (`Prefer: wait=N`); a refusal is the caller's error. A scheduled
    /// or queued bot is answered at once: it waits for its time, or for
    /// capacity to free, which may be hours away; so is a deploy the
    /// platform did not confirm (the reconciler repeats it).
    UpTo(Duration),
}

impl BotService {
    /// Waits for a deploy as `wait` asks, calling `progress` with the bot
    /// each time its status or reason changes, and returns the bot as it is
    /// then.
    pub(super) async fn await_deploy(
        &self,
        id: BotId,
        handle: Option<JobHandle>,
        wait: DeployWait,
        progress: &mut (dyn FnMut(&Bot) + Send),
    ) -> ServiceResult<Bot> {
        let up_to = match wait {
            DeployWait::No | DeployWait::Later => return self.shown(self.load(id).await?).await,
            DeployWait::ForPlatform => {
                if let Some(handle) = handle {
                    handle.finished().await?;
                }
                let bot = self.shown(self.load(id).await?).await?;
                progress(&bot);
                return Ok(bot);
            }
            DeployWait::UpTo(up_to) => up_to,
        };
        let deadline = tokio::time::Instant::now() + up_to;
        let mut handle = handle.map(|h| Box::pin(h.finished()));
        let mut job_done = false;
        let mut shown: Option<(BotState, Option<String>)> = None;
        let mut asked_at: Option<tokio::time::Instant> = None;
        loop {
            let record = self.load(id).await?;
            let state = record.state()?;
            let now = (state, record.reason.clone());
            if shown.as_ref() != Some(&now) {
                progress(&self.shown(record.clone()).await?);
                shown = Some(now);
            }
            // A deploy the platform did not confirm (a timeout, a 5xx) is
            // the reconciler's to repeat: that is the answer too.
            let unconfirmed =
                job_done && state == BotState::Deploying && record.platform_id().is_none();
            let settled = matches!(
                state,
                BotState::Running | BotState::Scheduled | BotState::Queued
            ) || state.is_terminal()
                || unconfirmed;
            if settled || tokio::time::Instant::now() >= deadline {
                return self.shown(record).await;
            }
            let pause =
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + LOOK_EVERY));
            match handle.as_mut() {
                Some(job) => {
                    tokio::select! {
                        result = job => {
                            handle = None;
                            job_done = true;
                            result?;
                        }
                        () = pause => {}
                    }
                }
                None => {
                    if asked_at.is_none_or(|at| at.elapsed() >= ASK_PLATFORM_EVERY) {
                        asked_at = Some(tokio::time::Instant::now());
                        self.ask_platform(record).await?;
                    }
                    pause.await;
                }
            }
        }
    }

    /// Asks the platform about a bot it accepted and acts on the answer
    /// (the reconciler's evidence rules: only evidence moves a bot).
    async fn ask_platform(&self, record: BotRecord) -> ServiceResult<()> {
        if record.state()? != BotState::Deploying {
            return Ok(());
        }
        let (Some(platform_id), Ok(calls)) = (record.platform_id(), self.calls_for(&record)) else {
            return Ok(());
        };
        if let Ok(status) = calls.status(&platform_id).await {
            self.apply_observation(record, &status).await?;
        }
        Ok(())
    }
}
