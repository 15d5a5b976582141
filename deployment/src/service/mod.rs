//! The bot deployment service: create, deploy, stop, inspect and list bots,
//! written against [`PlatformService`] alone.
//!
//! # What happens on each kind of platform error
//!
//! The intent (`deploying` with attempt + 1, or `stopping`) is committed
//! before the platform is called, so a crash at any point leaves a record
//! the reconciler finishes. Then:
//!
//! | the platform answers | the bot | the caller gets |
//! | --- | --- | --- |
//! | an identifier | keeps it; `running` as soon as the platform says so | the bot |
//! | pool exhausted, a capacity shortage it calls transient, or could not be reached (nothing started) | placed on the next platform of the priority list with room, or `queued`; the history says so | the bot |
//! | a definite refusal (rejected, unauthorised, bad config, failed to start, permanent capacity) | `failed`, with the reason | `deploy_failed` |
//! | anything that may have started the bot (timeout, 5xx, throttling after the platform's own retries) | stays `deploying`; the reconciler calls again with the same attempt, which the platform contract makes idempotent | the bot, with the reason |
//!
//! The service does not retry platform calls itself: the platform contract
//! has each platform retry its own API calls, so a second loop here would
//! only multiply attempts. The reconciler's next pass is the retry.
//!
//! A stop always stops the platform resource, then cleans up; a stop the
//! platform did not confirm stays `stopping` and the reconciler repeats it.

mod bot_protocol;
mod create;
mod deploy;
mod leave;
mod lost_answers;
mod observe;
mod placement;
mod platforms_view;
mod pool;
pub mod projection;
mod query;
mod queue;
mod readiness;
mod schedule;
mod stop;
mod wait;
mod watchdog;
mod webhooks;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use platform_core::{BotId, PlatformService};

use crate::bot_protocol::{BotRateLimiter, HeartbeatBuffer};
use crate::error::{ServiceError, ServiceResult};
use crate::metrics::Metrics;
use crate::orphan_sweep::Sightings;
use crate::platform_calls::PlatformCalls;
use crate::platform_set::{ListedPlatform, PlatformSet};
use crate::store::{BotRecord, Store, Transition, now_ms};

pub use bot_protocol::{AuthorizedBot, BotAccess, BotOwnConfig, EventAnswer, HeartbeatAnswer};
pub use create::{CreateBot, CreatedBot, idempotency_key};
pub(crate) use deploy::DeployCall;
pub(crate) use lost_answers::AttemptBot;
pub use placement::Placement;
pub use platforms_view::{PlatformUsage, PlatformsView, QueueView, SweepLeaseView};
pub use pool::{PoolSummary, PoolView, SlotCounts};
pub use query::{BotPage, DEFAULT_PAGE_SIZE, ListQuery, LiveStatus, MAX_PAGE_SIZE};
pub use queue::DrainReport;
pub use readiness::{Check, Readiness};
pub use schedule::{DueBacklog, DueReport, Reschedule};
pub use wait::DeployWait;
pub use watchdog::WatchReport;
pub use workers::LaneLoad;
pub(crate) use workers::{Job, JobHandle, NotHanded};

