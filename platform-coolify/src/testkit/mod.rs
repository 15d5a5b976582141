//! Test support for this crate's tests and for the tests of services built
//! on it (feature `testkit`, never in a release build): a stateful fake of
//! the Coolify API to mount on a loopback `wiremock` server, and a
//! configuration pointed at it.

pub mod fake_coolify;

use std::time::Duration;

use platform_core::{RetryPolicy, SecretString};

use crate::{BotImage, CoolifyConfig, Pacing, PerMeetingPlatform};

/// A configuration for the fake Coolify at `server_uri`: its token and
/// project, every image set, five slots per meeting platform, fast pacing
/// and quick retries so nothing waits for real minutes.
///
/// # Panics
///
/// When `server_uri` is not a URL.
pub fn config(server_uri: &str) -> CoolifyConfig {
    let mut config = CoolifyConfig::new(
        server_uri,
        SecretString::new(fake_coolify::TOKEN),
        fake_coolify::PROJECT,
        "srv-main",
    )
    .expect("the fake Coolify's address is a URL");
    let image = |name: &str| BotImage::parse(name).expect("a valid image name");
    config.images = PerMeetingPlatform {
        zoom: Some(image("ghcr.io/acme/zoom-bot:1.4.2")),
        teams: Some(image("ghcr.io/acme/teams-bot:1.4.2")),
        meet: Some(image("ghcr.io/acme/meet-bot:1.4.2")),
    };
    config.pool_max = PerMeetingPlatform::all(5);
    config.request_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    config.pacing = Pacing {
        requests_per_minute: 60_000,
        burst: 200,
    };
    config.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        factor: 2.0,
        jitter: false,
        budget: Duration::from_secs(10),
    };
    config
}
