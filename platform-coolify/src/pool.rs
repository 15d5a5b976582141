//! The warm pool: slot applications kept in the core [`SlotStore`], adopted
//! from Coolify at start-up and grown on demand up to a maximum per meeting
//! platform.
//!
//! The store is the only record of who holds which slot; claiming is its
//! atomic operation. This module adds what the store cannot know: which
//! Coolify applications are this installation's slots (by name, see
//! [`crate::naming`]), and how to create one without ever creating two for
//! one need, or creating at all when creating yields nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use platform_core::{
    BotId, ConfigProblem, Error, InstallationId, MeetingPlatform, NewSlot, Result, Slot, SlotState,
    SlotStore,
};

use crate::client::CoolifyClient;
use crate::config::{CoolifyConfig, PerMeetingPlatform, image_variable, pool_max_spec};
use crate::growth::{CreationBudget, CreationWindow};
use crate::naming::SlotName;
use crate::retrying::{idempotent, in_context, unless_processed};
use crate::setup::{Identity, identify, may_not_be_coolify, not_coolify, visible_projects};
use crate::wire::{Application, Created, NewDockerImageApplication, first_domain};
use crate::{PLATFORM, POOL};

/// The slot pool of one installation in one Coolify project.
pub(crate) struct SlotPool {
    store: Arc<dyn SlotStore>,
    /// Whose slots these are: only applications named for it are adopted.
    installation: InstallationId,
    /// Environments of the project: an application is in the project when
    /// its `environment_id` is one of these.
    project_environments: BTreeSet<i64>,
    /// Growing the pool is serialised per meeting platform, so concurrent
    /// deploys cannot take it past its maximum. Several service processes
    /// each have their own lock (see the crate docs).
    grow_locks: PerMeetingPlatform<tokio::sync::Mutex<()>>,
    /// The creations of the last minute.
    creations: CreationWindow,
}

/// What adoption did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Adoption {
    /// This installation's slot applications found in the project.
    pub found: usize,
    /// Store slots removed because their application is gone, no longer in
    /// the project, or named for another installation.
    pub pruned: Vec<String>,
    /// Slots this installation's store already held under a name without
    /// an installation id (made before names carried it), renamed to carry
    /// it.
    pub renamed: Vec<String>,
    /// Slot applications named without an installation id that this
    /// installation's store does not hold: left alone, for the operator.
    pub unmarked: Vec<String>,
    /// Slot applications of other installations in the project.
    pub others: usize,
}

/// Whose a slot application is.
enum Owner {
    /// This installation's.
    Ours,
    /// Named before names carried an installation.
    Unmarked,
    /// Another installation's.
    Other,
}

