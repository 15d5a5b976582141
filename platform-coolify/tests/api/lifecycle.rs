//! The whole life of one bot, asserted request by request.

use platform_core::{
    AutomaticLeave, BotStatus, DisplayName, PlatformId, PlatformService, SecretString, SlotState,
    StatusKind,
};
use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{bearer_token, header, method, path, query_param};

use crate::fake_coolify::TOKEN;
use crate::helpers::{TestCoolify, describe, zoom_bot};

#[tokio::test]
async fn deploy_status_stop_cleanup_sends_exactly_these_requests() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let fake = &coolify.fake;
    let server = &coolify.server;
    // The calls that change something, each expected exactly once.
    Mock::given(method("PATCH"))
        .and(path("/api/v1/applications/zoomslot001/envs/bulk"))
        .and(bearer_token(TOKEN))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json"))
        .respond_with(fake.clone())
        .expect(1)
        .named("bulk env upsert")
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/zoomslot001/start"))
        .and(bearer_token(TOKEN))
        .respond_with(fake.clone())
        .expect(1)
        .named("start")
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/zoomslot001/stop"))
        .and(query_param("docker_cleanup", "false"))
        .and(bearer_token(TOKEN))
        .respond_with(fake.clone())
        .expect(1)
        .named("stop keeping the cached image")
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/applications/dockerimage"))
        .respond_with(fake.clone())
        .expect(0)
        .named("no slot is created while one is idle")
        .mount(server)
        .await;

    let platform = coolify.platform().await;
    let config = zoom_bot(42)
        .with_meeting_password(Some(SecretString::new("m33ting-pw")))
        .unwrap()
        .with_display_name(DisplayName::new("Notes Bot").unwrap())
        .with_recording(true)
        .with_automatic_leave(AutomaticLeave::from_secs(120, 240, 30).unwrap());

    let deployed = platform.deploy_bot(&config, 1).await.unwrap();
    assert_eq!(deployed.identifier.as_str(), "zoomslot001/bot-42");
    // The slot's application now holds the bot's environment, secrets
    // included, until cleanup deletes them.
    assert_eq!(
        fake.env_value("zoomslot001", "MEETING_PASSWORD").as_deref(),
        Some("m33ting-pw")
    );
    let env_uuid = |key: &str| {
        let app = fake.app("zoomslot001").unwrap();
        app.envs.iter().find(|e| e.key == key).unwrap().uuid.clone()
    };
    let (url_env, password_env) = (env_uuid("MEETING_URL"), env_uuid("MEETING_PASSWORD"));
    for (env, name) in [
        (&url_env, "delete MEETING_URL"),
        (&password_env, "delete MEETING_PASSWORD"),
    ] {
        Mock::given(method("DELETE"))
            .and(path(format!("/api/v1/applications/zoomslot001/envs/{env}")))
            .and(bearer_token(TOKEN))
            .respond_with(fake.clone())
            .expect(1)
            .named(name)
            .mount(server)
            .await;
    }
    assert_eq!(
        deployed.connection_url.as_deref(),
        Some("http://zoomslot001.10.0.0.5.sslip.io")
    );
    assert_eq!(
        coolify.slot_state("zoomslot001").await,
        SlotState::Claimed {
            bot_id: platform_core::BotId(42)
        }
    );

    let id = &deployed.identifier;
    let status = platform.get_bot_status(id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
    assert_eq!(status.raw.as_deref(), Some("running:unhealthy"));
    assert_eq!(
        status.connection_url.as_deref(),
        Some("http://zoomslot001.10.0.0.5.sslip.io")
    );
    let unknown = PlatformId::new("nosuchapp/bot-1");
    let many = platform
        .get_bot_statuses(&[id.clone(), unknown.clone()])
        .await
        .unwrap();
    assert_eq!(many[id].kind, StatusKind::Running);
    assert_eq!(many[&unknown].kind, StatusKind::Unknown);

    platform.stop_bot(id).await.unwrap();
    let status = platform.get_bot_status(id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert_eq!(status.raw.as_deref(), Some("exited:unhealthy"));

    platform.cleanup(id).await.unwrap();
    assert_eq!(coolify.slot_state("zoomslot001").await, SlotState::Idle);
    // The idle slot keeps no way into the meeting; the rest stays.
    assert_eq!(fake.env_value("zoomslot001", "MEETING_URL"), None);
    assert_eq!(fake.env_value("zoomslot001", "MEETING_PASSWORD"), None);
    assert_eq!(
        fake.env_value("zoomslot001", "BOT_ID").as_deref(),
        Some("42")
    );
    let status = platform.get_bot_status(id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert!(
        status
            .reason
            .as_deref()
            .unwrap()
            .contains("claim of the slot has ended"),
        "{status}"
    );
    // Idempotent: nothing more is sent.
    platform.stop_bot(id).await.unwrap();
    platform.cleanup(id).await.unwrap();

    let requests = coolify.requests().await;
    let calls: Vec<String> = requests.iter().map(describe).collect();
    assert_eq!(
        calls,
        [
            "GET /projects/proj-meeboter/environments",
            "GET /applications",
            "PATCH /applications/zoomslot001/envs/bulk",
            "POST /applications/zoomslot001/start",
            "GET /applications/zoomslot001",
            "GET /applications",
            "POST /applications/zoomslot001/stop?docker_cleanup=false",
            "GET /applications/zoomslot001",
            "GET /applications/zoomslot001/envs",
            &format!("DELETE /applications/zoomslot001/envs/{url_env}"),
            &format!("DELETE /applications/zoomslot001/envs/{password_env}"),
        ]
    );
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").unwrap(),
            &format!("Bearer {TOKEN}"),
            "{}",
            describe(request)
        );
        assert_eq!(
            request.headers.get("accept").unwrap(),
            "application/json",
            "{}",
            describe(request)
        );
    }
    let bulk = requests
        .iter()
        .find(|r| r.method.as_str() == "PATCH")
        .unwrap();
    let item = |key: &str, value: &str, secret: bool| json!({"key": key, "value": value, "is_preview": false, "is_literal": true, "is_multiline": false, "is_shown_once": secret});
    assert_eq!(
        bulk.body_json::<serde_json::Value>().unwrap(),
        json!({"data": [
            item("BOT_ID", "42", false),
            item("MEETING_URL", "https://us02web.zoom.us/j/80000000042?pwd=zoompass42", true),
            item("MEETING_PASSWORD", "m33ting-pw", true),
            item("BOT_DISPLAY_NAME", "Notes Bot", false),
            item("RECORDING_ENABLED", "true", false),
            item("WAITING_ROOM_TIMEOUT", "120", false),
            item("NO_ONE_JOINED_TIMEOUT", "240", false),
            item("EVERYONE_LEFT_TIMEOUT", "30", false),
        ]})
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_bot_without_a_password_does_not_inherit_the_previous_bots() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify
        .fake
        .set_env("zoomslot001", "MEETING_PASSWORD", "previous-bots-pw");
    coolify
        .fake
        .set_env("zoomslot001", "OPERATOR_SETTING", "keep-me");
    let env_uuid = coolify.fake.app("zoomslot001").unwrap().envs[0]
        .uuid
        .clone();
    Mock::given(method("DELETE"))
        .and(path(format!(
            "/api/v1/applications/zoomslot001/envs/{env_uuid}"
        )))
        .respond_with(coolify.fake.clone())
        .expect(1)
        .named("delete the stale password")
        .mount(&coolify.server)
        .await;
    let platform = coolify.platform().await;

    platform.deploy_bot(&zoom_bot(7), 1).await.unwrap();

    assert_eq!(
        coolify.fake.env_value("zoomslot001", "MEETING_PASSWORD"),
        None
    );
    assert_eq!(
        coolify
            .fake
            .env_value("zoomslot001", "OPERATOR_SETTING")
            .as_deref(),
        Some("keep-me"),
        "variables the bot environment does not manage are left alone"
    );
    assert_eq!(
        coolify.fake.env_value("zoomslot001", "BOT_ID").as_deref(),
        Some("7")
    );
    let calls = coolify.calls().await;
    assert_eq!(
        calls[2..],
        [
            "GET /applications/zoomslot001/envs".to_owned(),
            format!("DELETE /applications/zoomslot001/envs/{env_uuid}"),
            "PATCH /applications/zoomslot001/envs/bulk".to_owned(),
            "POST /applications/zoomslot001/start".to_owned(),
        ]
    );
    coolify.server.verify().await;
}

#[tokio::test]
async fn a_deployment_under_way_reads_as_starting_then_running() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    coolify
        .fake
        .set_deployment_time(std::time::Duration::from_secs(3600));
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;

    // The application is still exited; its deployment is queued.
    let single = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(single.kind, StatusKind::Starting, "{single}");
    assert_eq!(single.raw.as_deref(), Some("exited:unhealthy"));
    let batch = platform
        .get_bot_statuses(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(batch[&id].kind, StatusKind::Starting, "{}", batch[&id]);
    let calls = coolify.calls().await;
    let deployment = &coolify.fake.deployments()[0].uuid;
    assert!(
        calls.contains(&format!("GET /deployments/{deployment}")),
        "{calls:?}"
    );
    assert!(calls.contains(&"GET /deployments".to_owned()), "{calls:?}");

    // A repeated deploy of the same attempt changes nothing.
    let again = platform.deploy_bot(&zoom_bot(1), 1).await.unwrap();
    assert_eq!(again.identifier, id);
    assert_eq!(coolify.fake.deployments().len(), 1);

    coolify.fake.set_deployment_time(std::time::Duration::ZERO);
    let status: BotStatus = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Running, "{status}");
}

#[tokio::test]
async fn a_container_that_exited_after_its_deployment_reads_as_stopped() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("zoom", 1);
    let platform = coolify.platform().await;
    let id = platform
        .deploy_bot(&zoom_bot(1), 1)
        .await
        .unwrap()
        .identifier;
    assert_eq!(
        platform.get_bot_status(&id).await.unwrap().kind,
        StatusKind::Running
    );
    // The bot left its meeting and its container exited on its own.
    coolify.fake.set_status("zoomslot001", "exited:unhealthy");
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Stopped, "{status}");
    assert!(status.reason.unwrap().contains("exited"));
    coolify.fake.set_status("zoomslot001", "degraded:unhealthy");
    let status = platform.get_bot_status(&id).await.unwrap();
    assert_eq!(status.kind, StatusKind::Failed, "{status}");
    assert_eq!(status.raw.as_deref(), Some("degraded:unhealthy"));
}

#[tokio::test]
async fn check_reachable_reads_the_version() {
    let coolify = TestCoolify::start().await;
    let platform = coolify.platform().await;
    platform.check_reachable().await.unwrap();
    assert_eq!(coolify.calls().await.last().unwrap(), "GET /version");
}
