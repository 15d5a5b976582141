//! Choosing the platform at start-up from `DEPLOYMENT_PLATFORM`.
//!
//! - `coolify`, `aws`, `local` (or any registered name) picks that platform.
//!   A name that is not compiled in is an error that lists what is and which
//!   cargo feature adds the missing one.
//! - `auto` (the default) checks the detectable platforms in order (Coolify,
//!   then AWS, then Kubernetes). A platform whose marker variables are all set is chosen. One
//!   whose markers are only partly set is an error naming the missing ones:
//!   never a silent fall-through to the next. When nothing is configured and
//!   a fallback platform (local) is compiled in, it is chosen with a warning;
//!   otherwise the error says what each compiled-in platform needs.

use std::fmt;

use serde::Serialize;

use crate::registry::{AutoSelect, Detection, FIRST_PARTY_PLATFORMS, PlatformDescriptor, Registry};
use crate::settings::{EnvLookup, EnvVarSpec};

/// The variable that chooses the platform.
pub const DEPLOYMENT_PLATFORM: EnvVarSpec = EnvVarSpec::with_default(
    "DEPLOYMENT_PLATFORM",
    "auto",
    "Which platform runs the bots: coolify, aws, kubernetes, local, or auto (Coolify if configured, else AWS if configured, else Kubernetes when running in a cluster or K8S_NAMESPACE is set, else local).",
);

/// The variable that lists several platforms, in the order bots are placed.
pub const PLATFORM_PRIORITY: EnvVarSpec = EnvVarSpec::optional(
    "PLATFORM_PRIORITY",
    "The platforms that run bots, in the order a bot is placed: comma-separated names of compiled-in platforms, such as coolify,aws. Each bot goes to the first one with room under its cap and overflows to the next; when none has room it is queued. Every listed platform must be fully configured. Unset: DEPLOYMENT_PLATFORM decides (one name is a list of one; auto lists every configured platform).",
);

/// How the platform was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectedBy {
    /// `DEPLOYMENT_PLATFORM` named it.
    Name,
    /// `auto` found it configured.
    Detected,
    /// `auto` found nothing configured and fell back to it.
    Fallback,
}

/// The chosen platform and why.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The chosen platform.
    pub descriptor: &'static PlatformDescriptor,
    /// How it was chosen.
    pub selected_by: SelectedBy,
    /// Why, in one sentence, for logs and `platforms`.
    pub reason: String,
    /// Things the operator should know (a fallback, a second configured
    /// platform that was not chosen).
    pub warnings: Vec<String>,
}

