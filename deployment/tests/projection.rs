//! Ahead of capacity, with a clock the tests move by hand: a burst larger
//! than the platform's pace allows within the lead time is projected late
//! at its end and on time at its start, in the create response and on
//! `GET`; a burst within the pace is all on time; bots beyond every cap are
//! said to wait for capacity; `GET /v1/platforms` and `/metrics` show each
//! platform's due backlog, when it is worked off and how late its last bots
//! are.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{create, driven_service, ms, rfc3339, test_options, zoom_input};
use deployment::schedule::ScheduleOptions;
use deployment::{Bot, BotService, BotState, Clock, ServiceOptions, Store};
use platform_core::testkit::FakePlatform;
use platform_core::{DeployPace, Error, PlatformCapacity};

/// The lead of the test platform: its deploys start 30 s before `join_at`.
const LEAD: Duration = Duration::from_secs(30);

/// 5 deploys at once, then 1 a second, each bot running 10 s after its
/// call: within the 30 s lead, 5 + 20 bots of one burst are on time.
fn pace() -> DeployPace {
    DeployPace::limited(5.0, 1.0, Duration::from_secs(10))
}

fn paced(cap: Option<u32>) -> Arc<FakePlatform> {
    Arc::new(
        FakePlatform::new()
            .named("aws")
            .with_capacity(PlatformCapacity::at_most(cap, "AWS_MAX_BOTS").with_deploy_pace(pace())),
    )
}

fn service(store: Store, platform: &Arc<FakePlatform>, clock: &Clock) -> BotService {
    let options = ServiceOptions {
        clock: clock.clone(),
        schedule: ScheduleOptions {
            leads: vec![("aws".to_owned(), LEAD)],
            ..ScheduleOptions::default()
        },
        ..test_options()
    };
    driven_service(store, platform, options)
}

/// Creates `n` bots that must all be in their meetings at `join_at`, as
/// the create responses show them.
async fn burst(service: &BotService, n: u64, join_at: i64) -> Vec<Bot> {
    let mut bots = Vec::new();
    for i in 0..n {
        let created = service
            .create_bot(deployment::CreateBot {
                join_at: Some(rfc3339(join_at)),
                ..create(zoom_input(i), true)
            })
            .await
            .unwrap();
        bots.push(created.bot);
    }
    bots
}

/// The projected start (ms after the deploy time) and lateness of a bot.
fn projected(bot: &Bot) -> (i64, Option<u64>) {
    let deploy_at = ms(bot.deploy_at.expect("a deploy time"));
    let at = ms(bot
        .projected_deploy_at
        .unwrap_or_else(|| panic!("no projection: {bot:?}")));
    (at - deploy_at, bot.late_by_seconds)
}

async fn a_burst_beyond_the_pace_is_late_at_its_end_and_on_time_at_its_start(store: Store) {
    let clock = Clock::manual_now();
    let fake = paced(None);
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bots = burst(&service, 40, join_at).await;
    assert!(bots.iter().all(|b| b.status == BotState::Scheduled));
    assert!(bots.iter().all(|b| b.waiting_for_capacity.is_none()));
    // The first five go at their deploy time; the 25th 20 s later, in its
    // meeting just on time; the 26th one second late; the 40th starts 35 s
    // after its deploy time and is running 15 s after join_at.
    assert_eq!(projected(&bots[0]), (0, Some(0)));
    assert_eq!(projected(&bots[4]), (0, Some(0)));
    assert_eq!(projected(&bots[24]), (20_000, Some(0)));
    assert_eq!(projected(&bots[25]), (21_000, Some(1)));
    assert_eq!(projected(&bots[39]), (35_000, Some(15)));
    // GET says the same (the bots created after it are behind it).
    let last = service.get(bots[39].id).await.unwrap().bot;
    assert_eq!(projected(&last), (35_000, Some(15)));
    let first = service.get(bots[0].id).await.unwrap().bot;
    assert_eq!(projected(&first), (0, Some(0)));
    // Nothing was started to find this out.
    assert_eq!(fake.calls().deploy, 0);
}

async fn a_burst_within_the_pace_is_all_on_time(store: Store) {
    let clock = Clock::manual_now();
    let fake = paced(None);
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bots = burst(&service, 25, join_at).await;
    for bot in &bots {
        assert_eq!(bot.late_by_seconds, Some(0), "{bot:?}");
    }
    // A second burst a minute later does not add to the first.
    let later = burst(&service, 25, join_at + 60_000).await;
    for bot in &later {
        assert_eq!(bot.late_by_seconds, Some(0), "{bot:?}");
    }
    assert_eq!(projected(&later[0]), (0, Some(0)));
}

