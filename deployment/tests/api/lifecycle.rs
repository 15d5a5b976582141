//! A bot's whole life through the API on the local platform, listing with
//! pagination, and what the service reports about itself.

use std::sync::Arc;

use platform_core::testkit::FakePlatform;
use platform_core::{BotId, MeetingPlatform, NewSlot, SlotStore};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{expect_json, spawn_fake, spawn_local, wait_for, zoom_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_bot_is_created_runs_stops_and_keeps_its_history() {
    let app = spawn_local().await;
    let response = app.create(&zoom_request(1)).await;
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let bot = expect_json(response, 201).await;
    let id = bot["id"].as_u64().unwrap();
    assert_eq!(location.as_deref(), Some(format!("/v1/bots/{id}").as_str()));
    assert_eq!(bot["platform"], "local");
    assert_eq!(bot["has_password"], true);
    assert!(!bot.to_string().contains("s3cr3tpass"), "{bot}");
    assert!(!bot.to_string().contains("hunter2"), "{bot}");

    // Running, as the platform says (the reconciler promotes a slow start).
    let running = wait_for(&app, &format!("/v1/bots/{id}"), |b| {
        b["status"] == "running"
    })
    .await;
    let url = running["connection_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let live = app.get_json(&format!("/v1/bots/{id}/status"), 200).await;
    assert_eq!(live["platform_status"]["kind"], "running", "{live}");
    // The stand-in bot answers its own health check.
    let health = app
        .client
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());

    let stopped = expect_json(
        app.authed(Method::POST, &format!("/v1/bots/{id}/stop"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    let live = app.get_json(&format!("/v1/bots/{id}/status"), 200).await;
    let kind = live["platform_status"]["kind"].as_str().unwrap_or("none");
    assert!(matches!(kind, "stopped" | "unknown"), "{live}");

    let details = app.get_json(&format!("/v1/bots/{id}"), 200).await;
    let moves: Vec<(Value, Value)> = details["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (Value::Null, json!("pending")),
            (json!("pending"), json!("deploying")),
            (json!("deploying"), json!("running")),
            (json!("running"), json!("stopping")),
            (json!("stopping"), json!("stopped")),
        ],
        "{details}"
    );
    for entry in details["history"].as_array().unwrap() {
        assert!(!entry["reason"].as_str().unwrap().is_empty(), "{entry}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_cover_every_bot_once_and_filters_apply() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    let mut created = Vec::new();
    for n in 0..7 {
        let mut body = zoom_request(n);
        // Every third bot stays pending.
        body["deploy"] = json!(n % 3 != 0);
        let bot = expect_json(app.create(&body).await, 201).await;
        created.push(bot["id"].as_u64().unwrap());
    }
    let mut seen = Vec::new();
    let mut path = "/v1/bots?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get_json(&path, 200).await;
        pages += 1;
        let bots = page["bots"].as_array().unwrap();
        assert!(bots.len() <= 3);
        seen.extend(bots.iter().map(|b| b["id"].as_u64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/bots?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);

    let pending = app.get_json("/v1/bots?status=pending", 200).await;
    let pending: Vec<u64> = pending["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_u64().unwrap())
        .collect();
    assert_eq!(pending, [created[0], created[3], created[6]]);
    let none = app.get_json("/v1/bots?platform=aws", 200).await;
    assert_eq!(none["bots"], json!([]));
    assert!(none["next_cursor"].is_null());

    // A pending bot deploys on request; deploying again starts nothing new.
    let id = created[0];
    let bot = expect_json(
        app.authed(Method::POST, &format!("/v1/bots/{id}/deploy"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        matches!(bot["status"].as_str(), Some("running" | "deploying")),
        "{bot}"
    );
    let again = expect_json(
        app.authed(Method::POST, &format!("/v1/bots/{id}/deploy"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(again["attempt"], bot["attempt"]);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn platforms_pool_and_metrics_describe_the_service() {
    let app = spawn_fake(Arc::new(FakePlatform::new())).await;
    expect_json(app.create(&zoom_request(1)).await, 201).await;

    let platforms = app.get_json("/v1/platforms", 200).await;
    assert_eq!(platforms["active"], "fake");
    let names: Vec<&str> = platforms["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for feature in deployment::ENABLED_FEATURES {
        assert!(names.contains(feature), "{feature} missing from {names:?}");
    }

    // Two warm slots, one of them held by bot 1.
    let store = app.service.store();
    for slot_id in ["app-a", "app-b"] {
        store
            .add_slot(NewSlot {
                pool: "warm".into(),
                slot_id: slot_id.into(),
                meeting_platform: MeetingPlatform::Zoom,
                connection_url: None,
            })
            .await
            .unwrap();
    }
    store
        .claim_slot("warm", MeetingPlatform::Zoom, BotId(1))
        .await
        .unwrap()
        .expect("an idle slot");
    let pool = app.get_json("/v1/pool", 200).await;
    assert_eq!(pool["platform"], "fake");
    assert_eq!(pool["bots_by_status"]["running"], 1, "{pool}");
    assert_eq!(pool["pools"][0]["pool"], "warm", "{pool}");
    assert_eq!(
        pool["pools"][0]["by_meeting_platform"]["zoom"],
        json!({"idle": 1, "claimed": 1, "failed": 0}),
        "{pool}"
    );
    let slots = pool["pools"][0]["slots"].as_array().unwrap();
    assert_eq!(slots[0]["state"], "claimed", "{pool}");
    assert_eq!(slots[0]["bot_id"], 1, "{pool}");
    assert!(
        slots[1]["updated_at"].as_str().unwrap().contains('T'),
        "{pool}"
    );

    let metrics = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    for line in [
        "meeboter_deploys_total{platform=\"fake\",outcome=\"started\"} 1",
        "meeboter_deploy_duration_seconds_count{platform=\"fake\"} 1",
        "meeboter_bots{platform=\"fake\",status=\"running\"} 1",
        "meeboter_bots{platform=\"fake\",status=\"pending\"} 0",
        "meeboter_database_up 1",
        "meeboter_http_requests_total{method=\"POST\",route=\"/v1/bots\",status=\"201\"} 1",
        "meeboter_pool_slots{pool=\"warm\",meeting_platform=\"zoom\",state=\"idle\"} 1",
        "meeboter_pool_slots{pool=\"warm\",meeting_platform=\"zoom\",state=\"claimed\"} 1",
        "meeboter_pool_slots{pool=\"warm\",meeting_platform=\"zoom\",state=\"failed\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    for family in [
        "meeboter_deploy_to_running_seconds",
        "meeboter_platform_errors_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}:\n{text}"
        );
    }
    assert!(!text.contains("s3cr3tpass") && !text.contains("hunter2"));
    app.shutdown().await;
}