/// Why no platform could be chosen. Each message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// `DEPLOYMENT_PLATFORM` names no platform we know of.
    #[error("DEPLOYMENT_PLATFORM={given:?} is not a known platform; this binary accepts: {}", accepted(.compiled_in))]
    Unknown {
        /// What was given.
        given: String,
        /// The platforms compiled in.
        compiled_in: Vec<&'static str>,
    },
    /// `DEPLOYMENT_PLATFORM` names a platform this binary was built without.
    #[error(
        "DEPLOYMENT_PLATFORM={name:?}: the {name} platform is not compiled into this binary (compiled in: {}); rebuild with `cargo build -p deployment --features {feature}`",
        list_or_none(.compiled_in)
    )]
    NotCompiledIn {
        /// The platform asked for.
        name: String,
        /// The cargo feature that adds it.
        feature: &'static str,
        /// The platforms compiled in.
        compiled_in: Vec<&'static str>,
    },
    /// `auto` found a platform partly configured.
    #[error(
        "DEPLOYMENT_PLATFORM=auto: {platform} is partly configured: {} set but {} missing; set the missing variables, or set DEPLOYMENT_PLATFORM to choose a platform explicitly",
        .present.join(", "),
        .missing.join(", ")
    )]
    PartlyConfigured {
        /// The platform.
        platform: &'static str,
        /// Its marker variables that are set.
        present: Vec<&'static str>,
        /// Its marker variables that are missing.
        missing: Vec<&'static str>,
    },
    /// `PLATFORM_PRIORITY` names a platform we know nothing of.
    #[error("PLATFORM_PRIORITY names {given:?}, which is not a known platform; this binary accepts: {}", list_or_none(.compiled_in))]
    PriorityUnknown {
        /// What was given.
        given: String,
        /// The platforms compiled in.
        compiled_in: Vec<&'static str>,
    },
    /// `PLATFORM_PRIORITY` names a platform this binary was built without.
    #[error(
        "PLATFORM_PRIORITY names {name:?}: the {name} platform is not compiled into this binary (compiled in: {}); rebuild with `cargo build -p deployment --features {feature}`",
        list_or_none(.compiled_in)
    )]
    PriorityNotCompiledIn {
        /// The platform asked for.
        name: String,
        /// The cargo feature that adds it.
        feature: &'static str,
        /// The platforms compiled in.
        compiled_in: Vec<&'static str>,
    },
    /// `PLATFORM_PRIORITY` names a platform twice.
    #[error(
        "PLATFORM_PRIORITY names {name:?} twice; list each platform once, in the order bots should be placed"
    )]
    PriorityDuplicate {
        /// The platform named twice.
        name: String,
    },
    /// `PLATFORM_PRIORITY` is set but names nothing, or has an empty entry.
    #[error(
        "PLATFORM_PRIORITY={given:?} has an empty entry; give comma-separated platform names such as coolify,aws"
    )]
    PriorityEmpty {
        /// What was given (cut to 64 characters).
        given: String,
    },
    /// Both `PLATFORM_PRIORITY` and a platform name in
    /// `DEPLOYMENT_PLATFORM` are set.
    #[error(
        "PLATFORM_PRIORITY and DEPLOYMENT_PLATFORM={platform} are both set; set PLATFORM_PRIORITY alone (a list), or DEPLOYMENT_PLATFORM alone (one platform, or auto)"
    )]
    PriorityConflict {
        /// What `DEPLOYMENT_PLATFORM` says.
        platform: String,
    },
    /// `auto` found nothing configured and there is no fallback.
    #[error("DEPLOYMENT_PLATFORM=auto: no platform is configured. {}", describe_needs(.needs, .any_of))]
    NothingConfigured {
        /// What each compiled-in platform needs.
        needs: Vec<(&'static str, Vec<&'static str>)>,
        /// The platforms of `needs` for which any one of the variables is
        /// enough.
        any_of: Vec<&'static str>,
    },
}

fn accepted(compiled_in: &[&'static str]) -> String {
    let mut all: Vec<&str> = compiled_in.to_vec();
    all.push("auto");
    all.join(", ")
}

fn list_or_none(names: &[&'static str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn describe_needs(needs: &[(&'static str, Vec<&'static str>)], any_of: &[&'static str]) -> String {
    if needs.is_empty() {
        return "This binary has no platform compiled in; rebuild with `--features all-platforms`."
            .into();
    }
    let parts: Vec<String> = needs
        .iter()
        .map(|(name, vars)| {
            if vars.is_empty() {
                format!("{name} must be chosen with DEPLOYMENT_PLATFORM={name}")
            } else if any_of.contains(name) {
                format!("{name} needs {}", vars.join(" or "))
            } else {
                format!("{name} needs {}", vars.join(" and "))
            }
        })
        .collect();
    format!("{}.", parts.join("; "))
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.descriptor.name, self.reason)
    }
}

