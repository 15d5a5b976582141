//! The operator's pod template: read from YAML, checked at start-up, and
//! kept as JSON so that every field the operator wrote survives, including
//! fields newer than the API types this crate was built with.

use std::fmt;
use std::path::Path;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

use crate::quantity::parse_bytes;

/// Containers get this much `/dev/shm` unless a volume is mounted there.
pub const DEFAULT_SHM_BYTES: u64 = 64 * 1024 * 1024;

/// Metadata the API server sets on an object it stored. A template copied
/// from `kubectl get pod -o yaml` carries them, and a create with them is
/// refused (`resourceVersion`) or would be wrong (`uid`).
const SERVER_SET_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "generation",
    "selfLink",
    // The service names each pod after its bot.
    "name",
    "generateName",
];

/// A pod template that parsed and has its bot container.
#[derive(Clone, PartialEq)]
pub struct PodTemplate {
    /// `{"metadata": {...}, "spec": {...}}`, server-set fields removed.
    template: Value,
    container: String,
    advice: Vec<TemplateAdvice>,
}

impl fmt::Debug for PodTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The template may carry the operator's own env values; they are
        // not ours to print.
        f.debug_struct("PodTemplate")
            .field("container", &self.container)
            .field("advice", &self.advice)
            .finish_non_exhaustive()
    }
}

/// Something about a template that works but the operator should know, with
/// why (for `doctor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateAdvice {
    /// What was checked (`memory request`, `/dev/shm`).
    pub check: &'static str,
    /// What is wrong and why it matters.
    pub warning: String,
}

/// Why a template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    /// The file could not be read.
    #[error("cannot read the pod template: {0}")]
    Unreadable(String),
    /// Not YAML, or not a pod.
    #[error("not a pod template: {0}")]
    Invalid(String),
    /// The bot container is not in it.
    #[error(
        "the pod template has no container named {wanted:?} (its containers: {}); name the bot container in the template or set the K8S_CONTAINER_* variable to one of these",
        if .found.is_empty() { "none".to_owned() } else { .found.join(", ") }
    )]
    NoBotContainer {
        /// The name looked for.
        wanted: String,
        /// The containers the template has.
        found: Vec<String>,
    },
    /// It names another namespace than the bots run in.
    #[error(
        "the pod template names namespace {template:?} but the bots run in {configured:?}; remove the namespace from the template or set K8S_NAMESPACE={template}"
    )]
    OtherNamespace {
        /// The template's namespace.
        template: String,
        /// The configured one.
        configured: String,
    },
}

impl TemplateProblem {
    /// Whether the bot container's name (`K8S_CONTAINER_*`) is what to fix,
    /// rather than the template.
    pub fn concerns_container(&self) -> bool {
        matches!(self, Self::NoBotContainer { .. })
    }
}