impl SlotPool {
    /// Checks the project and environment, lists the applications once and
    /// adopts this installation's slot applications of the project. Any API
    /// error fails before the store is touched: an error is never read as
    /// "there are no applications".
    pub(crate) async fn adopt(
        client: &CoolifyClient,
        config: &CoolifyConfig,
        store: Arc<dyn SlotStore>,
        installation: InstallationId,
    ) -> Result<(Self, Adoption)> {
        const CONTEXT: &str = "adopting the warm pool at start-up";
        let resource = format!("environments of project {}", config.project_uuid);
        let environments = match idempotent(&config.retry, &resource, || {
            client.list_environments(&config.project_uuid)
        })
        .await
        {
            Ok(environments) => environments,
            Err(e) => return Err(project_error(client, config, e, CONTEXT).await),
        };
        if !environments
            .iter()
            .any(|env| env.name == config.environment_name)
        {
            let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
            return Err(Error::Config {
                platform: PLATFORM,
                problems: vec![ConfigProblem::new(
                    crate::config::COOLIFY_ENVIRONMENT_NAME.name,
                    format!(
                        "{:?} is not an environment of project {}; it has: {}",
                        config.environment_name,
                        config.project_uuid,
                        names.join(", ")
                    ),
                )],
            });
        }
        let pool = Self {
            store,
            installation,
            project_environments: environments.iter().map(|e| e.id).collect(),
            grow_locks: PerMeetingPlatform::default(),
            creations: CreationWindow::new(config.pool_creations_per_minute),
        };
        let applications = idempotent(&config.retry, "applications", || client.list_applications())
            .await
            .map_err(|e| in_context(e, CONTEXT))?;
        let stored: HashMap<String, Slot> = pool
            .store
            .list_slots(POOL)
            .await?
            .into_iter()
            .map(|s| (s.slot_id.clone(), s))
            .collect();

        let mut adoption = Adoption::default();
        let mut ours = HashSet::new();
        let mut taken = pool.taken_numbers(&applications);
        for (app, name) in pool.slot_applications(&applications) {
            match pool.owner(&name) {
                Owner::Ours => {
                    ours.insert(app.uuid.clone());
                    adoption.found += 1;
                    pool.add(&app.uuid, name.meeting_platform, app.connection_url())
                        .await?;
                }
                Owner::Unmarked => match stored.get(&app.uuid) {
                    // This installation's database recorded the slot before
                    // names carried the installation: it is provably ours.
                    Some(slot) => {
                        ours.insert(app.uuid.clone());
                        adoption.found += 1;
                        if !matches!(slot.state, SlotState::Claimed { .. })
                            && let Some(new_name) = pool
                                .mark(
                                    client,
                                    config,
                                    app,
                                    &name,
                                    taken.get_mut(name.meeting_platform),
                                )
                                .await
                        {
                            adoption.renamed.push(new_name);
                        }
                    }
                    None => adoption.unmarked.push(app.name.clone().unwrap_or_default()),
                },
                Owner::Other => adoption.others += 1,
            }
        }
        for slot in stored.into_values() {
            let held = matches!(slot.state, SlotState::Claimed { .. });
            if !held
                && !ours.contains(&slot.slot_id)
                && pool.store.remove_slot(POOL, &slot.slot_id).await?
            {
                adoption.pruned.push(slot.slot_id);
            }
        }
        adoption.pruned.sort();
        adoption.unmarked.sort();
        if !adoption.unmarked.is_empty() {
            tracing::warn!(
                platform = PLATFORM,
                installation = %pool.installation,
                applications = %crate::setup::list_of_names(&adoption.unmarked),
                "slot applications named without an installation id are not used by this installation; rename one to meeboter-slot-{}-<meeting platform>-<number> in Coolify to give it to this installation, or delete it",
                pool.installation
            );
        }
        Ok((pool, adoption))
    }

    /// Whose slot application `name` is.
    fn owner(&self, name: &SlotName) -> Owner {
        match &name.installation {
            Some(installation) if *installation == self.installation => Owner::Ours,
            Some(_) => Owner::Other,
            None => Owner::Unmarked,
        }
    }

    /// Whether `name` is the name of one of this installation's slots.
    pub(crate) fn is_ours(&self, name: &SlotName) -> bool {
        matches!(self.owner(name), Owner::Ours)
    }

    /// Whether the application is named as another installation's slot.
    pub(crate) fn is_others(&self, app: &Application) -> bool {
        app.name
            .as_deref()
            .and_then(SlotName::parse)
            .is_some_and(|name| matches!(self.owner(&name), Owner::Other))
    }

    /// The numbers this installation's slot names use, per meeting
    /// platform, in any project of the team (so that two projects never
    /// show the same name).
    fn taken_numbers(&self, applications: &[Application]) -> PerMeetingPlatform<BTreeSet<u32>> {
        let mut taken = PerMeetingPlatform::<BTreeSet<u32>>::default();
        for app in applications {
            if let Some(name) = app.name.as_deref().and_then(SlotName::parse)
                && self.is_ours(&name)
            {
                taken.get_mut(name.meeting_platform).insert(name.number);
            }
        }
        taken
    }

