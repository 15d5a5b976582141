//! The platform: one pod per bot, behind [`PlatformService`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use platform_core::{
    BotDeploymentConfig, BotId, BotStatus, DeployResult, EnvLookup, Error, InstallationId,
    MarkedBot, MeetingPlatform, PlatformId, PlatformService, Result, RetryPolicy, SetupCheck,
    bot_environment, retry,
};
use tokio::time::Instant;

use crate::PLATFORM_NAME;
use crate::capacity::CapacityLedger;
use crate::client::KubeApi;
use crate::config::KubernetesConfig;
use crate::connect::kube_client_config;
use crate::deletions::DeletedPods;
use crate::error::ApiError;
use crate::names::{PodRef, installation_selector, labels, pod_labels, pod_name};
use crate::pod_manifest::{PodOwnFields, bot_pod};
use crate::status::{StatusContext, gone_status, pod_status};

/// Pods per LIST page: one LIST per 500 bots in a status sweep.
pub const LIST_PAGE_SIZE: usize = 500;

/// How often a list is started over when its continue token expires (the
/// API server keeps them about five minutes) before giving up for this
/// sweep.
const LIST_RESTARTS: u32 = 3;

/// How long past a pod's deletion deadline cleanup waits before deleting it
/// again without grace: the kubelet needs a moment to report the kill.
pub const FORCE_DELETE_AFTER: Duration = Duration::from_secs(2);

/// Longest one cleanup call waits for its pod to go. A bot leaves its
/// meeting within seconds of SIGTERM, so most cleanups see the pod gone
/// well before; one still terminating then (a bot using its whole grace, a
/// lost node) is confirmed by the next call, so a stop request is never
/// held for the whole grace and stays within the service's call timeout.
const CLEANUP_WAIT: Duration = Duration::from_secs(20);

/// The first wait between two looks whether the pod is gone; each wait
/// doubles, up to [`CLEANUP_POLL_MAX`], so a hundred bots stopped at once
/// do not spend the API budget that deploys need.
const CLEANUP_POLL: Duration = Duration::from_millis(250);

/// The longest wait between two looks.
const CLEANUP_POLL_MAX: Duration = Duration::from_secs(4);

/// Runs each meeting bot as one Kubernetes pod, from the operator's pod
/// template for its meeting platform.
///
/// Build it from the environment with [`KubernetesPlatform::from_env`] (what
/// the registry does), or from a validated [`KubernetesConfig`] and an
/// explicit client configuration with
/// [`KubernetesPlatform::with_kube_config`] (tests, embedding).
pub struct KubernetesPlatform {
    config: KubernetesConfig,
    installation: InstallationId,
    selector: String,
    api: KubeApi,
    retry: RetryPolicy,
    capacity: CapacityLedger,
    deleted: DeletedPods,
}

