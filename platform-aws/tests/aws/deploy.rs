//! Deploy: the RunTask request, its answers, and its failures.

use std::time::Duration;

use platform_core::{
    DisplayName, ErrorKind, MeetingPlatform, PlatformService, RetryPolicy, SecretString,
};
use serde_json::json;
use wiremock::MockServer;
use wiremock::matchers::body_json;

use crate::support::{
    bot, ecs_call, ecs_error, ecs_ok, env, platform, platform_with, task_arn, task_json,
};

#[tokio::test]
async fn deploy_sends_exactly_the_run_task_request_for_the_bot() {
    let server = MockServer::start().await;
    let arn = task_arn(1);
    ecs_call("RunTask")
        .and(body_json(json!({
            "cluster": "meeboter",
            "taskDefinition": "meeboter-zoom:3",
            "count": 1,
            "launchType": "FARGATE",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
                    "securityGroups": ["sg-0123abcd"],
                    "assignPublicIp": "ENABLED"
                }
            },
            "overrides": {
                "containerOverrides": [{
                    "name": "zoom-bot",
                    "environment": [
                        {"name": "BOT_ID", "value": "42"},
                        {"name": "MEETING_URL", "value": "https://us02web.zoom.us/j/80000000042?pwd=zoomPasscode42"},
                        {"name": "MEETING_PASSWORD", "value": "s3cret-pass"},
                        {"name": "BOT_DISPLAY_NAME", "value": "Notes Bot"},
                        {"name": "RECORDING_ENABLED", "value": "true"},
                        {"name": "WAITING_ROOM_TIMEOUT", "value": "300"},
                        {"name": "NO_ONE_JOINED_TIMEOUT", "value": "300"},
                        {"name": "EVERYONE_LEFT_TIMEOUT", "value": "60"}
                    ]
                }]
            },
            "startedBy": "meeboter-deploy",
            "tags": [
                {"key": "meeboter:installation", "value": "test0001"},
                {"key": "meeboter:started-by", "value": "meeboter-deploy"},
                {"key": "meeboter:bot-id", "value": "42"},
                {"key": "meeboter:attempt", "value": "1"},
                {"key": "meeboter:meeting-platform", "value": "zoom"}
            ],
            "propagateTags": "TASK_DEFINITION",
            "clientToken": "meeboter-test0001-42-1"
        })))
        .respond_with(ecs_ok(json!({"tasks": [task_json(&arn, "PROVISIONING", None)], "failures": []})))
        .expect(1)
        .mount(&server)
        .await;
    let config = bot(42, MeetingPlatform::Zoom)
        .with_meeting_password(Some(SecretString::from("s3cret-pass")))
        .unwrap()
        .with_display_name(DisplayName::new("Notes Bot").unwrap())
        .with_recording(true);

    let deployed = platform(&server).deploy_bot(&config, 1).await.unwrap();

    assert_eq!(deployed.identifier.as_str(), arn);
    // The network interface is not attached yet: the status read fills the
    // URL in later.
    assert_eq!(deployed.connection_url, None);
}

