//! The platform conformance suite.

use std::time::Duration;

use crate::config::{BotDeploymentConfig, BotId};
use crate::meeting::{MeetingPlatform, MeetingUrl};
use crate::platform::{PlatformId, PlatformService};
use crate::retry::{RetryPolicy, retry};
use crate::status::{BotStatus, StatusKind};
use crate::testkit::Violation;

/// What the suite needs to know about the platform under test.
#[derive(Clone, Debug)]
pub struct Fixtures {
    /// An identifier in the platform's own format that it does not know.
    pub unknown_identifier: PlatformId,
    /// The meeting platforms the instance under test can run (its mock may
    /// serve only some).
    pub meeting_platforms: Vec<MeetingPlatform>,
    /// How long a status may take to reach the expected kind (the platform
    /// may be eventually consistent). Default 10 s.
    pub settle: Duration,
    /// How often to poll while waiting. Default 50 ms.
    pub poll: Duration,
    /// The first bot id the suite uses; each check takes fresh ids after it.
    pub first_bot_id: u64,
}

impl Fixtures {
    /// Fixtures for a platform whose unknown identifiers look like `unknown`.
    pub fn new(unknown_identifier: impl Into<PlatformId>) -> Self {
        Self {
            unknown_identifier: unknown_identifier.into(),
            meeting_platforms: MeetingPlatform::ALL.to_vec(),
            settle: Duration::from_secs(10),
            poll: Duration::from_millis(50),
            first_bot_id: 900_001,
        }
    }

    /// Restricts the meeting platforms used.
    pub fn with_meeting_platforms(mut self, platforms: &[MeetingPlatform]) -> Self {
        self.meeting_platforms = platforms.to_vec();
        self
    }

    /// A valid config for bot `bot_id`, cycling through the meeting platforms.
    pub fn config(&self, bot_id: u64) -> BotDeploymentConfig {
        let index =
            usize::try_from(bot_id).unwrap_or_default() % self.meeting_platforms.len().max(1);
        let platform = self
            .meeting_platforms
            .get(index)
            .copied()
            .unwrap_or(MeetingPlatform::Zoom);
        let url = match platform {
            MeetingPlatform::Zoom => {
                format!("https://us02web.zoom.us/j/8{bot_id:010}?pwd=conformance")
            }
            MeetingPlatform::Teams => {
                format!("https://teams.live.com/meet/9{bot_id:012}?p=conformance")
            }
            MeetingPlatform::Meet => "https://meet.google.com/abc-defg-hij".to_owned(),
        };
        let url = MeetingUrl::parse(platform, &url)
            .unwrap_or_else(|e| unreachable!("fixture URL is valid: {e}"));
        BotDeploymentConfig::new(BotId(bot_id), url)
    }
}

fn fail<T>(check: &'static str, message: impl Into<String>) -> Result<T, Violation> {
    Err(Violation::new(check, message))
}

/// Polls the status of `id` until `accept` holds, for at most `fixtures.settle`.
async fn wait_for_status(
    check: &'static str,
    platform: &dyn PlatformService,
    id: &PlatformId,
    fixtures: &Fixtures,
    expected: &str,
    accept: impl Fn(StatusKind) -> bool,
) -> Result<BotStatus, Violation> {
    let deadline = tokio::time::Instant::now() + fixtures.settle;
    loop {
        let status = match platform.get_bot_status(id).await {
            Ok(status) => status,
            Err(e) => return fail(check, format!("get_bot_status({id}) failed: {e}")),
        };
        if accept(status.kind) {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            return fail(
                check,
                format!(
                    "status of {id} is {status} after {:?}; expected {expected}",
                    fixtures.settle
                ),
            );
        }
        tokio::time::sleep(fixtures.poll).await;
    }
}

fn is_up(kind: StatusKind) -> bool {
    matches!(kind, StatusKind::Starting | StatusKind::Running)
}

fn is_down(kind: StatusKind) -> bool {
    matches!(
        kind,
        StatusKind::Stopping | StatusKind::Stopped | StatusKind::Unknown
    )
}

