//! The compiled-in platforms: what `platforms` lists, and building the one
//! `DEPLOYMENT_PLATFORM` chooses.

use std::sync::Arc;

use platform_core::{
    AutoSelect, EnvLookup, EnvVarSpec, InstallationId, PlatformContext, PlatformDescriptor,
    PlatformService, Registry, SelectedBy, Selection, SlotStore, select_auto, select_platform,
    select_platforms,
};
use serde::Serialize;

use crate::error::{ServiceError, ServiceResult};
use crate::{failpoint, settings, sim_bot};

/// How `DEPLOYMENT_PLATFORM=auto` treats a platform.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AutoDetection {
    /// Chosen when all its markers are set.
    Detect {
        /// Position in the detection order.
        order: u16,
        /// The variables whose presence means "configured".
        markers: Vec<&'static str>,
        /// Markers often set for other reasons.
        ambient: Vec<&'static str>,
    },
    /// Chosen when any one of its markers is set.
    DetectAny {
        /// Position in the detection order.
        order: u16,
        /// The variables any one of which means "configured".
        markers: Vec<&'static str>,
    },
    /// Chosen, with a warning, when nothing else is configured.
    Fallback,
    /// Only chosen by name.
    Never,
}

/// One compiled-in platform.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformInfo {
    /// Its name.
    pub name: &'static str,
    /// One line about it.
    pub description: &'static str,
    /// The `deployment` feature that brings it in.
    pub feature: &'static str,
    /// How `auto` treats it.
    pub auto_detection: AutoDetection,
    /// Every variable it reads.
    pub env: &'static [EnvVarSpec],
}

impl PlatformInfo {
    fn of(descriptor: &'static PlatformDescriptor) -> Self {
        let auto_detection = match descriptor.auto {
            AutoSelect::Detect {
                order,
                markers,
                ambient,
            } => AutoDetection::Detect {
                order,
                markers: markers.iter().map(|m| m.name).collect(),
                ambient: ambient.to_vec(),
            },
            AutoSelect::DetectAny { order, markers } => AutoDetection::DetectAny {
                order,
                markers: markers.iter().map(|m| m.name).collect(),
            },
            AutoSelect::Fallback => AutoDetection::Fallback,
            AutoSelect::Never => AutoDetection::Never,
        };
        Self {
            name: descriptor.name,
            description: descriptor.description,
            feature: descriptor.feature,
            auto_detection,
            env: descriptor.env,
        }
    }
}

/// A platform choice and why, or why none could be made.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    /// The chosen platform.
    pub platform: Option<&'static str>,
    /// How it was chosen (`name`, `detected`, `fallback`).
    pub selected_by: Option<SelectedBy>,
    /// Why, in one sentence, or why nothing could be chosen.
    pub reason: String,
    /// What the operator should know.
    pub warnings: Vec<String>,
}

impl Choice {
    fn of(result: Result<Selection, platform_core::SelectionError>) -> Self {
        match result {
            Ok(selection) => Self {
                platform: Some(selection.descriptor.name),
                selected_by: Some(selection.selected_by),
                reason: selection.reason,
                warnings: selection.warnings,
            },
            Err(error) => Self {
                platform: None,
                selected_by: None,
                reason: error.to_string(),
                warnings: Vec::new(),
            },
        }
    }
}

/// What `meeboter-deploy platforms --json` prints; the docs generator
/// (`cargo xtask docs`) reads it.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformListing {
    /// Every compiled-in platform, sorted by name.
    pub platforms: Vec<PlatformInfo>,
    /// What `DEPLOYMENT_PLATFORM=auto` would pick in this environment.
    pub auto: Choice,
    /// What the current `DEPLOYMENT_PLATFORM` picks (the first of the
    /// priority list).
    pub selected: Choice,
    /// The platforms bots are placed on, in order (`PLATFORM_PRIORITY`,
    /// or `DEPLOYMENT_PLATFORM` as a list); empty with the reason in
    /// `priority_error` when the configuration names none validly.
    pub priority: Vec<&'static str>,
    /// Why there is no priority list, when there is none.
    pub priority_error: Option<String>,
    /// The service's own variables.
    pub service_env: &'static [EnvVarSpec],
    /// Variables only CLI commands read.
    pub cli_env: &'static [EnvVarSpec],
    /// Variables the stand-in bot (`sim-bot`) reads.
    pub sim_bot_env: &'static [EnvVarSpec],
    /// Variables only tests of debug builds read.
    pub test_env: &'static [EnvVarSpec],
    /// The variables every bot container receives (written by the
    /// platforms, read by bot images and the stand-in bot).
    pub bot_env: &'static [EnvVarSpec],
    /// The cargo features this binary was built with.
    pub features: &'static [&'static str],
    /// The binary's version.
    pub version: &'static str,
    /// The installation id of the database `DATABASE_URL` names (every
    /// name and mark a platform gives its bots includes it); absent when
    /// that database does not exist yet or cannot be opened.
    pub installation_id: Option<InstallationId>,
    /// Why there is no installation id, when there is none.
    pub installation_note: Option<String>,
    /// Each platform's bots against its cap, the queue and the sweep
    /// lease, read from the database when it exists and the platforms can
    /// be built.
    pub capacity: Option<crate::service::PlatformsView>,
    /// Why there is no capacity view, when there is none.
    pub capacity_note: Option<String>,
}

