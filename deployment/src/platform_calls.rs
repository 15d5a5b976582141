//! Every call the service makes to its platform goes through here: one
//! tracing span per call, an upper bound on how long the service waits, and
//! the metrics (deploys by outcome, deploy latency, errors by kind).
//!
//! No second retry loop: the platform contract has each platform retry its
//! own API calls under the provider's limits, so an error that reaches us
//! has been retried already. Stacking retries here would multiply the
//! attempts and the wait. A retryable failure is left to the reconciler
//! (which calls again on its next pass) or to the caller (`pool_exhausted`
//! with a retry-after).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_core::{
    BotDeploymentConfig, BotStatus, DeployResult, Error, ErrorKind, MarkedBot, PlatformId,
    PlatformService,
};
use tracing::Instrument;

use crate::metrics::{DeployOutcome, Metrics};

/// The platform, wrapped with the service's timeout and metrics.
#[derive(Clone)]
pub(crate) struct PlatformCalls {
    platform: Arc<dyn PlatformService>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl PlatformCalls {
    pub(crate) fn new(
        platform: Arc<dyn PlatformService>,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            platform,
            timeout,
            metrics,
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
        let elapsed = started.elapsed();
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match &outcome {
            Ok(_) => tracing::debug!(op, elapsed_ms, "platform call succeeded"),
            Err(error) => {
                self.metrics
                    .record_platform_error(self.name(), op, error.kind().as_str());
                tracing::warn!(
                    op,
                    elapsed_ms,
                    error = %error,
                    kind = error.kind().as_str(),
                    retryable = error.is_retryable(),
                    "platform call failed"
                );
            }
        }
        if op == "deploy_bot" {
            let outcome = match &outcome {
                Ok(_) => DeployOutcome::Started,
                Err(error) if error.kind() == ErrorKind::Unreachable => DeployOutcome::Unreachable,
                Err(error) if error.nothing_started() => DeployOutcome::NoCapacity,
                Err(error) if !error.is_retryable() => DeployOutcome::Refused,
                Err(_) => DeployOutcome::Unconfirmed,
            };
            self.metrics.record_deploy(self.name(), outcome, elapsed);
        }
        outcome
    }

    /// `deploy_bot`, once.
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
        self.bounded(
            "deploy_bot",
            resource,
            self.platform.deploy_bot(config, attempt),
        )
        .instrument(span)
        .await
    }

    /// `stop_bot`, once.
    pub(crate) async fn stop(&self, id: &PlatformId) -> Result<(), Error> {
        let span = tracing::info_span!("platform_call", platform = self.name(), op = "stop_bot", platform_id = %id);
        self.bounded("stop_bot", format!("bot {id}"), self.platform.stop_bot(id))
            .instrument(span)
            .await
    }

    /// `cleanup`, once.
    pub(crate) async fn cleanup(&self, id: &PlatformId) -> Result<(), Error> {
        let span = tracing::info_span!("platform_call", platform = self.name(), op = "cleanup", platform_id = %id);
        self.bounded("cleanup", format!("bot {id}"), self.platform.cleanup(id))
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

    /// `list_marked_bots`, once.
    pub(crate) async fn list_marked(&self) -> Result<Vec<MarkedBot>, Error> {
        let span = tracing::info_span!(
            "platform_call",
            platform = self.name(),
            op = "list_marked_bots"
        );
        self.bounded(
            "list_marked_bots",
            "the bots under this installation's mark".into(),
            self.platform.list_marked_bots(),
        )
        .instrument(span)
        .await
    }
}