/// How the service behaves; every field has a production default.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// How long a bot may take from the deploy intent to `running` before
    /// it is failed and cleaned up. Default 600 s (`DEPLOY_TIMEOUT`).
    pub deploy_timeout: Duration,
    /// How long one platform call (the platform's own retries included)
    /// may take. Default 60 s (`PLATFORM_CALL_TIMEOUT`).
    pub platform_call_timeout: Duration,
    /// What `pool_exhausted` tells clients to wait. Default 30 s: long
    /// enough for a meeting to end somewhere, short enough not to miss the
    /// start of the one the client wants to join.
    pub pool_retry_after: Duration,
    /// How many bots one reconciler pass handles at once. Default 100, the
    /// size of one ECS `DescribeTasks` call.
    pub reconcile_batch: u32,
    /// How many bots of a batch the reconciler acts on concurrently.
    /// Default 16.
    pub reconcile_concurrency: usize,
    /// How long after a bot ended and was cleaned up a pool slot it still
    /// holds counts as leaked and is given back by the reconciler. Default
    /// 60 s: far longer than any cleanup in flight, far shorter than a
    /// meeting.
    pub orphan_slot_grace: Duration,
    /// How often the orphan sweep looks for bots that run under this
    /// installation's mark with no active bot holding them. Default 600 s
    /// (`ORPHAN_SWEEP_INTERVAL`): a leaked task costs little in ten
    /// minutes, and a listing of every task is not free on ECS's read
    /// bucket.
    pub orphan_sweep_interval: Duration,
    /// How long an idempotency key is remembered. Default 24 h: a client
    /// retries within minutes; keeping keys for ever would only grow the
    /// table.
    pub idempotency_key_ttl: Duration,
    /// How long a queued bot may wait for room before it fails as
    /// `queue_timeout`. Default 600 s (`QUEUE_TIMEOUT`).
    pub queue_timeout: Duration,
    /// How long the platform sweep's lease lasts unless its holder renews
    /// it. Default 8 s, four fifths of the default `RECONCILE_INTERVAL`
    /// (`serve` derives it from the interval): the holder renews it three
    /// times as often, and a replica that finds it lapsed takes it over on
    /// its next pass, so a dead holder is replaced within two intervals.
    pub sweep_lease: Duration,
    /// How many queued bots one process places at once while draining the
    /// queue. Default 8.
    pub drain_concurrency: usize,
    /// How many deploys and stops of one platform this process's deploy
    /// workers run at once. Default 32 (`DEPLOY_CONCURRENCY`).
    pub deploy_concurrency: usize,
    /// Where bots reach this service for the bot protocol
    /// (`MEEBOTER_API_URL` in their environment; `BOT_API_URL`). `None`
    /// gives bots no protocol: no URL, no token, as before the protocol.
    pub bot_api_url: Option<String>,
    /// How long a bot in a meeting may go without a heartbeat, once it sent
    /// one, before it is failed as `heartbeat_timeout` and torn down.
    /// Default 300 s (`HEARTBEAT_TIMEOUT`).
    pub heartbeat_timeout: Duration,
    /// How long a bot asked to leave has to end on its own before it is
    /// stopped as `stop` does. Default 60 s (`LEAVE_GRACE`).
    pub leave_grace: Duration,
    /// Whether a running bot that never speaks the protocol within the
    /// deploy timeout is failed. Default false (`BOT_PROTOCOL_REQUIRED`).
    pub bot_protocol_required: bool,
    /// How many bot-protocol requests one bot may make per minute. Default
    /// 120 (`BOT_EVENTS_PER_MINUTE`).
    pub bot_events_per_minute: u32,
    /// How often buffered heartbeats are written. Default 5 s, and never
    /// more than a quarter of the heartbeat timeout: the database's
    /// `last_heartbeat_at` may be this much behind the bot.
    pub heartbeat_flush_interval: Duration,
    /// Which per-bot webhook receivers a create accepts.
    pub webhooks: WebhookPolicy,
    /// How bots with a `join_at` are scheduled (lead times, jitter,
    /// lateness).
    pub schedule: crate::schedule::ScheduleOptions,
    /// The scheduler's clock: the system's, or a manual one in tests.
    pub clock: crate::clock::Clock,
}

/// Which `webhook_url`s a create accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Whether webhooks are signed (`WEBHOOK_SECRET` is set); without it a
    /// `webhook_url` is refused.
    pub enabled: bool,
    /// `WEBHOOK_ALLOW_PRIVATE`: http and private addresses are accepted.
    pub allow_private: bool,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            deploy_timeout: Duration::from_secs(600),
            platform_call_timeout: Duration::from_secs(60),
            pool_retry_after: Duration::from_secs(30),
            reconcile_batch: 100,
            reconcile_concurrency: 16,
            orphan_slot_grace: Duration::from_secs(60),
            orphan_sweep_interval: Duration::from_secs(600),
            idempotency_key_ttl: Duration::from_secs(24 * 60 * 60),
            queue_timeout: Duration::from_secs(600),
            sweep_lease: Duration::from_secs(8),
            drain_concurrency: 8,
            deploy_concurrency: 32,
            bot_api_url: None,
            heartbeat_timeout: Duration::from_secs(300),
            leave_grace: Duration::from_secs(60),
            bot_protocol_required: false,
            bot_events_per_minute: 120,
            heartbeat_flush_interval: Duration::from_secs(5),
            webhooks: WebhookPolicy::default(),
            schedule: crate::schedule::ScheduleOptions::default(),
            clock: crate::clock::Clock::system(),
        }
    }
}

