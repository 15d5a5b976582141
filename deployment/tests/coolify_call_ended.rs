//! Ending on the bot's word on Coolify: a bot in a warm slot that reports
//! `call_ended` gives its slot back at once, while Coolify still reports its
//! container running (Coolify's stop is a queued job; the container exits
//! later), and the next bot gets that slot. The real service and store
//! (SQLite and PostgreSQL), the real Coolify platform, a fake Coolify API on
//! loopback.

#![cfg(feature = "coolify")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{create, zoom_input};
use deployment::meeting::EventSource;
use deployment::service::BotAccess;
use deployment::{BotService, BotState, MeetingEvent, MeetingStatus, ServiceOptions, Store};
use platform_coolify::testkit::fake_coolify::{FakeCoolify, Fault};
use platform_coolify::{CoolifyPlatform, POOL, PerMeetingPlatform};
use platform_core::bot_env::names;
use platform_core::{BotId, PlatformService, SlotState, SlotStore};
use wiremock::{MockServer, ResponseTemplate};

/// What Coolify answers to `POST /applications/{uuid}/stop`: the stop is
/// only queued.
fn stop_queued() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"message": "Application stopping request queued."}))
}

/// The slot's state in the service's database.
async fn slot_state(store: &Store, slot: &str) -> SlotState {
    SlotStore::get_slot(store, POOL, slot)
        .await
        .unwrap()
        .expect("the slot is in the store")
        .state
}

async fn call_ended_frees_the_slot_before_the_container_exits(store: Store) {
    let server = MockServer::start().await;
    let coolify = FakeCoolify::new();
    coolify.mount(&server).await;
    let installation = store.installation().clone();
    // One Zoom slot: the next bot can only run once the first gives it back.
    let slot = coolify
        .add_slots_of(installation.as_str(), "zoom", 1)
        .remove(0);
    let mut config = platform_coolify::testkit::config(&server.uri());
    config.pool_max = PerMeetingPlatform::all(1);
    let platform = CoolifyPlatform::new(config, Arc::new(store.clone()), installation)
        .await
        .unwrap();
    let service = BotService::new(
        store.clone(),
        Arc::new(platform) as Arc<dyn PlatformService>,
        ServiceOptions {
            bot_api_url: Some("http://127.0.0.1:1".into()),
            ..common::test_options()
        },
    );

    let first = service
        .create_bot(create(zoom_input(1), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(first.platform.as_deref(), Some("coolify"), "{first:?}");
    assert_eq!(
        slot_state(&store, &slot).await,
        SlotState::Claimed { bot_id: first.id }
    );
    // The container comes up; the service sees it running.
    coolify.set_status(&slot, "running:healthy");
    service.reconcile_once().await.unwrap();
    assert_eq!(
        service.get(first.id).await.unwrap().bot.status,
        BotState::Running
    );

    // The bot knows itself from the slot's environment, as a real bot does.
    let bot_id: u64 = coolify
        .env_value(&slot, names::BOT_ID)
        .expect("BOT_ID in the slot")
        .parse()
        .unwrap();
    assert_eq!(BotId(bot_id), first.id);
    let token = coolify
        .env_value(&slot, names::BOT_TOKEN)
        .expect("BOT_TOKEN in the slot");
    let BotAccess::Granted(bot) = service
        .authorize_bot(first.id, token.as_bytes())
        .await
        .unwrap()
    else {
        panic!("the bot's own token was refused");
    };

    // Coolify queues the stop; the container keeps running meanwhile.
    let stop_path = format!("/applications/{slot}/stop");
    coolify.inject("POST", &stop_path, [Fault::Before(stop_queued())]);
    let answer = service
        .report_meeting_event(
            &bot,
            MeetingEvent {
                status: MeetingStatus::CallEnded,
                sub_code: Some("everyone_left".into()),
                message: Some("everyone left the meeting".into()),
                recording: None,
                event_id: Some("end-1".into()),
                source: EventSource::Bot,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.meeting_status, MeetingStatus::CallEnded);

    // The slot is given back (the teardown runs in the background).
    let mut state = slot_state(&store, &slot).await;
    for _ in 0..200 {
        if state == SlotState::Idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = slot_state(&store, &slot).await;
    }
    assert_eq!(state, SlotState::Idle, "the slot was not given back");
    // ... while Coolify still reports the container running: nothing
    // waited for it to exit.
    assert_eq!(
        coolify.app(&slot).unwrap().status,
        "running:healthy",
        "the container was still up when the slot was freed"
    );
    assert_eq!(
        coolify.arrivals("POST", &stop_path).len(),
        1,
        "the bot's container was asked to stop once"
    );
    assert_eq!(coolify.env_value(&slot, names::MEETING_URL), None);
    assert_eq!(coolify.env_value(&slot, names::BOT_TOKEN), None);
    let ended = common::until_ended(&service, first.id).await;
    assert_eq!(ended.bot.status, BotState::Stopped);
    assert!(
        ended
            .bot
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("everyone_left")),
        "{:?}",
        ended.bot
    );
    assert!(matches!(
        service
            .authorize_bot(first.id, token.as_bytes())
            .await
            .unwrap(),
        BotAccess::Revoked
    ));

    // The next bot gets the slot, its container still not exited.
    let second = service
        .create_bot(create(zoom_input(2), true))
        .await
        .unwrap()
        .bot;
    assert_eq!(second.platform.as_deref(), Some("coolify"), "{second:?}");
    assert_ne!(second.status, BotState::Queued, "{second:?}");
    assert_eq!(
        slot_state(&store, &slot).await,
        SlotState::Claimed { bot_id: second.id }
    );
    assert_eq!(
        coolify.env_value(&slot, names::BOT_ID),
        Some(second.id.0.to_string())
    );
}

on_both_databases!(call_ended_frees_the_slot_before_the_container_exits);
