//! The bot protocol on real SQLite and real PostgreSQL, over the fake
//! platform: tokens scoped to one bot and attempt and revoked when it ends,
//! the meeting-status order and its history, idempotent events, ending on
//! the bot's word, leave, the heartbeat watchdog and coalesced heartbeats.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{create, until_ended, zoom_input};
use deployment::service::{AuthorizedBot, BotAccess};
use deployment::{BotService, BotState, MeetingEvent, MeetingStatus, ServiceOptions, Store};
use platform_core::bot_env::names;
use platform_core::testkit::FakePlatform;
use platform_core::{BotId, Error, PlatformService};

const API_URL: &str = "http://127.0.0.1:1";

fn options() -> ServiceOptions {
    ServiceOptions {
        bot_api_url: Some(API_URL.into()),
        ..common::test_options()
    }
}

fn service(store: Store, fake: Arc<FakePlatform>, options: ServiceOptions) -> BotService {
    BotService::new(store, fake as Arc<dyn PlatformService>, options)
}

/// Creates and deploys a bot; returns its id and the token its (latest)
/// deploy call gave it.
async fn deployed(service: &BotService, fake: &FakePlatform, n: u64) -> (BotId, String) {
    let bot = service
        .create_bot(create(zoom_input(n), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Running, "{bot:?}");
    let (_, env) = fake.environments(bot.id).pop().expect("a deploy call");
    assert_eq!(env.get(names::MEEBOTER_API_URL), Some(API_URL));
    let token = env.get(names::BOT_TOKEN).expect("a bot token").to_owned();
    (bot.id, token)
}

async fn authorized(service: &BotService, id: BotId, token: &str) -> AuthorizedBot {
    match service.authorize_bot(id, token.as_bytes()).await.unwrap() {
        BotAccess::Granted(bot) => *bot,
        other => panic!("bot {id}'s own token was refused: {other:?}"),
    }
}

fn event(status: MeetingStatus) -> MeetingEvent {
    MeetingEvent {
        status,
        sub_code: None,
        message: None,
        recording: (status == MeetingStatus::InCall).then_some(false),
        event_id: None,
        source: deployment::meeting::EventSource::Bot,
    }
}

fn ended(status: MeetingStatus, code: &str) -> MeetingEvent {
    MeetingEvent {
        sub_code: Some(code.into()),
        message: Some(format!("{code} happened")),
        ..event(status)
    }
}

async fn a_token_opens_its_own_bot_only_and_dies_with_it(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store.clone(), fake.clone(), options());
    let (a, token_a) = deployed(&service, &fake, 1).await;
    let (b, token_b) = deployed(&service, &fake, 2).await;
    assert_ne!(token_a, token_b);
    assert!(token_a.starts_with("mbb_"), "a bot token is recognisable");

    // Bot A's token opens A, and B's route answers as if B did not exist.
    let bot_a = authorized(&service, a, &token_a).await;
    assert!(matches!(
        service.authorize_bot(b, token_a.as_bytes()).await.unwrap(),
        BotAccess::OtherBot
    ));
    assert!(matches!(
        service.authorize_bot(a, b"mbb_not-a-token").await.unwrap(),
        BotAccess::UnknownToken
    ));
    // A's report changes A only.
    service
        .report_meeting_event(&bot_a, event(MeetingStatus::Joining))
        .await
        .unwrap();
    assert_eq!(
        service.get(a).await.unwrap().bot.meeting_status,
        MeetingStatus::Joining
    );
    let other = service.get(b).await.unwrap();
    assert_eq!(other.bot.meeting_status, MeetingStatus::Unknown);
    assert!(other.meeting_history.is_empty());

    assert_eq!(store.live_bot_tokens(a).await.unwrap(), 1);

    // An ended bot's token is refused.
    service.stop(a).await.unwrap();
    assert!(matches!(
        service.authorize_bot(a, token_a.as_bytes()).await.unwrap(),
        BotAccess::Revoked
    ));
    assert_eq!(store.live_bot_tokens(a).await.unwrap(), 0);
    // B's token still works.
    authorized(&service, b, &token_b).await;
}

