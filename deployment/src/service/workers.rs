//! Deploy workers: the platform calls of deploys and of unfinished stops
//! run here, one lane per platform, never inside a request or a reconciler
//! pass.
//!
//! A create, the scheduler, the queue drain and the reconciler decide in
//! the database — the bot is placed (`deploying` at a new attempt), or
//! found `deploying` without an answer, `stopping`, or ended with cleanup
//! pending — and hand the bot over. Each platform's lane starts jobs in the
//! order they were handed over, so a burst is deployed in `join_at` then
//! creation order, with at most `DEPLOY_CONCURRENCY` jobs of that platform
//! running at once; the platform's own pacing spreads their calls under
//! its rate limits. A request answers as soon as the bot is handed over
//! (unless its caller asked to wait), and a reconciler pass stays a sweep
//! whatever the backlog.
//!
//! Order holds up to the platform: a lane starts a deploy job only once the
//! one before it is calling its platform (or ended without a call), so the
//! calls reach the platform's pacing, which lets them out in the order they
//! came, in the order the bots were handed over.
//!
//! A bot is in a lane at most once: handing over a bot whose job waits or
//! runs changes nothing. A job acts on the bot's row as it is when the job
//! starts, not as it was when handed over: a deploy whose bot was stopped
//! meanwhile calls nothing, a stop that finished is not repeated, and a bot
//! another service process holds (its lease) is left to that process. Jobs
//! live in memory; a crash loses the waiting ones, whose bots the
//! reconciler hands over again once their leases lapse (the deploy
//! contract makes a repeated call of one attempt idempotent).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use platform_core::BotId;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use super::{BotService, DeployCall, Inner, Placement};

use crate::bot::BotState;
use crate::error::ServiceResult;
use crate::store::{BotRecord, Transition};

tokio::task_local! {
    /// A running deploy job's turn: given back to its lane once the job
    /// calls its platform.
    static TURN: std::cell::RefCell<Option<oneshot::Sender<()>>>;
}

/// A deploy is about to call its platform: the lane may start the next
/// job, whose call then comes after this one. Nothing outside a job.
pub(crate) fn calling_platform() {
    let _ = TURN.try_with(|turn| {
        if let Some(turn) = turn.borrow_mut().take() {
            let _ = turn.send(());
        }
    });
}

/// What a worker does with a bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Job {
    /// Calls the platform for this attempt of the bot's deploy (and moves
    /// on down the priority list when it answers "no capacity, nothing
    /// started").
    Deploy {
        /// The attempt the bot was placed at; a bot at another attempt by
        /// the time the job starts is left alone.
        attempt: u32,
        /// The first call of the attempt, or a repeat after a lost answer.
        call: DeployCall,
    },
    /// Finishes what the bot's row asks for: a `stopping` bot is stopped
    /// and cleaned up, an ended bot with cleanup pending is cleaned up.
    Finish,
}

/// What a job came to: the bot after it, or `None` when the job found
/// nothing to do (the bot moved on, or another process holds it).
pub(crate) type JobResult = ServiceResult<Option<BotRecord>>;

/// Waits for a job handed over to a worker.
#[derive(Debug)]
pub(crate) struct JobHandle(oneshot::Receiver<JobResult>);

impl JobHandle {
    /// The job's result once it ran.
    pub(crate) async fn finished(self) -> JobResult {
        match self.0.await {
            Ok(result) => result,
            // The runtime running the job went away with it.
            Err(_) => Ok(None),
        }
    }
}

/// How many jobs one platform's lane holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneLoad {
    /// Handed over and waiting for a worker.
    pub waiting: usize,
    /// Running (a platform call in flight).
    pub running: usize,
}

/// The lanes of every platform the service holds.
pub(crate) struct Workers {
    lanes: HashMap<&'static str, Lane>,
    /// Bots with a job waiting or running.
    busy: Mutex<HashSet<BotId>>,
    concurrency: usize,
}

struct Lane {
    /// Where jobs are handed over; started on first use, on the runtime of
    /// the caller, and again should that runtime have gone.
    sender: Mutex<Option<mpsc::UnboundedSender<Handed>>>,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

struct Handed {
    bot: BotId,
    job: Job,
    done: oneshot::Sender<JobResult>,
    /// Keeps the bot marked busy until the job ends, or until the job is
    /// dropped unstarted (its lane's runtime went away).
    busy: BusyGuard,
}

/// Why a job was not handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotHanded {
    /// The bot has a job waiting or running already: that one goes on.
    Busy,
    /// No worker can run it: the service does not hold the platform, or
    /// there is no runtime to run a lane on.
    NoWorker,
}

impl Workers {
    /// Lanes for `platforms`, each running at most `concurrency` jobs.
    pub(crate) fn new(platforms: &[&'static str], concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            lanes: platforms
                .iter()
                .map(|name| {
                    (
                        *name,
                        Lane {
                            sender: Mutex::new(None),
                            permits: Arc::new(Semaphore::new(concurrency)),
                            waiting: Arc::new(AtomicUsize::new(0)),
                        },
                    )
                })
                .collect(),
            busy: Mutex::new(HashSet::new()),
            concurrency,
        }
    }

    /// How many jobs each platform's lane holds now, in no set order.
    pub(crate) fn load(&self) -> Vec<(&'static str, LaneLoad)> {
        self.lanes
            .iter()
            .map(|(name, lane)| {
                (
                    *name,
                    LaneLoad {
                        waiting: lane.waiting.load(Ordering::Relaxed),
                        running: self.concurrency - lane.permits.available_permits(),
                    },
                )
            })
            .collect()
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, HashSet<BotId>> {
        self.busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Takes a bot off the busy set when its job ends, however it ends.
struct BusyGuard {
    inner: Weak<Inner>,
    bot: BotId,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.workers.busy().remove(&self.bot);
        }
    }
}

impl BotService {
    /// How many jobs each platform's deploy workers hold now, in this
    /// process (in no set order).
    pub fn deploy_workers(&self) -> Vec<(&'static str, LaneLoad)> {
        self.inner.workers.load()
    }

