//! The conformance suite passes against a correct platform and catches
//! deliberately broken ones.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use platform_core::testkit::{self, FakePlatform, Fixtures};
use platform_core::{
    BotDeploymentConfig, BotStatus, DeployResult, Error, PlatformId, PlatformService, Result,
    RetryPolicy, StatusKind,
};

fn fixtures() -> Fixtures {
    let mut f = Fixtures::new("fake-does-not-exist");
    f.settle = std::time::Duration::from_millis(200);
    f.poll = std::time::Duration::from_millis(5);
    f
}

#[tokio::test]
async fn the_fake_platform_passes_the_whole_suite() {
    let platform = FakePlatform::new();
    testkit::run_suite(&platform, &fixtures()).await.unwrap();
    assert_eq!(platform.bots(), [], "the suite cleans up after itself");
}

#[tokio::test]
async fn a_platform_that_starts_slowly_passes_too() {
    let platform = FakePlatform::new().starting_as(StatusKind::Starting);
    testkit::run_suite(&platform, &fixtures()).await.unwrap();
}

#[tokio::test]
async fn transient_failures_are_ridden_out_with_the_retry_policy() {
    let platform = FakePlatform::new();
    platform.fail_next_deploys([
        Error::Unavailable {
            platform: "fake",
            resource: "bot 1".into(),
            message: "502 Bad Gateway".into(),
        },
        Error::Throttled {
            platform: "fake",
            resource: "bot 1".into(),
            retry_after: None,
            message: "Rate exceeded".into(),
        },
    ]);
    let policy = RetryPolicy {
        initial_backoff: std::time::Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    testkit::deploy_survives_transient_failure(&platform, &fixtures().config(1), &policy)
        .await
        .unwrap();
    assert_eq!(platform.calls().deploy, 3);
}

#[tokio::test]
async fn a_transient_failure_reported_as_a_rejection_is_caught() {
    let platform = FakePlatform::new();
    platform.fail_next_deploys([Error::Rejected {
        platform: "fake",
        resource: "bot 1".into(),
        message: "upstream 503".into(),
    }]);
    let violation = testkit::deploy_survives_transient_failure(
        &platform,
        &fixtures().config(1),
        &RetryPolicy::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(violation.check, "deploy_survives_transient_failure");
    assert!(violation.message.contains("non-retryable"), "{violation}");
}

/// Ways to break the contract.
#[derive(Clone, Copy, Debug)]
enum Flaw {
    /// The second stop of a bot fails.
    NonIdempotentStop,
    /// Cleanup of an identifier it does not know fails.
    CleanupOfUnknownFails,
    /// Status of an unknown identifier is an error.
    UnknownStatusIsAnError,
    /// The batch status leaves out identifiers it does not know.
    BatchDropsUnknown,
    /// Every deploy starts a new bot, even for the same attempt.
    DeployNotIdempotent,
    /// A stopped bot still reads as running.
    StopDoesNothing,
    /// `list_marked_bots` does not list the bots it runs.
    ForgetsItsBots,
}

struct Broken {
    inner: FakePlatform,
    flaw: Flaw,
    stopped: Mutex<HashMap<PlatformId, u32>>,
    deploys: AtomicU64,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Self {
            inner: FakePlatform::new(),
            flaw,
            stopped: Mutex::new(HashMap::new()),
            deploys: AtomicU64::new(0),
        }
    }

    fn is_known(&self, id: &PlatformId) -> bool {
        self.inner.bots().iter().any(|(_, known, _)| known == id)
    }
}

#[async_trait]
impl PlatformService for Broken {
    fn platform_name(&self) -> &'static str {
        "broken"
    }

    async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult> {
        let n = self.deploys.fetch_add(1, Ordering::SeqCst);
        match self.flaw {
            // A fresh "attempt" number on every call, as a launcher without a client token would.
            Flaw::DeployNotIdempotent => {
                self.inner
                    .deploy_bot(config, attempt + 1000 + n as u32)
                    .await
            }
            _ => self.inner.deploy_bot(config, attempt).await,
        }
    }

    async fn stop_bot(&self, id: &PlatformId) -> Result<()> {
        let times = {
            let mut stopped = self.stopped.lock().unwrap();
            let count = stopped.entry(id.clone()).or_default();
            *count += 1;
            *count
        };
        match self.flaw {
            Flaw::NonIdempotentStop if times > 1 => Err(Error::Rejected {
                platform: "broken",
                resource: id.to_string(),
                message: "already stopped".into(),
            }),
            Flaw::StopDoesNothing => Ok(()),
            _ => self.inner.stop_bot(id).await,
        }
    }

    async fn get_bot_status(&self, id: &PlatformId) -> Result<BotStatus> {
        if matches!(self.flaw, Flaw::UnknownStatusIsAnError) && !self.is_known(id) {
            return Err(Error::NotFound {
                platform: "broken",
                resource: id.to_string(),
                message: "no such bot".into(),
            });
        }
        self.inner.get_bot_status(id).await
    }

    async fn get_bot_statuses(&self, ids: &[PlatformId]) -> Result<HashMap<PlatformId, BotStatus>> {
        let mut map = self.inner.get_bot_statuses(ids).await?;
        if matches!(self.flaw, Flaw::BatchDropsUnknown) {
            map.retain(|_, status| status.kind != StatusKind::Unknown);
        }
        Ok(map)
    }

    async fn cleanup(&self, id: &PlatformId) -> Result<()> {
        if matches!(self.flaw, Flaw::CleanupOfUnknownFails) && !self.is_known(id) {
            return Err(Error::NotFound {
                platform: "broken",
                resource: id.to_string(),
                message: "nothing to clean up".into(),
            });
        }
        self.inner.cleanup(id).await
    }

    async fn check_reachable(&self) -> Result<()> {
        self.inner.check_reachable().await
    }

    async fn list_marked_bots(&self) -> Result<Vec<platform_core::MarkedBot>> {
        if matches!(self.flaw, Flaw::ForgetsItsBots) {
            return Ok(Vec::new());
        }
        self.inner.list_marked_bots().await
    }
}