async fn bots_beyond_every_cap_are_said_to_wait_for_capacity(store: Store) {
    let clock = Clock::manual_now();
    // Room for 3 bots at once.
    let fake = paced(Some(3));
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bots = burst(&service, 5, join_at).await;
    for bot in &bots[..3] {
        assert_eq!(projected(bot), (0, Some(0)));
        assert_eq!(bot.waiting_for_capacity, None);
    }
    for bot in &bots[3..] {
        assert_eq!(bot.projected_deploy_at, None, "{bot:?}");
        assert_eq!(bot.late_by_seconds, None, "{bot:?}");
        let why = bot.waiting_for_capacity.as_deref().unwrap();
        assert!(why.contains("aws (0 of 3, AWS_MAX_BOTS)"), "{why}");
    }
    let why = service
        .get(bots[4].id)
        .await
        .unwrap()
        .bot
        .waiting_for_capacity
        .unwrap();
    assert!(why.contains("with 4 bots ahead of it"), "{why}");
    // At the deploy time three are started, and are no longer projected;
    // the two queued still wait for capacity.
    clock.set_ms(ms(bots[0].deploy_at.unwrap()));
    service.deploy_due().await.unwrap();
    service.finish_jobs().await;
    let mut started = 0;
    for bot in &bots {
        let now = service.get(bot.id).await.unwrap().bot;
        if now.platform_id.is_some() {
            started += 1;
            assert_eq!(
                (now.projected_deploy_at, now.waiting_for_capacity.as_deref()),
                (None, None),
                "{now:?}"
            );
        } else {
            assert_eq!(now.status, BotState::Queued, "{now:?}");
            let why = now.waiting_for_capacity.unwrap();
            assert!(why.contains("aws (3 of 3, AWS_MAX_BOTS)"), "{why}");
        }
    }
    assert_eq!(started, 3);
}

async fn platforms_and_metrics_show_the_due_backlog(store: Store) {
    let clock = Clock::manual_now();
    let fake = paced(None);
    let service = service(store, &fake, &clock);
    let join_at = clock.now_ms() + 600_000;
    let bots = burst(&service, 40, join_at).await;
    let view = service.platforms_view().await.unwrap();
    let aws = &view.platforms[0];
    assert_eq!(
        (aws.deploy_backlog, aws.backlog_worked_off_at),
        (0, None),
        "nothing is due yet"
    );
    assert_eq!(
        aws.deploy_pace.as_deref(),
        Some("5 at once, then 1 a second; running about 10 s after the call")
    );

    // At the deploy time, before a scheduler round: all 40 are due on aws,
    // worked off 35 s later, the last 15 s late.
    let deploy_at = join_at - 30_000;
    clock.set_ms(deploy_at);
    let view = service.platforms_view().await.unwrap();
    let aws = &view.platforms[0];
    assert_eq!(aws.deploy_backlog, 40);
    assert_eq!(aws.backlog_worked_off_at.map(ms), Some(deploy_at + 35_000));
    assert_eq!(aws.max_late_by_seconds, Some(15));
    let text = deployment::api::metrics::render(&service).await;
    assert!(
        text.contains("\nmeeboter_deploy_backlog{platform=\"aws\"} 40\n"),
        "{text}"
    );
    let last = service.get(bots[39].id).await.unwrap().bot;
    assert_eq!(projected(&last), (35_000, Some(15)));

    // A bot placed whose platform call has not answered (the answer was
    // lost) waits for its call, first in the platform's backlog.
    fake.fail_next_deploys([Error::Timeout {
        platform: "aws",
        resource: "bot".into(),
        after: Duration::from_secs(1),
    }]);
    let placed = service
        .create_bot(create(zoom_input(100), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(
        (placed.status, placed.platform_id.as_deref()),
        (BotState::Deploying, None)
    );
    assert_eq!(placed.projected_deploy_at.map(ms), Some(deploy_at));
    assert_eq!(placed.late_by_seconds, None, "no join_at, no lateness");
    let view = service.platforms_view().await.unwrap();
    assert_eq!(view.platforms[0].deploy_backlog, 41);
    assert_eq!(
        view.platforms[0].backlog_worked_off_at.map(ms),
        Some(deploy_at + 36_000)
    );
    assert_eq!(view.platforms[0].max_late_by_seconds, Some(16));

    // Once the scheduler placed and started them, the backlog is gone.
    service.deploy_due().await.unwrap();
    service.reconcile_once().await.unwrap();
    service.finish_jobs().await;
    let view = service.platforms_view().await.unwrap();
    assert_eq!(view.platforms[0].deploy_backlog, 0);
    let text = deployment::api::metrics::render(&service).await;
    assert!(
        text.contains("\nmeeboter_deploy_backlog{platform=\"aws\"} 0\n"),
        "{text}"
    );
}

on_both_databases!(
    a_burst_beyond_the_pace_is_late_at_its_end_and_on_time_at_its_start,
    a_burst_within_the_pace_is_all_on_time,
    bots_beyond_every_cap_are_said_to_wait_for_capacity,
    platforms_and_metrics_show_the_due_backlog,
);