fn is_gone(kind: StatusKind) -> bool {
    matches!(kind, StatusKind::Stopped | StatusKind::Unknown)
}

async fn stop_and_cleanup(
    check: &'static str,
    platform: &dyn PlatformService,
    id: &PlatformId,
) -> Result<(), Violation> {
    if let Err(e) = platform.stop_bot(id).await {
        return fail(check, format!("stop_bot({id}) failed: {e}"));
    }
    if let Err(e) = platform.cleanup(id).await {
        return fail(check, format!("cleanup({id}) failed: {e}"));
    }
    Ok(())
}

/// Deploy, see it starting or running, stop, see it stopping or gone,
/// clean up, see it gone.
pub async fn deploy_status_stop_cleanup(
    platform: &dyn PlatformService,
    config: &BotDeploymentConfig,
    fixtures: &Fixtures,
) -> Result<(), Violation> {
    const CHECK: &str = "deploy_status_stop_cleanup";
    if platform.platform_name().is_empty() {
        return fail(CHECK, "platform_name() is empty");
    }
    let deployed = match platform.deploy_bot(config, 1).await {
        Ok(d) => d,
        Err(e) => return fail(CHECK, format!("deploy_bot failed: {e}")),
    };
    let id = &deployed.identifier;
    if id.as_str().is_empty() {
        return fail(CHECK, "deploy_bot returned an empty identifier");
    }
    wait_for_status(
        CHECK,
        platform,
        id,
        fixtures,
        "starting or running after deploy",
        is_up,
    )
    .await?;
    if let Err(e) = platform.stop_bot(id).await {
        return fail(CHECK, format!("stop_bot({id}) failed: {e}"));
    }
    wait_for_status(
        CHECK,
        platform,
        id,
        fixtures,
        "stopping, stopped or unknown after stop",
        is_down,
    )
    .await?;
    if let Err(e) = platform.cleanup(id).await {
        return fail(CHECK, format!("cleanup({id}) failed: {e}"));
    }
    wait_for_status(
        CHECK,
        platform,
        id,
        fixtures,
        "stopped or unknown after cleanup",
        is_gone,
    )
    .await?;
    Ok(())
}

/// Stopping twice and cleaning up twice both succeed.
pub async fn stop_and_cleanup_are_idempotent(
    platform: &dyn PlatformService,
    config: &BotDeploymentConfig,
) -> Result<(), Violation> {
    const CHECK: &str = "stop_and_cleanup_are_idempotent";
    let deployed = match platform.deploy_bot(config, 1).await {
        Ok(d) => d,
        Err(e) => return fail(CHECK, format!("deploy_bot failed: {e}")),
    };
    let id = &deployed.identifier;
    for round in ["first", "second"] {
        if let Err(e) = platform.stop_bot(id).await {
            return fail(CHECK, format!("{round} stop_bot({id}) failed: {e}"));
        }
    }
    for round in ["first", "second"] {
        if let Err(e) = platform.cleanup(id).await {
            return fail(CHECK, format!("{round} cleanup({id}) failed: {e}"));
        }
    }
    if let Err(e) = platform.stop_bot(id).await {
        return fail(CHECK, format!("stop_bot({id}) after cleanup failed: {e}"));
    }
    Ok(())
}

/// An identifier the platform does not know: status `unknown` (or
/// `stopped`), stop and cleanup succeed.
pub async fn unknown_identifier_is_not_an_error(
    platform: &dyn PlatformService,
    fixtures: &Fixtures,
) -> Result<(), Violation> {
    const CHECK: &str = "unknown_identifier_is_not_an_error";
    let id = &fixtures.unknown_identifier;
    match platform.get_bot_status(id).await {
        Ok(status) if is_gone(status.kind) => {}
        Ok(status) => {
            return fail(
                CHECK,
                format!("status of unknown {id} is {status}; expected unknown or stopped"),
            );
        }
        Err(e) => return fail(CHECK, format!("status of unknown {id} is an error: {e}")),
    }
    match platform.get_bot_statuses(std::slice::from_ref(id)).await {
        Ok(map) => match map.get(id) {
            Some(status) if is_gone(status.kind) => {}
            Some(status) => {
                return fail(CHECK, format!("batch status of unknown {id} is {status}"));
            }
            None => return fail(CHECK, format!("batch status has no entry for {id}")),
        },
        Err(e) => {
            return fail(
                CHECK,
                format!("batch status of unknown {id} is an error: {e}"),
            );
        }
    }
    if let Err(e) = platform.stop_bot(id).await {
        return fail(CHECK, format!("stop_bot of unknown {id} failed: {e}"));
    }
    if let Err(e) = platform.cleanup(id).await {
        return fail(CHECK, format!("cleanup of unknown {id} failed: {e}"));
    }
    Ok(())
}