    /// Renames a slot this installation's store held under a name without
    /// the installation to one with it, keeping its number when free.
    /// Returns the new name; a failure is logged and tried again at the
    /// next start-up (the store still says the slot is ours).
    async fn mark(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        app: &Application,
        old: &SlotName,
        taken: &mut BTreeSet<u32>,
    ) -> Option<String> {
        let new = if taken.contains(&old.number) {
            SlotName::first_free(&self.installation, old.meeting_platform, taken)
        } else {
            SlotName::new(&self.installation, old.meeting_platform, old.number)
        };
        let new_name = new.format();
        let resource = format!("application {}", app.uuid);
        match idempotent(&config.retry, &resource, || {
            client.rename_application(&app.uuid, &new_name)
        })
        .await
        {
            Ok(()) => {
                taken.insert(new.number);
                tracing::info!(
                    platform = PLATFORM,
                    application = %app.uuid,
                    from = %old.format(),
                    to = %new_name,
                    "a slot this installation already held now carries its installation id"
                );
                Some(new_name)
            }
            Err(e) => {
                tracing::warn!(
                    platform = PLATFORM,
                    application = %app.uuid,
                    name = %old.format(),
                    error = %e,
                    "could not rename a slot of this installation to carry its installation id; it stays in use and the rename is tried at the next start-up"
                );
                None
            }
        }
    }

