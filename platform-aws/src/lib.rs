//! The AWS ECS platform of Meeboter deploy: each meeting bot runs as one ECS
//! task, on Fargate by default, started on demand from its meeting
//! platform's task definition.
//!
//! - **Deploy** is one `RunTask` per bot with the bot's environment (from
//!   [`platform_core::bot_environment`]) as a container override, awsvpc
//!   networking, `startedBy` (`ECS_STARTED_BY`) and [`tags`] naming the
//!   installation, bot and attempt, and a [`client_token`] derived from the
//!   installation id, bot id and attempt, so a repeated deploy after a crash
//!   returns the task already started instead of a second one, and two
//!   installations sharing a cluster never get each other's task. A RunTask
//!   that starts nothing fails with ECS's reason.
//! - **Status** of many bots comes from `DescribeTasks`, 100 tasks per call.
//!   `MISSING` is `unknown`, never an error; a stopped task keeps its
//!   `stopCode`, `stoppedReason` and container exit codes as the reason. The
//!   connection URL (`http://<private IP>:<ECS_BOT_PORT>`) appears once the
//!   task's network interface is attached.
//! - **Stop** is `StopTask`; a task ECS does not know, or one already
//!   stopped, is success. **Cleanup** (the teardown after a stop or the
//!   bot's end) stops the task unless ECS already stops it and watches it
//!   until it is `STOPPED`, reading the statuses of every teardown in flight
//!   together, one `DescribeTasks` per 100 tasks; a task not yet `STOPPED`
//!   is looked at again, and after `teardown::CONFIRM_WAIT` (5 s) the
//!   teardown answers a retryable
//!   "not confirmed yet".
//! - **Marked bots** (for the orphan sweep) are `ListTasks` by `startedBy`
//!   with desired status RUNNING, then `DescribeTasks` with their tags:
//!   only tasks tagged with this installation's id are listed.
//! - **Setup checks** (`doctor`) describe each task definition
//!   (`DescribeTaskDefinition`: ACTIVE, awsvpc, Fargate-compatible, has the
//!   bot container) and try the sweep's listing; subnets and security
//!   groups would need the EC2 API and are reported as not checked.
//! - **Could not connect is not maybe started**: a connection that was
//!   never made (refused, a name that does not resolve, a failed TLS
//!   handshake) is [`platform_core::Error::Unreachable`]; one that broke
//!   after the request may have gone out stays `Unavailable` or `Timeout`.
//! - **Throttling**: calls are paced to ECS's per-account token buckets,
//!   modelled as they are (Fargate launches: a burst of 100, then 20 per
//!   second; RunTask and StopTask sharing the modify bucket; the reads the
//!   read bucket) and scaled by `ECS_API_RATE_PERCENT`, so a burst of bots
//!   spends the burst ECS allows and no more; a call ECS throttles anyway
//!   backs its bucket off and halves its pace, which then grows back (see
//!   [`EcsRateLimits`]). Throttling, server errors and timeouts are retried
//!   with backoff by [`platform_core::retry()`].
//!
//! Registered as `aws` (feature `aws` of `deployment`); configured with the
//! variables in [`config::ENV_SPECS`]. `DEPLOYMENT_PLATFORM=auto` picks it
//! when `AWS_REGION` and `ECS_CLUSTER` are set (`AWS_REGION` alone is not
//! enough: many machines set it for other tools).
//!
//! # Logging
//!
//! Nothing this crate logs contains the bot's environment. The AWS SDK,
//! however, logs whole requests at `TRACE` level (targets `aws_smithy_runtime`
//! and `aws_sdk_ecs`), and a RunTask request carries the meeting URL and
//! password: never enable `TRACE` for those targets in production.

pub mod capacity;
mod client;
pub mod config;
mod error;
mod listing;
mod marks;
mod pacer;
mod service;
mod setup;
mod status;
mod task_ref;
mod teardown;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;

use platform_core::{AutoSelect, PlatformContext, PlatformDescriptor, PlatformService};

pub use capacity::{CapacityProviderShare, CapacityProviderStrategy};
pub use config::{AwsConfig, BotTaskTarget, StaticCredentials};
pub use marks::{MAX_CLIENT_TOKEN_LEN, client_token, tags};
pub use pacer::{EcsBucket, EcsRateLimits};
pub use service::{AwsEcsPlatform, DESCRIBE_TASKS_BATCH};

/// The platform's registered name.
pub const PLATFORM_NAME: &str = "aws";

/// The platform as the registry sees it.
pub const DESCRIPTOR: PlatformDescriptor = PlatformDescriptor {
    name: PLATFORM_NAME,
    description: "AWS ECS: one task per bot (Fargate by default), started on demand from a task definition per meeting platform",
    feature: "aws",
    env: config::ENV_SPECS,
    auto: AutoSelect::Detect {
        order: 20,
        markers: config::DETECTION_MARKERS,
        ambient: &["AWS_REGION"],
    },
    build: |context: PlatformContext| {
        Box::pin(async move {
            let platform =
                AwsEcsPlatform::from_env(context.env.as_ref(), context.installation).await?;
            Ok(Arc::new(platform) as Arc<dyn PlatformService>)
        })
    },
};

platform_core::register_platform!(DESCRIPTOR);
