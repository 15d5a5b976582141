//! Integration tests of the Coolify platform against a fake Coolify on
//! 127.0.0.1 that answers like the real server (one `MockServer` per test).

mod concurrency;
mod conformance;
mod errors;
mod growth;
mod helpers;
mod installations;
mod lifecycle;
mod meeting_secrets;
mod pool;
mod registry;
mod setup_checks;

use platform_coolify::testkit::fake_coolify;