/// The registry of compiled-in platforms.
pub fn registry() -> ServiceResult<Registry> {
    Registry::global().map_err(|e| {
        ServiceError::Config(platform_core::Error::Config {
            platform: "service",
            problems: vec![platform_core::ConfigProblem::new(
                "DEPLOYMENT_PLATFORM",
                e.to_string(),
            )],
        })
    })
}

/// Every platform name a bot may be recorded under, as the API accepts it
/// in filters: this project's own platforms (compiled in or not, so bots
/// recorded by another build stay listable) and every plugin compiled in.
/// Sorted.
pub fn known_platform_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = platform_core::registry::FIRST_PARTY_PLATFORMS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    if let Ok(registry) = Registry::global() {
        names.extend(registry.names());
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// Lists the compiled-in platforms and what `env` would choose.
pub fn listing(env: &dyn EnvLookup) -> ServiceResult<PlatformListing> {
    let registry = registry()?;
    Ok(PlatformListing {
        platforms: registry
            .platforms()
            .iter()
            .copied()
            .map(PlatformInfo::of)
            .collect(),
        auto: Choice::of(select_auto(&registry, env)),
        selected: match select_platforms(&registry, env).map(|list| list.into_iter().next()) {
            Ok(Some(first)) => Choice::of(Ok(first)),
            Ok(None) => Choice::of(select_platform(&registry, env)),
            Err(error) => Choice::of(Err(error)),
        },
        priority: select_platforms(&registry, env)
            .map(|list| list.iter().map(|s| s.descriptor.name).collect())
            .unwrap_or_default(),
        priority_error: select_platforms(&registry, env)
            .err()
            .map(|e| e.to_string()),
        service_env: settings::SERVICE_ENV,
        cli_env: settings::CLI_ENV,
        sim_bot_env: sim_bot::SIM_BOT_ENV,
        test_env: failpoint::TEST_ENV,
        bot_env: platform_core::bot_env::SPECS,
        features: crate::ENABLED_FEATURES,
        version: env!("CARGO_PKG_VERSION"),
        installation_id: None,
        installation_note: None,
        capacity: None,
        capacity_note: None,
    })
}

/// Chooses the platform as `DEPLOYMENT_PLATFORM` in `env` says and builds
/// it, with `slots` as its slot store, for the bots of `installation`.
/// Configuration problems come back as one error listing all of them.
pub async fn build_platform(
    env: Arc<dyn EnvLookup>,
    slots: Arc<dyn SlotStore>,
    installation: InstallationId,
) -> ServiceResult<(Selection, Arc<dyn PlatformService>)> {
    let registry = registry()?;
    let selection = select_platform(&registry, env.as_ref())?;
    for warning in &selection.warnings {
        tracing::warn!(platform = selection.descriptor.name, "{warning}");
    }
    let platform = (selection.descriptor.build)(PlatformContext::new(env, slots, installation))
        .await
        .map_err(|e| match e {
            e @ platform_core::Error::Config { .. } => ServiceError::Config(e),
            other => ServiceError::Platform(other),
        })?;
    tracing::info!(platform = selection.descriptor.name, reason = %selection.reason, "platform chosen");
    Ok((selection, platform))
}

/// Chooses the platforms as `PLATFORM_PRIORITY` (or `DEPLOYMENT_PLATFORM`)
/// in `env` says and builds each, with `slots` as their slot store, for the
/// bots of `installation`, in placement order. Configuration problems of
/// every listed platform come back as one error listing all of them.
pub async fn build_platforms(
    env: Arc<dyn EnvLookup>,
    slots: Arc<dyn SlotStore>,
    installation: InstallationId,
) -> ServiceResult<Vec<(Selection, Arc<dyn PlatformService>)>> {
    let registry = registry()?;
    let selections = select_platforms(&registry, env.as_ref())?;
    let mut built = Vec::with_capacity(selections.len());
    let mut config_problems: Vec<platform_core::Error> = Vec::new();
    for selection in selections {
        for warning in &selection.warnings {
            tracing::warn!(platform = selection.descriptor.name, "{warning}");
        }
        let context =
            PlatformContext::new(Arc::clone(&env), Arc::clone(&slots), installation.clone());
        match (selection.descriptor.build)(context).await {
            Ok(platform) => {
                tracing::info!(
                    platform = selection.descriptor.name,
                    reason = %selection.reason,
                    cap = %platform.capacity(),
                    "platform chosen"
                );
                built.push((selection, platform));
            }
            Err(e @ platform_core::Error::Config { .. }) => config_problems.push(e),
            Err(other) => return Err(ServiceError::Platform(other)),
        }
    }
    match config_problems.len() {
        0 => Ok(built),
        1 => Err(ServiceError::Config(config_problems.remove(0))),
        _ => {
            // Every platform's problems at once, each named with its platform.
            let mut problems = Vec::new();
            for error in config_problems {
                if let platform_core::Error::Config {
                    platform,
                    problems: found,
                } = error
                {
                    problems.extend(found.into_iter().map(|p| {
                        let message = format!("({platform}) {}", p.problem);
                        platform_core::ConfigProblem::new(p.variable, message)
                    }));
                }
            }
            Err(ServiceError::Config(platform_core::Error::Config {
                platform: "platforms",
                problems,
            }))
        }
    }
}