impl ServiceOptions {
    /// How often buffered heartbeats are written: the configured interval,
    /// capped at a quarter of the heartbeat timeout so the watchdog never
    /// judges on a write that is far behind.
    pub fn effective_flush_interval(&self) -> Duration {
        self.heartbeat_flush_interval
            .min(self.heartbeat_timeout / 4)
            .max(Duration::from_millis(100))
    }
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) platforms: PlatformSet,
    pub(crate) options: ServiceOptions,
    /// Who holds the leases this service instance takes.
    pub(crate) instance: String,
    /// What the orphan sweep has seen unheld, and since when.
    pub(crate) sightings: Sightings,
    /// Whether this process is draining the queue now (a second drain
    /// would only compete with the first).
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// Whether this process held the platform sweep's lease at its last
    /// try.
    pub(crate) sweeping: std::sync::atomic::AtomicBool,
    /// Whether capacity freed in this process drains the queue at once in
    /// the background (long-running processes) or waits for the next
    /// reconciler pass (one-shot commands).
    pub(crate) background_drain: std::sync::atomic::AtomicBool,
    /// Heartbeats received and not written yet.
    pub(crate) heartbeats: HeartbeatBuffer,
    /// Each bot's budget of bot-protocol requests.
    pub(crate) bot_limiter: BotRateLimiter,
    /// Where platform calls of deploys and stops run.
    pub(crate) workers: workers::Workers,
    /// The bots callers wait for, asked about in batches.
    pub(crate) waiters: wait::Waiters,
}

/// The bot deployment service. Cheap to clone; every clone shares the
/// database and the platform.
#[derive(Clone)]
pub struct BotService {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for BotService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotService")
            .field("platforms", &self.platform_names())
            .field("store", &self.inner.store)
            .field("instance", &self.inner.instance)
            .finish()
    }
}

impl BotService {
    /// A service over `store` and one platform.
    pub fn new(store: Store, platform: Arc<dyn PlatformService>, options: ServiceOptions) -> Self {
        match Self::with_platforms(store, vec![platform], options) {
            Ok(service) => service,
            // One platform can be neither empty nor listed twice.
            Err(_) => unreachable!("a list of one platform is always valid"),
        }
    }

    /// A service over `store` and several platforms, in the order bots are
    /// placed on them (`PLATFORM_PRIORITY`). Refused when the list is empty
    /// or names a platform twice.
    pub fn with_platforms(
        store: Store,
        platforms: Vec<Arc<dyn PlatformService>>,
        options: ServiceOptions,
    ) -> ServiceResult<Self> {
        let metrics = Arc::new(Metrics::new());
        let platforms = PlatformSet::new(platforms, options.platform_call_timeout, &metrics)
            .map_err(|problem| {
                ServiceError::Config(platform_core::Error::Config {
                    platform: "service",
                    problems: vec![platform_core::ConfigProblem::new(
                        platform_core::PLATFORM_PRIORITY.name,
                        problem,
                    )],
                })
            })?;
        let instance = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let workers = workers::Workers::new(&platforms.names(), options.deploy_concurrency);
        Ok(Self {
            inner: Arc::new(Inner {
                workers,
                waiters: wait::Waiters::default(),
                store,
                metrics,
                platforms,
                instance,
                sightings: Sightings::default(),
                draining: std::sync::atomic::AtomicBool::new(false),
                sweeping: std::sync::atomic::AtomicBool::new(false),
                background_drain: std::sync::atomic::AtomicBool::new(true),
                heartbeats: HeartbeatBuffer::default(),
                bot_limiter: BotRateLimiter::new(options.bot_events_per_minute),
                options,
            }),
        })
    }

