//! [`CoolifyPlatform`]: the [`PlatformService`] over the Coolify API and the
//! warm slot pool.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use platform_core::bot_env::{self, names};
use platform_core::{
    BotDeploymentConfig, BotStatus, DeployResult, Error, InstallationId, MarkedBot,
    MeetingPlatform, PlatformContext, PlatformId, PlatformService, Result, RetryPolicy, SetupCheck,
    Slot, SlotState, SlotStore, bot_environment,
};

use crate::claim::SlotClaim;
use crate::client::CoolifyClient;
use crate::config::CoolifyConfig;
use crate::growth::CreationBudget;
use crate::ledger::ClaimLedger;
use crate::pool::SlotPool;
use crate::retrying::{idempotent, unless_processed};
use crate::status::{AppState, DeploymentState};
use crate::wire::Application;
use crate::{PLATFORM, POOL};

mod claim_status;

use claim_status::{ClaimView, deployment_state};

/// How many slots one deploy tries when slots turn out to be broken (their
/// application was deleted in Coolify) before giving up.
const MAX_SLOTS_PER_DEPLOY: usize = 3;

/// Meeting bots on Coolify: a warm pool of slot applications, one bot per
/// slot at a time. See the crate documentation for the whole story.
pub struct CoolifyPlatform {
    config: CoolifyConfig,
    installation: InstallationId,
    client: CoolifyClient,
    store: Arc<dyn SlotStore>,
    pool: SlotPool,
    ledger: ClaimLedger,
}

impl fmt::Debug for CoolifyPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoolifyPlatform")
            .field("api_url", &self.config.api_url.as_str())
            .field("project_uuid", &self.config.project_uuid)
            .field("installation", &self.installation)
            .finish_non_exhaustive()
    }
}

/// Why writing a bot into a slot and starting it failed.
enum StartFailure {
    /// The slot cannot run anything (its application is gone): mark it
    /// failed and try another.
    SlotBroken(String),
    /// Nothing was started: give the slot back, clearing the bot's meeting
    /// secrets first when they may have been written into it.
    NotStarted { error: Error, secrets_written: bool },
    /// The start may have been queued and Coolify could not be asked.
    Unknown { error: Error, detail: String },
}

impl CoolifyPlatform {
    /// Connects to Coolify and adopts `installation`'s slot applications of
    /// the project into `slots` (see the crate docs). Fails, leaving the
    /// store as it was, when Coolify cannot be asked; fails with a
    /// configuration error when the URL does not serve Coolify's API, or the
    /// project or its environment does not exist.
    pub async fn new(
        config: CoolifyConfig,
        slots: Arc<dyn SlotStore>,
        installation: InstallationId,
    ) -> Result<Self> {
        let client = CoolifyClient::new(&config)?;
        let (pool, adoption) =
            SlotPool::adopt(&client, &config, slots.clone(), installation.clone()).await?;
        tracing::info!(
            platform = PLATFORM,
            project = %config.project_uuid,
            installation = %installation,
            slot_applications = adoption.found,
            pruned = ?adoption.pruned,
            renamed = ?adoption.renamed,
            unmarked = adoption.unmarked.len(),
            other_installations_slots = adoption.others,
            "coolify warm pool adopted"
        );
        Ok(Self {
            config,
            installation,
            client,
            store: slots,
            pool,
            ledger: ClaimLedger::default(),
        })
    }

    /// Reads the configuration from `context.env` and connects, as the
    /// registry's constructor does.
    pub async fn from_context(context: PlatformContext) -> Result<Self> {
        let config = CoolifyConfig::from_env(context.env.as_ref())?;
        Self::new(config, context.slots, context.installation).await
    }

    /// The installation whose slots this platform uses.
    pub fn installation(&self) -> &InstallationId {
        &self.installation
    }

    /// Returns a failed slot to the pool after making sure its application
    /// is stopped and holds no meeting URL or password. Returns whether the
    /// slot was failed.
    pub async fn recover_slot(&self, application_uuid: &str) -> Result<bool> {
        let lock = self.ledger.slot_lock(application_uuid);
        let _guard = lock.lock().await;
        match self.store.get_slot(POOL, application_uuid).await? {
            Some(Slot {
                state: SlotState::Failed { .. },
                ..
            }) => {
                self.stop_application(application_uuid).await?;
                self.clear_meeting_secrets(application_uuid, &self.config.retry)
                    .await?;
                self.store.recover_slot(POOL, application_uuid).await
            }
            _ => Ok(false),
        }
    }

