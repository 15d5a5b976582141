//! The plugin registry: each platform crate registers one `const`
//! [`PlatformDescriptor`] with [`register_platform!`](crate::register_platform).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::installation::InstallationId;
use crate::platform::PlatformService;
use crate::settings::{EnvLookup, EnvVarSpec};
use crate::slots::SlotStore;

/// A boxed, sendable future, as returned by a plugin's constructor.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A plugin's constructor: builds the platform from the context, validating
/// its configuration (every problem at once, as [`Error::Config`]).
pub type BuildFn =
    fn(PlatformContext) -> BoxFuture<'static, Result<Arc<dyn PlatformService>, Error>>;

/// What a plugin's constructor is given.
#[derive(Clone)]
#[non_exhaustive]
pub struct PlatformContext {
    /// Where to read configuration from.
    pub env: Arc<dyn EnvLookup>,
    /// Where pool-based platforms keep their slots (the service's database,
    /// or memory).
    pub slots: Arc<dyn SlotStore>,
    /// The installation whose bots this platform runs: every name and mark
    /// the platform gives a bot includes it, and it lists, adopts and
    /// sweeps only what carries it (see [`InstallationId`]).
    pub installation: InstallationId,
}

impl PlatformContext {
    /// A context over an environment and a slot store, for the bots of
    /// `installation`.
    pub fn new(
        env: Arc<dyn EnvLookup>,
        slots: Arc<dyn SlotStore>,
        installation: InstallationId,
    ) -> Self {
        Self {
            env,
            slots,
            installation,
        }
    }
}

impl fmt::Debug for PlatformContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformContext")
            .field("installation", &self.installation)
            .finish_non_exhaustive()
    }
}

/// How a platform takes part in `DEPLOYMENT_PLATFORM=auto`.
#[derive(Clone, Copy, Debug)]
pub enum AutoSelect {
    /// Chosen when all its `markers` are set; an error when only some are.
    /// Platforms are checked in ascending `order` (Coolify 10, AWS 20).
    Detect {
        /// Position in the auto-detection order.
        order: u16,
        /// The variables whose presence means "this platform is configured".
        markers: &'static [EnvVarSpec],
        /// Markers that are often set for other reasons (`AWS_REGION` on any
        /// AWS machine): when only these are set, the platform counts as not
        /// configured rather than partly configured.
        ambient: &'static [&'static str],
    },
    /// Chosen when any one of its `markers` is set, each a sign on its own
    /// (Kubernetes: `KUBERNETES_SERVICE_HOST`, set in every pod, or
    /// `K8S_NAMESPACE`); never partly configured. Checked in the same
    /// ascending `order` as [`Detect`](Self::Detect) (Kubernetes 30).
    DetectAny {
        /// Position in the auto-detection order.
        order: u16,
        /// The variables any one of which means "this platform is configured".
        markers: &'static [EnvVarSpec],
    },
    /// Chosen, with a warning, when no detectable platform is configured
    /// (the local platform).
    Fallback,
    /// Never chosen by `auto`; only by name.
    Never,
}

/// A platform plugin, described as data. Declare it as a `const` and pass it
/// to [`register_platform!`](crate::register_platform).
#[derive(Clone, Copy)]
pub struct PlatformDescriptor {
    /// The name operators use in `DEPLOYMENT_PLATFORM` (`coolify`).
    pub name: &'static str,
    /// One line about what it runs bots on.
    pub description: &'static str,
    /// The cargo feature of the `deployment` crate that brings it in.
    pub feature: &'static str,
    /// Every environment variable it reads.
    pub env: &'static [EnvVarSpec],
    /// How `auto` treats it.
    pub auto: AutoSelect,
    /// Its constructor.
    pub build: BuildFn,
}

impl fmt::Debug for PlatformDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformDescriptor")
            .field("name", &self.name)
            .field("feature", &self.feature)
            .field("auto", &self.auto)
            .finish_non_exhaustive()
    }
}

/// How far a platform is configured, as seen by `auto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detection {
    /// None of its markers is set (or only ambient ones).
    NotConfigured,
    /// Some markers are set, these are missing.
    Partial {
        /// The markers that are set.
        present: Vec<&'static str>,
        /// The markers that are missing.
        missing: Vec<&'static str>,
    },
    /// All markers are set.
    Configured,
    /// The platform is not auto-detected (fallback or never).
    NotDetectable,
}

