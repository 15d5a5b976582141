//! Every environment variable the Kubernetes platform reads, declared once
//! as data, and loading them into a [`KubernetesConfig`].
//!
//! The same list drives loading, `doctor`, `.env.example` and
//! `docs/ENVIRONMENT.md`, so the descriptions are written for operators.

use std::path::{Path, PathBuf};
use std::time::Duration;

use platform_core::{
    ConfigProblem, EnvLookup, EnvValues, EnvVarSpec, Error, MeetingPlatform, ValueKind, load_env,
};

use crate::PLATFORM_NAME;
use crate::template::PodTemplate;

/// Where a pod's service account finds its namespace.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The namespace of the bot pods.
pub const K8S_NAMESPACE: EnvVarSpec = EnvVarSpec::optional(
    "K8S_NAMESPACE",
    "Namespace the bot pods run in. Unset: the service account's namespace when the service runs in a \
     cluster, else `default`. Setting it makes `DEPLOYMENT_PLATFORM=auto` pick Kubernetes (after \
     Coolify and AWS). Anyone who may read pods there can read the bots' meeting URLs and passwords: \
     give the bots a namespace of their own.",
);

/// Zoom bots' pod template.
pub const K8S_POD_TEMPLATE_ZOOM: EnvVarSpec = EnvVarSpec::required(
    "K8S_POD_TEMPLATE_ZOOM",
    "Path to the YAML pod template of Zoom bots: a Pod, a PodTemplate or a PodTemplateSpec (see \
     `docs/kubernetes/`). Read and checked at start-up. The service sets the pod's name, labels, \
     `restartPolicy: Never`, `activeDeadlineSeconds` and the bot's environment on the bot container, \
     and keeps everything else (image, resources, node selectors, tolerations, volumes, probes, \
     security context).",
);

/// Teams bots' pod template.
pub const K8S_POD_TEMPLATE_TEAMS: EnvVarSpec = EnvVarSpec::required(
    "K8S_POD_TEMPLATE_TEAMS",
    "Path to the YAML pod template of Microsoft Teams bots (as `K8S_POD_TEMPLATE_ZOOM`).",
);

/// Google Meet bots' pod template.
pub const K8S_POD_TEMPLATE_MEET: EnvVarSpec = EnvVarSpec::required(
    "K8S_POD_TEMPLATE_MEET",
    "Path to the YAML pod template of Google Meet bots (as `K8S_POD_TEMPLATE_ZOOM`).",
);

/// The bot container of the Zoom template.
pub const K8S_CONTAINER_ZOOM: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_CONTAINER_ZOOM",
    "bot",
    "Name of the container in the Zoom pod template that runs the bot; it receives the bot's \
     environment, and its state is the bot's status.",
);

/// The bot container of the Teams template.
pub const K8S_CONTAINER_TEAMS: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_CONTAINER_TEAMS",
    "bot",
    "Name of the container in the Teams pod template that runs the bot.",
);

/// The bot container of the Meet template.
pub const K8S_CONTAINER_MEET: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_CONTAINER_MEET",
    "bot",
    "Name of the container in the Google Meet pod template that runs the bot.",
);

/// Longest life of a bot pod.
pub const K8S_MAX_BOT_SECONDS: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_MAX_BOT_SECONDS",
    "14400",
    "Longest a bot pod may run, in seconds (its `activeDeadlineSeconds`); Kubernetes then stops it \
     and the bot fails with `DeadlineExceeded`. A bound on what a bot that never leaves its meeting \
     can cost. Default 4 hours.",
)
.kind(ValueKind::Seconds {
    min: 60,
    max: 7 * 24 * 3600,
});

/// The bot's port.
pub const K8S_BOT_PORT: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_BOT_PORT",
    "8080",
    "Port the bot container listens on; its connection URL is `http://<pod IP>:<port>`.",
)
.kind(ValueKind::Integer { min: 1, max: 65535 });

/// Grace of a stop.
pub const K8S_STOP_GRACE: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_STOP_GRACE",
    "30",
    "Seconds a bot is given to leave its meeting when it is stopped (the pod deletion's \
     `gracePeriodSeconds`: SIGTERM, then SIGKILL after this long). Cleanup waits for the pod to be \
     gone, and deletes it again without grace once this has passed.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// Cap on bots at once.
pub const K8S_MAX_BOTS: EnvVarSpec = EnvVarSpec::optional(
    "K8S_MAX_BOTS",
    "Most bot pods of this installation at once (running, starting or terminating); a deploy past \
     it is refused as \"no capacity\" (retryable, nothing started). Unset: no cap of the service's \
     own. With several replicas, also set a ResourceQuota on `pods` in the namespace: the cluster \
     enforces it for all of them at once, and its refusal is read the same way.",
)
.kind(ValueKind::Integer {
    min: 1,
    max: 100_000,
});

/// Requests per second to the API server.
pub const K8S_API_QPS: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_API_QPS",
    "20",
    "Most requests per second this service sends to the Kubernetes API server (bursts of as many); \
     calls past it wait their turn. The API server's own limits (API priority and fairness) answer \
     429 past theirs, which is retried with backoff.",
)
.kind(ValueKind::Integer { min: 1, max: 1000 });