/// Chooses the platform as `DEPLOYMENT_PLATFORM` in `env` says.
pub fn select_platform(
    registry: &Registry,
    env: &dyn EnvLookup,
) -> Result<Selection, SelectionError> {
    let requested = DEPLOYMENT_PLATFORM
        .lookup(env)
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "auto".into());
    if requested == "auto" {
        return select_auto(registry, env);
    }
    if let Some(descriptor) = registry.get(&requested) {
        return Ok(Selection {
            descriptor,
            selected_by: SelectedBy::Name,
            reason: format!("DEPLOYMENT_PLATFORM={requested}"),
            warnings: Vec::new(),
        });
    }
    let compiled_in = registry.names();
    match FIRST_PARTY_PLATFORMS
        .iter()
        .find(|(name, _)| *name == requested)
    {
        Some((_, feature)) => Err(SelectionError::NotCompiledIn {
            name: requested,
            feature,
            compiled_in,
        }),
        None => Err(SelectionError::Unknown {
            given: requested.chars().take(64).collect(),
            compiled_in,
        }),
    }
}

/// What `DEPLOYMENT_PLATFORM=auto` picks in `env`, whatever the variable says
/// (for `platforms` and `doctor`).
pub fn select_auto(registry: &Registry, env: &dyn EnvLookup) -> Result<Selection, SelectionError> {
    let mut detectable: Vec<(u16, &'static PlatformDescriptor)> = registry
        .platforms()
        .iter()
        .filter_map(|d| match d.auto {
            AutoSelect::Detect { order, .. } | AutoSelect::DetectAny { order, .. } => {
                Some((order, *d))
            }
            _ => None,
        })
        .collect();
    detectable.sort_by_key(|(order, d)| (*order, d.name));

    for (index, (_, descriptor)) in detectable.iter().enumerate() {
        match descriptor.detect(env) {
            Detection::Configured => {
                let markers = match descriptor.auto {
                    AutoSelect::DetectAny { markers, .. } => {
                        let set: Vec<&str> = markers
                            .iter()
                            .filter(|m| m.is_set(env))
                            .map(|m| m.name)
                            .collect();
                        match set.as_slice() {
                            [one] => format!("{one} is"),
                            many => format!("{} are", many.join(" and ")),
                        }
                    }
                    _ => format!("{} are", descriptor.marker_names().join(" and ")),
                };
                let warnings = detectable[index + 1..]
                    .iter()
                    .filter(|(_, other)| other.detect(env) == Detection::Configured)
                    .map(|(_, other)| {
                        format!(
                            "{} is configured too but {} comes first; set DEPLOYMENT_PLATFORM={} to use it",
                            other.name, descriptor.name, other.name
                        )
                    })
                    .collect();
                return Ok(Selection {
                    descriptor,
                    selected_by: SelectedBy::Detected,
                    reason: format!("auto-detected: {markers} set"),
                    warnings,
                });
            }
            Detection::Partial { present, missing } => {
                return Err(SelectionError::PartlyConfigured {
                    platform: descriptor.name,
                    present,
                    missing,
                });
            }
            Detection::NotConfigured | Detection::NotDetectable => {}
        }
    }

    let fallback = registry
        .platforms()
        .iter()
        .copied()
        .find(|d| matches!(d.auto, AutoSelect::Fallback));
    if let Some(descriptor) = fallback {
        let others: Vec<String> = detectable
            .iter()
            .map(|(_, d)| format!("{} ({})", d.name, d.marker_names().join(", ")))
            .collect();
        let reason = if others.is_empty() {
            format!("auto: {} is the only platform compiled in", descriptor.name)
        } else {
            format!(
                "auto: no cloud platform is configured, falling back to {}",
                descriptor.name
            )
        };
        let warnings = if others.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "no cloud platform is configured, so bots run as {} processes on this machine; to use another platform set the variables of {}",
                descriptor.name,
                others.join(" or ")
            )]
        };
        return Ok(Selection {
            descriptor,
            selected_by: SelectedBy::Fallback,
            reason,
            warnings,
        });
    }

    Err(SelectionError::NothingConfigured {
        needs: registry
            .platforms()
            .iter()
            .map(|d| (d.name, d.marker_names()))
            .collect(),
        any_of: registry
            .platforms()
            .iter()
            .filter(|d| matches!(d.auto, AutoSelect::DetectAny { .. }))
            .map(|d| d.name)
            .collect(),
    })
}

