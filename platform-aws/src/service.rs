//! The platform: one ECS task per bot, behind [`PlatformService`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use platform_core::{
    BotDeploymentConfig, BotId, BotStatus, DeployResult, EnvLookup, Error, InstallationId,
    MarkedBot, PlatformId, PlatformService, Result, RetryPolicy, SetupCheck, bot_environment,
    retry,
};

use crate::PLATFORM_NAME;
use crate::client::{ClusterState, EcsClient, Launch, LaunchRequest, load_sdk_config};
use crate::config::AwsConfig;
use crate::error::{EcsError, refused_launch};
use crate::marks::{client_token, task_tags};
use crate::pacer::{EcsRateLimits, Pacer};
use crate::status::{connection_url, failure_status, task_status};
use crate::task_ref::{TaskRef, cluster_name, parse_task_ref};
use crate::teardown::{CONFIRM_WAIT, StatusBatch};

/// ECS describes at most this many tasks per DescribeTasks call.
pub const DESCRIBE_TASKS_BATCH: usize = 100;

/// How many DescribeTasks calls of one status read are in flight at once;
/// the pacer spaces them further when the read bucket runs low.
pub(crate) const DESCRIBE_CONCURRENCY: usize = 4;

/// The `stoppedReason` ECS keeps on tasks stopped by `stop_bot`.
const STOP_REASON: &str = "Stopped by meeboter-deploy: the bot was asked to stop";
/// The `stoppedReason` of tasks stopped by `cleanup` (the bot had not
/// stopped by itself).
pub(crate) const CLEANUP_REASON: &str = "Stopped by meeboter-deploy: cleanup after the bot ended";

/// Runs each meeting bot as one AWS ECS task (Fargate by default).
///
/// Build it from the environment with [`AwsEcsPlatform::from_env`] (what the
/// registry does), or from a validated [`AwsConfig`] and an explicit SDK
/// configuration with [`AwsEcsPlatform::with_ecs_config`] (tests, embedding).
/// Each takes the [`InstallationId`] of the database whose bots it runs:
/// it goes into every task's client token and tags, and the platform lists
/// only tasks that carry it.
pub struct AwsEcsPlatform {
    pub(crate) config: AwsConfig,
    pub(crate) installation: InstallationId,
    pub(crate) ecs: EcsClient,
    pub(crate) retry: RetryPolicy,
    /// The statuses of teardowns in flight, read together.
    pub(crate) teardowns: StatusBatch,
    /// How long a teardown waits for `STOPPED`.
    pub(crate) confirm_wait: Duration,
}

/// What StopTask found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopAnswer {
    /// ECS took the stop (or the task had stopped already).
    Requested,
    /// There is no such task (or its cluster is gone): nothing to stop.
    NothingToStop,
}

