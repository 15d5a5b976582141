//! Many deploys at once against a small pool.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use platform_coolify::CoolifyPlatform;
use platform_core::{DeployResult, Error, PlatformService};
use tokio::task::JoinSet;

use crate::helpers::{TestCoolify, zoom_bot};

const DEPLOYS: u64 = 50;

async fn deploy_all(platform: Arc<CoolifyPlatform>) -> (Vec<(u64, DeployResult)>, Vec<Error>) {
    let mut tasks = JoinSet::new();
    for bot in 1..=DEPLOYS {
        let platform = platform.clone();
        tasks.spawn(async move { (bot, platform.deploy_bot(&zoom_bot(bot), 1).await) });
    }
    let mut deployed = Vec::new();
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (bot, Ok(result)) => deployed.push((bot, result)),
            (_, Err(error)) => failed.push(error),
        }
    }
    (deployed, failed)
}

/// Counts of `METHOD /applications/<uuid>/<what>` by application.
async fn writes_by_app(
    coolify: &TestCoolify,
    method: &str,
    suffix: &str,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in coolify.requests().await {
        let path = request.url.path();
        if request.method.as_str() != method || !path.ends_with(suffix) {
            continue;
        }
        let app = path
            .trim_start_matches("/api/v1/applications/")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        *counts.entry(app).or_default() += 1;
    }
    counts
}

fn assert_each_slot_serves_its_own_bot(coolify: &TestCoolify, deployed: &[(u64, DeployResult)]) {
    for (bot, result) in deployed {
        let app = result.identifier.as_str().split('/').next().unwrap();
        assert_eq!(result.identifier.as_str(), format!("{app}/bot-{bot}"));
        assert_eq!(
            coolify.fake.env_value(app, "BOT_ID"),
            Some(bot.to_string()),
            "slot {app} holds bot {bot}'s environment"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_deploys_against_twenty_idle_slots() {
    let coolify = TestCoolify::start().await;
    let slots = coolify.fake.add_slots("zoom", 20);
    let mut config = coolify.config();
    config.pool_max.zoom = 20;
    let platform = Arc::new(coolify.platform_with(config).await.unwrap());

    let (deployed, failed) = deploy_all(platform).await;

    assert_eq!(deployed.len(), 20);
    assert_eq!(failed.len(), 30);
    for error in &failed {
        assert!(
            matches!(error, Error::PoolExhausted { capacity: 20, .. }),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
    let used: BTreeSet<&str> = deployed
        .iter()
        .map(|(_, r)| r.identifier.as_str().split('/').next().unwrap())
        .collect();
    assert_eq!(used.len(), 20, "twenty different slots");
    // Asserted on what Coolify received: every slot written once and
    // started once, nothing created.
    let expected: BTreeMap<String, usize> = slots.iter().map(|s| (s.clone(), 1)).collect();
    assert_eq!(
        writes_by_app(&coolify, "PATCH", "/envs/bulk").await,
        expected
    );
    assert_eq!(writes_by_app(&coolify, "POST", "/start").await, expected);
    let calls = coolify.calls().await;
    assert!(
        !calls.iter().any(|c| c.contains("dockerimage")),
        "nothing created"
    );
    assert_each_slot_serves_its_own_bot(&coolify, &deployed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_deploys_grow_the_pool_exactly_to_its_maximum() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 20);
    let mut config = coolify.config();
    config.pool_max.zoom = 25;
    let platform = Arc::new(coolify.platform_with(config).await.unwrap());

    let (deployed, failed) = deploy_all(platform).await;

    assert_eq!(deployed.len(), 25);
    assert_eq!(failed.len(), 25);
    assert!(
        failed
            .iter()
            .all(|e| matches!(e, Error::PoolExhausted { capacity: 25, .. }))
    );
    let creates = coolify
        .calls()
        .await
        .iter()
        .filter(|c| *c == "POST /applications/dockerimage")
        .count();
    assert_eq!(creates, 5);
    let mut names: Vec<String> = coolify.fake.apps().into_iter().map(|a| a.name).collect();
    names.sort();
    let expected: Vec<String> = (1..=25)
        .map(|n| crate::fake_coolify::slot_name(crate::fake_coolify::INSTALLATION, "zoom", n))
        .collect();
    assert_eq!(names, expected, "new slots fill numbers 021 to 025");
    let bulk = writes_by_app(&coolify, "PATCH", "/envs/bulk").await;
    assert_eq!(bulk.len(), 25);
    assert!(
        bulk.values().all(|n| *n == 1),
        "no slot written twice: {bulk:?}"
    );
    assert_each_slot_serves_its_own_bot(&coolify, &deployed);
}