impl PodTemplate {
    /// Reads and checks the template at `path`, whose bot container is
    /// `container`, for pods in `namespace`.
    pub fn load(path: &Path, container: &str, namespace: &str) -> Result<Self, TemplateProblem> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TemplateProblem::Unreadable(e.to_string()))?;
        Self::parse(&text, container, namespace)
    }

    /// Checks a template given as YAML (or JSON, which is YAML).
    pub fn parse(yaml: &str, container: &str, namespace: &str) -> Result<Self, TemplateProblem> {
        let document: Value = serde_saphyr::from_str(yaml)
            .map_err(|e| TemplateProblem::Invalid(format!("not YAML: {e}")))?;
        let Value::Object(mut document) = document else {
            return Err(TemplateProblem::Invalid(
                "the file is not a YAML mapping; expected a Pod, a PodTemplate or a PodTemplateSpec"
                    .into(),
            ));
        };
        let kind = document
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut template = match kind.as_deref() {
            Some("Pod") | Some("PodTemplateSpec") | None => {
                let mut template = Map::new();
                for key in ["metadata", "spec"] {
                    if let Some(value) = document.remove(key) {
                        template.insert(key.to_owned(), value);
                    }
                }
                template
            }
            Some("PodTemplate") => match document.remove("template") {
                Some(Value::Object(template)) => template,
                _ => {
                    return Err(TemplateProblem::Invalid(
                        "a PodTemplate without a `template` mapping".into(),
                    ));
                }
            },
            Some(other) => {
                return Err(TemplateProblem::Invalid(format!(
                    "it is a {other}; expected a Pod, a PodTemplate or a PodTemplateSpec"
                )));
            }
        };
        if !template.get("spec").is_some_and(Value::is_object) {
            return Err(TemplateProblem::Invalid(
                "it has no `spec` mapping (the pod's containers)".into(),
            ));
        }
        // The types check every field we know of; unknown (newer) fields are
        // left for the API server to judge.
        let typed: PodTemplateSpec = serde_json::from_value(Value::Object(template.clone()))
            .map_err(|e| TemplateProblem::Invalid(e.to_string()))?;
        let spec = typed.spec.unwrap_or_default();
        let found: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
        let Some(bot) = spec.containers.iter().find(|c| c.name == container) else {
            return Err(TemplateProblem::NoBotContainer {
                wanted: container.to_owned(),
                found,
            });
        };
        if let Some(theirs) = typed.metadata.as_ref().and_then(|m| m.namespace.as_deref())
            && theirs != namespace
        {
            return Err(TemplateProblem::OtherNamespace {
                template: theirs.to_owned(),
                configured: namespace.to_owned(),
            });
        }
        if let Some(Value::Object(metadata)) = template.get_mut("metadata") {
            for key in SERVER_SET_METADATA {
                metadata.remove(*key);
            }
        }
        let advice = advise(bot, spec.volumes.as_deref().unwrap_or_default());
        // `status` never reaches here (only metadata and spec are kept), so
        // a copied Pod's old status does not travel with new bots.
        template.remove("status");
        Ok(Self {
            template: Value::Object(template),
            container: container.to_owned(),
            advice,
        })
    }

    /// `{"metadata": {...}, "spec": {...}}` as the operator wrote it, less
    /// what the API server sets.
    pub fn as_json(&self) -> &Value {
        &self.template
    }

    /// The container that runs the bot.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// What works but the operator should know.
    pub fn advice(&self) -> &[TemplateAdvice] {
        &self.advice
    }
}

/// The memory request and `/dev/shm` checks, each with why it matters.
fn advise(
    bot: &k8s_openapi::api::core::v1::Container,
    volumes: &[k8s_openapi::api::core::v1::Volume],
) -> Vec<TemplateAdvice> {
    let mut advice = Vec::new();
    let resources = bot.resources.as_ref();
    // Kubernetes takes the limit as the request when only a limit is set.
    let memory_request = resources
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("memory"))
        .or_else(|| {
            resources
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get("memory"))
        });
    if memory_request.is_none() {
        advice.push(TemplateAdvice {
            check: "memory request",
            warning: format!(
                "container {:?} has no memory request: the scheduler then places bots as if they needed no memory, packs too many on a node, and they are OOM-killed mid-meeting (or get a namespace LimitRange default far too small for a browser); set resources.requests.memory (a browser bot needs 1 to 2 GiB)",
                bot.name
            ),
        });
    }
    let shm = bot
        .volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|m| m.mount_path.trim_end_matches('/') == "/dev/shm");
    let why = "Chromium keeps its renderers' shared memory there and crashes (tabs killed, \"Aw, Snap!\") when the default 64 MiB runs out";
    match shm {
        None => advice.push(TemplateAdvice {
            check: "/dev/shm",
            warning: format!(
                "container {:?} has no volume at /dev/shm, so it gets the default 64 MiB; {why}. Mount an emptyDir with medium: Memory there (see docs/kubernetes/)",
                bot.name
            ),
        }),
        Some(mount) => {
            let volume = volumes.iter().find(|v| v.name == mount.name);
            let size = volume
                .and_then(|v| v.empty_dir.as_ref())
                .and_then(|e| e.size_limit.as_ref())
                .map(|q| parse_bytes(&q.0));
            match (volume, size) {
                (Some(v), _) if v.empty_dir.is_none() => {}
                (Some(_), Some(Some(bytes))) if bytes <= DEFAULT_SHM_BYTES => {
                    advice.push(TemplateAdvice {
                        check: "/dev/shm",
                        warning: format!(
                            "the /dev/shm volume of container {:?} is limited to {bytes} bytes, no more than the default 64 MiB; {why}. Raise its sizeLimit (1Gi is common)",
                            bot.name
                        ),
                    })
                }
                _ => {}
            }
        }
    }
    advice
}
