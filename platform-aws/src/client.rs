//! The ECS calls this platform makes, each paced under the account's rate
//! limits and with its failure classified.
//!
//! The SDK's own retries are off: every retry goes through
//! [`platform_core::retry()`] in the service, so an error after retries says
//! truthfully how many requests were sent and how long they took, and a
//! throttled burst is not retried twice over (once per layer).

use std::time::Duration;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::timeout::TimeoutConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_ecs::operation::run_task::RunTaskError;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
    DesiredStatus, Failure, KeyValuePair, LaunchType, NetworkConfiguration, PropagateTags, Tag,
    Task, TaskDefinition, TaskField, TaskOverride,
};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder};
use platform_core::BotEnvironment;

use crate::capacity::CapacityProviderStrategy;
use crate::config::{AwsConfig, BotTaskTarget};
use crate::error::EcsError;
use crate::pacer::{Call, EcsRateLimits, Pacer};

/// The longest wait for a connection (TCP and TLS handshakes), whatever
/// the request time limit: ECS endpoints answer a handshake in
/// milliseconds, and a hung connect should be retried rather than waited
/// out.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The wait for a connection under a request time limit of `timeout`: at
/// most half of it, so a connection that never comes is reported as such
/// (nothing was sent) before the request's own limit makes it ambiguous.
fn connect_timeout(timeout: Duration) -> Duration {
    (timeout / 2).min(MAX_CONNECT_TIMEOUT)
}

/// ECS cuts `StopTask` reasons at 255 characters.
const MAX_STOP_REASON: usize = 255;

/// ListTasks answers at most this many tasks per page.
pub(crate) const LIST_TASKS_PAGE: i32 = 100;

/// The HTTPS client every AWS call of this platform goes through (ECS, and
/// the credential chain's STS, SSO and metadata calls): the SDK's own
/// hyper client on rustls with the ring provider, which reqwest and sqlx
/// already use, instead of the SDK's default aws-lc-rs. Like the SDK's
/// default client it honours `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`,
/// and the connect and read time limits of each call.
pub(crate) fn https_client() -> SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// Builds the SDK configuration from the platform's configuration: its
/// Region, endpoint override and static credentials, or the default
/// credential chain (profile, web identity, ECS task role, EC2 instance
/// role) when none are given.
pub(crate) async fn load_sdk_config(config: &AwsConfig) -> aws_sdk_ecs::Config {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .region(Region::new(config.region.clone()));
    if let Some(credentials) = &config.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.expose(),
            credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            None,
            "meeboter-deploy environment",
        ));
    } else if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    let shared = loader.load().await;
    let mut ecs = aws_sdk_ecs::config::Builder::from(&shared);
    if let Some(endpoint) = &config.endpoint_url {
        // Set on the ECS client itself so it wins over anything the SDK
        // would read on its own.
        ecs = ecs.endpoint_url(endpoint);
    }
    ecs.build()
}

/// One RunTask request: one bot, one task.
pub(crate) struct LaunchRequest<'a> {
    pub(crate) cluster: &'a str,
    pub(crate) target: &'a BotTaskTarget,
    pub(crate) environment: &'a BotEnvironment,
    pub(crate) subnets: &'a [String],
    pub(crate) security_groups: &'a [String],
    pub(crate) assign_public_ip: bool,
    pub(crate) capacity_provider_strategy: Option<&'a CapacityProviderStrategy>,
    pub(crate) started_by: &'a str,
    pub(crate) tags: &'a [(String, String)],
    pub(crate) client_token: &'a str,
}

/// What RunTask answered. Not `Debug`: ECS echoes the container overrides,
/// the bot's meeting URL and password among them, in the task.
pub(crate) enum Launch {
    /// The task, new or (same client token) the one started before.
    Started(Box<Task>),
    /// The client token had started this task with other parameters (the
    /// configuration changed between a crash and the retry).
    AlreadyStarted(String),
    /// No task: ECS's reasons.
    Refused(Vec<Failure>),
}