async fn the_meeting_order_is_enforced_and_each_event_is_a_history_row(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store, fake.clone(), options());
    let (id, token) = deployed(&service, &fake, 3).await;
    let bot = authorized(&service, id, &token).await;
    for status in [
        MeetingStatus::Joining,
        MeetingStatus::InWaitingRoom,
        MeetingStatus::InCall,
    ] {
        let answer = service
            .report_meeting_event(&bot, event(status))
            .await
            .unwrap();
        assert_eq!(answer.meeting_status, status);
        assert!(!answer.leave);
    }
    // in_call never goes back to joining: refused, nothing written.
    let refused = service
        .report_meeting_event(&bot, event(MeetingStatus::Joining))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "illegal_meeting_transition", "{refused}");
    let details = service.get(id).await.unwrap();
    assert_eq!(details.bot.meeting_status, MeetingStatus::InCall);
    let moves: Vec<(MeetingStatus, MeetingStatus)> = details
        .meeting_history
        .iter()
        .map(|h| (h.from, h.to))
        .collect();
    assert_eq!(
        moves,
        [
            (MeetingStatus::Unknown, MeetingStatus::Joining),
            (MeetingStatus::Joining, MeetingStatus::InWaitingRoom),
            (MeetingStatus::InWaitingRoom, MeetingStatus::InCall),
        ]
    );
    // The lifecycle is its own channel: still running.
    assert_eq!(details.bot.status, BotState::Running);

    // A report with an event id counts once, however often it is retried.
    let recording = MeetingEvent {
        recording: Some(true),
        event_id: Some("rec-1".into()),
        ..event(MeetingStatus::InCall)
    };
    let first = service
        .report_meeting_event(&bot, recording.clone())
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = service.report_meeting_event(&bot, recording).await.unwrap();
    assert!(again.duplicate);
    let details = service.get(id).await.unwrap();
    assert_eq!(details.meeting_history.len(), 4);
    assert_eq!(details.bot.meeting_recording, Some(true));

    // call_ended ends the bot on its word: stopped, with its reason, and
    // what it held on the platform released.
    let end = MeetingEvent {
        event_id: Some("end-1".into()),
        ..ended(MeetingStatus::CallEnded, "left_on_request")
    };
    let answer = service
        .report_meeting_event(&bot, end.clone())
        .await
        .unwrap();
    assert_eq!(answer.meeting_status, MeetingStatus::CallEnded);
    let details = until_ended(&service, id).await;
    assert_eq!(details.bot.status, BotState::Stopped);
    let reason = details.bot.reason.clone().unwrap_or_default();
    assert!(reason.contains("call_ended (left_on_request)"), "{reason}");
    assert!(
        fake.bots()
            .iter()
            .all(|(bot, _, kind)| *bot != id || kind.is_terminal())
    );
    assert_eq!(fake.live_bots(), 0, "{:?}", fake.bots());
    // Nothing follows call_ended; its retry is still recognised.
    assert!(matches!(
        service.authorize_bot(id, token.as_bytes()).await.unwrap(),
        BotAccess::Revoked
    ));
    let late = service.report_meeting_event(&bot, end).await.unwrap();
    assert!(late.duplicate);
    let after = service
        .report_meeting_event(&bot, event(MeetingStatus::InCall))
        .await
        .unwrap_err();
    assert_eq!(after.code(), "illegal_meeting_transition");
    assert_eq!(service.get(id).await.unwrap().meeting_history.len(), 5);
}

async fn a_fatal_report_fails_the_bot_with_its_reason(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store, fake.clone(), options());
    let (id, token) = deployed(&service, &fake, 4).await;
    let bot = authorized(&service, id, &token).await;
    service
        .report_meeting_event(&bot, ended(MeetingStatus::Fatal, "join_failed"))
        .await
        .unwrap();
    let details = until_ended(&service, id).await;
    assert_eq!(details.bot.status, BotState::Failed);
    assert_eq!(details.bot.meeting_sub_code.as_deref(), Some("join_failed"));
    let reason = details.bot.reason.unwrap_or_default();
    assert!(
        reason.contains("fatal (join_failed): join_failed happened"),
        "{reason}"
    );
    assert_eq!(fake.live_bots(), 0);
}