/// Deploy several bots and read all their statuses in one call, with an
/// unknown identifier among them.
pub async fn statuses_of_many(
    platform: &dyn PlatformService,
    configs: &[BotDeploymentConfig],
    fixtures: &Fixtures,
) -> Result<(), Violation> {
    const CHECK: &str = "statuses_of_many";
    let mut ids = Vec::new();
    for config in configs {
        match platform.deploy_bot(config, 1).await {
            Ok(d) => ids.push(d.identifier),
            Err(e) => {
                return fail(
                    CHECK,
                    format!("deploy_bot of bot {} failed: {e}", config.bot_id()),
                );
            }
        }
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != ids.len() {
        return fail(
            CHECK,
            format!(
                "{} bots got only {} distinct identifiers",
                ids.len(),
                distinct.len()
            ),
        );
    }
    let mut asked = ids.clone();
    asked.push(fixtures.unknown_identifier.clone());
    let deadline = tokio::time::Instant::now() + fixtures.settle;
    loop {
        let map = match platform.get_bot_statuses(&asked).await {
            Ok(map) => map,
            Err(e) => return fail(CHECK, format!("get_bot_statuses failed: {e}")),
        };
        if let Some(missing) = asked.iter().find(|id| !map.contains_key(*id)) {
            return fail(
                CHECK,
                format!("get_bot_statuses has no entry for {missing}"),
            );
        }
        match map.get(&fixtures.unknown_identifier) {
            Some(status) if is_gone(status.kind) => {}
            Some(status) => {
                return fail(CHECK, format!("the unknown identifier reads as {status}"));
            }
            None => unreachable!("checked above"),
        }
        let not_up: Vec<String> = ids
            .iter()
            .filter(|id| !map.get(*id).is_some_and(|s| is_up(s.kind)))
            .map(|id| {
                format!(
                    "{id}: {}",
                    map.get(id).map(ToString::to_string).unwrap_or_default()
                )
            })
            .collect();
        if not_up.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return fail(
                CHECK,
                format!(
                    "not starting or running after deploy: {}",
                    not_up.join(", ")
                ),
            );
        }
        tokio::time::sleep(fixtures.poll).await;
    }
    for id in &ids {
        stop_and_cleanup(CHECK, platform, id).await?;
    }
    Ok(())
}

/// Deploying the same bot with the same attempt twice (a retry after a crash)
/// returns the same identifier: no second bot.
pub async fn redeploy_of_same_attempt_returns_same_bot(
    platform: &dyn PlatformService,
    config: &BotDeploymentConfig,
) -> Result<(), Violation> {
    const CHECK: &str = "redeploy_of_same_attempt_returns_same_bot";
    let first = match platform.deploy_bot(config, 1).await {
        Ok(d) => d,
        Err(e) => return fail(CHECK, format!("first deploy_bot failed: {e}")),
    };
    let second = match platform.deploy_bot(config, 1).await {
        Ok(d) => d,
        Err(e) => return fail(CHECK, format!("repeated deploy_bot failed: {e}")),
    };
    stop_and_cleanup(CHECK, platform, &first.identifier).await?;
    if first.identifier != second.identifier {
        stop_and_cleanup(CHECK, platform, &second.identifier).await?;
        return fail(
            CHECK,
            format!(
                "the same bot and attempt got two identifiers: {} and {}",
                first.identifier, second.identifier
            ),
        );
    }
    Ok(())
}

