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
//! | pool exhausted, or a capacity shortage it calls transient (nothing started) | back to `pending`, with the reason | `pool_exhausted` with a retry-after |
//! | a definite refusal (rejected, unauthorised, bad config, failed to start, permanent capacity) | `failed`, with the reason | `deploy_failed` |
//! | anything that may have started the bot (timeout, 5xx, throttling after the platform's own retries) | stays `deploying`; the reconciler calls again with the same attempt, which the platform contract makes idempotent | the bot, with the reason |
//!
//! The service does not retry platform calls itself: the platform contract
//! has each platform retry its own API calls, so a second loop here would
//! only multiply attempts. The reconciler's next pass is the retry.
//!
//! A stop always stops the platform resource, then cleans up; a stop the
//! platform did not confirm stays `stopping` and the reconciler repeats it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use platform_core::{
    BotDeploymentInput, BotId, BotStatus, MeetingPlatform, PlatformId, PlatformService, Slot,
    SlotState, SlotStore, StatusKind,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::bot::{Bot, BotDetails, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::failpoint;
use crate::metrics::Metrics;
use crate::platform_calls::{PlatformCalls, nothing_started};
use crate::store::{
    BotRecord, CreateOutcome, IdempotencyKey, ListFilter, NewBot, Store, Transition, now_ms,
};

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
    /// How long an idempotency key is remembered. Default 24 h: a client
    /// retries within minutes; keeping keys for ever would only grow the
    /// table.
    pub idempotency_key_ttl: Duration,
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
            idempotency_key_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A request to create a bot.
#[derive(Clone, Debug)]
pub struct CreateBot {
    /// What the client sent.
    pub input: BotDeploymentInput,
    /// The client's idempotency key, with the fingerprint of its request.
    pub idempotency: Option<IdempotencyKey>,
    /// Whether to deploy it at once.
    pub deploy: bool,
}

/// What [`BotService::create_bot`] did.
#[derive(Clone, Debug, Serialize)]
pub struct CreatedBot {
    /// The bot, after the deploy if one was asked for.
    pub bot: Bot,
    /// `false` when an idempotency key returned an existing bot.
    pub created: bool,
}

/// Which bots to list, as a client asks.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only bots in this state.
    pub status: Option<BotState>,
    /// Only bots on this platform.
    pub platform: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_PAGE_SIZE`]; default [`DEFAULT_PAGE_SIZE`].
    pub limit: Option<u32>,
}

/// The default page size of [`BotService::list`].
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size of [`BotService::list`].
pub const MAX_PAGE_SIZE: u32 = 500;

/// One page of bots.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BotPage {
    /// The bots, in id order.
    pub bots: Vec<Bot>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A bot with what its platform says right now.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LiveStatus {
    /// The bot as recorded.
    pub bot: Bot,
    /// The platform's answer; absent when the bot has no identifier yet.
    pub platform_status: Option<BotStatus>,
    /// Why the platform could not be asked, if it could not.
    pub platform_error: Option<String>,
}

/// Slot counts of one meeting platform in one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SlotCounts {
    /// Free slots.
    pub idle: u64,
    /// Slots held by a bot.
    pub claimed: u64,
    /// Slots taken out of service.
    pub failed: u64,
}

/// One pool of warm slots.
#[derive(Clone, Debug, Serialize)]
pub struct PoolView {
    /// The pool's name.
    pub pool: String,
    /// Counts per meeting platform.
    pub by_meeting_platform: BTreeMap<MeetingPlatform, SlotCounts>,
    /// Every slot.
    pub slots: Vec<Slot>,
}

/// Pools and bots at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct PoolSummary {
    /// The platform this service runs.
    pub platform: &'static str,
    /// Its pools (none for platforms without a warm pool).
    pub pools: Vec<PoolView>,
    /// How many of this platform's bots are in each state.
    pub bots_by_status: BTreeMap<BotState, u64>,
}

/// One readiness check.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What failed.
    pub error: Option<String>,
}

impl Check {
    fn from_result<E: std::fmt::Display>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self {
                ok: true,
                error: None,
            },
            Err(e) => Self {
                ok: false,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Whether the service can do its work.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Both checks passed.
    pub ready: bool,
    /// The database answers.
    pub database: Check,
    /// The platform answers with our credentials.
    pub platform: Check,
}

/// What the platform answers when asked again for the bot of a deploy
/// attempt whose answer was lost (see [`BotService::find_attempt_bot`]).
pub(crate) enum AttemptBot {
    /// The attempt's bot, now recorded on the bot.
    Found {
        /// Its identifier.
        identifier: PlatformId,
        /// The bot with the identifier recorded.
        record: BotRecord,
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

/// Validates a client's idempotency key and fingerprints its request body:
/// the same key with the same body returns the same bot, with another body
/// it is a conflict. Keys are 1 to 255 visible ASCII characters.
pub fn idempotency_key(key: &str, body: &[u8]) -> ServiceResult<IdempotencyKey> {
    let valid = !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ServiceError::InvalidQuery {
            parameter: "idempotency key",
            message: "must be 1 to 255 visible ASCII characters (no spaces)".into(),
        });
    }
    let digest = Sha256::digest(body);
    let fingerprint = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(IdempotencyKey {
        key: key.to_owned(),
        fingerprint,
    })
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) calls: PlatformCalls,
    pub(crate) options: ServiceOptions,
    /// Who holds the leases this service instance takes.
    pub(crate) instance: String,
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
            .field("platform", &self.platform_name())
            .field("store", &self.inner.store)
            .field("instance", &self.inner.instance)
            .finish()
    }
}

impl BotService {
    /// A service over `store` and `platform`.
    pub fn new(store: Store, platform: Arc<dyn PlatformService>, options: ServiceOptions) -> Self {
        let metrics = Arc::new(Metrics::new());
        let calls = PlatformCalls::new(
            platform,
            options.platform_call_timeout,
            Arc::clone(&metrics),
        );
        let instance = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            inner: Arc::new(Inner {
                store,
                metrics,
                calls,
                options,
                instance,
            }),
        }
    }

    /// The platform's name.
    pub fn platform_name(&self) -> &'static str {
        self.inner.calls.name()
    }

    /// The platform.
    pub fn platform(&self) -> &Arc<dyn PlatformService> {
        self.inner.calls.platform()
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

    fn calls(&self) -> &PlatformCalls {
        &self.inner.calls
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

    fn check_platform(&self, record: &BotRecord) -> ServiceResult<()> {
        if record.platform() == self.platform_name() {
            Ok(())
        } else {
            Err(ServiceError::PlatformMismatch {
                bot: record.id(),
                bot_platform: record.platform().to_owned(),
                service_platform: self.platform_name(),
            })
        }
    }

    /// Validates and records a bot (in `pending`), then deploys it if asked.
    /// With an idempotency key, a repeated request returns the bot the first
    /// one created (deploying it if it is still pending), and a different
    /// request with the same key is refused. Nothing is written when the
    /// request is invalid.
    pub async fn create_bot(&self, request: CreateBot) -> ServiceResult<CreatedBot> {
        let config = request
            .input
            .validate(BotId(0))
            .map_err(ServiceError::InvalidRequest)?;
        let outcome = self
            .store_ref()
            .create_bot(
                NewBot {
                    config: &config,
                    platform: self.platform_name(),
                },
                request.idempotency.as_ref(),
            )
            .await?;
        let (record, created) = match outcome {
            CreateOutcome::Created(record) => (record, true),
            CreateOutcome::Existing(record) => (record, false),
            CreateOutcome::Conflict { bot } => {
                return Err(ServiceError::IdempotencyConflict {
                    key: request.idempotency.map(|k| k.key).unwrap_or_default(),
                    bot,
                });
            }
        };
        if created {
            tracing::info!(
                bot_id = %record.id(),
                meeting_platform = %config.meeting_platform(),
                meeting_url = %config.meeting_url(),
                "bot created"
            );
        }
        let bot = if request.deploy && record.state()? == BotState::Pending {
            self.deploy(record.id()).await?
        } else {
            record.to_bot()?
        };
        Ok(CreatedBot { bot, created })
    }

    /// Deploys a pending bot. A bot that is already deploying or running is
    /// returned as it is: nothing new is started. See the module docs for
    /// what each platform answer does.
    pub async fn deploy(&self, id: BotId) -> ServiceResult<Bot> {
        let span = tracing::info_span!("deploy", bot_id = %id);
        async {
            let owner = self.inner.instance.as_str();
            // The bot may move between our read and our write (another
            // request deployed it, or a full pool sent it back to pending):
            // read again and decide again, a few times.
            let mut intent = None;
            for _ in 0..5 {
                let record = self.load(id).await?;
                self.check_platform(&record)?;
                match record.state()? {
                    BotState::Deploying | BotState::Running => return Ok(record.to_bot()?),
                    BotState::Pending => {}
                    other => other.check_move(id, BotState::Deploying).map(|_| ())?,
                }
                intent = self
                    .store_ref()
                    .begin_deploy(id, "deploy requested", owner, self.lease_until())
                    .await?;
                if intent.is_some() {
                    break;
                }
            }
            let Some(record) = intent else {
                return Err(ServiceError::Storage(
                    crate::store::StoreError::Unavailable(format!(
                        "bot {id} kept changing while it was being deployed; try again"
                    )),
                ));
            };
            tracing::info!(attempt = record.attempt(), "deploy intent recorded");
            failpoint::pause_if_armed(failpoint::AFTER_DEPLOY_INTENT).await;
            let outcome = self.drive_deploy(record).await;
            self.store_ref().release_lease(id, owner).await?;
            outcome.and_then(|r| Ok(r.to_bot()?))
        }
        .instrument(span)
        .await
    }

    /// Calls the platform for the bot's current attempt and records the
    /// answer. Used by [`deploy`](Self::deploy) and by the reconciler to
    /// re-drive a deploy a crash left half-done (same attempt).
    pub(crate) async fn drive_deploy(&self, record: BotRecord) -> ServiceResult<BotRecord> {
        let id = record.id();
        let attempt = record.attempt();
        let config = match record.config() {
            Ok(config) => config,
            Err(reason) => {
                let reason = format!("its stored configuration is no longer valid: {reason}");
                self.move_bot(Transition::new(
                    id,
                    BotState::Deploying,
                    attempt,
                    BotState::Failed,
                    &reason,
                ))
                .await?;
                return Err(ServiceError::DeployFailed { bot: id, reason });
            }
        };
        match self.calls().deploy(&config, attempt).await {
            Ok(result) => {
                failpoint::pause_if_armed(failpoint::AFTER_PLATFORM_DEPLOY).await;
                let recorded = self
                    .store_ref()
                    .record_deployed(
                        id,
                        attempt,
                        result.identifier.as_str(),
                        result.connection_url.as_deref(),
                    )
                    .await?;
                let Some(record) = recorded else {
                    self.release_stale(&result.identifier).await;
                    return self.load(id).await;
                };
                tracing::info!(platform_id = %result.identifier, "platform accepted the bot");
                match record.state()? {
                    BotState::Deploying => {
                        let Some(platform_id) = record.platform_id() else {
                            return Ok(record);
                        };
                        match self.calls().status(&platform_id).await {
                            Ok(status) => self.apply_observation(record, &status).await,
                            // No evidence either way; the reconciler looks again.
                            Err(_) => Ok(record),
                        }
                    }
                    BotState::Stopping => self.drive_stop(record, false).await,
                    state if state.is_terminal() && record.cleanup_pending() => {
                        self.drive_cleanup(record).await
                    }
                    _ => Ok(record),
                }
            }
            Err(error) if nothing_started(&error) => {
                let reason = format!("not deployed, nothing was started: {error}");
                let moved = self
                    .move_bot(Transition::new(
                        id,
                        BotState::Deploying,
                        attempt,
                        BotState::Pending,
                        &reason,
                    ))
                    .await?;
                match moved {
                    Some(_) => Err(ServiceError::PoolExhausted {
                        bot: id,
                        reason: error.to_string(),
                        retry_after: self.inner.options.pool_retry_after,
                    }),
                    None => self.load(id).await,
                }
            }
            Err(error) if !error.is_retryable() => {
                let reason = format!("the platform refused the bot: {error}");
                let moved = self
                    .move_bot(Transition::new(
                        id,
                        BotState::Deploying,
                        attempt,
                        BotState::Failed,
                        &reason,
                    ))
                    .await?;
                match moved {
                    Some(_) => Err(ServiceError::DeployFailed {
                        bot: id,
                        reason: error.to_string(),
                    }),
                    None => self.load(id).await,
                }
            }
            Err(error) => {
                // It may have started: never read this as "not started". The
                // reconciler calls again with the same attempt.
                let reason = format!(
                    "deploy attempt {attempt} not confirmed yet ({error}); it will be retried with the same attempt"
                );
                Ok(self
                    .store_ref()
                    .set_reason(id, BotState::Deploying, attempt, &reason)
                    .await?
                    .unwrap_or(record))
            }
        }
    }

    /// Applies one transition, logging it.
    pub(crate) async fn move_bot(&self, t: Transition<'_>) -> ServiceResult<Option<BotRecord>> {
        let moved = self.store_ref().transition(&t).await?;
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
                    self.inner.metrics.record_deploy_to_running(
                        self.platform_name(),
                        Duration::from_millis(took),
                    );
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
                self.check_platform(&record)?;
                let state = record.state()?;
                let attempt = record.attempt();
                match state {
                    BotState::Pending => {
                        let t = Transition::new(
                            id,
                            state,
                            attempt,
                            BotState::Stopped,
                            "stopped before it was deployed",
                        );
                        if let Some(moved) = self.move_bot(t).await? {
                            return Ok(moved.to_bot()?);
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
                        return outcome.and_then(|r| Ok(r.to_bot()?));
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
                            return outcome.and_then(|r| Ok(r.to_bot()?));
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
                    let reason = format!("stopped; {why}");
                    let t = Transition::new(
                        id,
                        BotState::Stopping,
                        attempt,
                        BotState::Stopped,
                        &reason,
                    );
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
        let stopped = match self.calls().stop(&platform_id).await {
            Ok(()) => self.calls().cleanup(&platform_id).await,
            Err(e) => Err(e),
        };
        match stopped {
            Ok(()) => {
                let mut t = Transition::new(
                    id,
                    BotState::Stopping,
                    attempt,
                    BotState::Stopped,
                    "stopped on request",
                );
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
        match self.calls().deploy(&config, attempt).await {
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
                        record,
                    }),
                    None => {
                        self.release_stale(&result.identifier).await;
                        Ok(AttemptBot::Moved)
                    }
                }
            }
            Err(error) if nothing_started(&error) || !error.is_retryable() => {
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
    async fn release_stale(&self, identifier: &PlatformId) {
        tracing::warn!(platform_id = %identifier, "stale deploy answer; releasing it");
        let _ = self.calls().stop(identifier).await;
        let _ = self.calls().cleanup(identifier).await;
    }

    /// Releases what an ended bot still holds on its platform.
    pub(crate) async fn drive_cleanup(&self, record: BotRecord) -> ServiceResult<BotRecord> {
        let id = record.id();
        if let Some(platform_id) = record.platform_id() {
            let released = match self.calls().stop(&platform_id).await {
                Ok(()) => self.calls().cleanup(&platform_id).await,
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

    /// One bot with its history.
    pub async fn get(&self, id: BotId) -> ServiceResult<BotDetails> {
        let record = self.load(id).await?;
        let history = self.store_ref().history(id).await?;
        Ok(BotDetails {
            bot: record.to_bot()?,
            history,
        })
    }

    /// A page of bots.
    pub async fn list(&self, query: &ListQuery) -> ServiceResult<BotPage> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(ServiceError::InvalidQuery {
                parameter: "limit",
                message: format!("is {limit}; allowed: 1 to {MAX_PAGE_SIZE}"),
            });
        }
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let filter = ListFilter {
            status: query.status,
            platform: query.platform.clone(),
            after,
            limit: limit + 1,
        };
        let mut records = self.store_ref().list_bots(&filter).await?;
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next_cursor = more
            .then(|| records.last().map(|r| encode_cursor(r.id())))
            .flatten();
        let bots = records
            .iter()
            .map(BotRecord::to_bot)
            .collect::<Result<_, _>>()?;
        Ok(BotPage { bots, next_cursor })
    }

    /// What the platform says about one bot right now.
    pub async fn live_status(&self, id: BotId) -> ServiceResult<LiveStatus> {
        self.live_statuses(Some(&[id]))
            .await?
            .pop()
            .ok_or(ServiceError::BotNotFound(id))
    }

    /// What the platform says about several bots (or, with `None`, every
    /// active bot of this platform), from one batch call. An unknown id is
    /// `bot_not_found`.
    pub async fn live_statuses(&self, ids: Option<&[BotId]>) -> ServiceResult<Vec<LiveStatus>> {
        let records = match ids {
            Some(ids) => {
                let records = self.store_ref().get_bots(ids).await?;
                if let Some(missing) = ids
                    .iter()
                    .find(|id| !records.iter().any(|r| r.id() == **id))
                {
                    return Err(ServiceError::BotNotFound(*missing));
                }
                records
            }
            None => self.active_records().await?,
        };
        let asked: Vec<PlatformId> = records
            .iter()
            .filter(|r| r.platform() == self.platform_name())
            .filter_map(BotRecord::platform_id)
            .collect();
        let (statuses, error) = if asked.is_empty() {
            (HashMap::new(), None)
        } else {
            match self.calls().statuses(&asked).await {
                Ok(statuses) => (statuses, None),
                Err(e) => (HashMap::new(), Some(e.to_string())),
            }
        };
        records
            .iter()
            .map(|record| {
                let platform_status = record.platform_id().and_then(|p| statuses.get(&p).cloned());
                let platform_error = if record.platform() != self.platform_name() {
                    Some(format!(
                        "bot runs on {}, this service on {}",
                        record.platform(),
                        self.platform_name()
                    ))
                } else if record.platform_id().is_some() {
                    error.clone()
                } else {
                    None
                };
                Ok(LiveStatus {
                    bot: record.to_bot()?,
                    platform_status,
                    platform_error,
                })
            })
            .collect()
    }

    async fn active_records(&self) -> ServiceResult<Vec<BotRecord>> {
        let mut records = Vec::new();
        for status in BotState::ACTIVE {
            let mut after = None;
            loop {
                let filter = ListFilter {
                    status: Some(status),
                    platform: Some(self.platform_name().to_owned()),
                    after,
                    limit: 1000,
                };
                let page = self.store_ref().list_bots(&filter).await?;
                let done = page.len() < 1000;
                after = page.last().map(BotRecord::id);
                records.extend(page);
                if done {
                    break;
                }
            }
        }
        records.sort_by_key(BotRecord::id);
        Ok(records)
    }

    /// Returns a failed slot of this service's pool to idle, once the
    /// operator has fixed what made it fail (a broken image, a deleted
    /// application recreated). The next bot that claims it writes its own
    /// environment and starts it.
    pub async fn recover_slot(&self, slot_id: &str) -> ServiceResult<Slot> {
        let store = self.store_ref();
        let pool = self.platform_name();
        let refuse = |state: &'static str| ServiceError::SlotNotRecoverable {
            pool,
            slot: slot_id.chars().take(128).collect(),
            state,
        };
        match SlotStore::get_slot(store, pool, slot_id).await? {
            None => return Err(refuse("unknown")),
            Some(slot) if !matches!(slot.state, SlotState::Failed { .. }) => {
                return Err(refuse(slot.state.as_str()));
            }
            Some(_) => {}
        }
        if !SlotStore::recover_slot(store, pool, slot_id).await? {
            // Another process recovered or changed it in between.
            let state = SlotStore::get_slot(store, pool, slot_id)
                .await?
                .map_or("unknown", |s| s.state.as_str());
            return Err(refuse(state));
        }
        tracing::info!(pool, slot = slot_id, "slot recovered by the operator");
        SlotStore::get_slot(store, pool, slot_id)
            .await?
            .ok_or_else(|| refuse("unknown"))
    }

    /// The warm pools and how many bots are in each state.
    pub async fn pool_summary(&self) -> ServiceResult<PoolSummary> {
        let store = self.store_ref();
        let mut pools = Vec::new();
        for pool in store.pool_names().await? {
            let slots = SlotStore::list_slots(store, &pool).await?;
            let mut by_meeting_platform: BTreeMap<MeetingPlatform, SlotCounts> = BTreeMap::new();
            for slot in &slots {
                let counts = by_meeting_platform
                    .entry(slot.meeting_platform)
                    .or_default();
                match slot.state {
                    SlotState::Idle => counts.idle += 1,
                    SlotState::Claimed { .. } => counts.claimed += 1,
                    SlotState::Failed { .. } => counts.failed += 1,
                }
            }
            pools.push(PoolView {
                pool,
                by_meeting_platform,
                slots,
            });
        }
        let bots_by_status = store
            .count_by_status(Some(self.platform_name()))
            .await?
            .into_iter()
            .collect();
        Ok(PoolSummary {
            platform: self.platform_name(),
            pools,
            bots_by_status,
        })
    }

    /// Whether the database and the platform answer.
    pub async fn readiness(&self) -> Readiness {
        let (database, platform) =
            tokio::join!(self.store_ref().ping(), self.calls().check_reachable());
        let database = Check::from_result(database);
        let platform = Check::from_result(platform);
        Readiness {
            ready: database.ok && platform.ok,
            database,
            platform,
        }
    }
}

const CURSOR_PREFIX: &str = "after-";

fn encode_cursor(id: BotId) -> String {
    format!("{CURSOR_PREFIX}{id}")
}

fn decode_cursor(cursor: &str) -> ServiceResult<BotId> {
    cursor
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|id| id.parse::<u64>().ok())
        .map(BotId)
        .ok_or_else(|| ServiceError::InvalidQuery {
            parameter: "cursor",
            message:
                "is not a cursor this service returned; pass the next_cursor of the previous page"
                    .into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_checked_and_fingerprinted() {
        let a = idempotency_key("req-1", b"{\"a\":1}").unwrap();
        let b = idempotency_key("req-1", b"{\"a\":1}").unwrap();
        let c = idempotency_key("req-1", b"{\"a\":2}").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.fingerprint.len(), 64);
        assert!(idempotency_key("", b"").is_err());
        assert!(idempotency_key("has space", b"").is_err());
        assert!(idempotency_key(&"k".repeat(256), b"").is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(BotId(42))).unwrap(), BotId(42));
        let err = decode_cursor("42").unwrap_err();
        assert_eq!(err.code(), "invalid_query");
        assert!(err.to_string().contains("cursor"), "{err}");
    }
}