async fn leave_is_heard_at_the_next_heartbeat_and_enforced_after_the_grace(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(
        store,
        fake.clone(),
        ServiceOptions {
            leave_grace: Duration::from_secs(2),
            ..options()
        },
    );
    let (id, token) = deployed(&service, &fake, 5).await;
    let bot = authorized(&service, id, &token).await;
    assert!(!service.heartbeat(&bot).leave);
    let asked = service.leave(id).await.unwrap();
    assert!(asked.leave_requested_at.is_some());
    assert_eq!(asked.status, BotState::Running);
    // A second request keeps the first time.
    let again = service.leave(id).await.unwrap();
    assert_eq!(again.leave_requested_at, asked.leave_requested_at);
    let bot = authorized(&service, id, &token).await;
    let answer = service.heartbeat(&bot);
    assert!(answer.leave, "{answer:?}");
    // Within the grace nothing is forced (the grace is long enough that a
    // loaded machine still gets here inside it).
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.watchdog.leave_overdue, 0);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.watchdog.leave_overdue, 1, "{report:?}");
    let details = until_ended(&service, id).await;
    assert_eq!(details.bot.status, BotState::Stopped);
    assert!(
        details
            .bot
            .reason
            .unwrap_or_default()
            .contains("LEAVE_GRACE"),
        "the reason names the grace"
    );
    assert_eq!(fake.live_bots(), 0);
    // Leave on an ended bot is refused like stop.
    let refused = service.leave(id).await.unwrap_err();
    assert_eq!(refused.code(), "illegal_transition");
}

async fn the_watchdog_fails_a_bot_that_went_silent_and_spares_plain_images(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(
        store.clone(),
        fake.clone(),
        ServiceOptions {
            heartbeat_timeout: Duration::from_secs(2),
            ..options()
        },
    );
    let (talker, token) = deployed(&service, &fake, 6).await;
    let (plain, _) = deployed(&service, &fake, 7).await;
    let bot = authorized(&service, talker, &token).await;
    service
        .report_meeting_event(&bot, event(MeetingStatus::InCall))
        .await
        .unwrap();
    service.heartbeat(&bot);
    // While it heartbeats, nothing happens (the timeout is long enough that a
    // loaded machine still gets here inside it).
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.watchdog.heartbeat_timeouts, 0);
    tokio::time::sleep(Duration::from_millis(2_400)).await;
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.watchdog.heartbeat_timeouts, 1, "{report:?}");
    let details = until_ended(&service, talker).await;
    assert_eq!(details.bot.status, BotState::Failed);
    assert!(
        details
            .bot
            .reason
            .clone()
            .unwrap_or_default()
            .starts_with("heartbeat_timeout"),
        "{:?}",
        details.bot.reason
    );
    assert_eq!(details.bot.meeting_status, MeetingStatus::Fatal);
    assert_eq!(
        details.bot.meeting_sub_code.as_deref(),
        Some("heartbeat_timeout")
    );
    let last = details.meeting_history.last().unwrap();
    assert_eq!(last.source, deployment::meeting::EventSource::Service);
    // The bot that never spoke the protocol keeps running.
    assert_eq!(
        service.get(plain).await.unwrap().bot.status,
        BotState::Running
    );
}

async fn a_required_protocol_fails_bots_that_never_speak(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let options = ServiceOptions {
        deploy_timeout: Duration::from_millis(200),
        bot_protocol_required: true,
        ..options()
    };
    let service = service(store, fake.clone(), options);
    let (silent, _) = deployed(&service, &fake, 8).await;
    let (talker, token) = deployed(&service, &fake, 9).await;
    let bot = authorized(&service, talker, &token).await;
    service.heartbeat(&bot);
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.heartbeat(&bot);
    let report = service.reconcile_once().await.unwrap();
    assert_eq!(report.watchdog.silent, 1, "{report:?}");
    let details = until_ended(&service, silent).await;
    assert_eq!(details.bot.status, BotState::Failed);
    assert!(
        details
            .bot
            .reason
            .unwrap_or_default()
            .starts_with("bot_protocol_silent"),
    );
    assert_eq!(
        service.get(talker).await.unwrap().bot.status,
        BotState::Running
    );
}