impl fmt::Debug for KubernetesPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesPlatform")
            .field("namespace", &self.config.namespace)
            .field("installation", &self.installation)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl KubernetesPlatform {
    /// Reads the configuration from `env` (every problem at once, the pod
    /// templates included) and the cluster's address and credentials as
    /// kubectl does: `KUBECONFIG`, else `~/.kube/config`, else the pod's
    /// service account.
    pub async fn from_env(env: &dyn EnvLookup, installation: InstallationId) -> Result<Self> {
        let config = KubernetesConfig::from_env(env)?;
        let kube_config = kube_client_config(&config).await?;
        Self::with_kube_config(config, installation, kube_config)
    }

    /// Uses an explicit client configuration (cluster URL, credentials):
    /// for tests against a local server and for embedding. The client's own
    /// retries are turned off: this platform retries with its
    /// [`RetryPolicy`] (see [`with_retry_policy`](Self::with_retry_policy)).
    pub fn with_kube_config(
        config: KubernetesConfig,
        installation: InstallationId,
        mut kube_config: kube::Config,
    ) -> Result<Self> {
        kube_config.default_retry = false;
        // A build with two TLS providers (the AWS SDK brings aws-lc-rs) has
        // no default; ring is this crate's. An error means one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = kube::Client::try_from(kube_config).map_err(|e| Error::Config {
            platform: PLATFORM_NAME,
            problems: vec![platform_core::ConfigProblem::new(
                crate::config::KUBECONFIG.name,
                format!("the cluster's client could not be set up: {e}"),
            )],
        })?;
        let api = KubeApi::new(client, config.api_qps, config.request_timeout);
        Ok(Self {
            capacity: CapacityLedger::new(config.max_bots),
            selector: installation_selector(&installation),
            config,
            installation,
            api,
            retry: RetryPolicy::default(),
            deleted: DeletedPods::default(),
        })
    }

    /// Sets how API calls are retried after throttling, server errors and
    /// timeouts (default: [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &KubernetesConfig {
        &self.config
    }

    /// The pod `bot`'s `attempt` runs in.
    pub fn pod_of(&self, bot: BotId, attempt: u32) -> PodRef {
        PodRef {
            namespace: self.config.namespace.clone(),
            name: pod_name(&self.installation, bot, attempt),
        }
    }

    fn status_context(&self, pod: &Pod) -> StatusContext<'_> {
        let platform = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::MEETING_PLATFORM))
            .and_then(|p| p.parse::<MeetingPlatform>().ok())
            .unwrap_or(MeetingPlatform::Zoom);
        StatusContext {
            bot_container: &self.config.target(platform).container,
            bot_port: self.config.bot_port,
            image_pull_grace: self.config.image_pull_grace,
            now: Timestamp::now(),
        }
    }

    /// Whether `pod` carries this installation's mark for `bot`'s `attempt`.
    fn is_ours(&self, pod: &Pod, bot: BotId, attempt: u32) -> bool {
        let Some(labels) = pod.metadata.labels.as_ref() else {
            return false;
        };
        let is = |key: &str, value: &str| labels.get(key).map(String::as_str) == Some(value);
        is(labels::MANAGED_BY, crate::names::MANAGED_BY_VALUE)
            && is(labels::INSTALLATION, self.installation.as_str())
            && is(labels::BOT_ID, &bot.to_string())
            && is(labels::ATTEMPT, &attempt.to_string())
    }

    fn belongs_to_installation(&self, pod: &Pod) -> bool {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::INSTALLATION))
            .is_some_and(|i| i == self.installation.as_str())
    }

    /// Every pod of this installation in `namespace`, one LIST per
    /// [`LIST_PAGE_SIZE`] pods.
    async fn list_all(&self, namespace: &str) -> Result<Vec<Pod>> {
        let resource = format!(
            "pods of installation {} in namespace {namespace}",
            self.installation
        );
        let mut restarts = 0;
        'listing: loop {
            let started = Instant::now();
            let mut pods = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = retry(&self.retry, &resource, |_| {
                    let token = token.clone();
                    let resource = resource.clone();
                    async move {
                        match self
                            .api
                            .list_pods(namespace, &self.selector, LIST_PAGE_SIZE, token.as_deref())
                            .await
                        {
                            Ok(page) => Ok(Some(page)),
                            // Not a failure to retry as it is: the list
                            // starts over without the token.
                            Err(ApiError::Expired { .. }) if token.is_some() => Ok(None),
                            Err(error) => Err(error.into_platform(resource)),
                        }
                    }
                })
                .await?;
                let Some(page) = page else {
                    restarts += 1;
                    if restarts > LIST_RESTARTS {
                        return Err(Error::Unavailable {
                            platform: PLATFORM_NAME,
                            resource,
                            message: format!(
                                "the list's continue token expired {restarts} times in a row"
                            ),
                        });
                    }
                    tracing::debug!(namespace, "pod list continue token expired; listing again");
                    continue 'listing;
                };
                pods.extend(page.pods);
                match page.next {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            if namespace == self.config.namespace {
                self.capacity.observe(
                    started,
                    pods.iter()
                        .filter(|p| holds_capacity(p))
                        .filter_map(|p| p.metadata.name.as_deref())
                        .map(|name| format!("{namespace}/{name}")),
                );
            }
            return Ok(pods);
        }
    }

    /// Creates the pod, or finds the one an earlier call for this attempt
    /// created.
    async fn create_or_find(
        &self,
        pod: &PodRef,
        manifest: &serde_json::Value,
        bot: BotId,
        attempt: u32,
        resource: &str,
    ) -> Result<DeployResult> {
        let found = |existing: Option<Pod>| -> Result<DeployResult> {
            match existing {
                Some(existing) if !self.is_ours(&existing, bot, attempt) => Err(Error::Rejected {
                    platform: PLATFORM_NAME,
                    resource: resource.to_owned(),
                    message: format!(
                        "a pod named {pod} exists but does not carry the labels of this installation's bot {bot} attempt {attempt}; it was not created by this service and is left alone"
                    ),
                }),
                Some(existing) => {
                    tracing::info!(bot_id = bot.0, attempt, pod = %pod, "the bot's pod for this attempt already exists; using it");
                    let status = pod_status(&existing, &self.status_context(&existing));
                    Ok(DeployResult {
                        identifier: pod.identifier(),
                        connection_url: status.connection_url,
                    })
                }
                // It existed a moment ago and is gone now: this attempt has
                // had its pod, and a second must not start.
                None => Ok(DeployResult {
                    identifier: pod.identifier(),
                    connection_url: None,
                }),
            }
        };
        match self.api.create_pod(&pod.namespace, manifest).await {
            Ok(_) => Ok(DeployResult {
                identifier: pod.identifier(),
                connection_url: None,
            }),
            Err(ApiError::AlreadyExists { .. }) => {
                let existing = self
                    .api
                    .get_pod(&pod.namespace, &pod.name)
                    .await
                    .map_err(|e| e.into_platform(resource.to_owned()))?;
                found(existing)
            }
            Err(error) => Err(error.into_platform(resource.to_owned())),
        }
    }

    /// Deletes the pod with `grace`; remembers the deletion when it existed.
    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<bool> {
        let resource = format!("pod {pod}");
        let existed = retry(&self.retry, &resource, |_| async {
            self.api
                .delete_pod(&pod.namespace, &pod.name, grace)
                .await
                .map_err(|e| e.into_platform(resource.clone()))
        })
        .await?;
        if existed {
            self.deleted.record(&pod.to_string());
        }
        Ok(existed)
    }

    async fn get(&self, pod: &PodRef) -> Result<Option<Pod>> {
        let resource = format!("pod {pod}");
        retry(&self.retry, &resource, |_| async {
            self.api
                .get_pod(&pod.namespace, &pod.name)
                .await
                .map_err(|e| e.into_platform(resource.clone()))
        })
        .await
    }

    fn gone(&self, pod: &PodRef) -> BotStatus {
        gone_status(self.deleted.contains(&pod.to_string()))
    }
}