#[tokio::test]
async fn each_meeting_platform_uses_its_task_definition_and_container() {
    let server = MockServer::start().await;
    for (platform, task_definition, container) in [
        (MeetingPlatform::Teams, "meeboter-teams:5", "teams-bot"),
        (MeetingPlatform::Meet, "bots-meet", "meet"),
    ] {
        ecs_call("RunTask")
            .and(move |request: &wiremock::Request| {
                let body: serde_json::Value = request.body_json().unwrap();
                body["taskDefinition"] == task_definition
                    && body["overrides"]["containerOverrides"][0]["name"] == container
                    && body["tags"][4]
                        == json!({"key": "meeboter:meeting-platform", "value": platform.as_str()})
            })
            .respond_with(ecs_ok(
                json!({"tasks": [task_json(&task_arn(7), "PROVISIONING", None)]}),
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    let env = env(&server.uri())
        .with("ECS_TASK_DEF_MEET", "bots-meet")
        .with("ECS_CONTAINER_MEET", "meet");
    let aws = platform_with(&server, &env);
    aws.deploy_bot(&bot(5, MeetingPlatform::Teams), 2)
        .await
        .unwrap();
    aws.deploy_bot(&bot(6, MeetingPlatform::Meet), 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_capacity_provider_strategy_is_sent_instead_of_a_launch_type() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .and(|request: &wiremock::Request| {
            let body: serde_json::Value = request.body_json().unwrap();
            body.get("launchType").is_none()
                && body["capacityProviderStrategy"]
                    == json!([
                        {"capacityProvider": "FARGATE_SPOT", "weight": 4, "base": 0},
                        {"capacityProvider": "FARGATE", "weight": 1, "base": 1}
                    ])
                && body["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"]
                    == "DISABLED"
        })
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(2), "PROVISIONING", None)]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let env = env(&server.uri())
        .with(
            "ECS_CAPACITY_PROVIDER_STRATEGY",
            "FARGATE_SPOT:4,FARGATE:1:base=1",
        )
        .with("ECS_ASSIGN_PUBLIC_IP", "false");
    let deployed = platform_with(&server, &env)
        .deploy_bot(&bot(3, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
    assert_eq!(deployed.identifier.as_str(), task_arn(2));
}

#[tokio::test]
async fn an_answer_with_failures_and_no_task_is_a_capacity_error_with_ecs_reason() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_ok(json!({
            "tasks": [],
            "failures": [{
                "arn": "arn:aws:ecs:eu-west-1:123456789012:container-instance/meeboter/4f4e",
                "reason": "RESOURCE:MEMORY",
                "detail": "2048 MiB requested, 512 MiB free"
            }]
        })))
        // Not transient: one request, no retries.
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .deploy_bot(&bot(9, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Capacity);
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "aws: no capacity for task for bot 9 (attempt 1): RESOURCE:MEMORY (2048 MiB requested, 512 MiB free)"
    );
}

#[tokio::test]
async fn a_passing_capacity_shortage_is_retried_until_a_task_starts() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_ok(json!({
            "tasks": [],
            "failures": [{
                "arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/meeboter",
                "reason": "Capacity is unavailable at this time. Please try again later or in a different availability zone"
            }]
        })))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    ecs_call("RunTask")
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(4), "PROVISIONING", None)]}),
        ))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    let deployed = platform(&server)
        .deploy_bot(&bot(10, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
    assert_eq!(deployed.identifier.as_str(), task_arn(4));
}

#[tokio::test]
async fn a_retry_after_the_settings_changed_returns_the_task_already_started() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(
            wiremock::ResponseTemplate::new(400).set_body_raw(
                json!({
                    "__type": "ConflictException",
                    "message": "The specified clientToken is already in use with a different RunTask request.",
                    "resourceIds": [task_arn(77)]
                })
                .to_string(),
                "application/x-amz-json-1.1",
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let deployed = platform(&server)
        .deploy_bot(&bot(11, MeetingPlatform::Zoom), 3)
        .await
        .unwrap();
    assert_eq!(deployed.identifier.as_str(), task_arn(77));
}

#[tokio::test]
async fn a_rejected_request_is_not_retried_and_says_why() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_error(
            400,
            "ClientException",
            "TaskDefinition not found.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .deploy_bot(&bot(12, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(
        error.to_string(),
        "aws: request for task for bot 12 (attempt 1) rejected: ClientException: TaskDefinition not found."
    );
}

#[tokio::test]
async fn a_missing_cluster_is_not_found_and_names_the_settings() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_error(
            400,
            "ClusterNotFoundException",
            "Cluster not found.",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .deploy_bot(&bot(13, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error.to_string().contains("ECS_CLUSTER and AWS_REGION"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_error(500, "ServerException", "Service error"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    ecs_call("RunTask")
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(5), "PROVISIONING", None)]}),
        ))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    platform(&server)
        .deploy_bot(&bot(14, MeetingPlatform::Zoom), 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_launch_without_an_answer_in_time_is_a_retryable_timeout() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(
            ecs_ok(json!({"tasks": [task_json(&task_arn(6), "PROVISIONING", None)]}))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let env = env(&server.uri()).with("ECS_REQUEST_TIMEOUT", "1");
    let aws = platform_with(&server, &env).with_retry_policy(RetryPolicy::no_retry());
    let error = aws
        .deploy_bot(&bot(15, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    // The task may have started: the error must invite a retry (with the
    // same client token), never read as a rejection.
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.is_retryable());
    assert_eq!(
        error.to_string(),
        "aws: no answer about task for bot 15 (attempt 1) within 1 s"
    );
}