    /// Waits until this process's deploy workers hold no job: what a
    /// one-shot command does before its process ends, so no platform call
    /// is cut off.
    pub async fn finish_jobs(&self) {
        while !self.inner.workers.busy().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Hands `job` for the bot on `platform` over to that platform's lane,
    /// or says why it was not.
    pub(crate) fn hand_over(
        &self,
        bot: BotId,
        platform: &str,
        job: Job,
    ) -> Result<JobHandle, NotHanded> {
        let workers = &self.inner.workers;
        let lane = workers.lanes.get(platform).ok_or(NotHanded::NoWorker)?;
        if !workers.busy().insert(bot) {
            return Err(NotHanded::Busy);
        }
        let (done, handle) = oneshot::channel();
        let busy = BusyGuard {
            inner: Arc::downgrade(&self.inner),
            bot,
        };
        let mut handed = Handed {
            bot,
            job,
            done,
            busy,
        };
        let mut sender = lane
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for _ in 0..2 {
            if let Some(tx) = sender.as_ref() {
                lane.waiting.fetch_add(1, Ordering::Relaxed);
                match tx.send(handed) {
                    Ok(()) => return Ok(JobHandle(handle)),
                    Err(mpsc::error::SendError(back)) => {
                        lane.waiting.fetch_sub(1, Ordering::Relaxed);
                        handed = back;
                    }
                }
            }
            // First use, or the lane's runtime is gone: start it here.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                break;
            };
            let (tx, rx) = mpsc::unbounded_channel();
            runtime.spawn(dispatch(
                Arc::downgrade(&self.inner),
                rx,
                lane.permits.clone(),
                lane.waiting.clone(),
            ));
            *sender = Some(tx);
        }
        drop(sender);
        // Dropping the job takes the bot off the busy set.
        drop(handed);
        Err(NotHanded::NoWorker)
    }

    /// Runs one job: takes the bot's lease (unless another process holds
    /// it), acts on its current row, gives the lease back.
    async fn run_job(&self, bot: BotId, job: Job) -> JobResult {
        let owner = self.inner.instance.as_str();
        let Some(record) = self
            .store_ref()
            .take_free_lease(bot, owner, self.lease_until())
            .await?
        else {
            tracing::debug!(bot_id = %bot, "another service process acts on the bot; the job is left to it");
            return Ok(None);
        };
        let result = self.act(record, job).await;
        if let Err(error) = self.store_ref().release_lease(bot, owner).await {
            tracing::debug!(bot_id = %bot, error = %error, "could not release the bot's lease; it lapses on its own");
        }
        result
    }

    async fn act(&self, record: BotRecord, job: Job) -> JobResult {
        let state = record.state()?;
        match job {
            Job::Deploy { attempt, call } => {
                // Stopped while its first call waited here: nothing was
                // sent for this attempt, so nothing runs.
                if state == BotState::Stopping
                    && call == DeployCall::First
                    && record.attempt() == attempt
                    && record.platform_id().is_none()
                {
                    let t = Transition::new(
                        record.id(),
                        BotState::Stopping,
                        attempt,
                        BotState::Stopped,
                        "stopped before its deploy called the platform; nothing was started",
                    );
                    return self.move_bot(t).await;
                }
                if state != BotState::Deploying
                    || record.attempt() != attempt
                    || record.platform_id().is_some()
                {
                    return Ok(None);
                }
                let id = record.id();
                match self.run_placement(record, Some(call)).await? {
                    Placement::Deployed(record) | Placement::Queued(record) => Ok(Some(record)),
                    Placement::NoRoom { .. } | Placement::Moved => {
                        Ok(self.store_ref().get_bot(id).await?)
                    }
                }
            }
            Job::Finish => match state {
                BotState::Stopping => Ok(Some(self.drive_stop(record, true).await?)),
                s if s.is_terminal() && record.cleanup_pending() => {
                    Ok(Some(self.drive_cleanup(record).await?))
                }
                _ => Ok(None),
            },
        }
    }
}

/// A lane: starts handed-over jobs in order, each once a worker is free.
async fn dispatch(
    service: Weak<Inner>,
    mut jobs: mpsc::UnboundedReceiver<Handed>,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
) {
    while let Some(handed) = jobs.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        waiting.fetch_sub(1, Ordering::Relaxed);
        // The service is gone: so is everyone waiting for its jobs.
        let Some(inner) = service.upgrade() else {
            break;
        };
        let Handed {
            bot,
            job,
            done,
            busy,
        } = handed;
        let service = BotService { inner };
        let span = tracing::info_span!("worker", bot_id = %bot, job = ?job);
        let (turn, turn_given_back) = oneshot::channel();
        tokio::spawn(TURN.scope(
            std::cell::RefCell::new(Some(turn)),
            async move {
                let result = service.run_job(bot, job).await;
                if let Err(error) = &result {
                    tracing::warn!(error = %error, "the job failed; the reconciler hands the bot over again");
                }
                drop(busy);
                drop(permit);
                let _ = done.send(result);
            }
            .instrument(span),
        ));
        // Given back at the platform call, or dropped when the job ends.
        if matches!(job, Job::Deploy { .. }) {
            let _ = turn_given_back.await;
        }
    }
}