impl fmt::Debug for AwsEcsPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsEcsPlatform")
            .field("config", &self.config)
            .field("installation", &self.installation)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl AwsEcsPlatform {
    /// Reads the configuration from `env` (every problem at once) and builds
    /// the ECS client for the bots of `installation`: Region and endpoint
    /// override from `env`, static credentials from `env` when given,
    /// otherwise the default AWS credential chain.
    pub async fn from_env(env: &dyn EnvLookup, installation: InstallationId) -> Result<Self> {
        let config = AwsConfig::from_env(env)?;
        Ok(Self::from_config(config, installation).await)
    }

    /// Builds the ECS client for a validated configuration, as
    /// [`from_env`](Self::from_env) does.
    pub async fn from_config(config: AwsConfig, installation: InstallationId) -> Self {
        let ecs = load_sdk_config(&config).await;
        Self::with_ecs_config(config, installation, ecs)
    }

    /// Uses an explicit SDK configuration (credentials, Region, endpoint,
    /// and optionally an HTTP client): for tests against a local server and
    /// for embedding. Its retry and timeout settings are replaced by this
    /// platform's: SDK retries off (retries are this platform's, see
    /// [`with_retry_policy`](Self::with_retry_policy)),
    /// `config.request_timeout` per request.
    pub fn with_ecs_config(
        config: AwsConfig,
        installation: InstallationId,
        ecs: aws_sdk_ecs::Config,
    ) -> Self {
        let client = EcsClient::new(ecs, config.api_rate_percent, config.request_timeout);
        Self {
            config,
            installation,
            ecs: client,
            retry: RetryPolicy::default(),
            teardowns: StatusBatch::default(),
            confirm_wait: CONFIRM_WAIT,
        }
    }

    /// Sets how long a teardown ([`cleanup`](PlatformService::cleanup))
    /// waits for ECS to report the task `STOPPED` before it answers a
    /// retryable "not confirmed yet" (default 5 s).
    pub fn with_stop_confirmation_wait(mut self, wait: Duration) -> Self {
        self.confirm_wait = wait;
        self
    }

    /// Paces ECS calls to buckets of the shape of `limits` (default:
    /// [`EcsRateLimits::DOCUMENTED`], ECS's documented limits), scaled by
    /// `ECS_API_RATE_PERCENT`: for an account whose quotas were raised, or a
    /// benchmark against an emulator whose clock runs faster.
    pub fn with_rate_limits(mut self, limits: EcsRateLimits) -> Self {
        self.ecs.pacer = Pacer::new(limits, self.config.api_rate_percent);
        self
    }

    /// Sets how ECS calls are retried after throttling, server errors and
    /// timeouts (default: [`RetryPolicy::default`]).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// The installation whose bots this platform runs.
    pub fn installation(&self) -> &InstallationId {
        &self.installation
    }

    /// The RunTask idempotency token of `bot`'s `attempt` (see
    /// [`client_token`](crate::client_token)): the same on every retry of
    /// the attempt, different in every other installation.
    pub fn client_token(&self, bot: BotId, attempt: u32) -> String {
        client_token(&self.installation, bot, attempt)
    }

    /// The cluster to address for a task: the one in its ARN, else the
    /// configured one. A task in another Region cannot be reached from this
    /// client: that is an error, never "not found".
    fn cluster_of<'a>(&'a self, id: &PlatformId, task: TaskRef<'a>) -> Result<&'a str> {
        if let Some(region) = task.region
            && region != self.config.region
        {
            return Err(Error::Rejected {
                platform: PLATFORM_NAME,
                resource: format!("task {id}"),
                message: format!(
                    "the task is in Region {region} but this service uses AWS_REGION={}; it cannot be reached from here",
                    self.config.region
                ),
            });
        }
        Ok(task.cluster.unwrap_or(&self.config.cluster))
    }

    /// Stops the task unless it is already stopped or unknown.
    pub(crate) async fn stop_task(&self, id: &PlatformId, reason: &str) -> Result<StopAnswer> {
        let Some(task) = parse_task_ref(id.as_str()) else {
            tracing::warn!(identifier = %id, "not an ECS task ARN; there is no task to stop");
            return Ok(StopAnswer::NothingToStop);
        };
        let cluster = self.cluster_of(id, task)?;
        let resource = format!("task {id}");
        // The cluster named in an older task's ARN may have been deleted
        // since, and its tasks with it. The configured cluster missing is a
        // configuration problem, reported.
        let cluster_may_be_gone = cluster_name(cluster) != cluster_name(&self.config.cluster);
        retry(&self.retry, &resource, |_| async {
            match self.ecs.stop_task(cluster, id.as_str(), reason).await {
                Ok(()) => Ok(StopAnswer::Requested),
                Err(EcsError::TaskNotFound { message, .. }) => {
                    tracing::debug!(task = %id, %message, "ECS does not know the task; nothing to stop");
                    Ok(StopAnswer::NothingToStop)
                }
                Err(EcsError::ClusterNotFound { message }) if cluster_may_be_gone => {
                    tracing::warn!(
                        task = %id,
                        cluster,
                        %message,
                        "the task's cluster no longer exists, and no task runs in a deleted cluster; nothing to stop"
                    );
                    Ok(StopAnswer::NothingToStop)
                }
                Err(error) => Err(error.into_platform(resource.clone())),
            }
        })
        .await
    }

    /// DescribeTasks for one cluster's identifiers, in chunks of 100.
    async fn describe_in_cluster(
        &self,
        cluster: &str,
        ids: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>> {
        // The calls are built up front (not polled yet) so the stream holds
        // plain futures rather than a closure over borrowed chunks.
        let calls: Vec<_> = ids
            .chunks(DESCRIBE_TASKS_BATCH)
            .map(|chunk| self.describe_chunk(cluster, chunk))
            .collect();
        let answers: Vec<HashMap<PlatformId, BotStatus>> = futures::stream::iter(calls)
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }

    async fn describe_chunk(
        &self,
        cluster: &str,
        chunk: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>> {
        let resource = format!("{} tasks in cluster {}", chunk.len(), cluster_name(cluster));
        let arns: Vec<String> = chunk.iter().map(|id| id.as_str().to_owned()).collect();
        let answer = retry(&self.retry, &resource, |_| async {
            match self.ecs.describe_tasks(cluster, &arns, false).await {
                Ok(answer) => Ok(Ok(answer)),
                // An answer, not a failure to ask: ECS knows none of these
                // tasks. Unknown, so the other clusters' bots still get
                // their statuses.
                Err(EcsError::ClusterNotFound { message }) => Ok(Err(message)),
                Err(error) => Err(error.into_platform(resource.clone())),
            }
        })
        .await?;
        let (tasks, failures) = match answer {
            Ok(answer) => answer,
            Err(message) => {
                let reason = format!(
                    "cluster {} not found (ClusterNotFoundException: {message})",
                    cluster_name(cluster)
                );
                return Ok(chunk
                    .iter()
                    .map(|id| (id.clone(), BotStatus::unknown(reason.clone())))
                    .collect());
            }
        };
        // ECS answers with full ARNs whatever form was asked; match on the
        // task id, the part after the last `/`.
        let by_task_id: HashMap<&str, &PlatformId> =
            chunk.iter().map(|id| (task_id(id.as_str()), id)).collect();
        let bot_containers = self.config.bot_container_names();
        let mut statuses = HashMap::new();
        for task in &tasks {
            if let Some(id) = task.task_arn().and_then(|arn| by_task_id.get(task_id(arn))) {
                statuses.insert(
                    (*id).clone(),
                    task_status(task, &bot_containers, self.config.bot_port),
                );
            }
        }
        for failure in &failures {
            if let Some(id) = failure.arn().and_then(|arn| by_task_id.get(task_id(arn))) {
                statuses
                    .entry((*id).clone())
                    .or_insert_with(|| failure_status(failure));
            }
        }
        for id in chunk {
            statuses.entry(id.clone()).or_insert_with(|| {
                BotStatus::unknown("ECS did not mention the task in its answer")
            });
        }
        Ok(statuses)
    }
}

/// The task id of a task ARN (or the id itself).
pub(crate) fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[async_trait]
impl PlatformService for AwsEcsPlatform {
    fn platform_name(&self) -> &'static str {
        PLATFORM_NAME
    }

    fn capacity(&self) -> platform_core::PlatformCapacity {
        platform_core::PlatformCapacity::at_most(
            self.config.max_bots,
            crate::config::AWS_MAX_BOTS.name,
        )
        .with_deploy_pace(self.ecs.pacer.deploy_pace())
    }

    async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult> {
        let bot = config.bot_id();
        let meeting_platform = config.meeting_platform();
        let resource = format!("task for bot {bot} (attempt {attempt})");
        let environment = bot_environment(config);
        let client_token = self.client_token(bot, attempt);
        let tags = task_tags(
            &self.installation,
            &self.config.started_by,
            bot,
            attempt,
            meeting_platform,
        );
        let request = LaunchRequest {
            cluster: &self.config.cluster,
            target: self.config.target(meeting_platform),
            environment: &environment,
            subnets: &self.config.subnets,
            security_groups: &self.config.security_groups,
            assign_public_ip: self.config.assign_public_ip,
            capacity_provider_strategy: self.config.capacity_provider_strategy.as_ref(),
            started_by: &self.config.started_by,
            tags: &tags,
            client_token: &client_token,
        };
        let deployed = retry(&self.retry, &resource, |_| async {
            match self.ecs.run_task(&request).await {
                Ok(Launch::Started(task)) => match task.task_arn().filter(|a| !a.is_empty()) {
                    Some(arn) => Ok(DeployResult {
                        identifier: PlatformId::new(arn),
                        connection_url: connection_url(&task, self.config.bot_port),
                    }),
                    None => Err(Error::Internal {
                        platform: PLATFORM_NAME,
                        resource: resource.clone(),
                        message: "RunTask answered with a task without an ARN".into(),
                    }),
                },
                Ok(Launch::AlreadyStarted(arn)) => {
                    tracing::warn!(
                        bot_id = bot.0,
                        attempt,
                        task = %arn,
                        "this bot's attempt already started a task with other settings (the configuration changed since); using that task"
                    );
                    Ok(DeployResult {
                        identifier: PlatformId::new(arn),
                        connection_url: None,
                    })
                }
                Ok(Launch::Refused(failures)) => Err(refused_launch(&failures, resource.clone())),
                Err(error) => Err(error.into_platform(resource.clone())),
            }
        })
        .await
        .inspect_err(|error| {
            tracing::warn!(bot_id = bot.0, attempt, %meeting_platform, error = %error, "ECS did not start the bot's task");
        })?;
        tracing::info!(bot_id = bot.0, attempt, %meeting_platform, task = %deployed.identifier, "started the bot's ECS task");
        Ok(deployed)
    }

    async fn stop_bot(&self, identifier: &PlatformId) -> Result<()> {
        self.stop_task(identifier, STOP_REASON).await.map(|_| ())
    }

    async fn get_bot_status(&self, identifier: &PlatformId) -> Result<BotStatus> {
        let mut statuses = self
            .get_bot_statuses(std::slice::from_ref(identifier))
            .await?;
        Ok(statuses
            .remove(identifier)
            .unwrap_or_else(|| BotStatus::unknown("ECS did not mention the task in its answer")))
    }

    async fn get_bot_statuses(
        &self,
        identifiers: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>> {
        let mut statuses = HashMap::new();
        // Grouped by the cluster each task lives in; sorted so calls go out
        // in a stable order.
        let mut by_cluster: BTreeMap<&str, Vec<PlatformId>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for id in identifiers {
            if !seen.insert(id) {
                continue;
            }
            let Some(task) = parse_task_ref(id.as_str()) else {
                statuses.insert(
                    id.clone(),
                    BotStatus::unknown("not an ECS task ARN: this platform did not start it"),
                );
                continue;
            };
            match self.cluster_of(id, task) {
                Ok(cluster) => by_cluster.entry(cluster).or_default().push(id.clone()),
                // Cannot be asked about from here: unknown, with why, so one
                // stray identifier does not block the status of every other bot.
                Err(error) => {
                    statuses.insert(id.clone(), BotStatus::unknown(error.to_string()));
                }
            }
        }
        for (cluster, ids) in by_cluster {
            statuses.extend(self.describe_in_cluster(cluster, &ids).await?);
        }
        Ok(statuses)
    }

    async fn cleanup(&self, identifier: &PlatformId) -> Result<()> {
        if parse_task_ref(identifier.as_str()).is_none() {
            tracing::warn!(identifier = %identifier, "not an ECS task ARN; there is no task to stop");
            return Ok(());
        }
        // A look first (the cheaper read bucket, batched with every other
        // teardown in flight): most bots are stopped by now. Anything else,
        // MISSING included (ECS may not list a task it has just started),
        // gets a StopTask; then the task is watched until it is STOPPED.
        self.confirm_teardown(identifier).await
    }

    async fn check_reachable(&self) -> Result<()> {
        let cluster = &self.config.cluster;
        let resource = format!("cluster {}", cluster_name(cluster));
        let state = retry(&self.retry, &resource, |_| async {
            self.ecs
                .describe_cluster(cluster)
                .await
                .map_err(|e| e.into_platform(resource.clone()))
        })
        .await?;
        match state {
            ClusterState::Found(status) if status == "ACTIVE" => Ok(()),
            ClusterState::Found(status) => Err(Error::Rejected {
                platform: PLATFORM_NAME,
                resource,
                message: format!("the cluster is {status}, not ACTIVE: it cannot run tasks"),
            }),
            ClusterState::Missing => Err(Error::NotFound {
                platform: PLATFORM_NAME,
                resource,
                message: format!(
                    "no such cluster in Region {} for these credentials (check ECS_CLUSTER and AWS_REGION)",
                    self.config.region
                ),
            }),
        }
    }

    async fn list_marked_bots(&self) -> Result<Vec<MarkedBot>> {
        self.list_marked_tasks().await
    }

    async fn check_setup(&self) -> Vec<SetupCheck> {
        self.setup_checks().await
    }
}