    /// The first platform of the priority list (the only one when one is
    /// configured).
    pub fn platform_name(&self) -> &'static str {
        self.inner.platforms.first().name()
    }

    /// Every platform the service holds, in the order bots are placed.
    pub fn platform_names(&self) -> Vec<&'static str> {
        self.inner.platforms.names()
    }

    /// The first platform of the priority list.
    pub fn platform(&self) -> &Arc<dyn PlatformService> {
        self.inner.platforms.first().calls.platform()
    }

    /// The platform named `name`, if the service holds it.
    pub fn platform_named(&self, name: &str) -> Option<&Arc<dyn PlatformService>> {
        self.inner.platforms.get(name).map(|p| p.calls.platform())
    }

    /// Whether capacity freed in this process (a bot ends) drains the
    /// queue at once in the background (the default), or only on the next
    /// reconciler pass (a one-shot command whose process ends with it).
    pub fn set_background_drain(&self, on: bool) {
        self.inner
            .background_drain
            .store(on, std::sync::atomic::Ordering::Release);
    }

    /// Who this service process is in leases (`pid…-…`).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// What the service has counted (deploys, platform errors, HTTP
    /// requests), for `GET /metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The options in force.
    pub fn options(&self) -> &ServiceOptions {
        &self.inner.options
    }

    fn store_ref(&self) -> &Store {
        &self.inner.store
    }

    /// The platform a bot was placed on, or why it cannot be reached: the
    /// bot is on a platform this service is not configured for (it is
    /// left alone, never orphaned silently).
    pub(crate) fn calls_for(&self, record: &BotRecord) -> ServiceResult<&PlatformCalls> {
        self.listed_for(record).map(|p| &p.calls)
    }

    pub(crate) fn listed_for(&self, record: &BotRecord) -> ServiceResult<&ListedPlatform> {
        self.inner.platforms.get(record.platform()).ok_or_else(|| {
            ServiceError::PlatformNotConfigured {
                bot: record.id(),
                bot_platform: record.platform().to_owned(),
                configured: self.platform_names().join(", "),
            }
        })
    }

    pub(crate) fn lease_until(&self) -> i64 {
        // The in-flight operation's own bound, plus a margin for the
        // database writes around it.
        let lease = self.inner.options.platform_call_timeout + Duration::from_secs(2);
        now_ms() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
    }

    async fn load(&self, id: BotId) -> ServiceResult<BotRecord> {
        self.store_ref()
            .get_bot(id)
            .await?
            .ok_or(ServiceError::BotNotFound(id))
    }

    /// The view of a bot, with its queue position when it is queued.
    pub(crate) async fn shown(&self, record: BotRecord) -> ServiceResult<crate::bot::Bot> {
        let mut bot = self.view(&record)?;
        if bot.status == crate::bot::BotState::Queued {
            bot.queue_position = Some(self.store_ref().queue_position(&record).await?);
        }
        // Ahead of capacity (service::projection).
        self.project_onto(&mut bot, &record).await?;
        Ok(bot)
    }

    /// Applies one transition, logging it.
    pub(crate) async fn move_bot(&self, t: Transition<'_>) -> ServiceResult<Option<BotRecord>> {
        let moved = self.store_ref().transition(&t).await?;
        if moved.is_some() && t.from.is_active() && !t.to.is_active() {
            self.capacity_freed();
        }
        match &moved {
            Some(_) => tracing::info!(
                bot_id = %t.bot,
                from = %t.from,
                to = %t.to,
                attempt = t.attempt,
                reason = t.reason,
                "bot status changed"
            ),
            None => tracing::debug!(
                bot_id = %t.bot,
                from = %t.from,
                to = %t.to,
                "bot moved meanwhile; transition skipped"
            ),
        }
        Ok(moved)
    }
}
