//! The warm pool: slot applications kept in the core [`SlotStore`], adopted
//! from Coolify at start-up and grown on demand up to a maximum per meeting
//! platform.
//!
//! The store is the only record of who holds which slot; claiming is its
//! atomic operation. This module adds what the store cannot know: which
//! Coolify applications are slots (by name, see [`crate::naming`]), and how
//! to create one without ever creating two for one need.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use platform_core::{
    BotId, ConfigProblem, Error, MeetingPlatform, NewSlot, Result, Slot, SlotState, SlotStore,
};

use crate::client::CoolifyClient;
use crate::config::{CoolifyConfig, PerMeetingPlatform, image_variable, pool_max_spec};
use crate::naming::SlotName;
use crate::retrying::{idempotent, in_context, unless_processed};
use crate::wire::{Application, Created, NewDockerImageApplication, first_domain};
use crate::{PLATFORM, POOL};

/// The slot pool of one Coolify project.
pub(crate) struct SlotPool {
    store: Arc<dyn SlotStore>,
    /// Environments of the project: an application is in the project when
    /// its `environment_id` is one of these.
    project_environments: BTreeSet<i64>,
    /// Growing the pool is serialised per meeting platform, so concurrent
    /// deploys cannot take it past its maximum. Several service processes
    /// each have their own lock (see the crate docs).
    grow_locks: PerMeetingPlatform<tokio::sync::Mutex<()>>,
}

/// What adoption did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Adoption {
    /// Slot applications found in the project.
    pub found: usize,
    /// Store slots removed because their application is gone or no longer
    /// in the project.
    pub pruned: Vec<String>,
}

