//! A bot command that cannot run, and a bot that exits at once, are clear
//! errors that leave nothing behind.

use std::os::unix::fs::PermissionsExt;

use platform_core::{ErrorKind, PlatformService};

use crate::support::{TestBed, bot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_does_not_exist_is_a_configuration_error_naming_it() {
    let bed = TestBed::new("no-such-bot-program-4711 --flag");
    let err = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("LOCAL_BOT_COMMAND program `no-such-bot-program-4711` was not found on PATH"),
        "{text}"
    );
    assert!(bed.records().is_empty(), "{:?}", bed.records());
    assert!(bed.platform.live_processes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_is_not_executable_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bot.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 1000\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bed = TestBed::new(&format!("'{}'", script.display()));
    let err = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("is not executable"), "{err}");
    assert!(err.to_string().contains("bot.sh"), "{err}");
    assert!(bed.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_the_kernel_cannot_run_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-a-binary");
    std::fs::write(&script, "\u{7f}ELF garbage").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bed = TestBed::new(&format!("'{}'", script.display()));
    let err = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("could not start"), "{err}");
    assert!(bed.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_exits_at_once_fails_the_deploy_with_its_exit_and_log() {
    let bed = TestBed::new(r#"sh -c 'echo "port $BOT_PORT is taken" >&2; exit 3'"#);
    let err = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StartFailed, "{err}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("exited with code 3"), "{text}");
    assert!(text.contains("is taken"), "{text}");
    assert!(text.contains("bot-1-attempt-1.log"), "{text}");
    // Nothing is held; the log stays for the operator.
    assert!(bed.records().is_empty(), "{:?}", bed.records());
    assert!(bed.platform.live_processes().is_empty());
    assert!(bed.platform.log_path(platform_core::BotId(1), 1).exists());
    // The same attempt may be tried again (and fails the same way).
    let again = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::StartFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_lists_every_problem() {
    let env = platform_core::MapEnv::from([
        ("LOCAL_BOT_COMMAND", "bot | tee out.log"),
        ("LOCAL_STOP_GRACE_SECONDS", "ten"),
        ("LOCAL_MAX_BOTS", "-1"),
    ]);
    let err = platform_local::LocalConfig::from_env(&env).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("local: invalid configuration: "), "{text}");
    for expected in [
        "LOCAL_BOT_COMMAND contains an unquoted `|`",
        "LOCAL_STOP_GRACE_SECONDS is not whole seconds from 0 to 3600",
        "LOCAL_MAX_BOTS is not a whole number from 1 to 100000",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in {text}");
    }
}

/// A deploy that fails before anything is spawned says so, so the service
/// puts the bot back to `pending` rather than waiting for a bot that does
/// not exist; and it leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_cannot_write_its_record_reports_that_nothing_was_started() {
    let bed = TestBed::new(crate::support::SINGLE_PROCESS);
    // The installation's record directory disappears under the running
    // service (a cleaner of old files, an operator's `rm`).
    let records = bed
        .state_dir()
        .join("bots")
        .join(bed.installation().as_str());
    std::fs::remove_dir(&records).unwrap();

    let err = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert!(err.nothing_started(), "{err}");
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("could not write a bot record"), "{text}");
    assert!(
        text.contains(&bed.state_dir().display().to_string()),
        "{text}"
    );
    assert!(bed.platform.live_processes().is_empty());
    assert!(!records.exists());
}

/// A bot that exits at once was started: its failure is not "nothing
/// started", and it holds nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_exits_at_once_is_not_read_as_never_started() {
    let bed = TestBed::new("sh -c 'exit 3'");
    let err = bed.platform.deploy_bot(&bot(1), 1).await.unwrap_err();
    assert!(!err.nothing_started(), "{err}");
    assert!(bed.records().is_empty());
    assert!(bed.platform.live_processes().is_empty());
}