/// The platforms the service holds, in the order bots are placed on them:
///
/// - `PLATFORM_PRIORITY=coolify,aws`: those, in that order. A name that is
///   not known, not compiled in or given twice is an error naming it.
/// - else `DEPLOYMENT_PLATFORM=x`: a list of one.
/// - else `auto` (the default): every platform whose variables are all set,
///   in detection order (Coolify, AWS, Kubernetes); a platform partly
///   configured is an error naming what is missing; the fallback (local)
///   only when nothing else is configured.
pub fn select_platforms(
    registry: &Registry,
    env: &dyn EnvLookup,
) -> Result<Vec<Selection>, SelectionError> {
    let Some((_, listed)) = PLATFORM_PRIORITY.lookup(env) else {
        let requested = DEPLOYMENT_PLATFORM
            .lookup(env)
            .map(|(_, v)| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "auto".into());
        if requested == "auto" {
            return select_auto_all(registry, env);
        }
        return select_platform(registry, env).map(|one| vec![one]);
    };
    if let Some((_, named)) = DEPLOYMENT_PLATFORM.lookup(env) {
        let named = named.trim().to_ascii_lowercase();
        if named != "auto" && !named.is_empty() {
            return Err(SelectionError::PriorityConflict {
                platform: named.chars().take(64).collect(),
            });
        }
    }
    let compiled_in = registry.names();
    let mut chosen: Vec<Selection> = Vec::new();
    for (index, entry) in listed.split(',').enumerate() {
        let name = entry.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(SelectionError::PriorityEmpty {
                given: listed.chars().take(64).collect(),
            });
        }
        if chosen.iter().any(|s| s.descriptor.name == name) {
            return Err(SelectionError::PriorityDuplicate { name });
        }
        match registry.get(&name) {
            Some(descriptor) => chosen.push(Selection {
                descriptor,
                selected_by: SelectedBy::Name,
                reason: format!("PLATFORM_PRIORITY, position {}", index + 1),
                warnings: Vec::new(),
            }),
            None => {
                return Err(
                    match FIRST_PARTY_PLATFORMS
                        .iter()
                        .find(|(known, _)| *known == name)
                    {
                        Some((_, feature)) => SelectionError::PriorityNotCompiledIn {
                            name,
                            feature,
                            compiled_in,
                        },
                        None => SelectionError::PriorityUnknown {
                            given: name.chars().take(64).collect(),
                            compiled_in,
                        },
                    },
                );
            }
        }
    }
    Ok(chosen)
}

/// What `auto` lists: every configured platform in detection order, or the
/// fallback alone when nothing is configured (see [`select_platforms`]).
pub fn select_auto_all(
    registry: &Registry,
    env: &dyn EnvLookup,
) -> Result<Vec<Selection>, SelectionError> {
    let mut detectable: Vec<(u16, &'static PlatformDescriptor)> = registry
        .platforms()
        .iter()
        .filter_map(|d| match d.auto {
            AutoSelect::Detect { order, .. } | AutoSelect::DetectAny { order, .. } => {
                Some((order, *d))
            }
            _ => None,
        })
        .collect();
    detectable.sort_by_key(|(order, d)| (*order, d.name));
    let mut chosen = Vec::new();
    for (_, descriptor) in detectable {
        match descriptor.detect(env) {
            Detection::Configured => chosen.push(Selection {
                descriptor,
                selected_by: SelectedBy::Detected,
                reason: format!("auto-detected, position {}", chosen.len() + 1),
                warnings: Vec::new(),
            }),
            Detection::Partial { present, missing } => {
                return Err(SelectionError::PartlyConfigured {
                    platform: descriptor.name,
                    present,
                    missing,
                });
            }
            Detection::NotConfigured | Detection::NotDetectable => {}
        }
    }
    if chosen.is_empty() {
        // Nothing configured: the single-platform rule (the fallback, with
        // its warning, or the error saying what each platform needs).
        return select_auto(registry, env).map(|one| vec![one]);
    }
    Ok(chosen)
}
