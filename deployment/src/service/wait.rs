//! How long a caller of a deploy waits for it: not at all (the API's
//! default: the platform call runs in the deploy workers), until the
//! platform answered, or until the bot runs or ended (`Prefer: wait=N`, the
//! CLI) — with its progress shown as it goes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use platform_core::{BotId, PlatformId};

use super::BotService;
use super::deploy::Started;

use crate::bot::{Bot, BotState};
use crate::error::ServiceResult;
use crate::platform_set::ListedPlatform;
use crate::store::BotRecord;

/// How often a waiting caller looks at its bot.
const LOOK_EVERY: Duration = Duration::from_millis(200);
/// How often the platform is asked about the bots callers wait for: one
/// batch status call per platform at most this often, for every waiting
/// caller at once (a burst of callers waiting with `Prefer: wait` must not
/// spend the provider's read budget one bot at a time).
const ASK_PLATFORM_EVERY: Duration = Duration::from_secs(2);
/// The most bots one batch status call asks about (one ECS DescribeTasks).
const ASK_AT_MOST: usize = 100;

/// The bots callers wait for, per platform, to be asked about together.
#[derive(Default)]
pub(crate) struct Waiters {
    platforms: Mutex<HashMap<&'static str, Asking>>,
}

#[derive(Default)]
struct Asking {
    /// Bots waited for that the next batch asks about.
    bots: HashSet<BotId>,
    /// When the last batch went out.
    asked_at: Option<tokio::time::Instant>,
    /// Whether a batch is out now.
    in_flight: bool,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Asking>> {
        self.platforms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `bot` to the next batch of `platform`; returns the batch when
    /// it is this caller's turn to send it, with the mark that it is out
    /// (given back when dropped: a caller that goes away mid-batch, its
    /// client gone, does not stop the batches of the others).
    fn next_batch(&self, platform: &'static str, bot: BotId) -> Option<(Vec<BotId>, BatchOut<'_>)> {
        let mut platforms = self.lock();
        let asking = platforms.entry(platform).or_default();
        asking.bots.insert(bot);
        let due = asking
            .asked_at
            .is_none_or(|at| at.elapsed() >= ASK_PLATFORM_EVERY);
        if asking.in_flight || !due {
            return None;
        }
        asking.in_flight = true;
        asking.asked_at = Some(tokio::time::Instant::now());
        let batch: Vec<BotId> = asking.bots.iter().copied().take(ASK_AT_MOST).collect();
        for bot in &batch {
            asking.bots.remove(bot);
        }
        Some((
            batch,
            BatchOut {
                waiters: self,
                platform,
            },
        ))
    }
}

/// A batch status read is out for a platform until this is dropped.
struct BatchOut<'a> {
    waiters: &'a Waiters,
    platform: &'static str,
}

impl Drop for BatchOut<'_> {
    fn drop(&mut self) {
        if let Some(asking) = self.waiters.lock().get_mut(self.platform) {
            asking.in_flight = false;
        }
    }
}

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
        started: Started,
        wait: DeployWait,
        progress: &mut (dyn FnMut(&Bot) + Send),
    ) -> ServiceResult<Bot> {
        let Started { record, handle } = started;
        let up_to = match wait {
            // The bot as the start left it: placed, queued or scheduled.
            DeployWait::No | DeployWait::Later => {
                let record = match record {
                    Some(record) => record,
                    None => self.load(id).await?,
                };
                return self.shown(record).await;
            }
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
                    self.ask_platform(&record).await?;
                    pause.await;
                }
            }
        }
    }

    /// Asks the platform about a bot it accepted, in one batch status call
    /// with the other bots callers wait for on that platform (at most one
    /// every [`ASK_PLATFORM_EVERY`]; the caller whose turn it is sends it),
    /// and acts on the answers (the reconciler's evidence rules: only
    /// evidence moves a bot).
    async fn ask_platform(&self, record: &BotRecord) -> ServiceResult<()> {
        if record.state()? != BotState::Deploying || record.platform_id().is_none() {
            return Ok(());
        }
        let Ok(listed) = self.listed_for(record) else {
            return Ok(());
        };
        let platform = listed.name();
        let waiters = &self.inner.waiters;
        let Some((batch, _out)) = waiters.next_batch(platform, record.id()) else {
            return Ok(());
        };
        self.ask_about(listed, &batch).await
    }

    async fn ask_about(&self, listed: &ListedPlatform, bots: &[BotId]) -> ServiceResult<()> {
        let records: Vec<BotRecord> = self
            .store_ref()
            .get_bots(bots)
            .await?
            .into_iter()
            .filter(|r| matches!(r.state(), Ok(BotState::Deploying)))
            .collect();
        let ids: Vec<PlatformId> = records.iter().filter_map(BotRecord::platform_id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        // No answer is no evidence: the waiters look again next time.
        let Ok(mut statuses) = listed.calls.statuses(&ids).await else {
            return Ok(());
        };
        for record in records {
            if let Some(status) = record.platform_id().and_then(|id| statuses.remove(&id)) {
                self.apply_observation(record, &status).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_whose_caller_went_away_leaves_the_next_one_free() {
        let waiters = Waiters::default();
        let first = waiters.next_batch("aws", BotId(1));
        assert_eq!(first.as_ref().map(|(b, _)| b.clone()), Some(vec![BotId(1)]));
        // While it is out, the others wait for it.
        assert!(waiters.next_batch("aws", BotId(2)).is_none());
        // Its caller goes away mid-read (its client hung up).
        drop(first);
        // Once the batch's interval has passed, the next caller sends the
        // next batch, with the bot left waiting.
        waiters.lock().get_mut("aws").unwrap().asked_at = None;
        let (mut next, _out) = waiters.next_batch("aws", BotId(3)).unwrap();
        next.sort_by_key(|b| b.0);
        assert_eq!(next, [BotId(2), BotId(3)]);
    }
}
