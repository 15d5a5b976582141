//! Test-only pauses at the points where a crash hurts most, so end-to-end
//! tests can `kill -9` the process exactly there.
//!
//! `MEEBOTER_TEST_FAILPOINT=after-deploy-intent` (or `after-create`, `after-platform-deploy`,
//! `after-stop-intent`, `before-webhook-send`)
//! makes the process print `failpoint <name> reached` on standard error and
//! then wait forever at that point (see each constant for what is
//! committed and what the platform has done). It exists only in debug builds
//! (`debug_assertions`): release binaries, which are what operators run, do
//! not contain it and never read the variable.

use platform_core::{EnvVarSpec, ValueKind};

/// A create that asked for a deploy is committed with its deploy intent
/// (status `pending`, due now); nothing is placed and the platform has not
/// been called.
pub const AFTER_CREATE: &str = "after-create";
/// The deploy intent (status `deploying`, attempt + 1) is committed; the
/// platform has not been called.
pub const AFTER_DEPLOY_INTENT: &str = "after-deploy-intent";
/// The platform has started the bot and answered; its identifier is not
/// recorded yet.
pub const AFTER_PLATFORM_DEPLOY: &str = "after-platform-deploy";
/// The stop intent (status `stopping`) is committed; the platform has not
/// been asked to stop the bot.
pub const AFTER_STOP_INTENT: &str = "after-stop-intent";

/// A webhook delivery is claimed (the event committed with its change long
/// before); nothing has been sent to the receiver.
pub const BEFORE_WEBHOOK_SEND: &str = "before-webhook-send";

/// The variable that arms a failpoint (debug builds only).
pub const TEST_FAILPOINT: EnvVarSpec = EnvVarSpec::optional(
    "MEEBOTER_TEST_FAILPOINT",
    "Test only, debug builds only: pause forever at this point so a test can kill the process there. Release builds ignore it.",
)
.kind(ValueKind::OneOf {
    values: &[
        AFTER_CREATE,
        AFTER_DEPLOY_INTENT,
        AFTER_PLATFORM_DEPLOY,
        AFTER_STOP_INTENT,
        BEFORE_WEBHOOK_SEND,
    ],
});

/// Variables read only by tests of debug builds.
pub const TEST_ENV: &[EnvVarSpec] = &[TEST_FAILPOINT];

/// Pauses forever if the failpoint `name` is armed (debug builds only).
pub async fn pause_if_armed(name: &'static str) {
    #[cfg(debug_assertions)]
    {
        let armed = TEST_FAILPOINT
            .lookup(&platform_core::ProcessEnv)
            .is_some_and(|(_, value)| value.trim() == name);
        if armed {
            tracing::warn!(failpoint = name, "test failpoint reached; pausing forever");
            eprintln!("failpoint {name} reached");
            std::future::pending::<()>().await;
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
