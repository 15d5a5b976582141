//! Could not connect is not maybe started: a connection that was never made
//! is `Unreachable` (nothing was sent, nothing started), one that broke
//! after the request may have gone out is `Unavailable`; and either reads
//! as one short sentence, never as the SDK's `Debug` output.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::{INSTALLATION, bot, env, installation, platform_at, quick_retries, task_arn};
use platform_core::{Error, ErrorKind, MeetingPlatform, PlatformId, PlatformService, RetryPolicy};
use tokio::io::AsyncReadExt;

/// A loopback port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A loopback port that accepts each connection and then says nothing,
/// holding it open for a minute.
async fn silent_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(socket);
            });
        }
    });
    port
}

/// A loopback port that accepts each connection, reads what arrives for a
/// moment, then drops it without an answer.
async fn dropping_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(100), socket.read(&mut buffer))
                    .await;
            });
        }
    });
    port
}

/// The platform pointed at `endpoint`, with a time limit that a test can
/// wait out if something hangs.
fn platform_to(endpoint: &str, retries: RetryPolicy) -> platform_aws::AwsEcsPlatform {
    let env = env(endpoint).with("ECS_REQUEST_TIMEOUT", "5");
    platform_at(endpoint, &env, installation(INSTALLATION)).with_retry_policy(retries)
}

/// A reason an operator can read: one line, a few hundred characters, no
/// Rust `Debug` output.
fn assert_readable(error: &Error) {
    let text = error.to_string();
    assert!(
        text.chars().count() <= 400,
        "{} characters: {text}",
        text.len()
    );
    assert!(!text.contains('\n'), "{text}");
    for debug in [
        "DispatchFailure",
        "ConnectorError",
        "source:",
        "{",
        "Some(",
        "os error",
    ] {
        assert!(!text.contains(debug), "{debug:?} in {text}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_unreachable_and_starts_nothing() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let aws = platform_to(&endpoint, RetryPolicy::no_retry());

    let error = aws
        .deploy_bot(&bot(1, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    assert!(error.nothing_started(), "{error}");
    assert!(error.is_retryable());
    assert_readable(&error);
    assert_eq!(
        error.to_string(),
        "aws: could not reach the platform about task for bot 1 (attempt 1), nothing was sent: tcp connect error: connection refused"
    );
}

#[tokio::test]
async fn refused_on_every_retry_still_proves_nothing_started() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let aws = platform_to(&endpoint, quick_retries());
    let error = aws
        .deploy_bot(&bot(2, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RetriesExhausted { attempts: 5, .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Unreachable);
    assert!(error.nothing_started(), "{error}");
}

#[tokio::test]
async fn a_failed_tls_handshake_is_unreachable() {
    // Nothing is sent before the handshake completes, and this one never
    // does: the server hangs up on the client's hello.
    let endpoint = format!("https://127.0.0.1:{}", dropping_port().await);
    let aws = platform_to(&endpoint, RetryPolicy::no_retry());

    let error = aws
        .deploy_bot(&bot(3, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    assert!(error.nothing_started());
    assert_readable(&error);
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_unreachable_not_a_timeout() {
    // The connection is given up at half the request's time limit, inside
    // the handshake: provably before anything was sent.
    let endpoint = format!("https://127.0.0.1:{}", silent_port().await);
    let env = env(&endpoint).with("ECS_REQUEST_TIMEOUT", "2");
    let aws = platform_at(&endpoint, &env, installation(INSTALLATION))
        .with_retry_policy(RetryPolicy::no_retry());

    let error = aws
        .deploy_bot(&bot(5, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
    assert!(error.nothing_started());
    assert_readable(&error);
}

#[tokio::test]
async fn a_connection_dropped_after_the_request_may_have_started_the_bot() {
    let endpoint = format!("http://127.0.0.1:{}", dropping_port().await);
    let aws = platform_to(&endpoint, RetryPolicy::no_retry());

    let error = aws
        .deploy_bot(&bot(4, MeetingPlatform::Zoom), 1)
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(!error.nothing_started(), "{error}");
    assert!(error.is_retryable());
    assert_readable(&error);
    assert!(error.to_string().contains("may have reached it"), "{error}");
}

#[tokio::test]
async fn reads_and_stops_against_a_closed_port_are_unreachable_too() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let aws = platform_to(&endpoint, RetryPolicy::no_retry());
    let task = PlatformId::new(task_arn(1));
    for error in [
        aws.get_bot_status(&task).await.unwrap_err(),
        aws.stop_bot(&task).await.unwrap_err(),
        aws.list_marked_bots().await.unwrap_err(),
        aws.check_reachable().await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Unreachable, "{error}");
        assert_readable(&error);
    }
}