/// Grace for image pull errors.
pub const K8S_IMAGE_PULL_GRACE: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_IMAGE_PULL_GRACE",
    "60",
    "Seconds after a pod's creation during which `ErrImagePull`, `ImagePullBackOff` and \
     `CreateContainerConfigError` count as transient (a registry hiccup, a secret created a moment \
     later); past it the bot fails with that reason instead of waiting for the deploy timeout. \
     `InvalidImageName` fails at once.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// Time limit of one API request.
pub const K8S_REQUEST_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_REQUEST_TIMEOUT",
    "20",
    "Longest wait for one Kubernetes API answer, in seconds. A pod creation that times out is retried \
     under the same pod name, so it never starts a second pod.",
)
.kind(ValueKind::Seconds { min: 1, max: 300 });

/// The kubeconfig files.
pub const KUBECONFIG: EnvVarSpec = EnvVarSpec::optional(
    "KUBECONFIG",
    "Kubeconfig file(s) to take the cluster and credentials from, `:`-separated, as for kubectl. \
     Unset: `~/.kube/config` if it exists, else the pod's service account when the service runs in a \
     cluster. The credentials need exactly the Role in `docs/kubernetes/rbac.yaml`.",
);

/// Set by Kubernetes in every container: the service runs in a cluster.
pub const KUBERNETES_SERVICE_HOST: EnvVarSpec = EnvVarSpec::optional(
    "KUBERNETES_SERVICE_HOST",
    "Set by Kubernetes in every pod (the API server's address); never set by hand. Its presence means \
     the service runs in a cluster, which makes `DEPLOYMENT_PLATFORM=auto` pick Kubernetes (after \
     Coolify and AWS).",
);

/// Every variable the platform reads, in the order of the documentation.
pub const ENV_SPECS: &[EnvVarSpec] = &[
    K8S_NAMESPACE,
    K8S_POD_TEMPLATE_ZOOM,
    K8S_POD_TEMPLATE_TEAMS,
    K8S_POD_TEMPLATE_MEET,
    K8S_CONTAINER_ZOOM,
    K8S_CONTAINER_TEAMS,
    K8S_CONTAINER_MEET,
    K8S_MAX_BOT_SECONDS,
    K8S_BOT_PORT,
    K8S_STOP_GRACE,
    K8S_MAX_BOTS,
    K8S_API_QPS,
    K8S_IMAGE_PULL_GRACE,
    K8S_REQUEST_TIMEOUT,
    KUBECONFIG,
    KUBERNETES_SERVICE_HOST,
];

/// The variables whose presence, any one of them, makes
/// `DEPLOYMENT_PLATFORM=auto` choose Kubernetes.
pub const DETECTION_MARKERS: &[EnvVarSpec] = &[KUBERNETES_SERVICE_HOST, K8S_NAMESPACE];

/// Where the platform finds what the cluster tells a pod about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterFiles {
    /// The service account's namespace file.
    pub namespace_file: PathBuf,
}

impl Default for ClusterFiles {
    fn default() -> Self {
        Self {
            namespace_file: PathBuf::from(SERVICE_ACCOUNT_NAMESPACE_FILE),
        }
    }
}

/// One meeting platform's pod template and the container that runs the bot.
#[derive(Clone, Debug)]
pub struct BotPodTarget {
    /// The operator's template, parsed and checked.
    pub template: PodTemplate,
    /// The file it came from, for messages.
    pub template_path: PathBuf,
    /// The container that receives the bot's environment.
    pub container: String,
}

/// The Kubernetes platform's configuration, validated.
#[derive(Clone, Debug)]
pub struct KubernetesConfig {
    /// The namespace of the bot pods.
    pub namespace: String,
    /// Where the namespace came from (`K8S_NAMESPACE`, the service account,
    /// the default), for `doctor`.
    pub namespace_source: &'static str,
    /// Zoom bots.
    pub zoom: BotPodTarget,
    /// Teams bots.
    pub teams: BotPodTarget,
    /// Google Meet bots.
    pub meet: BotPodTarget,
    /// `activeDeadlineSeconds` of every bot pod.
    pub max_bot_seconds: u64,
    /// The bot's port.
    pub bot_port: u16,
    /// The deletion grace of a stop.
    pub stop_grace: Duration,
    /// Most bot pods at once, if capped.
    pub max_bots: Option<usize>,
    /// Requests per second to the API server.
    pub api_qps: u32,
    /// How long pull and container-config errors count as transient.
    pub image_pull_grace: Duration,
    /// Time limit of one API request.
    pub request_timeout: Duration,
    /// The kubeconfig files, when given.
    pub kubeconfig: Option<Vec<PathBuf>>,
}

impl KubernetesConfig {
    /// Reads the configuration from `env` and the pod templates from disk,
    /// reporting every problem at once (templates included).
    pub fn from_env(env: &dyn EnvLookup) -> Result<Self, Error> {
        Self::from_env_with(env, &ClusterFiles::default())
    }