impl PlatformDescriptor {
    /// Looks at `env` to tell whether this platform is configured.
    pub fn detect(&self, env: &dyn EnvLookup) -> Detection {
        if let AutoSelect::DetectAny { markers, .. } = self.auto {
            return if markers.iter().any(|m| m.is_set(env)) {
                Detection::Configured
            } else {
                Detection::NotConfigured
            };
        }
        let AutoSelect::Detect {
            markers, ambient, ..
        } = self.auto
        else {
            return Detection::NotDetectable;
        };
        let (present, missing): (Vec<&EnvVarSpec>, Vec<&EnvVarSpec>) =
            markers.iter().partition(|m| m.is_set(env));
        let present: Vec<&'static str> = present.iter().map(|m| m.name).collect();
        let missing: Vec<&'static str> = missing.iter().map(|m| m.name).collect();
        if missing.is_empty() {
            Detection::Configured
        } else if present.iter().all(|p| ambient.contains(p)) {
            Detection::NotConfigured
        } else {
            Detection::Partial { present, missing }
        }
    }

    /// The variables `auto` looks for, by name.
    pub fn marker_names(&self) -> Vec<&'static str> {
        match self.auto {
            AutoSelect::Detect { markers, .. } | AutoSelect::DetectAny { markers, .. } => {
                markers.iter().map(|m| m.name).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The wrapper `inventory` collects. Created by
/// [`register_platform!`](crate::register_platform); not meant to be used
/// directly.
#[doc(hidden)]
pub struct Registration(pub &'static PlatformDescriptor);

inventory::collect!(Registration);

/// Registers a platform plugin so the `deployment` binary finds it when the
/// plugin crate is linked in.
///
/// ```text
/// pub const DESCRIPTOR: PlatformDescriptor = PlatformDescriptor { name: "acme", /* … */ };
/// platform_core::register_platform!(DESCRIPTOR);
/// ```
#[macro_export]
macro_rules! register_platform {
    ($descriptor:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::registry::Registration(&$descriptor)
        }
    };
}

/// Platforms this project ships, with the `deployment` feature that brings
/// each in: used to tell an operator how to get a platform that is not
/// compiled into their binary.
pub const FIRST_PARTY_PLATFORMS: &[(&str, &str)] = &[
    ("aws", "aws"),
    ("coolify", "coolify"),
    ("kubernetes", "kubernetes"),
    ("local", "local"),
];

/// Two plugins registered under one name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "two platform plugins are registered as {name:?} (features {first_feature:?} and {second_feature:?}); platform names must be unique"
)]
pub struct DuplicatePlatform {
    /// The name used twice.
    pub name: &'static str,
    /// The feature of the first plugin with that name.
    pub first_feature: &'static str,
    /// The feature of the second.
    pub second_feature: &'static str,
}

/// The platforms available to this binary, sorted by name.
#[derive(Clone, Debug)]
pub struct Registry {
    platforms: Vec<&'static PlatformDescriptor>,
}

impl Registry {
    /// Every platform registered by the plugin crates linked into this
    /// binary.
    pub fn global() -> Result<Self, DuplicatePlatform> {
        Self::from_descriptors(inventory::iter::<Registration>.into_iter().map(|r| r.0))
    }

    /// A registry of the given descriptors (tests, embedding).
    pub fn from_descriptors(
        descriptors: impl IntoIterator<Item = &'static PlatformDescriptor>,
    ) -> Result<Self, DuplicatePlatform> {
        let mut platforms: Vec<_> = descriptors.into_iter().collect();
        platforms.sort_by_key(|d| d.name);
        if let Some(pair) = platforms.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(DuplicatePlatform {
                name: pair[0].name,
                first_feature: pair[0].feature,
                second_feature: pair[1].feature,
            });
        }
        Ok(Self { platforms })
    }

    /// The platforms, sorted by name.
    pub fn platforms(&self) -> &[&'static PlatformDescriptor] {
        &self.platforms
    }

    /// The platform registered as `name`.
    pub fn get(&self, name: &str) -> Option<&'static PlatformDescriptor> {
        self.platforms.iter().copied().find(|d| d.name == name)
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.platforms.iter().map(|d| d.name).collect()
    }

    /// Whether no platform is compiled in.
    pub fn is_empty(&self) -> bool {
        self.platforms.is_empty()
    }
}
