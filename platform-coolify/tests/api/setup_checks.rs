//! What `doctor` learns from the platform: whether the URL serves Coolify's
//! API at all, and whether the project, environment, server and images a
//! deploy needs are there.

use platform_core::{CheckOutcome, ErrorKind, PlatformService, SetupCheck};
use serde_json::json;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestCoolify;

fn find<'a>(checks: &'a [SetupCheck], start: &str) -> &'a SetupCheck {
    checks
        .iter()
        .find(|c| c.name.starts_with(start))
        .unwrap_or_else(|| panic!("no check named {start}…: {checks:#?}"))
}

fn problem(check: &SetupCheck) -> &str {
    match &check.outcome {
        CheckOutcome::Problem(text) => text,
        other => panic!("{} is {other:?}, expected a problem", check.name),
    }
}

/// Answers every request the same way, as another web server would.
async fn other_server(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    server
}

#[tokio::test]
async fn everything_a_deploy_needs_is_in_order() {
    let coolify = TestCoolify::start().await;
    coolify.fake.add_slots("meet", 2);
    let mut config = coolify.config();
    config.images.meet = None;
    let platform = coolify.platform_with(config).await.unwrap();

    let checks = platform.check_setup().await;

    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    let base = format!("{}/api/v1", coolify.server.uri());
    assert_eq!(
        names,
        [
            format!("Coolify API at {base} (Coolify 4.3.11)").as_str(),
            "project COOLIFY_PROJECT_UUID=proj-meeboter",
            "environment COOLIFY_ENVIRONMENT_NAME=production",
            "server COOLIFY_SERVER_UUID=srv-main (localhost)",
            "zoom bots: image ghcr.io/acme/zoom-bot:1.4.2, 0 slots of this installation, up to COOLIFY_POOL_MAX_ZOOM=5",
            "teams bots: image ghcr.io/acme/teams-bot:1.4.2, 0 slots of this installation, up to COOLIFY_POOL_MAX_TEAMS=5",
            "meet bots: 2 slots of this installation (COOLIFY_BOT_IMAGE_MEET is not set, so the pool does not grow)",
            "COOLIFY_API_KEY abilities (write, deploy)",
        ]
    );
    assert!(
        checks[..7].iter().all(|c| c.outcome == CheckOutcome::Ok),
        "{checks:#?}"
    );
    assert!(matches!(checks[7].outcome, CheckOutcome::NotChecked(_)));
}

#[tokio::test]
async fn the_version_is_asked_for_with_an_accept_header_coolify_can_satisfy() {
    let coolify = TestCoolify::start().await;
    let platform = coolify.platform().await;

    platform.check_reachable().await.unwrap();

    let requests = coolify.requests().await;
    let version = requests
        .iter()
        .rev()
        .find(|r| r.url.path() == "/api/v1/version")
        .unwrap();
    let accept = version.headers.get("accept").unwrap().to_str().unwrap();
    assert!(accept.contains("text/html"), "{accept}");
    assert!(
        accept.starts_with("application/json"),
        "errors still come as JSON: {accept}"
    );
}

#[tokio::test]
async fn a_url_that_serves_a_web_page_is_reported_as_not_coolify_not_as_a_missing_project() {
    let cases = [
        (
            ResponseTemplate::new(200).set_body_raw(
                "<!DOCTYPE html><html><head><title>Acme</title></head><body>Welcome</body></html>",
                "text/html",
            ),
            "answered HTTP 200 with an HTML page instead of Coolify's version",
        ),
        (
            ResponseTemplate::new(404).set_body_raw(
                "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>",
                "text/html",
            ),
            "answered HTTP 404 Not Found with an HTML page",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "service": "grafana"})),
            "answered HTTP 200 with JSON that is not Coolify's",
        ),
        (
            ResponseTemplate::new(404).set_body_json(json!({"error": "no route"})),
            "answered HTTP 404 Not Found with JSON that is not Coolify's",
        ),
    ];
    for (answer, expected) in cases {
        let server = other_server(answer).await;
        let coolify = TestCoolify::start().await;
        let mut config = coolify.config();
        config.api_url = platform_coolify::config::normalise_api_url(&server.uri()).unwrap();

        let error = coolify.platform_with(config).await.unwrap_err();

        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        let text = error.to_string();
        assert!(
            text.contains("COOLIFY_API_URL does not serve Coolify's API"),
            "{text}"
        );
        assert!(text.contains(expected), "{text}");
        assert!(!text.contains("COOLIFY_PROJECT_UUID"), "{text}");
        assert!(!text.contains('<'), "{text}");
    }
}