impl SlotPool {
    /// Checks the project and environment, lists the applications once and
    /// adopts every slot application of the project. Any API error fails
    /// before the store is touched: an error is never read as "there are no
    /// applications".
    pub(crate) async fn adopt(
        client: &CoolifyClient,
        config: &CoolifyConfig,
        store: Arc<dyn SlotStore>,
    ) -> Result<(Self, Adoption)> {
        const CONTEXT: &str = "adopting the warm pool at start-up";
        let resource = format!("environments of project {}", config.project_uuid);
        let environments = idempotent(&config.retry, &resource, || {
            client.list_environments(&config.project_uuid)
        })
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Error::Config {
                    platform: PLATFORM,
                    problems: vec![ConfigProblem::new(
                        crate::config::COOLIFY_PROJECT_UUID.name,
                        format!(
                            "names no project this API token can see ({}): {e}",
                            config.project_uuid
                        ),
                    )],
                }
            } else {
                in_context(e, CONTEXT)
            }
        })?;
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
            project_environments: environments.iter().map(|e| e.id).collect(),
            grow_locks: PerMeetingPlatform::default(),
        };
        let applications = idempotent(&config.retry, "applications", || client.list_applications())
            .await
            .map_err(|e| in_context(e, CONTEXT))?;

        let mut adoption = Adoption::default();
        let mut slot_apps = HashSet::new();
        for (app, name) in pool.slot_applications(&applications) {
            slot_apps.insert(app.uuid.clone());
            adoption.found += 1;
            pool.store
                .add_slot(NewSlot {
                    pool: POOL.to_owned(),
                    slot_id: app.uuid.clone(),
                    meeting_platform: name.meeting_platform,
                    connection_url: app.connection_url(),
                })
                .await?;
        }
        for slot in pool.store.list_slots(POOL).await? {
            let held = matches!(slot.state, SlotState::Claimed { .. });
            if !held
                && !slot_apps.contains(&slot.slot_id)
                && pool.store.remove_slot(POOL, &slot.slot_id).await?
            {
                adoption.pruned.push(slot.slot_id);
            }
        }
        Ok((pool, adoption))
    }

    /// The applications that are slots of this project, with their names
    /// read.
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
    /// holds, an idle one, or a new one while the pool is below its maximum.
    pub(crate) async fn claim(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        meeting_platform: MeetingPlatform,
        bot: BotId,
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
                return Err(cannot_create(meeting_platform, max == 0));
            }
            if count >= max || config.images.get(meeting_platform).is_none() {
                return Err(Error::PoolExhausted {
                    platform: PLATFORM,
                    meeting_platform,
                    capacity: count,
                });
            }
            let known: HashSet<String> = slots.into_iter().map(|s| s.slot_id).collect();
            self.grow(client, config, meeting_platform, &known).await?;
        }
    }

    /// Adds one slot of `meeting_platform` to the store: a slot application
    /// of the project the store does not know yet (left by a crash between
    /// creating it and recording it), or a new one.
    async fn grow(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        meeting_platform: MeetingPlatform,
        known: &HashSet<String>,
    ) -> Result<()> {
        let applications = idempotent(&config.retry, "applications", || client.list_applications())
            .await
            .map_err(|e| in_context(e, "looking for slots before creating one"))?;
        let mut taken = BTreeSet::new();
        let mut orphan = None;
        for (app, name) in self.slot_applications(&applications) {
            if name.meeting_platform != meeting_platform {
                continue;
            }
            taken.insert(name.number);
            if orphan.is_none() && !known.contains(&app.uuid) {
                orphan = Some(app);
            }
        }
        if let Some(app) = orphan {
            tracing::info!(
                platform = PLATFORM,
                application = %app.uuid,
                name = app.name.as_deref().unwrap_or_default(),
                "adopting a slot application the pool did not know"
            );
            self.add(&app.uuid, meeting_platform, app.connection_url())
                .await?;
            return Ok(());
        }
        // Names of other projects' applications count too, so two projects
        // of one team never show two `meeboter-slot-zoom-001`.
        for app in &applications {
            if let Some(name) = app.name.as_deref().and_then(SlotName::parse)
                && name.meeting_platform == meeting_platform
            {
                taken.insert(name.number);
            }
        }
        let Some(image) = config.images.get(meeting_platform) else {
            return Err(cannot_create(meeting_platform, false));
        };
        let name = SlotName::first_free(meeting_platform, &taken).format();
        let body = NewDockerImageApplication {
            project_uuid: config.project_uuid.clone(),
            server_uuid: config.server_uuid.clone(),
            environment_name: config.environment_name.clone(),
            docker_registry_image_name: image.name.clone(),
            docker_registry_image_tag: image.tag.clone(),
            ports_exposes: config.bot_port.to_string(),
            name: name.clone(),
            description: format!(
                "Warm slot for {meeting_platform} meeting bots, managed by Meeboter deploy. Its environment is rewritten for every bot; do not rename or delete it while bots run."
            ),
            instant_deploy: false,
        };
        let created = self.create(client, config, &body).await?;
        tracing::info!(
            platform = PLATFORM,
            application = %created.uuid,
            name,
            image = %image,
            "created a new slot application"
        );
        let connection_url = match first_domain(created.domains.as_deref()) {
            Some(url) => Some(url),
            None => self.generated_domain(client, config, &created.uuid).await,
        };
        self.add(&created.uuid, meeting_platform, connection_url)
            .await
    }

    /// The domain Coolify generated for a new application, which its create
    /// answer does not carry. Without it the slot still works: statuses
    /// report the URL once Coolify does.
    async fn generated_domain(
        &self,
        client: &CoolifyClient,
        config: &CoolifyConfig,
        application_uuid: &str,
    ) -> Option<String> {
        let resource = format!("application {application_uuid}");
        match idempotent(&config.retry, &resource, || {
            client.get_application(application_uuid)
        })
        .await
        {
            Ok(app) => app.connection_url(),
            Err(e) => {
                tracing::warn!(
                    platform = PLATFORM,
                    application = application_uuid,
                    error = %e,
                    "could not read the new slot application's domain"
                );
                None
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
fn cannot_create(meeting_platform: MeetingPlatform, max_is_zero: bool) -> Error {
    let problem = if max_is_zero {
        ConfigProblem::new(
            pool_max_spec(meeting_platform).name,
            format!(
                "is 0 and the project has no {meeting_platform} slot, so no {meeting_platform} bot can run"
            ),
        )
    } else {
        ConfigProblem::new(
            image_variable(meeting_platform),
            format!(
                "is not set and the project has no {meeting_platform} slot application, so no {meeting_platform} bot can run; set it to the bot image (with its tag) or create slot applications named like {}",
                SlotName {
                    meeting_platform,
                    number: 1
                }
                .format()
            ),
        )
    };
    Error::Config {
        platform: PLATFORM,
        problems: vec![problem],
    }
}
