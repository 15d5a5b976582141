//! Meeting passwords and passcodes never reach the log the platform writes
//! or an error it returns.

use platform_core::{
    BotDeploymentConfig, BotId, MeetingPlatform, MeetingUrl, PlatformService, SecretString,
};

use crate::support::TestBed;

const PASSWORD: &str = "pa55-s3cret-word";
const PASSCODE: &str = "UXo1cGFzc2NvZGU";

fn secret_bot(bot_id: u64) -> BotDeploymentConfig {
    let url = MeetingUrl::parse(
        MeetingPlatform::Zoom,
        &format!("https://us02web.zoom.us/j/81234567890?pwd={PASSCODE}"),
    )
    .unwrap();
    BotDeploymentConfig::new(BotId(bot_id), url)
        .with_meeting_password(Some(SecretString::new(PASSWORD)))
        .unwrap()
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
    assert!(!text.contains(PASSCODE), "passcode leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_writes_no_secret_into_the_bot_log_or_its_records() {
    let bed = TestBed::new(r#"sh -c 'echo "bot $BOT_ID listening on $BOT_PORT"; exec sleep 1000'"#);
    let deployed = bed.platform.deploy_bot(&secret_bot(1), 1).await.unwrap();
    let record = std::fs::read_to_string(&bed.records()[0]).unwrap();
    assert_no_secret(&record);
    bed.platform.stop_bot(&deployed.identifier).await.unwrap();
    bed.platform.cleanup(&deployed.identifier).await.unwrap();
    let log = std::fs::read_to_string(bed.platform.log_path(BotId(1), 1)).unwrap();
    assert!(log.contains("bot 1 listening on"), "{log}");
    assert_no_secret(&log);
    assert_no_secret(&format!("{:?}", bed.platform));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_failure_quotes_the_log_without_secrets() {
    // A careless bot prints its secrets and dies.
    let bed = TestBed::new(
        r#"sh -c 'echo "joining $MEETING_URL with $MEETING_PASSWORD"; echo "passcode is UXo1cGFzc2NvZGU"; exit 1'"#,
    );
    let err = bed
        .platform
        .deploy_bot(&secret_bot(1), 1)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("joining [redacted] with [redacted]"),
        "{text}"
    );
    assert!(text.contains("passcode is [redacted]"), "{text}");
    assert_no_secret(&text);
    assert_no_secret(&format!("{err:?}"));
}
