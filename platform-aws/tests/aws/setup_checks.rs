//! `check_setup`, as `doctor` runs it: each task definition and bot
//! container named when it is wrong, and what cannot be checked said so.

use std::net::TcpListener;

use platform_core::{CheckOutcome, PlatformService, RetryPolicy, SetupCheck};
use serde_json::json;
use wiremock::MockServer;

use crate::support::mini_ecs::{MiniEcs, task_definition_json};
use crate::support::{INSTALLATION, env, installation, platform_at, platform_with};

fn outcome<'a>(checks: &'a [SetupCheck], name: &str) -> &'a CheckOutcome {
    &checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {checks:#?}"))
        .outcome
}

#[tokio::test]
async fn a_complete_setup_passes_and_says_what_it_could_not_check() {
    let server = MockServer::start().await;
    MiniEcs::new().mount(&server).await;
    let checks = platform_with(&server, &env(&server.uri()))
        .check_setup()
        .await;
    assert!(!checks.iter().any(SetupCheck::is_problem), "{checks:#?}");
    for name in [
        "cluster ECS_CLUSTER (meeboter)",
        "task definition ECS_TASK_DEF_ZOOM (meeboter-zoom:3)",
        "container ECS_CONTAINER_ZOOM (zoom-bot)",
        "task definition ECS_TASK_DEF_TEAMS (meeboter-teams:5)",
        "container ECS_CONTAINER_TEAMS (teams-bot)",
        "task definition ECS_TASK_DEF_MEET (meeboter-meet:2)",
        "container ECS_CONTAINER_MEET (meet-bot)",
        "orphan sweep: listing tasks started by meeboter-deploy (ECS_STARTED_BY)",
    ] {
        assert_eq!(outcome(&checks, name), &CheckOutcome::Ok, "{name}");
    }
    for name in ["subnets ECS_SUBNETS", "security groups ECS_SECURITY_GROUPS"] {
        assert!(
            matches!(outcome(&checks, name), CheckOutcome::NotChecked(why) if why.contains("EC2 API")),
            "{name}: {checks:#?}"
        );
    }
}

#[tokio::test]
async fn a_missing_task_definition_and_a_wrong_container_are_both_named() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    ecs.delete_task_definition_family("meeboter-teams");
    let env = env(&server.uri()).with("ECS_CONTAINER_MEET", "bot");

    let checks = platform_with(&server, &env).check_setup().await;

    let CheckOutcome::Problem(missing) = outcome(
        &checks,
        "task definition ECS_TASK_DEF_TEAMS (meeboter-teams:5)",
    ) else {
        panic!("{checks:#?}");
    };
    assert_eq!(
        missing,
        "ECS_TASK_DEF_TEAMS=meeboter-teams:5: ECS could not describe it (ClientException: Unable to describe task definition.); set it to a task definition of Region eu-west-1 as `family`, `family:revision` or its ARN"
    );
    let CheckOutcome::Problem(container) = outcome(&checks, "container ECS_CONTAINER_MEET (bot)")
    else {
        panic!("{checks:#?}");
    };
    assert_eq!(
        container,
        "ECS_CONTAINER_MEET=bot: the task definition has no container of that name; its containers are meet-bot. Set ECS_CONTAINER_MEET to the one that runs the bot"
    );
    assert!(matches!(
        outcome(&checks, "container ECS_CONTAINER_TEAMS (teams-bot)"),
        CheckOutcome::NotChecked(_)
    ));
    assert_eq!(
        outcome(
            &checks,
            "task definition ECS_TASK_DEF_ZOOM (meeboter-zoom:3)"
        ),
        &CheckOutcome::Ok
    );
    assert_eq!(
        checks.iter().filter(|c| c.is_problem()).count(),
        2,
        "{checks:#?}"
    );
}

#[tokio::test]
async fn a_task_definition_that_cannot_run_bots_on_fargate_says_why() {
    let server = MockServer::start().await;
    let ecs = MiniEcs::new();
    ecs.mount(&server).await;
    let mut bridge = task_definition_json("meeboter-zoom", 3, "zoom-bot");
    bridge["networkMode"] = json!("bridge");
    bridge["requiresCompatibilities"] = json!(["EC2"]);
    bridge["compatibilities"] = json!(["EC2"]);
    bridge["status"] = json!("INACTIVE");
    ecs.register_task_definition("meeboter-zoom", 3, bridge);

    let checks = platform_with(&server, &env(&server.uri()))
        .check_setup()
        .await;

    let CheckOutcome::Problem(why) = outcome(
        &checks,
        "task definition ECS_TASK_DEF_ZOOM (meeboter-zoom:3)",
    ) else {
        panic!("{checks:#?}");
    };
    assert!(
        why.starts_with("ECS_TASK_DEF_ZOOM=meeboter-zoom:3: it is INACTIVE"),
        "{why}"
    );
    assert!(
        why.contains("network mode is bridge") && why.contains("awsvpc"),
        "{why}"
    );
    assert!(why.contains("not Fargate-compatible"), "{why}");
}

#[tokio::test]
async fn an_unreachable_ecs_is_one_problem_and_the_rest_not_checked() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let aws = platform_at(&endpoint, &env(&endpoint), installation(INSTALLATION))
        .with_retry_policy(RetryPolicy::no_retry());

    let checks = aws.check_setup().await;

    let problems: Vec<&SetupCheck> = checks.iter().filter(|c| c.is_problem()).collect();
    assert_eq!(problems.len(), 1, "{checks:#?}");
    assert_eq!(problems[0].name, "cluster ECS_CLUSTER (meeboter)");
    assert!(matches!(
        outcome(
            &checks,
            "task definition ECS_TASK_DEF_ZOOM (meeboter-zoom:3)"
        ),
        CheckOutcome::NotChecked(_)
    ));
}