/// One page of ListTasks.
pub(crate) struct TaskPage {
    /// The tasks' ARNs.
    pub(crate) arns: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub(crate) next_token: Option<String>,
}

/// A cluster as DescribeClusters sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClusterState {
    /// Found, with its status (`ACTIVE`, `INACTIVE`, …).
    Found(String),
    /// Not in this account and Region.
    Missing,
}

/// The ECS client of one platform instance.
pub(crate) struct EcsClient {
    sdk: aws_sdk_ecs::Client,
    pub(crate) pacer: Pacer,
    timeout: Duration,
}

impl EcsClient {
    /// A client over `config`, with the SDK's retries off and `timeout` per
    /// request, paced to `rate_percent` of ECS's documented limits.
    pub(crate) fn new(config: aws_sdk_ecs::Config, rate_percent: u8, timeout: Duration) -> Self {
        // A configuration built by hand (tests, embedding) may bring its own
        // client; one without gets ours.
        let has_client = config.http_client().is_some();
        let mut config = config.to_builder();
        if !has_client {
            config.set_http_client(Some(https_client()));
        }
        let config = config
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(connect_timeout(timeout))
                    .operation_attempt_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            )
            .build();
        Self {
            sdk: aws_sdk_ecs::Client::from_conf(config),
            pacer: Pacer::new(EcsRateLimits::DOCUMENTED, rate_percent),
            timeout,
        }
    }

    /// Tells the pacer when ECS throttled `call`, and passes the outcome on.
    fn paced<T>(&self, call: Call, outcome: Result<T, EcsError>) -> Result<T, EcsError> {
        if let Err(EcsError::Throttled { .. }) = &outcome {
            self.pacer.throttled(call);
        }
        outcome
    }

    /// RunTask for one bot.
    pub(crate) async fn run_task(&self, request: &LaunchRequest<'_>) -> Result<Launch, EcsError> {
        let environment = request
            .environment
            .iter()
            .map(|var| {
                KeyValuePair::builder()
                    .name(var.name())
                    .value(var.value())
                    .build()
            })
            .collect();
        let network = AwsVpcConfiguration::builder()
            .set_subnets(Some(request.subnets.to_vec()))
            .set_security_groups(Some(request.security_groups.to_vec()))
            .assign_public_ip(if request.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| EcsError::Unexpected {
                message: format!("building the network configuration: {e}"),
            })?;
        let mut call = self
            .sdk
            .run_task()
            .cluster(request.cluster)
            .task_definition(&request.target.task_definition)
            .count(1)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(network)
                    .build(),
            )
            .overrides(
                TaskOverride::builder()
                    .container_overrides(
                        ContainerOverride::builder()
                            .name(&request.target.container_name)
                            .set_environment(Some(environment))
                            .build(),
                    )
                    .build(),
            )
            .started_by(request.started_by)
            .set_tags(Some(
                request
                    .tags
                    .iter()
                    .map(|(key, value)| Tag::builder().key(key).value(value).build())
                    .collect(),
            ))
            // The operator's task definition tags (cost allocation) land on
            // the task too.
            .propagate_tags(PropagateTags::TaskDefinition)
            .client_token(request.client_token);
        call = match request.capacity_provider_strategy {
            // ECS refuses a launch type together with a strategy.
            Some(strategy) => {
                let mut items = Vec::new();
                for share in strategy.shares() {
                    items.push(
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider(&share.provider)
                            .weight(i32::try_from(share.weight).unwrap_or(i32::MAX))
                            .base(i32::try_from(share.base).unwrap_or(i32::MAX))
                            .build()
                            .map_err(|e| EcsError::Unexpected {
                                message: format!("building the capacity provider strategy: {e}"),
                            })?,
                    );
                }
                call.set_capacity_provider_strategy(Some(items))
            }
            None => call.launch_type(LaunchType::Fargate),
        };
        self.pacer.acquire(Call::Launch).await;
        let answer = match call.send().await {
            Ok(output) => {
                if let Some(task) = output.tasks().first() {
                    Ok(Launch::Started(Box::new(task.clone())))
                } else {
                    Ok(Launch::Refused(output.failures().to_vec()))
                }
            }
            Err(error) => {
                if let Some(RunTaskError::ConflictException(conflict)) = error.as_service_error()
                    && let Some(existing) = conflict.resource_ids().first()
                {
                    return Ok(Launch::AlreadyStarted(existing.clone()));
                }
                Err(EcsError::from_sdk(error, self.timeout))
            }
        };
        self.paced(Call::Launch, answer)
    }

    /// DescribeTasks for at most 100 tasks of one cluster, with their tags
    /// when `with_tags`.
    pub(crate) async fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
        with_tags: bool,
    ) -> Result<(Vec<Task>, Vec<Failure>), EcsError> {
        self.pacer.acquire(Call::Read).await;
        let output = self.paced(
            Call::Read,
            self.sdk
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(tasks.to_vec()))
                .set_include(with_tags.then(|| vec![TaskField::Tags]))
                .send()
                .await
                .map_err(|e| EcsError::from_sdk(e, self.timeout)),
        )?;
        Ok((output.tasks().to_vec(), output.failures().to_vec()))
    }

    /// One page (at most `max_results`, 1 to 100) of the ARNs of the tasks
    /// of `cluster` started with `started_by` whose desired status is
    /// RUNNING, and the token of the next page when there is one.
    pub(crate) async fn list_running_tasks(
        &self,
        cluster: &str,
        started_by: &str,
        max_results: i32,
        next_token: Option<&str>,
    ) -> Result<TaskPage, EcsError> {
        self.pacer.acquire(Call::Read).await;
        let output = self.paced(
            Call::Read,
            self.sdk
                .list_tasks()
                .cluster(cluster)
                .started_by(started_by)
                .desired_status(DesiredStatus::Running)
                .max_results(max_results)
                .set_next_token(next_token.map(str::to_owned))
                .send()
                .await
                .map_err(|e| EcsError::from_sdk(e, self.timeout)),
        )?;
        Ok(TaskPage {
            arns: output.task_arns().to_vec(),
            next_token: output
                .next_token()
                .filter(|token| !token.is_empty())
                .map(str::to_owned),
        })
    }

    /// DescribeTaskDefinition: `family`, `family:revision` or an ARN.
    pub(crate) async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<TaskDefinition, EcsError> {
        self.pacer.acquire(Call::Read).await;
        let output = self.paced(
            Call::Read,
            self.sdk
                .describe_task_definition()
                .task_definition(task_definition)
                .send()
                .await
                .map_err(|e| EcsError::from_sdk(e, self.timeout)),
        )?;
        output
            .task_definition()
            .cloned()
            .ok_or_else(|| EcsError::Unexpected {
                message: "DescribeTaskDefinition answered without a task definition".into(),
            })
    }

    /// StopTask with a reason ECS keeps as the task's `stoppedReason`.
    pub(crate) async fn stop_task(
        &self,
        cluster: &str,
        task: &str,
        reason: &str,
    ) -> Result<(), EcsError> {
        let reason: String = reason.chars().take(MAX_STOP_REASON).collect();
        self.pacer.acquire(Call::Stop).await;
        self.paced(
            Call::Stop,
            self.sdk
                .stop_task()
                .cluster(cluster)
                .task(task)
                .reason(reason)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| EcsError::from_sdk(e, self.timeout)),
        )
    }

    /// DescribeClusters for one cluster: the cheapest call that proves the
    /// credentials work and the cluster exists.
    pub(crate) async fn describe_cluster(&self, cluster: &str) -> Result<ClusterState, EcsError> {
        self.pacer.acquire(Call::Read).await;
        let output = self.paced(
            Call::Read,
            self.sdk
                .describe_clusters()
                .clusters(cluster)
                .send()
                .await
                .map_err(|e| EcsError::from_sdk(e, self.timeout)),
        )?;
        Ok(match output.clusters().first() {
            Some(found) => ClusterState::Found(found.status().unwrap_or("UNKNOWN").to_owned()),
            None => ClusterState::Missing,
        })
    }
}