/// Whether a pod still holds cluster capacity: it has not ended (a pod
/// being deleted holds its node's resources until it is gone).
fn holds_capacity(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// How long a bot pod typically takes from its creation to `Running` when
/// its image is cached on the node: scheduling, the sandbox, the container
/// start (an image pull adds its own time).
const TYPICAL_POD_START: Duration = Duration::from_secs(10);

#[async_trait]
impl PlatformService for KubernetesPlatform {
    fn platform_name(&self) -> &'static str {
        PLATFORM_NAME
    }

    fn capacity(&self) -> platform_core::PlatformCapacity {
        platform_core::PlatformCapacity::at_most(
            self.config
                .max_bots
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            crate::config::K8S_MAX_BOTS.name,
        )
        .with_deploy_pace(self.api.deploy_pace(TYPICAL_POD_START))
    }

    async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult> {
        let bot = config.bot_id();
        let meeting_platform = config.meeting_platform();
        let pod = self.pod_of(bot, attempt);
        let id = pod.to_string();
        let resource = format!("pod {pod} for bot {bot} (attempt {attempt})");
        if self.deleted.contains(&id) {
            // This process deleted this attempt's pod: the attempt is over,
            // and a repeated deploy must not start it again.
            return Ok(DeployResult {
                identifier: pod.identifier(),
                connection_url: None,
            });
        }
        if self.capacity.needs_list() {
            self.list_all(&pod.namespace).await.map_err(|error| {
                if error.is_retryable() {
                    Error::Unreachable {
                        platform: PLATFORM_NAME,
                        resource: resource.clone(),
                        message: format!(
                            "could not count the running bots for K8S_MAX_BOTS, so no pod was created: {error}"
                        ),
                    }
                } else {
                    error
                }
            })?;
        }
        if let Err(full) = self.capacity.reserve(&id) {
            return Err(Error::Capacity {
                platform: PLATFORM_NAME,
                resource,
                reason: format!(
                    "K8S_MAX_BOTS={}: {} bot pods of this installation already run, start or terminate in namespace {}",
                    full.max, full.live, pod.namespace
                ),
                retryable: true,
            });
        }
        let target = self.config.target(meeting_platform);
        let environment = bot_environment(config);
        let labels = pod_labels(&self.installation, bot, attempt, meeting_platform);
        let manifest = bot_pod(
            &target.template,
            &PodOwnFields {
                name: &pod.name,
                namespace: &pod.namespace,
                labels: &labels,
                environment: &environment,
                active_deadline_seconds: self.config.max_bot_seconds,
            },
        );
        let deployed = retry(&self.retry, &resource, |_| {
            self.create_or_find(&pod, &manifest, bot, attempt, &resource)
        })
        .await;
        match deployed {
            Ok(deployed) => {
                tracing::info!(bot_id = bot.0, attempt, %meeting_platform, pod = %pod, "the bot's pod is created");
                Ok(deployed)
            }
            Err(error) => {
                if error.nothing_started() || !error.is_retryable() {
                    self.capacity.release(&id);
                }
                tracing::warn!(bot_id = bot.0, attempt, %meeting_platform, pod = %pod, error = %error, "the bot's pod was not created");
                Err(error)
            }
        }
    }

    async fn stop_bot(&self, identifier: &PlatformId) -> Result<()> {
        let Some(pod) = PodRef::parse(identifier) else {
            tracing::warn!(%identifier, "not a pod identifier (namespace/name); there is no pod to stop");
            return Ok(());
        };
        let existed = self.delete(&pod, self.config.stop_grace).await?;
        tracing::info!(pod = %pod, existed, grace_s = self.config.stop_grace.as_secs(), "asked the bot's pod to stop");
        Ok(())
    }

    async fn get_bot_status(&self, identifier: &PlatformId) -> Result<BotStatus> {
        let Some(pod) = PodRef::parse(identifier) else {
            return Ok(BotStatus::unknown(
                "not a pod identifier (namespace/name): this platform did not start it",
            ));
        };
        Ok(match self.get(&pod).await? {
            Some(found) if !self.belongs_to_installation(&found) => BotStatus::unknown(format!(
                "pod {pod} does not carry this installation's label; it is not one of its bots"
            )),
            Some(found) => pod_status(&found, &self.status_context(&found)),
            None => self.gone(&pod),
        })
    }

    async fn get_bot_statuses(
        &self,
        identifiers: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>> {
        let mut statuses = HashMap::new();
        let mut by_namespace: BTreeMap<String, Vec<(PlatformId, PodRef)>> = BTreeMap::new();
        for id in identifiers {
            match PodRef::parse(id) {
                Some(pod) => by_namespace
                    .entry(pod.namespace.clone())
                    .or_default()
                    .push((id.clone(), pod)),
                None => {
                    statuses.insert(
                        id.clone(),
                        BotStatus::unknown(
                            "not a pod identifier (namespace/name): this platform did not start it",
                        ),
                    );
                }
            }
        }
        for (namespace, wanted) in by_namespace {
            let pods = self.list_all(&namespace).await?;
            let by_name: HashMap<&str, &Pod> = pods
                .iter()
                .filter_map(|p| p.metadata.name.as_deref().map(|n| (n, p)))
                .collect();
            for (id, pod) in wanted {
                let status = match by_name.get(pod.name.as_str()) {
                    Some(found) => pod_status(found, &self.status_context(found)),
                    None => self.gone(&pod),
                };
                statuses.insert(id, status);
            }
        }
        Ok(statuses)
    }

    async fn cleanup(&self, identifier: &PlatformId) -> Result<()> {
        let Some(pod) = PodRef::parse(identifier) else {
            tracing::warn!(%identifier, "not a pod identifier (namespace/name); nothing to clean up");
            return Ok(());
        };
        let id = pod.to_string();
        let deadline = Instant::now() + CLEANUP_WAIT;
        let mut poll = CLEANUP_POLL;
        loop {
            let Some(found) = self.get(&pod).await? else {
                self.capacity.release(&id);
                tracing::debug!(pod = %pod, "the bot's pod is gone");
                return Ok(());
            };
            match found.metadata.deletion_timestamp.as_ref() {
                None => {
                    self.delete(&pod, self.config.stop_grace).await?;
                }
                Some(end_of_grace) => {
                    let past = Timestamp::now().duration_since(end_of_grace.0);
                    if Duration::try_from(past).is_ok_and(|d| d >= FORCE_DELETE_AFTER) {
                        tracing::warn!(pod = %pod, "the bot's pod outlived its grace period; deleting it without grace");
                        self.delete(&pod, Duration::ZERO).await?;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Unavailable {
                    platform: PLATFORM_NAME,
                    resource: format!("pod {pod}"),
                    message:
                        "the pod is still terminating; cleanup confirms it is gone on its next call"
                            .into(),
                });
            }
            tokio::time::sleep(poll.min(deadline.saturating_duration_since(Instant::now()))).await;
            poll = (poll * 2).min(CLEANUP_POLL_MAX);
        }
    }

    async fn check_reachable(&self) -> Result<()> {
        let namespace = &self.config.namespace;
        let resource = format!("pods in namespace {namespace}");
        retry(&self.retry, &resource, |_| async {
            self.api
                .list_pods(namespace, &self.selector, 1, None)
                .await
                .map(|_| ())
                .map_err(|e| e.into_platform(resource.clone()))
        })
        .await
    }

    async fn list_marked_bots(&self) -> Result<Vec<MarkedBot>> {
        let pods = self.list_all(&self.config.namespace).await?;
        let mut marked = Vec::new();
        for pod in &pods {
            let Some(name) = pod.metadata.name.as_deref() else {
                continue;
            };
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let Some(bot) = labels
                .get(labels::BOT_ID)
                .and_then(|b| b.parse::<u64>().ok())
                .map(BotId)
            else {
                continue;
            };
            let reference = PodRef {
                namespace: self.config.namespace.clone(),
                name: name.to_owned(),
            };
            let status = pod_status(pod, &self.status_context(pod));
            let since = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| format!(", created {}", t.0))
                .unwrap_or_default();
            marked.push(MarkedBot {
                identifier: reference.identifier(),
                bot,
                attempt: labels.get(labels::ATTEMPT).and_then(|a| a.parse().ok()),
                description: format!("pod {reference}, {status}{since}"),
            });
        }
        Ok(marked)
    }

    async fn check_setup(&self) -> Vec<SetupCheck> {
        crate::setup::check_setup(self, &self.api).await
    }
}