async fn a_repeated_deploy_call_sends_the_same_token(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store.clone(), fake.clone(), options());
    // The first call's answer is lost: the bot stays deploying without an
    // identifier, and the reconciler calls again with the same attempt.
    fake.fail_next_deploys([Error::Timeout {
        platform: "fake",
        resource: "bot".into(),
        after: Duration::from_secs(1),
    }]);
    let bot = service
        .create_bot(create(zoom_input(10), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(bot.status, BotState::Deploying);
    service.reconcile_once().await.unwrap();
    let calls = fake.environments(bot.id);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].0, calls[1].0, "the same attempt");
    let token = calls[0].1.get(names::BOT_TOKEN).unwrap().to_owned();
    assert_eq!(calls[1].1.get(names::BOT_TOKEN), Some(token.as_str()));
    authorized(&service, bot.id, &token).await;
    // Once the platform answered, the token itself is no longer kept.
    let record = store.get_bot(bot.id).await.unwrap().unwrap();
    assert!(
        record.holds_secrets(),
        "the meeting URL is kept while it runs"
    );
    service.stop(bot.id).await.unwrap();
    assert!(
        !store
            .get_bot(bot.id)
            .await
            .unwrap()
            .unwrap()
            .holds_secrets()
    );
}

async fn heartbeats_are_written_in_batches(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store.clone(), fake.clone(), options());
    let mut bots = Vec::new();
    for n in 11..14 {
        let (id, token) = deployed(&service, &fake, n).await;
        bots.push(authorized(&service, id, &token).await);
    }
    for _ in 0..5 {
        for bot in &bots {
            service.heartbeat(bot);
        }
    }
    let id = bots[0].id();
    // Not written yet, but this process shows it.
    assert!(
        store
            .get_bot(id)
            .await
            .unwrap()
            .unwrap()
            .last_heartbeat_at_ms()
            .is_none()
    );
    assert!(
        service
            .get(id)
            .await
            .unwrap()
            .bot
            .last_heartbeat_at
            .is_some()
    );
    let before = service.heartbeat_counts();
    assert_eq!(service.flush_heartbeats().await.unwrap(), 3);
    let after = service.heartbeat_counts();
    assert_eq!(before.received, 15);
    assert_eq!(
        after.flushes - before.flushes,
        1,
        "one write for 15 heartbeats"
    );
    assert!(
        store
            .get_bot(id)
            .await
            .unwrap()
            .unwrap()
            .last_heartbeat_at_ms()
            .is_some()
    );
    // Nothing new: nothing written.
    assert_eq!(service.flush_heartbeats().await.unwrap(), 0);
    assert_eq!(service.heartbeat_counts().flushes, after.flushes);
}

async fn without_a_bot_api_url_bots_get_no_protocol(store: Store) {
    let fake = Arc::new(FakePlatform::new());
    let service = service(store, fake.clone(), common::test_options());
    let bot = service
        .create_bot(create(zoom_input(20), true))
        .await
        .unwrap()
        .bot;
    let (_, env) = fake.environments(bot.id).pop().unwrap();
    assert_eq!(env.get(names::BOT_TOKEN), None);
    assert_eq!(env.get(names::MEEBOTER_API_URL), None);
    assert!(matches!(
        service.stop(bot.id).await,
        Ok(b) if b.status == BotState::Stopped
    ));
}

on_both_databases!(
    a_token_opens_its_own_bot_only_and_dies_with_it,
    the_meeting_order_is_enforced_and_each_event_is_a_history_row,
    a_fatal_report_fails_the_bot_with_its_reason,
    leave_is_heard_at_the_next_heartbeat_and_enforced_after_the_grace,
    the_watchdog_fails_a_bot_that_went_silent_and_spares_plain_images,
    a_required_protocol_fails_bots_that_never_speak,
    a_repeated_deploy_call_sends_the_same_token,
    heartbeats_are_written_in_batches,
    without_a_bot_api_url_bots_get_no_protocol,
);