    /// The applications of the project that are slots (of any
    /// installation), with their names read.
    fn slot_applications<'a>(
        &self,
        applications: &'a [Application],
    ) -> impl Iterator<Item = (&'a Application, SlotName)> + 'a {
        let environments = self.project_environments.clone();
        applications.iter().filter_map(move |app| {
            let name = SlotName::parse(app.name.as_deref()?)?;
            // An application without `environment_id` (a Coolify that hides
            // it) is judged by its name alone.
            let in_project = app
                .environment_id
                .is_none_or(|id| environments.contains(&id));
            in_project.then_some((app, name))
        })
    }

    /// Claims a slot of `meeting_platform` for `bot`: the one it already
    /// holds, an idle one, or a new one while the pool is below its maximum
    /// and `budget` and the per-minute bound allow.
    pub(crate) async fn claim(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        meeting_platform: MeetingPlatform,
        bot: BotId,
        budget: &mut CreationBudget,
    ) -> Result<Slot> {
        if let Some(slot) = self.store.claim_slot(POOL, meeting_platform, bot).await? {
            return Ok(slot);
        }
        let _growing = self.grow_locks.get(meeting_platform).lock().await;
        loop {
            // A slot may have been released or created while we waited.
            if let Some(slot) = self.store.claim_slot(POOL, meeting_platform, bot).await? {
                return Ok(slot);
            }
            let slots = self.store.list_slots(POOL).await?;
            let count = slots
                .iter()
                .filter(|s| s.meeting_platform == meeting_platform)
                .count();
            let max = *config.pool_max.get(meeting_platform);
            if count == 0 && (max == 0 || config.images.get(meeting_platform).is_none()) {
                return Err(cannot_create(
                    meeting_platform,
                    max == 0,
                    &self.installation,
                ));
            }
            if count >= max || config.images.get(meeting_platform).is_none() {
                return Err(Error::PoolExhausted {
                    platform: PLATFORM,
                    meeting_platform,
                    capacity: count,
                });
            }
            let known: HashSet<String> = slots.into_iter().map(|s| s.slot_id).collect();
            self.grow(client, config, meeting_platform, &known, budget)
                .await?;
        }
    }

    /// Adds one slot of `meeting_platform` to the store: a slot application
    /// of this installation in the project that the store does not know yet
    /// (left by a crash between creating it and recording it), or a new one.
    /// A creation that yields no new, distinct, listed application is an
    /// error, never a reason to create again.
    async fn grow(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        meeting_platform: MeetingPlatform,
        known: &HashSet<String>,
        budget: &mut CreationBudget,
    ) -> Result<()> {
        let applications = idempotent(&config.retry, "applications", || client.list_applications())
            .await
            .map_err(|e| in_context(e, "looking for slots before creating one"))?;
        let orphan = self.slot_applications(&applications).find(|(app, name)| {
            self.is_ours(name)
                && name.meeting_platform == meeting_platform
                && !known.contains(&app.uuid)
        });
        if let Some((app, _)) = orphan {
            tracing::info!(
                platform = PLATFORM,
                application = %app.uuid,
                name = app.name.as_deref().unwrap_or_default(),
                "adopting a slot application the pool did not know"
            );
            return self
                .add(&app.uuid, meeting_platform, app.connection_url())
                .await;
        }
        let Some(image) = config.images.get(meeting_platform) else {
            return Err(cannot_create(meeting_platform, false, &self.installation));
        };
        let taken = self.taken_numbers(&applications);
        let name = SlotName::first_free(
            &self.installation,
            meeting_platform,
            taken.get(meeting_platform),
        )
        .format();
        let body = NewDockerImageApplication {
            project_uuid: config.project_uuid.clone(),
            server_uuid: config.server_uuid.clone(),
            environment_name: config.environment_name.clone(),
            docker_registry_image_name: image.name.clone(),
            docker_registry_image_tag: image.tag.clone(),
            ports_exposes: config.bot_port.to_string(),
            name: name.clone(),
            description: format!(
                "Warm slot for {meeting_platform} meeting bots of Meeboter deploy installation {}. Its environment is rewritten for every bot; do not rename or delete it while bots run.",
                self.installation
            ),
            instant_deploy: false,
        };
        budget.spend(meeting_platform)?;
        self.creations.admit(meeting_platform)?;
        let created = self.create(client, config, &body).await?;
        let connection_url = self
            .check_new(client, config, &body.name, &created, known, &applications)
            .await?;
        tracing::info!(
            platform = PLATFORM,
            application = %created.uuid,
            name,
            image = %image,
            "created a new slot application"
        );
        self.add(&created.uuid, meeting_platform, connection_url)
            .await
    }

    /// Checks that a creation yielded a new slot: an application uuid the
    /// pool does not hold and Coolify did not list before, which Coolify
    /// now lists under the name it was given (the name is how the pool
    /// finds it again after a restart). Returns its URL.
    async fn check_new(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        name: &str,
        created: &Created,
        known: &HashSet<String>,
        before: &[Application],
    ) -> Result<Option<String>> {
        let uuid = created.uuid.as_str();
        let added_nothing = |answer: String| {
            tracing::warn!(
                platform = PLATFORM,
                name,
                application = uuid,
                answer,
                "a slot creation yielded no new slot; no more are created for this deploy"
            );
            Error::Internal {
                platform: PLATFORM,
                resource: format!("new slot application {name}"),
                message: format!(
                    "Coolify answered its creation with application uuid {uuid:?}, {answer}; the creation added no slot, so no more are created for this deploy"
                ),
            }
        };
        if known.contains(uuid) {
            return Err(added_nothing(
                "which is already a slot of this pool".to_owned(),
            ));
        }
        if let Some(existing) = before.iter().find(|app| app.uuid == uuid) {
            return Err(added_nothing(format!(
                "an application that existed before (named {:?})",
                existing.name.as_deref().unwrap_or_default()
            )));
        }
        let after = idempotent(&config.retry, "applications", || client.list_applications())
            .await
            .map_err(|e| in_context(e, "checking the new slot application"))?;
        match after.iter().find(|app| app.uuid == uuid) {
            None => Err(added_nothing(
                "but its list of applications does not show that application".to_owned(),
            )),
            Some(app) if app.name.as_deref() != Some(name) => Err(added_nothing(format!(
                "but lists that application named {:?}, so the pool would not recognise it after a restart",
                app.name.as_deref().unwrap_or_default()
            ))),
            Some(app) => {
                Ok(first_domain(created.domains.as_deref()).or_else(|| app.connection_url()))
            }
        }
    }

    /// Creates the application. A failure that may have created it anyway
    /// is reconciled by listing and looking for its name, never by sending
    /// the create again.
    async fn create(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        body: &NewDockerImageApplication,
    ) -> Result<Created> {
        let resource = format!("new application {}", body.name);
        let failure = match unless_processed(&config.retry, &resource, || {
            client.create_docker_image_application(body)
        })
        .await
        {
            Ok(created) => return Ok(created),
            Err(failure) => failure,
        };
        if !failure.may_have_been_processed {
            return Err(failure.error);
        }
        tracing::warn!(
            platform = PLATFORM,
            name = body.name,
            error = %failure.error,
            "creating a slot application may have succeeded; looking for it"
        );
        let applications = idempotent(&config.retry, "applications", || client.list_applications())
            .await
            .map_err(|e| in_context(e, "checking whether a slot application was created"))?;
        match applications
            .into_iter()
            .find(|app| app.name.as_deref() == Some(body.name.as_str()))
        {
            Some(app) => Ok(Created {
                uuid: app.uuid,
                domains: app.fqdn,
            }),
            // Not created: the error stays retryable and the next deploy
            // lists again before creating.
            None => Err(failure.error),
        }
    }

    async fn add(
        &self,
        application_uuid: &str,
        meeting_platform: MeetingPlatform,
        connection_url: Option<String>,
    ) -> Result<()> {
        self.store
            .add_slot(NewSlot {
                pool: POOL.to_owned(),
                slot_id: application_uuid.to_owned(),
                meeting_platform,
                connection_url,
            })
            .await
            .map(drop)
    }
}

