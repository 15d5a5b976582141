//! Meeting URLs with passcodes, meeting passwords and AWS secret keys never
//! reach a log line, an error or a `Debug` output.
//!
//! A test binary of its own: the capture is a subscriber scoped to this
//! test's thread, and tests running beside it on other threads would race
//! it to register the crate's log callsites, caching some as disabled, so
//! a line could go uncaptured (and unchecked).

use std::io;
use std::sync::{Arc, Mutex};

use platform_core::{MeetingPlatform, PlatformId, PlatformService, SecretString};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::MockServer;

use platform_aws::testkit::{
    SECRET_KEY, bot, ecs_call, ecs_error, ecs_ok, platform, task_arn, task_json,
};

/// Collects everything logged.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_stay_out_of_logs_errors_and_debug_output() {
    let logs = CapturedLogs::default();
    // Everything this crate logs, and the SDK and core at DEBUG (the SDK
    // writes whole requests at TRACE: see the crate docs).
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,platform_aws=trace,platform_core=trace",
        ))
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    ecs_call("RunTask")
        .respond_with(ecs_error(400, "ThrottlingException", "Rate exceeded"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("RunTask")
        .and(|request: &wiremock::Request| {
            request.body_json::<serde_json::Value>().unwrap()["clientToken"]
                == "meeboter-test0001-1-1"
        })
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(1), "PROVISIONING", None)]}),
        ))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    ecs_call("RunTask")
        .respond_with(ecs_error(
            400,
            "InvalidParameterException",
            "Container Overrides length must be at most 8192",
        ))
        .with_priority(3)
        .expect(1)
        .mount(&server)
        .await;
    // Read by the status and by cleanup.
    ecs_call("DescribeTasks")
        .respond_with(ecs_ok(
            json!({"tasks": [task_json(&task_arn(1), "RUNNING", Some("10.0.0.1"))]}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    // Stopped by stop_bot, and again by cleanup since the task still reads
    // as running.
    ecs_call("StopTask")
        .respond_with(ecs_ok(
            json!({"task": task_json(&task_arn(1), "RUNNING", Some("10.0.0.1"))}),
        ))
        .expect(2)
        .mount(&server)
        .await;

    // Another test's thread may have registered one of the crate's log
    // callsites at the very moment this subscriber was installed, caching it
    // as disabled; recompute every callsite's interest now that it is.
    tracing::callsite::rebuild_interest_cache();
    let aws = platform(&server);
    let with_password = |id| {
        bot(id, MeetingPlatform::Zoom)
            .with_meeting_password(Some(SecretString::from("s3cret-pass")))
            .unwrap()
    };
    let deployed = aws.deploy_bot(&with_password(1), 1).await.unwrap();
    let refused = aws.deploy_bot(&with_password(2), 1).await.unwrap_err();
    let status = aws.get_bot_status(&deployed.identifier).await.unwrap();
    aws.stop_bot(&deployed.identifier).await.unwrap();
    aws.cleanup(&PlatformId::new(task_arn(1))).await.unwrap();

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("started the bot's ECS task"),
        "the capture works: {logged}"
    );
    let shown = [
        logged,
        refused.to_string(),
        format!("{refused:?}"),
        format!("{deployed:?}"),
        format!("{status:?}"),
        format!("{aws:?}"),
        format!("{:?}", aws.config()),
    ];
    for text in &shown {
        for secret in ["zoomPasscode", "s3cret-pass", SECRET_KEY] {
            assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
        }
    }
}