    /// Takes an idle or failed slot out of the pool for good and deletes its
    /// application (configuration, volumes and networks). Returns whether a
    /// slot was removed; a claimed slot is never removed. If the delete
    /// fails the application stays in Coolify and is adopted again at the
    /// next start-up.
    pub async fn retire_slot(&self, application_uuid: &str) -> Result<bool> {
        let lock = self.ledger.slot_lock(application_uuid);
        let _guard = lock.lock().await;
        if !self.store.remove_slot(POOL, application_uuid).await? {
            return Ok(false);
        }
        let resource = format!("application {application_uuid}");
        match idempotent(&self.config.retry, &resource, || {
            self.client.delete_application(application_uuid)
        })
        .await
        {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Takes the slot's lock if the store knows the slot (the state is read
    /// again under the lock). Unknown identifiers take no lock, so arbitrary
    /// identifiers cannot grow the lock table.
    async fn lock_known_slot(
        &self,
        application_uuid: &str,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>> {
        if self.store.get_slot(POOL, application_uuid).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            self.ledger.slot_lock(application_uuid).lock_owned().await,
        ))
    }

    /// Every application Coolify knows, by uuid: one list call answers for
    /// all the claims a batch asks about.
    async fn applications_by_uuid(&self) -> Result<HashMap<String, Application>> {
        Ok(idempotent(&self.config.retry, "applications", || {
            self.client.list_applications()
        })
        .await?
        .into_iter()
        .map(|app| (app.uuid.clone(), app))
        .collect())
    }

    /// Stops an application; one that no longer exists counts as stopped.
    async fn stop_application(&self, application_uuid: &str) -> Result<()> {
        let resource = format!("application {application_uuid}");
        match idempotent(&self.config.retry, &resource, || {
            self.client.stop_application(application_uuid)
        })
        .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Deletes the slot application's runtime variables named in `names`:
    /// one list, then one delete per variable present (none when `names` is
    /// empty). A variable that is already gone counts as deleted.
    async fn delete_variables(
        &self,
        uuid: &str,
        names: &[&str],
        retry: &RetryPolicy,
    ) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let resource = format!("environment variables of application {uuid}");
        let existing = idempotent(retry, &resource, || self.client.list_envs(uuid)).await?;
        for var in existing
            .iter()
            .filter(|v| !v.is_preview && names.contains(&v.key.as_str()))
        {
            match idempotent(retry, &resource, || {
                self.client.delete_env(uuid, &var.uuid, &var.key)
            })
            .await
            {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes the meeting URL (which carries the passcode) and the meeting
    /// password from the slot's environment, so that an idle slot holds no
    /// way into a past meeting, and a redeploy clicked in Coolify cannot send
    /// a bot back into it. An application that is gone holds nothing.
    async fn clear_meeting_secrets(&self, uuid: &str, retry: &RetryPolicy) -> Result<()> {
        let secrets: Vec<&str> = bot_env::SPECS
            .iter()
            .filter(|spec| spec.secret)
            .map(|spec| spec.name)
            .collect();
        match self.delete_variables(uuid, &secrets, retry).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Writes the bot's environment into the slot and queues its
    /// deployment. Returns the deployment's UUID when Coolify gave one.
    async fn write_env_and_start(
        &self,
        claim: &SlotClaim,
        config: &BotDeploymentConfig,
    ) -> std::result::Result<Option<String>, StartFailure> {
        let uuid = claim.application_uuid.as_str();
        let retry = &self.config.retry;
        let env_resource = format!("environment variables of application {uuid}");
        let env_failure = |error: Error, secrets_written: bool| {
            if error.is_not_found() {
                StartFailure::SlotBroken("its Coolify application no longer exists".into())
            } else {
                StartFailure::NotStarted {
                    error,
                    secrets_written,
                }
            }
        };
        let env = bot_environment(config);
        // A variable this bot does not get (`MEETING_PASSWORD` for a meeting
        // without one) is deleted, or the previous bot's value would still be there.
        // The bot-protocol pair is left out: BOT_TOKEN is a secret, cleared
        // from the slot whenever a bot gives it back, and the service that
        // deploys on Coolify always gives bots the protocol (BOT_API_URL is
        // required there), so the slot never holds another service's URL.
        let absent: Vec<&str> = names::ALL
            .into_iter()
            .filter(|name| ![names::MEEBOTER_API_URL, names::BOT_TOKEN].contains(name))
            .filter(|name| env.get(name).is_none())
            .collect();
        self.delete_variables(uuid, &absent, retry)
            .await
            .map_err(|e| env_failure(e, false))?;
        // A bulk upsert is not atomic: even a failed one may have written
        // the meeting URL.
        idempotent(retry, &env_resource, || self.client.upsert_envs(uuid, &env))
            .await
            .map_err(|e| env_failure(e, true))?;

        let app_resource = format!("application {uuid}");
        let failure =
            match unless_processed(retry, &app_resource, || self.client.start_application(uuid))
                .await
            {
                Ok(answer) => {
                    if answer.deployment_uuid.is_none() {
                        tracing::info!(
                            platform = PLATFORM,
                            application = uuid,
                            message = answer.message.as_deref().unwrap_or_default(),
                            "Coolify did not queue a new deployment; one is already queued"
                        );
                    }
                    return Ok(answer.deployment_uuid);
                }
                Err(failure) => failure,
            };
        if failure.error.is_not_found() {
            return Err(StartFailure::SlotBroken(
                "its Coolify application no longer exists".into(),
            ));
        }
        if !failure.may_have_been_processed {
            return Err(StartFailure::NotStarted {
                error: failure.error,
                secrets_written: true,
            });
        }
        // The start may have been queued. A deployment queued or running now
        // is ours: nothing else starts a claimed slot.
        let deployments = format!("deployments of application {uuid}");
        match idempotent(retry, &deployments, || self.client.latest_deployment(uuid)).await {
            Ok(Some(deployment)) if deployment_state(&deployment) == DeploymentState::Pending => {
                tracing::info!(
                    platform = PLATFORM,
                    application = uuid,
                    error = %failure.error,
                    "the start answer was lost but its deployment is queued"
                );
                Ok(deployment.deployment_uuid)
            }
            Ok(_) => Err(StartFailure::NotStarted {
                error: failure.error,
                secrets_written: true,
            }),
            Err(read_error) => Err(StartFailure::Unknown {
                error: failure.error,
                detail: read_error.to_string(),
            }),
        }
    }

    /// Returns the slot to the pool after a deploy that started nothing,
    /// clearing the bot's meeting secrets first when they may have been
    /// written. That clearing is one attempt and never blocks the give-back:
    /// the deploy has already failed, and retrying against a Coolify that
    /// just failed would only delay its error (the next bot in the slot
    /// overwrites the URL and deletes a password it does not have).
    async fn give_back(&self, claim: &SlotClaim, secrets_written: bool) {
        self.ledger.forget(claim);
        let uuid = claim.application_uuid.as_str();
        if secrets_written
            && let Err(e) = self
                .clear_meeting_secrets(uuid, &RetryPolicy::no_retry())
                .await
        {
            tracing::warn!(
                platform = PLATFORM,
                application = uuid,
                error = %e,
                "could not clear the failed bot's meeting URL and password from the slot; the next bot in it overwrites them"
            );
        }
        if let Err(e) = self
            .store
            .release_slot(POOL, &claim.application_uuid, claim.bot_id)
            .await
        {
            // The slot stays claimed by this bot: its next deploy gets the
            // same slot back from the store.
            tracing::error!(
                platform = PLATFORM,
                application = %claim.application_uuid,
                bot_id = %claim.bot_id,
                error = %e,
                "could not give the slot back after a failed deploy"
            );
        }
    }

    /// Marks the claim's slot failed so it is not handed out again.
    async fn fail_slot(&self, claim: &SlotClaim, reason: &str) {
        self.ledger.forget(claim);
        let reason = format!("bot {}: {reason}", claim.bot_id);
        tracing::warn!(
            platform = PLATFORM,
            application = %claim.application_uuid,
            reason,
            "marking the slot failed"
        );
        if let Err(e) = self
            .store
            .mark_slot_failed(POOL, &claim.application_uuid, &reason)
            .await
        {
            tracing::error!(
                platform = PLATFORM,
                application = %claim.application_uuid,
                error = %e,
                "could not mark the slot failed"
            );
        }
    }
}

/// The API requests a deploy to a warm slot typically costs: list the
/// slot's variables (to delete what the last bot left), write the bot's in
/// one bulk upsert, start the application. A variable to delete adds one.
const CALLS_PER_DEPLOY: u32 = 3;

/// How long a bot typically takes from its start request to `running` in a
/// warm slot whose image is cached: Coolify queues the deployment, writes
/// the compose file and restarts the container.
const TYPICAL_SLOT_START: std::time::Duration = std::time::Duration::from_secs(15);

#[async_trait]
impl PlatformService for CoolifyPlatform {
    fn platform_name(&self) -> &'static str {
        PLATFORM
    }

    fn capacity(&self) -> platform_core::PlatformCapacity {
        platform_core::PlatformCapacity::pools(
            MeetingPlatform::ALL
                .into_iter()
                .map(|platform| {
                    let max = *self.config.pool_max.get(platform);
                    (platform, u32::try_from(max).unwrap_or(u32::MAX))
                })
                .collect(),
            "COOLIFY_POOL_MAX_ZOOM, COOLIFY_POOL_MAX_TEAMS, COOLIFY_POOL_MAX_MEET",
        )
        .with_deploy_pace(
            self.client
                .deploy_pace(CALLS_PER_DEPLOY, TYPICAL_SLOT_START),
        )
    }

    fn describe_pool(&self) -> Option<String> {
        let per_platform: Vec<String> = MeetingPlatform::ALL
            .into_iter()
            .map(|platform| {
                let max = *self.config.pool_max.get(platform);
                let limit = format!("{}={max}", crate::config::pool_max_variable(platform));
                match (max, self.config.images.get(platform)) {
                    (0, _) => format!("{platform}: off ({limit})"),
                    (_, Some(_)) => format!("{platform}: up to {max} slots ({limit})"),
                    (_, None) => format!(
                        "{platform}: cannot grow, {} is not set; only slots already in the project run {platform} bots",
                        crate::config::image_variable(platform)
                    ),
                }
            })
            .collect();
        Some(format!(
            "the warm pool has no slots yet; a deploy that finds no idle slot creates one (at most {} per deploy and {} a minute), so the pool grows with use — {}",
            crate::growth::MAX_CREATIONS_PER_DEPLOY,
            self.config.pool_creations_per_minute,
            per_platform.join("; ")
        ))
    }

    async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult> {
        let meeting_platform = config.meeting_platform();
        let bot = config.bot_id();
        let mut broken = Vec::new();
        let mut budget = CreationBudget::per_deploy();
        for _ in 0..MAX_SLOTS_PER_DEPLOY {
            let slot = self
                .pool
                .claim(
                    &self.client,
                    &self.config,
                    meeting_platform,
                    bot,
                    &mut budget,
                )
                .await?;
            let claim = SlotClaim::new(slot.slot_id.clone(), bot);
            let lock = self.ledger.slot_lock(&slot.slot_id);
            let _guard = lock.lock().await;
            let deployed = DeployResult {
                identifier: claim.to_platform_id(),
                connection_url: slot.connection_url.clone(),
            };
            // The same deploy again (the service retrying after losing our
            // answer): the bot is already on its way.
            if self.ledger.get(&claim).and_then(|r| r.started_attempt) == Some(attempt) {
                return Ok(deployed);
            }
            match self.write_env_and_start(&claim, config).await {
                Ok(deployment_uuid) => {
                    tracing::info!(
                        platform = PLATFORM,
                        bot_id = %bot,
                        attempt,
                        meeting_platform = %meeting_platform,
                        application = %slot.slot_id,
                        deployment = deployment_uuid.as_deref().unwrap_or("already queued"),
                        "bot deployed to a warm slot"
                    );
                    self.ledger.record_start(&claim, attempt, deployment_uuid);
                    return Ok(deployed);
                }
                Err(StartFailure::SlotBroken(reason)) => {
                    self.fail_slot(&claim, &reason).await;
                    broken.push(format!("slot {}: {reason}", slot.slot_id));
                }
                Err(StartFailure::NotStarted {
                    error,
                    secrets_written,
                }) => {
                    self.give_back(&claim, secrets_written).await;
                    return Err(error);
                }
                Err(StartFailure::Unknown { error, detail }) => {
                    // Handing the slot to another bot could run two bots in
                    // it; holding it for this bot could hold it forever.
                    self.fail_slot(
                        &claim,
                        &format!(
                            "its start may have been queued ({error}) and Coolify could not be asked ({detail}); check the application, then recover the slot"
                        ),
                    )
                    .await;
                    return Err(error);
                }
            }
        }
        Err(Error::StartFailed {
            platform: PLATFORM,
            resource: format!("bot {bot}"),
            reason: format!(
                "{} slots in a row could not run it and were marked failed: {}",
                broken.len(),
                broken.join("; ")
            ),
        })
    }

    async fn stop_bot(&self, identifier: &PlatformId) -> Result<()> {
        let Some(claim) = SlotClaim::parse(identifier) else {
            return Ok(());
        };
        let Some(_guard) = self.lock_known_slot(&claim.application_uuid).await? else {
            return Ok(());
        };
        let slot = self.store.get_slot(POOL, &claim.application_uuid).await?;
        if !matches!(ClaimView::of(&claim, slot.as_ref()), ClaimView::Held) {
            // A stale identifier never stops the bot that holds the slot now.
            tracing::debug!(platform = PLATFORM, identifier = %identifier, "stop of an ended claim: nothing to do");
            return Ok(());
        }
        self.stop_application(&claim.application_uuid).await?;
        self.ledger.record_stop(&claim);
        Ok(())
    }

    async fn get_bot_status(&self, identifier: &PlatformId) -> Result<BotStatus> {
        let Some(claim) = SlotClaim::parse(identifier) else {
            return Ok(ClaimView::NotAClaim.settled_status(None));
        };
        let slot = self.store.get_slot(POOL, &claim.application_uuid).await?;
        let view = ClaimView::of(&claim, slot.as_ref());
        if !matches!(view, ClaimView::Held) {
            return Ok(view.settled_status(Some(&claim)));
        }
        let uuid = claim.application_uuid.as_str();
        let resource = format!("application {uuid}");
        match idempotent(&self.config.retry, &resource, || {
            self.client.get_application(uuid)
        })
        .await
        {
            Ok(app) => self.held_status(&claim, &app, None).await,
            Err(e) if e.is_not_found() => Ok(self.application_gone(&claim).await),
            Err(e) => Err(e),
        }
    }

    async fn get_bot_statuses(
        &self,
        identifiers: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>> {
        let mut statuses = HashMap::with_capacity(identifiers.len());
        let claims: Vec<(&PlatformId, Option<SlotClaim>)> = identifiers
            .iter()
            .map(|id| (id, SlotClaim::parse(id)))
            .collect();
        let slots: HashMap<String, Slot> = if claims.iter().any(|(_, c)| c.is_some()) {
            self.store
                .list_slots(POOL)
                .await?
                .into_iter()
                .map(|s| (s.slot_id.clone(), s))
                .collect()
        } else {
            HashMap::new()
        };
        let mut held = Vec::new();
        for (id, claim) in claims {
            let Some(claim) = claim else {
                statuses.insert(id.clone(), ClaimView::NotAClaim.settled_status(None));
                continue;
            };
            let view = ClaimView::of(&claim, slots.get(&claim.application_uuid));
            if matches!(view, ClaimView::Held) {
                held.push((id, claim));
            } else {
                statuses.insert(id.clone(), view.settled_status(Some(&claim)));
            }
        }
        if held.is_empty() {
            return Ok(statuses);
        }
        // One list for every held claim, however many.
        let applications = self.applications_by_uuid().await?;
        // Claims whose application is down need their deployment; one list
        // of running deployments answers for all that are still starting.
        let needs_deployments = held.iter().any(|(_, claim)| {
            applications
                .get(&claim.application_uuid)
                .is_some_and(|app| {
                    let up = AppState::parse(app.status.as_deref().unwrap_or_default()).is_up();
                    let record = self.ledger.get(claim);
                    let settled = record
                        .as_ref()
                        .is_some_and(|r| r.stop_requested || r.outcome.is_some());
                    !up && !settled
                })
        });
        let running = if needs_deployments {
            idempotent(&self.config.retry, "running deployments", || {
                self.client.list_running_deployments()
            })
            .await?
        } else {
            Vec::new()
        };
        for (id, claim) in held {
            let status = match applications.get(&claim.application_uuid) {
                Some(app) => self.held_status(&claim, app, Some(&running)).await?,
                None => self.application_gone(&claim).await,
            };
            statuses.insert(id.clone(), status);
        }
        Ok(statuses)
    }

    async fn cleanup(&self, identifier: &PlatformId) -> Result<()> {
        let Some(claim) = SlotClaim::parse(identifier) else {
            return Ok(());
        };
        let uuid = claim.application_uuid.as_str();
        let Some(_guard) = self.lock_known_slot(uuid).await? else {
            return Ok(());
        };
        let slot = self.store.get_slot(POOL, uuid).await?;
        match ClaimView::of(&claim, slot.as_ref()) {
            ClaimView::Held => {
                let already_stopped = self.ledger.get(&claim).is_some_and(|r| r.stop_requested);
                if !already_stopped {
                    // A slot is released only once its bot is asked to stop:
                    // the next bot must not share it with a running one.
                    self.stop_application(uuid).await?;
                }
                // Before the release, while no other bot can be writing
                // its own environment into the slot.
                self.clear_meeting_secrets(uuid, &self.config.retry).await?;
                self.ledger.forget(&claim);
                let released = self.store.release_slot(POOL, uuid, claim.bot_id).await?;
                tracing::info!(
                    platform = PLATFORM,
                    bot_id = %claim.bot_id,
                    application = uuid,
                    released,
                    "bot cleaned up; slot returned to the pool"
                );
                Ok(())
            }
            // No bot runs in a failed slot, so stopping it and clearing its
            // secrets is safe, and it keeps a crash-looping container from
            // running on.
            ClaimView::SlotFailed(_) => {
                self.stop_application(uuid).await?;
                self.clear_meeting_secrets(uuid, &self.config.retry).await
            }
            ClaimView::NotAClaim | ClaimView::NoSlot | ClaimView::Ended(_) => Ok(()),
        }
    }

    async fn check_reachable(&self) -> Result<()> {
        let version = crate::setup::identify(&self.client)
            .await
            .into_result(&self.client)?;
        tracing::debug!(platform = PLATFORM, version, "coolify is reachable");
        Ok(())
    }

    /// Every slot of this installation's pool that a bot holds, by the
    /// store's claims (the one record of who holds a slot), minus any whose
    /// application Coolify now lists under another installation's name. A
    /// claim whose application is gone is listed: it still holds a slot of
    /// the pool, and its cleanup gives it back.
    async fn list_marked_bots(&self) -> Result<Vec<MarkedBot>> {
        let claimed: Vec<(Slot, platform_core::BotId)> = self
            .store
            .list_slots(POOL)
            .await?
            .into_iter()
            .filter_map(|slot| match slot.state {
                SlotState::Claimed { bot_id } => Some((slot, bot_id)),
                _ => None,
            })
            .collect();
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let applications = self.applications_by_uuid().await?;
        let mut marked = Vec::with_capacity(claimed.len());
        for (slot, bot) in claimed {
            let app = applications.get(&slot.slot_id);
            if app.is_some_and(|app| self.pool.is_others(app)) {
                tracing::warn!(
                    platform = PLATFORM,
                    application = %slot.slot_id,
                    name = app.and_then(|a| a.name.as_deref()).unwrap_or_default(),
                    "a claimed slot's application is named for another installation; it is not listed for the sweep"
                );
                continue;
            }
            let claim = SlotClaim::new(slot.slot_id.clone(), bot);
            let name = app
                .and_then(|a| a.name.clone())
                .unwrap_or_else(|| "(application gone from Coolify)".to_owned());
            marked.push(MarkedBot {
                identifier: claim.to_platform_id(),
                bot,
                attempt: self.ledger.get(&claim).and_then(|r| r.started_attempt),
                description: format!(
                    "{} slot {name} (application {}), claimed by bot {bot}",
                    slot.meeting_platform, slot.slot_id
                ),
            });
        }
        Ok(marked)
    }

    async fn check_setup(&self) -> Vec<SetupCheck> {
        crate::setup::check_setup(&self.client, &self.config, &self.installation).await
    }
}
