//! `list_marked_bots`: the tasks this installation runs, found by
//! `startedBy` and kept only when they carry its installation tag.

use platform_core::{BotId, ErrorKind, MeetingPlatform, PlatformService};
use serde_json::json;
use wiremock::MockServer;
use wiremock::matchers::body_json;

use crate::support::mini_ecs::MiniEcs;
use crate::support::{
    bot, ecs_call, ecs_error, ecs_ok, env, installation, platform, platform_of, task_arn, task_json,
};

#[tokio::test]
async fn only_running_tasks_with_this_installations_tag_are_listed() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    let env = env(&server.uri());
    let ours = platform_of(&server, &env, installation("aaaa1111"));
    let other = platform_of(&server, &env, installation("bbbb2222"));

    let one = ours
        .deploy_bot(&bot(1, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
    let two = ours
        .deploy_bot(&bot(2, MeetingPlatform::Meet), 3)
        .await
        .unwrap();
    let stopped = ours
        .deploy_bot(&bot(3, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
    ours.stop_bot(&stopped.identifier).await.unwrap();
    // Same ECS_STARTED_BY, same bot id: another installation's bot.
    let foreign = other
        .deploy_bot(&bot(1, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
    // Same ECS_STARTED_BY, started before installations were marked.
    let unmarked = ecs.start_task_directly(
        "meeboter-deploy",
        &[
            ("meeboter:started-by", "meeboter-deploy"),
            ("meeboter:bot-id", "4"),
        ],
    );

    let listed = ours.list_marked_bots().await.unwrap();

    let found: Vec<(&str, BotId, Option<u32>)> = listed
        .iter()
        .map(|m| (m.identifier.as_str(), m.bot, m.attempt))
        .collect();
    assert_eq!(
        found,
        [
            (one.identifier.as_str(), BotId(1), Some(1)),
            (two.identifier.as_str(), BotId(2), Some(3)),
        ]
    );
    for absent in [
        stopped.identifier.as_str(),
        foreign.identifier.as_str(),
        unmarked.as_str(),
    ] {
        assert!(
            !listed.iter().any(|m| m.identifier.as_str() == absent),
            "{absent} listed"
        );
    }
    assert!(
        listed[1].description.starts_with("task ") && listed[1].description.contains("meet"),
        "{}",
        listed[1].description
    );
    // And the other installation sees its own bot alone.
    let theirs = other.list_marked_bots().await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].identifier, foreign.identifier);
}

#[tokio::test]
async fn every_page_of_a_long_listing_is_read() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    for n in 1..=230u32 {
        let id = n.to_string();
        ecs.start_task_directly(
            "meeboter-deploy",
            &[
                ("meeboter:installation", "test0001"),
                ("meeboter:bot-id", &id),
                ("meeboter:attempt", "1"),
            ],
        );
    }

    let listed = platform(&server).list_marked_bots().await.unwrap();

    assert_eq!(listed.len(), 230);
    let mut bots: Vec<u64> = listed.iter().map(|m| m.bot.0).collect();
    bots.sort_unstable();
    assert_eq!(bots, (1..=230).collect::<Vec<_>>());
    assert_eq!(ecs.list_tasks_calls(), 3, "pages of 100, 100 and 30");
}

#[tokio::test]
async fn the_listing_asks_ecs_as_its_api_documents() {
    let server = MockServer::start().await;
    let arn = task_arn(7);
    let mut task = task_json(&arn, "RUNNING", Some("10.0.0.7"));
    task["tags"] = json!([
        {"key": "meeboter:installation", "value": "test0001"},
        {"key": "meeboter:bot-id", "value": "7"},
        {"key": "meeboter:attempt", "value": "2"}
    ]);
    ecs_call("ListTasks")
        .and(body_json(json!({
            "cluster": "meeboter",
            "startedBy": "meeboter-deploy",
            "desiredStatus": "RUNNING",
            "maxResults": 100
        })))
        .respond_with(ecs_ok(json!({"taskArns": [arn]})))
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .and(body_json(json!({
            "cluster": "meeboter",
            "tasks": [arn],
            "include": ["TAGS"]
        })))
        .respond_with(ecs_ok(json!({"tasks": [task], "failures": []})))
        .expect(1)
        .mount(&server)
        .await;

    let listed = platform(&server).list_marked_bots().await.unwrap();

    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].bot, listed[0].attempt), (BotId(7), Some(2)));
}

#[tokio::test]
async fn a_listing_that_fails_is_an_error_never_an_empty_list() {
    let server = MockServer::start().await;
    ecs_call("ListTasks")
        .respond_with(ecs_error(
            400,
            "AccessDeniedException",
            "User is not authorized to perform: ecs:ListTasks",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server).list_marked_bots().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(error.to_string().contains("ecs:ListTasks"), "{error}");
}
