//! Every call the service makes to its platform goes through here: one
//! tracing span per call, retries of retryable errors, and an upper bound on
//! how long the service waits.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_core::{
    BotDeploymentConfig, BotStatus, DeployResult, Error, PlatformId, PlatformService, RetryPolicy,
    retry,
};
use tracing::Instrument;

/// Whether a deploy error proves that nothing was started and nothing is
/// held, so the bot can go back to `pending`: a full pool, or a capacity
/// shortage the platform calls transient. Retrying those at once only keeps
/// the caller waiting; the caller decides when to come back.
pub(crate) fn nothing_started(error: &Error) -> bool {
    matches!(
        error,
        Error::PoolExhausted { .. }
            | Error::Capacity {
                retryable: true,
                ..
            }
    )
}

/// The platform, wrapped with the service's retry policy and timeout.
#[derive(Clone)]
pub(crate) struct PlatformCalls {
    platform: Arc<dyn PlatformService>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl PlatformCalls {
    pub(crate) fn new(
        platform: Arc<dyn PlatformService>,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> Self {
        // A retry budget longer than the timeout would be cut anyway.
        let retry = RetryPolicy {
            budget: retry.budget.min(timeout),
            ..retry
        };
        Self {
            platform,
            retry,
            timeout,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.platform.platform_name()
    }

    pub(crate) fn platform(&self) -> &Arc<dyn PlatformService> {
        &self.platform
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        resource: String,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                platform: self.name(),
                resource,
                after: self.timeout,
            }),
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &outcome {
            Ok(_) => tracing::debug!(op, elapsed_ms, "platform call succeeded"),
            Err(error) => tracing::warn!(
                op,
                elapsed_ms,
                error = %error,
                kind = error.kind().as_str(),
                retryable = error.is_retryable(),
                "platform call failed"
            ),
        }
        outcome
    }

    /// `deploy_bot`, retrying retryable errors except those that prove
    /// nothing started (see [`nothing_started`]).
    pub(crate) async fn deploy(
        &self,
        config: &BotDeploymentConfig,
        attempt: u32,
    ) -> Result<DeployResult, Error> {
        let span = tracing::info_span!(
            "platform_call",
            platform = self.name(),
            op = "deploy_bot",
            bot_id = %config.bot_id(),
            attempt
        );
        let resource = format!("bot {} attempt {attempt}", config.bot_id());
        let platform = &self.platform;
        let call = retry(&self.retry, &resource, |_| async move {
            match platform.deploy_bot(config, attempt).await {
                Err(e) if nothing_started(&e) => Ok(Err(e)),
                other => other.map(Ok),
            }
        });
        self.bounded("deploy_bot", resource.clone(), async {
            call.await.and_then(|r| r)
        })
        .instrument(span)
        .await
    }

    /// `stop_bot` with retries.
    pub(crate) async fn stop(&self, id: &PlatformId) -> Result<(), Error> {
        let span = tracing::info_span!("platform_call", platform = self.name(), op = "stop_bot", platform_id = %id);
        let resource = format!("bot {id}");
        let call = retry(&self.retry, &resource, |_| self.platform.stop_bot(id));
        self.bounded("stop_bot", resource.clone(), call)
            .instrument(span)
            .await
    }

    /// `cleanup` with retries.
    pub(crate) async fn cleanup(&self, id: &PlatformId) -> Result<(), Error> {
        let span = tracing::info_span!("platform_call", platform = self.name(), op = "cleanup", platform_id = %id);
        let resource = format!("bot {id}");
        let call = retry(&self.retry, &resource, |_| self.platform.cleanup(id));
        self.bounded("cleanup", resource.clone(), call)
            .instrument(span)
            .await
    }

    /// `get_bot_status`, once (a status read is repeated by the next pass
    /// anyway).
    pub(crate) async fn status(&self, id: &PlatformId) -> Result<BotStatus, Error> {
        let span = tracing::info_span!("platform_call", platform = self.name(), op = "get_bot_status", platform_id = %id);
        self.bounded(
            "get_bot_status",
            format!("bot {id}"),
            self.platform.get_bot_status(id),
        )
        .instrument(span)
        .await
    }

    /// `get_bot_statuses`, once, for many bots.
    pub(crate) async fn statuses(
        &self,
        ids: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>, Error> {
        let span = tracing::info_span!(
            "platform_call",
            platform = self.name(),
            op = "get_bot_statuses",
            bots = ids.len()
        );
        self.bounded(
            "get_bot_statuses",
            format!("{} bots", ids.len()),
            self.platform.get_bot_statuses(ids),
        )
        .instrument(span)
        .await
    }

    /// `check_reachable`, once.
    pub(crate) async fn check_reachable(&self) -> Result<(), Error> {
        let span = tracing::info_span!(
            "platform_call",
            platform = self.name(),
            op = "check_reachable"
        );
        self.bounded(
            "check_reachable",
            "the platform".into(),
            self.platform.check_reachable(),
        )
        .instrument(span)
        .await
    }
}