/// Arrange for the platform's backend to fail transiently before calling
/// this: a deploy retried with `policy` must succeed, and every error on the
/// way must have been retryable.
pub async fn deploy_survives_transient_failure(
    platform: &dyn PlatformService,
    config: &BotDeploymentConfig,
    policy: &RetryPolicy,
) -> Result<(), Violation> {
    const CHECK: &str = "deploy_survives_transient_failure";
    // Every try is attempt 1: a deploy that failed left nothing behind, and
    // the contract makes a repeated `(bot, attempt)` safe. A new attempt
    // number would mean "the previous attempt was cleaned up".
    let deployed = retry(policy, "conformance deploy", |_| async move {
        platform.deploy_bot(config, 1).await
    })
    .await;
    match deployed {
        Ok(d) => stop_and_cleanup(CHECK, platform, &d.identifier).await,
        Err(e) if e.is_retryable() => fail(CHECK, format!("still failing after retries: {e}")),
        Err(e) => fail(
            CHECK,
            format!("a transient failure surfaced as a non-retryable error: {e}"),
        ),
    }
}

/// A deployed bot is listed by `list_marked_bots` under its bot id (and its
/// attempt, when the mark carries one); once stopped and cleaned up it is
/// no longer listed.
pub async fn deployed_bots_carry_the_mark(
    platform: &dyn PlatformService,
    config: &BotDeploymentConfig,
    fixtures: &Fixtures,
) -> Result<(), Violation> {
    const CHECK: &str = "deployed_bots_carry_the_mark";
    let deployed = match platform.deploy_bot(config, 1).await {
        Ok(d) => d,
        Err(e) => return fail(CHECK, format!("deploy_bot failed: {e}")),
    };
    let id = &deployed.identifier;
    let listed = match platform.list_marked_bots().await {
        Ok(listed) => listed,
        Err(e) => return fail(CHECK, format!("list_marked_bots failed: {e}")),
    };
    match listed.iter().find(|m| &m.identifier == id) {
        None => {
            return fail(
                CHECK,
                format!("bot {} ({id}) is running but not listed", config.bot_id()),
            );
        }
        Some(marked) if marked.bot != config.bot_id() || marked.attempt.is_some_and(|a| a != 1) => {
            return fail(
                CHECK,
                format!(
                    "{id} is listed as bot {} attempt {:?}; it was deployed as bot {} attempt 1",
                    marked.bot,
                    marked.attempt,
                    config.bot_id()
                ),
            );
        }
        Some(_) => {}
    }
    stop_and_cleanup(CHECK, platform, id).await?;
    let deadline = tokio::time::Instant::now() + fixtures.settle;
    loop {
        let listed = match platform.list_marked_bots().await {
            Ok(listed) => listed,
            Err(e) => return fail(CHECK, format!("list_marked_bots failed: {e}")),
        };
        if !listed.iter().any(|m| &m.identifier == id) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return fail(
                CHECK,
                format!(
                    "{id} is still listed {:?} after stop and cleanup",
                    fixtures.settle
                ),
            );
        }
        tokio::time::sleep(fixtures.poll).await;
    }
}

/// Runs every check that needs no special arrangement, each with fresh bot
/// ids: the lifecycle, idempotent stop and cleanup, unknown identifiers,
/// statuses of many (three bots), a repeated deploy and the installation's
/// mark.
pub async fn run_suite(
    platform: &dyn PlatformService,
    fixtures: &Fixtures,
) -> Result<(), Violation> {
    let base = fixtures.first_bot_id;
    deploy_status_stop_cleanup(platform, &fixtures.config(base), fixtures).await?;
    stop_and_cleanup_are_idempotent(platform, &fixtures.config(base + 1)).await?;
    unknown_identifier_is_not_an_error(platform, fixtures).await?;
    let many: Vec<_> = (base + 2..base + 5).map(|id| fixtures.config(id)).collect();
    statuses_of_many(platform, &many, fixtures).await?;
    redeploy_of_same_attempt_returns_same_bot(platform, &fixtures.config(base + 5)).await?;
    deployed_bots_carry_the_mark(platform, &fixtures.config(base + 6), fixtures).await?;
    Ok(())
}