    /// As [`from_env`](Self::from_env), with the cluster's files elsewhere
    /// (tests).
    pub fn from_env_with(env: &dyn EnvLookup, files: &ClusterFiles) -> Result<Self, Error> {
        let values = load_env(PLATFORM_NAME, ENV_SPECS, env)?;
        let (namespace, namespace_source) = namespace(&values, files);
        let mut problems = Vec::new();
        if let Err(problem) = check_namespace(&namespace) {
            problems.push(ConfigProblem::new(
                K8S_NAMESPACE.name,
                format!("{problem} (the namespace came from {namespace_source})"),
            ));
        }
        let mut target = |template: &EnvVarSpec, container: &EnvVarSpec| {
            let path = PathBuf::from(values.get(template).unwrap_or_default());
            let container_name = values.get(container).unwrap_or("bot").to_owned();
            match PodTemplate::load(&path, &container_name, &namespace) {
                Ok(template) => Some(BotPodTarget {
                    template,
                    template_path: path,
                    container: container_name,
                }),
                Err(problem) => {
                    let variable = if problem.concerns_container() {
                        container.name
                    } else {
                        template.name
                    };
                    problems.push(ConfigProblem::new(
                        variable,
                        format!("{}: {problem}", path.display()),
                    ));
                    None
                }
            }
        };
        let zoom = target(&K8S_POD_TEMPLATE_ZOOM, &K8S_CONTAINER_ZOOM);
        let teams = target(&K8S_POD_TEMPLATE_TEAMS, &K8S_CONTAINER_TEAMS);
        let meet = target(&K8S_POD_TEMPLATE_MEET, &K8S_CONTAINER_MEET);
        let (Some(zoom), Some(teams), Some(meet)) = (zoom, teams, meet) else {
            return Err(Error::Config {
                platform: PLATFORM_NAME,
                problems,
            });
        };
        if !problems.is_empty() {
            return Err(Error::Config {
                platform: PLATFORM_NAME,
                problems,
            });
        }
        let number = |spec: &EnvVarSpec| {
            values.integer(spec).ok_or_else(|| Error::Config {
                platform: PLATFORM_NAME,
                problems: vec![ConfigProblem::new(spec.name, "is missing")],
            })
        };
        let seconds = |spec: &EnvVarSpec| {
            values.seconds(spec).ok_or_else(|| Error::Config {
                platform: PLATFORM_NAME,
                problems: vec![ConfigProblem::new(spec.name, "is missing")],
            })
        };
        Ok(Self {
            namespace,
            namespace_source,
            zoom,
            teams,
            meet,
            max_bot_seconds: seconds(&K8S_MAX_BOT_SECONDS)?.as_secs(),
            bot_port: u16::try_from(number(&K8S_BOT_PORT)?).unwrap_or(8080),
            stop_grace: seconds(&K8S_STOP_GRACE)?,
            max_bots: values
                .integer(&K8S_MAX_BOTS)
                .and_then(|n| usize::try_from(n).ok()),
            api_qps: u32::try_from(number(&K8S_API_QPS)?).unwrap_or(1),
            image_pull_grace: seconds(&K8S_IMAGE_PULL_GRACE)?,
            request_timeout: seconds(&K8S_REQUEST_TIMEOUT)?,
            kubeconfig: values.get(&KUBECONFIG).map(|paths| {
                std::env::split_paths(paths)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            }),
        })
    }

    /// The pod template and bot container of a meeting platform.
    pub fn target(&self, platform: MeetingPlatform) -> &BotPodTarget {
        match platform {
            MeetingPlatform::Zoom => &self.zoom,
            MeetingPlatform::Teams => &self.teams,
            MeetingPlatform::Meet => &self.meet,
        }
    }

    /// Every meeting platform's target.
    pub fn targets(&self) -> [(MeetingPlatform, &BotPodTarget); 3] {
        [
            (MeetingPlatform::Zoom, &self.zoom),
            (MeetingPlatform::Teams, &self.teams),
            (MeetingPlatform::Meet, &self.meet),
        ]
    }
}

/// `K8S_NAMESPACE`, else the service account's namespace, else `default`.
fn namespace(values: &EnvValues, files: &ClusterFiles) -> (String, &'static str) {
    if let Some(namespace) = values.get(&K8S_NAMESPACE) {
        return (namespace.to_owned(), "K8S_NAMESPACE");
    }
    match read_namespace_file(&files.namespace_file) {
        Some(namespace) => (namespace, "the service account's namespace file"),
        None => (
            "default".to_owned(),
            "the default (not running in a cluster)",
        ),
    }
}

fn read_namespace_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A namespace is a DNS label: 1 to 63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit.
pub(crate) fn check_namespace(namespace: &str) -> Result<(), String> {
    if is_dns_label(namespace) {
        Ok(())
    } else {
        Err(format!(
            "{namespace:?} is not a namespace name: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
        ))
    }
}

/// Whether `s` is an RFC 1123 DNS label, as Kubernetes names many things.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}
