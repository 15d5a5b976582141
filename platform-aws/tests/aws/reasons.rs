//! Reasons people can read: an HTML error page from something in front of
//! ECS is named by its title, never copied into an error.

use platform_core::{ErrorKind, MeetingPlatform, PlatformId, PlatformService, RetryPolicy};
use wiremock::{MockServer, ResponseTemplate};

use crate::support::{bot, ecs_call, platform, task_arn};

const BAD_GATEWAY: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n";

fn bad_gateway() -> ResponseTemplate {
    ResponseTemplate::new(502)
        .insert_header("server", "awselb/2.0")
        .set_body_raw(BAD_GATEWAY, "text/html")
}

#[tokio::test]
async fn a_load_balancers_error_page_becomes_one_short_sentence() {
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(bad_gateway())
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("DescribeTasks")
        .respond_with(bad_gateway())
        .expect(1)
        .mount(&server)
        .await;
    let aws = platform(&server).with_retry_policy(RetryPolicy::no_retry());

    let deploy = aws
        .deploy_bot(&bot(1, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    let status = aws
        .get_bot_status(&PlatformId::new(task_arn(1)))
        .await
        .unwrap_err();

    for error in [&deploy, &status] {
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
        let text = error.to_string();
        assert!(
            text.contains("HTTP 502: the endpoint answered with an HTML page titled \"502 Bad Gateway\", not with an ECS answer"),
            "{text}"
        );
        for raw in ["<", "awselb", "center", "\n", "Unhandled", "{"] {
            assert!(!text.contains(raw), "{raw:?} in {text}");
        }
        assert!(text.chars().count() <= 400, "{text}");
    }
}

#[tokio::test]
async fn an_answer_that_cannot_be_read_is_never_quoted() {
    // A RunTask answer echoes the bot's environment; one the client cannot
    // read must not carry it into an error.
    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"tasks": [{"taskArn": 7, "overrides": {"containerOverrides": [{"environment": [{"name": "MEETING_URL", "value": "https://us02web.zoom.us/j/81?pwd=zoomPasscode1"}"#,
            "application/x-amz-json-1.1",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = platform(&server)
        .with_retry_policy(RetryPolicy::no_retry())
        .deploy_bot(&bot(1, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("zoomPasscode"), "{text}");
    assert!(!text.contains("MEETING_URL"), "{text}");
    assert!(text.chars().count() <= 400, "{text}");
}