/// The pool has no slot of `meeting_platform` and may not create one: a
/// configuration problem, not a busy pool.
fn cannot_create(
    meeting_platform: MeetingPlatform,
    max_is_zero: bool,
    installation: &InstallationId,
) -> Error {
    let problem = if max_is_zero {
        ConfigProblem::new(
            pool_max_spec(meeting_platform).name,
            format!(
                "is 0 and this installation has no {meeting_platform} slot in the project, so no {meeting_platform} bot can run"
            ),
        )
    } else {
        ConfigProblem::new(
            image_variable(meeting_platform),
            format!(
                "is not set and the project has no {meeting_platform} slot application of this installation, so no {meeting_platform} bot can run; set it to the bot image (with its tag) or create slot applications named like {}",
                SlotName::new(installation, meeting_platform, 1).format()
            ),
        )
    };
    Error::Config {
        platform: PLATFORM,
        problems: vec![problem],
    }
}

/// The error of a project that could not be read at start-up. A not-found
/// or an answer that is not Coolify's JSON may mean that the URL serves
/// something else entirely: that is asked first, so such a URL is reported
/// as what it is, never as "no such project".
async fn project_error(
    client: &CoolifyClient,
    config: &CoolifyConfig,
    error: Error,
    context: &str,
) -> Error {
    if !may_not_be_coolify(&error) {
        return in_context(error, context);
    }
    match identify(client).await {
        Identity::NotCoolify(what) => not_coolify(client, &what),
        Identity::Coolify { .. } if error.is_not_found() => Error::Config {
            platform: PLATFORM,
            problems: vec![ConfigProblem::new(
                crate::config::COOLIFY_PROJECT_UUID.name,
                format!(
                    "names no project this API token can see ({}); {}",
                    config.project_uuid,
                    visible_projects(client, config).await
                ),
            )],
        },
        refused @ Identity::Refused { .. } => match refused.into_result(client) {
            Err(e) => e,
            Ok(_) => in_context(error, context),
        },
        Identity::Coolify { .. } | Identity::Unknown(_) => in_context(error, context),
    }
}
