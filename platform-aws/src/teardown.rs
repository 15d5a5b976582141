//! Confirming that stopped tasks stopped, in few reads.
//!
//! A stop is one StopTask and then DescribeTasks until ECS says the task is
//! `STOPPED`. Read one bot at a time, a mass stop would run at the read
//! bucket's pace (20 a second); instead every status asked for by a
//! teardown joins a gathering [`StatusBatch`]: the first waiter waits
//! [`GATHER_WINDOW`] for others, then reads all of them in one
//! DescribeTasks per 100 tasks (the batch status path,
//! [`get_bot_statuses`](platform_core::PlatformService::get_bot_statuses)),
//! and hands each waiter its task's status. A hundred stops in flight at one
//! moment cost a hundred StopTask calls and a DescribeTasks or two per look.
//!
//! A task whose stop was asked for but that is not `STOPPED` yet (ECS still
//! draining it: DEACTIVATING, STOPPING, DEPROVISIONING, or a listing that
//! lags behind the StopTask) is looked at again every [`RECHECK_EVERY`],
//! never reported stopped; after [`CONFIRM_WAIT`] the teardown answers a
//! retryable error and the service tries again later.
//!
//! The batch is driven by one of its waiters, not by a task of its own: the
//! first waiter to find nobody driving gathers, reads and hands out; a
//! waiter whose driver went away (its caller gave up) takes over.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use platform_core::{BotStatus, Error, PlatformId, PlatformService, Result, StatusKind};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::PLATFORM_NAME;
use crate::service::{AwsEcsPlatform, CLEANUP_REASON, StopAnswer};

/// How long the first status of a batch waits for others to join.
pub(crate) const GATHER_WINDOW: Duration = Duration::from_millis(100);

/// How often a task that is still stopping is looked at again.
pub(crate) const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// How long a teardown waits for ECS to report the task `STOPPED` before
/// it answers "not confirmed yet" (the service retries later). Short: a
/// stop request and a reconciler pass wait this long at most per bot, and
/// a Fargate task takes longer than this to drain anyway (its SIGTERM
/// grace, then deprovisioning), so the reconciler usually confirms it.
pub(crate) const CONFIRM_WAIT: Duration = Duration::from_secs(5);

/// Where a waiter's status is sent.
type Reply = oneshot::Sender<Result<BotStatus>>;

/// The statuses waiting to be read together.
#[derive(Debug, Default)]
pub(crate) struct StatusBatch {
    state: Mutex<Gathering>,
    /// Wakes the waiters when a driver lets go.
    released: Notify,
}

#[derive(Debug, Default)]
struct Gathering {
    waiting: Vec<(PlatformId, Reply)>,
    driving: bool,
}

impl StatusBatch {
    fn state(&self) -> MutexGuard<'_, Gathering> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lead when nobody drives.
    fn take_lead(&self) -> bool {
        let mut state = self.state();
        !std::mem::replace(&mut state.driving, true)
    }
}

/// Lets go of the lead when the driver is done or gone, and wakes the
/// waiters so one of them takes over.
struct Lead<'a>(&'a StatusBatch);

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.0.state().driving = false;
        self.0.released.notify_waiters();
    }
}

impl AwsEcsPlatform {
    /// The status of `id`, read together with every other status asked for
    /// at about the same moment.
    pub(crate) async fn batched_status(&self, id: &PlatformId) -> Result<BotStatus> {
        let batch = &self.teardowns;
        let (reply, mut answer) = oneshot::channel();
        batch.state().waiting.push((id.clone(), reply));
        loop {
            let released = batch.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if batch.take_lead() {
                let lead = Lead(batch);
                self.read_batch().await;
                drop(lead);
            }
            tokio::select! {
                biased;
                status = &mut answer => match status {
                    Ok(status) => return status,
                    // The driver that held this request went away: ask again.
                    Err(_) => {
                        let (reply, again) = oneshot::channel();
                        answer = again;
                        batch.state().waiting.push((id.clone(), reply));
                    }
                },
                () = &mut released => {}
                // Never stuck on a wake-up that went to someone else.
                () = tokio::time::sleep(GATHER_WINDOW * 5) => {}
            }
        }
    }

    /// One batch: gathers, reads every waiting status in one go, hands them
    /// out.
    async fn read_batch(&self) {
        tokio::time::sleep(GATHER_WINDOW).await;
        let waiting = std::mem::take(&mut self.teardowns.state().waiting);
        if waiting.is_empty() {
            return;
        }
        let ids: Vec<PlatformId> = waiting.iter().map(|(id, _)| id.clone()).collect();
        tracing::debug!(
            tasks = ids.len(),
            "reading the statuses of a batch of stopping tasks"
        );
        match self.get_bot_statuses(&ids).await {
            Ok(statuses) => {
                // A task two teardowns wait for (a stop and a reconciler
                // pass) is asked once and answered to both.
                for (id, reply) in waiting {
                    let status = statuses.get(&id).cloned().unwrap_or_else(|| {
                        BotStatus::unknown("ECS did not mention the task in its answer")
                    });
                    let _ = reply.send(Ok(status));
                }
            }
            Err(error) => {
                // Every waiter gets the error as it was, kind and all.
                for (_, reply) in waiting {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// Makes sure the task of `id` ends: StopTask unless ECS already stops
    /// it, then looks until it is `STOPPED` (or ECS knows no such task).
    pub(crate) async fn confirm_teardown(&self, id: &PlatformId) -> Result<()> {
        let deadline = Instant::now() + self.confirm_wait;
        let mut stop_sent = false;
        loop {
            let status = self.batched_status(id).await?;
            match status.kind {
                kind if kind.is_terminal() => return Ok(()),
                // Asked to stop (by us or anyone): wait for STOPPED.
                StatusKind::Stopping => {}
                // Running, starting or not listed (ECS may not list a task
                // it has just started): stop it, once.
                _ if !stop_sent => {
                    stop_sent = true;
                    if self.stop_task(id, CLEANUP_REASON).await? == StopAnswer::NothingToStop {
                        return Ok(());
                    }
                }
                // Our StopTask is not visible yet.
                _ => {}
            }
            if Instant::now() + RECHECK_EVERY > deadline {
                return Err(Error::Unavailable {
                    platform: PLATFORM_NAME,
                    resource: format!("task {id}"),
                    message: format!(
                        "stop not confirmed: ECS has not reported the task STOPPED within {} s (last seen {}); it is checked again later",
                        self.confirm_wait.as_secs(),
                        status.raw.as_deref().unwrap_or("not listed")
                    ),
                });
            }
            tokio::time::sleep(RECHECK_EVERY).await;
        }
    }
}
