//! The installation in every name and mark: two installations sharing one
//! cluster send different client tokens and tags for the same bot, and one
//! installation sends the same token on every retry of an attempt.

use std::sync::{Arc, Mutex};

use platform_core::{BotId, MeetingPlatform, PlatformService};
use serde_json::{Value, json};
use wiremock::{MockServer, Request};

use crate::support::mini_ecs::MiniEcs;
use crate::support::{
    bot, ecs_call, ecs_error, ecs_ok, env, installation, platform_of, task_arn, task_json,
};

#[tokio::test]
async fn two_installations_get_disjoint_tokens_and_one_repeats_its_own() {
    let server = MockServer::start().await;
    let env = env(&server.uri());
    let first = platform_of(&server, &env, installation("aaaa1111"));
    let second = platform_of(&server, &env, installation("bbbb2222"));

    let (a, b) = (
        first.client_token(BotId(1), 1),
        second.client_token(BotId(1), 1),
    );
    assert_ne!(a, b, "bot 1 attempt 1 of two installations");
    assert!(a.contains("aaaa1111") && b.contains("bbbb2222"), "{a} {b}");
    assert_eq!(a, first.client_token(BotId(1), 1), "a retry of the attempt");
    assert!(a.len() <= platform_aws::MAX_CLIENT_TOKEN_LEN);
}

#[tokio::test]
async fn two_installations_sharing_a_cluster_each_get_their_own_task_for_bot_1() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    let env = env(&server.uri());
    let first = platform_of(&server, &env, installation("aaaa1111"));
    let second = platform_of(&server, &env, installation("bbbb2222"));
    let config = bot(1, MeetingPlatform::Zoom);

    let mine = first.deploy_bot(&config, 1).await.unwrap();
    let theirs = second.deploy_bot(&config, 1).await.unwrap();
    // A retry of the first installation's deploy finds its own task again.
    let again = first.deploy_bot(&config, 1).await.unwrap();

    assert_ne!(mine.identifier, theirs.identifier);
    assert_eq!(again.identifier, mine.identifier);
    assert_eq!(ecs.tasks_started(), 2);
    let mine_tags = ecs.tags_of(mine.identifier.as_str());
    let theirs_tags = ecs.tags_of(theirs.identifier.as_str());
    assert!(
        mine_tags.contains(&"meeboter:installation=aaaa1111".to_owned()),
        "{mine_tags:?}"
    );
    assert!(
        theirs_tags.contains(&"meeboter:installation=bbbb2222".to_owned()),
        "{theirs_tags:?}"
    );
    // Both keep the bot's own marks.
    for tags in [&mine_tags, &theirs_tags] {
        for tag in [
            "meeboter:bot-id=1",
            "meeboter:attempt=1",
            "meeboter:started-by=meeboter-deploy",
        ] {
            assert!(
                tags.contains(&tag.to_owned()),
                "{tag} missing from {tags:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_run_task_retried_after_a_server_error_sends_the_same_token() {
    let server = MockServer::start().await;
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let record = |tokens: Arc<Mutex<Vec<String>>>| {
        move |request: &Request| {
            let body: Value = request.body_json().unwrap();
            tokens
                .lock()
                .unwrap()
                .push(body["clientToken"].as_str().unwrap_or_default().to_owned());
            true
        }
    };
    ecs_call("RunTask")
        .and(record(tokens.clone()))
        .respond_with(ecs_error(500, "ServerException", "Service error"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    ecs_call("RunTask")
        .and(record(tokens.clone()))
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(1), "PROVISIONING", None)], "failures": []}),
        ))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;

    platform_of(&server, &env(&server.uri()), installation("cccc3333"))
        .deploy_bot(&bot(9, MeetingPlatform::Teams), 2)
        .await
        .unwrap();

    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens, ["meeboter-cccc3333-9-2", "meeboter-cccc3333-9-2"]);
}
