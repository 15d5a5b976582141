//! Placement over the real Coolify and AWS platforms: a Coolify pool of 5
//! Zoom slots first, ECS capped at 10 second, 20 bots. The real service and
//! store (SQLite and PostgreSQL), a fake Coolify API and a mini-ECS on
//! loopback; what ran is counted on those, not in the database under test.

#![cfg(all(feature = "coolify", feature = "aws"))]

mod common;

use std::sync::Arc;

use common::{create, history_text, zoom_input};
use deployment::{BotService, BotState, ServiceOptions, Store};
use platform_aws::testkit::mini_ecs::MiniEcs;
use platform_coolify::testkit::fake_coolify::FakeCoolify;
use platform_coolify::{CoolifyPlatform, PerMeetingPlatform};
use platform_core::PlatformService;
use wiremock::MockServer;

async fn coolify_pool_then_ecs_cap_then_the_queue(store: Store) {
    let installation = store.installation().clone();

    let coolify_server = MockServer::start().await;
    let coolify = FakeCoolify::new();
    coolify.mount(&coolify_server).await;
    coolify.add_slots_of(installation.as_str(), "zoom", 5);
    let mut config = platform_coolify::testkit::config(&coolify_server.uri());
    config.pool_max = PerMeetingPlatform::all(5);
    let coolify_platform =
        CoolifyPlatform::new(config, Arc::new(store.clone()), installation.clone())
            .await
            .unwrap();

    let ecs_server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&ecs_server).await;
    let aws_env = platform_aws::testkit::env(&ecs_server.uri()).with("AWS_MAX_BOTS", "10");
    let aws_platform =
        platform_aws::testkit::platform_at(&ecs_server.uri(), &aws_env, installation);

    let service = BotService::with_platforms(
        store,
        vec![
            Arc::new(coolify_platform) as Arc<dyn PlatformService>,
            Arc::new(aws_platform) as Arc<dyn PlatformService>,
        ],
        ServiceOptions {
            bot_api_url: Some("http://127.0.0.1:1".into()),
            ..common::test_options()
        },
    )
    .unwrap();
    // Capacity that frees is drained by the pass this test runs, so what
    // one pass does can be checked.
    service.set_background_drain(false);

    let mut bots = Vec::new();
    for n in 0..20 {
        bots.push(
            service
                .create_bot(create(zoom_input(n), true))
                .await
                .unwrap()
                .bot,
        );
    }
    let placed_on = |p: &str| {
        bots.iter()
            .filter(|b| b.platform.as_deref() == Some(p) && b.status != BotState::Queued)
            .count()
    };
    assert_eq!(
        (placed_on("coolify"), placed_on("aws")),
        (5, 10),
        "{bots:#?}"
    );
    let queued: Vec<_> = bots
        .iter()
        .filter(|b| b.status == BotState::Queued)
        .collect();
    assert_eq!(
        queued.iter().map(|b| b.queue_position).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3), Some(4), Some(5)]
    );
    assert!(queued.iter().all(|b| b.platform.is_none()));
    // What the platforms ran: five slots started (one Coolify deployment
    // each), ten tasks.
    assert_eq!(coolify.deployments().len(), 5);
    assert_eq!(ecs.tasks_started(), 10);
    assert_eq!(ecs.tasks_not_stopped().len(), 10);

    // The histories tell each fallback.
    let sixth = history_text(&service, bots[5].id).await;
    assert!(
        sixth.contains("coolify: pool full (5 of 5 zoom bots") && sixth.contains("placed on aws"),
        "{sixth}"
    );
    let last = history_text(&service, bots[19].id).await;
    assert!(
        last.contains("coolify: pool full (5 of 5 zoom bots")
            && last.contains("aws: at its cap (10 of 10 bots")
            && last.contains("queued until a platform has room"),
        "{last}"
    );

    // Three Coolify bots end: one pass places the first three queued bots
    // in the slots they gave back.
    for bot in bots
        .iter()
        .filter(|b| b.platform.as_deref() == Some("coolify"))
        .take(3)
    {
        let stopped = service.stop(bot.id).await.unwrap();
        assert_eq!(stopped.status, BotState::Stopped, "{stopped:?}");
    }
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.queue_placed, 3, "{report:?}");
    for (index, bot) in queued.iter().enumerate() {
        let now = service.get(bot.id).await.unwrap().bot;
        if index < 3 {
            assert_eq!(now.platform.as_deref(), Some("coolify"), "{now:?}");
            assert!(
                matches!(now.status, BotState::Deploying | BotState::Running),
                "{now:?}"
            );
            let history = history_text(&service, bot.id).await;
            assert!(
                history.contains("aws: at its cap (10 of 10 bots")
                    && history.contains("placed on coolify from the queue"),
                "{history}"
            );
        } else {
            assert_eq!(now.status, BotState::Queued, "{now:?}");
            assert_eq!(now.queue_position, Some(index as u64 - 2));
        }
    }
    assert_eq!(coolify.deployments().len(), 8);
    assert_eq!(ecs.tasks_started(), 10, "nothing more went to ECS");
    let metrics = service.metrics().snapshot();
    assert_eq!(metrics.fallbacks.get(&("coolify", "aws")), Some(&10));
    assert_eq!(metrics.fallbacks.get(&("aws", "queue")), Some(&5));
}

on_both_databases!(coolify_pool_then_ecs_cap_then_the_queue);