async fn violation_of(flaw: Flaw) -> testkit::Violation {
    let platform = Broken::new(flaw);
    testkit::run_suite(&platform, &fixtures())
        .await
        .expect_err(&format!("the suite must catch {flaw:?}"))
}

#[tokio::test]
async fn a_platform_that_does_not_list_its_bots_is_caught() {
    let v = violation_of(Flaw::ForgetsItsBots).await;
    assert_eq!(v.check, "deployed_bots_carry_the_mark");
    assert!(v.message.contains("not listed"), "{v}");
}

#[tokio::test]
async fn a_non_idempotent_stop_is_caught() {
    let v = violation_of(Flaw::NonIdempotentStop).await;
    assert_eq!(v.check, "stop_and_cleanup_are_idempotent");
    assert!(v.message.contains("second stop_bot"), "{v}");
}

#[tokio::test]
async fn a_cleanup_that_fails_on_unknown_identifiers_is_caught() {
    let v = violation_of(Flaw::CleanupOfUnknownFails).await;
    // The second cleanup of a bot is already a cleanup of an identifier it forgot.
    assert_eq!(v.check, "stop_and_cleanup_are_idempotent");
    assert!(v.message.contains("second cleanup"), "{v}");
}

#[tokio::test]
async fn an_error_for_an_unknown_identifier_is_caught() {
    let v = violation_of(Flaw::UnknownStatusIsAnError).await;
    // Status after cleanup already asks about an identifier the platform forgot.
    assert_eq!(v.check, "deploy_status_stop_cleanup");
    assert!(v.message.contains("get_bot_status"), "{v}");
}

#[tokio::test]
async fn a_batch_status_that_drops_identifiers_is_caught() {
    let v = violation_of(Flaw::BatchDropsUnknown).await;
    assert_eq!(v.check, "unknown_identifier_is_not_an_error");
    assert!(v.message.contains("no entry"), "{v}");
}

#[tokio::test]
async fn a_deploy_that_starts_a_second_bot_is_caught() {
    let v = violation_of(Flaw::DeployNotIdempotent).await;
    assert_eq!(v.check, "redeploy_of_same_attempt_returns_same_bot");
    assert!(v.message.contains("two identifiers"), "{v}");
}

#[tokio::test]
async fn a_stop_that_does_nothing_is_caught() {
    let v = violation_of(Flaw::StopDoesNothing).await;
    assert_eq!(v.check, "deploy_status_stop_cleanup");
    assert!(v.message.contains("after stop"), "{v}");
}