#[tokio::test]
async fn doctor_says_when_the_url_stops_serving_coolify() {
    let coolify = TestCoolify::start().await;
    let platform = coolify.platform().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("<html><body>Log in</body></html>", "text/html"),
        )
        .with_priority(1)
        .mount(&coolify.server)
        .await;

    let checks = platform.check_setup().await;

    let text = problem(&checks[0]);
    assert!(
        text.starts_with("COOLIFY_API_URL does not serve Coolify's API"),
        "{text}"
    );
    assert!(text.contains("an HTML page"), "{text}");
    assert!(
        checks[1..]
            .iter()
            .all(|c| matches!(c.outcome, CheckOutcome::NotChecked(_))),
        "{checks:#?}"
    );
    let error = platform.check_reachable().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
}

#[tokio::test]
async fn doctor_names_a_refused_token() {
    let coolify = TestCoolify::start().await;
    let platform = coolify.platform().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/version"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"success": true, "message": "API is disabled."})),
        )
        .mount(&coolify.server)
        .await;

    let checks = platform.check_setup().await;

    let text = problem(&checks[0]);
    assert!(text.contains("HTTP 403: API is disabled."), "{text}");
    assert!(text.contains("COOLIFY_API_KEY"), "{text}");
    let error = platform.check_reachable().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
}

#[tokio::test]
async fn a_missing_project_names_the_projects_the_token_can_see() {
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.project_uuid = "proj-typo".into();

    let error = coolify.platform_with(config).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("COOLIFY_PROJECT_UUID names no project this API token can see (proj-typo)"),
        "{text}"
    );
    assert!(
        text.contains("it sees: Meeboter (proj-meeboter), Website (proj-website)"),
        "{text}"
    );
}

#[tokio::test]
async fn doctor_names_a_missing_server_environment_and_image() {
    let coolify = TestCoolify::start().await;
    let mut config = coolify.config();
    config.server_uuid = "srv-typo".into();
    config.images.teams = None;
    let platform = coolify.platform_with(config).await.unwrap();
    // The environment was deleted after start-up.
    Mock::given(method("GET"))
        .and(path("/api/v1/projects/proj-meeboter/environments"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": 12, "name": "staging"}])),
        )
        .mount(&coolify.server)
        .await;

    let checks = platform.check_setup().await;

    assert_eq!(find(&checks, "Coolify API").outcome, CheckOutcome::Ok);
    assert_eq!(find(&checks, "project").outcome, CheckOutcome::Ok);
    let environment = problem(find(
        &checks,
        "environment COOLIFY_ENVIRONMENT_NAME=production",
    ));
    assert!(
        environment.contains(
            "\"production\" is not an environment of project proj-meeboter; it has: staging"
        ),
        "{environment}"
    );
    let server = problem(find(&checks, "server COOLIFY_SERVER_UUID=srv-typo"));
    assert!(
        server.contains("no server srv-typo is visible to this API token"),
        "{server}"
    );
    assert!(server.contains("it sees: localhost (srv-main)"), "{server}");
    let teams = problem(find(&checks, "teams bots"));
    assert!(
        teams.contains("COOLIFY_BOT_IMAGE_TEAMS is not set"),
        "{teams}"
    );
    assert!(teams.contains("COOLIFY_POOL_MAX_TEAMS=0"), "{teams}");
    assert_eq!(find(&checks, "zoom bots").outcome, CheckOutcome::Ok);
    assert_eq!(find(&checks, "meet bots").outcome, CheckOutcome::Ok);
}

#[tokio::test]
async fn doctor_on_a_missing_project_names_it() {
    let coolify = TestCoolify::start().await;
    let platform = coolify.platform().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/projects/proj-meeboter/environments"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"message": "Project not found."})),
        )
        .mount(&coolify.server)
        .await;

    let checks = platform.check_setup().await;

    let project = problem(find(&checks, "project"));
    assert!(
        project.contains("no project proj-meeboter is visible to this API token"),
        "{project}"
    );
    assert!(matches!(
        find(&checks, "environment").outcome,
        CheckOutcome::NotChecked(_)
    ));
}
