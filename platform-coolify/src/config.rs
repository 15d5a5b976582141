//! The Coolify platform's configuration: its environment variables, declared
//! once as data, and the typed [`CoolifyConfig`] loaded from them.

use std::fmt;
use std::time::Duration;

use platform_core::{
    ConfigProblem, EnvLookup, EnvValues, EnvVarSpec, Error, MapEnv, MeetingPlatform, RetryPolicy,
    SecretString, ValueKind, load_env,
};
use url::Url;

use crate::PLATFORM;

/// Base URL of the Coolify instance.
pub const COOLIFY_API_URL: EnvVarSpec = EnvVarSpec::required(
    "COOLIFY_API_URL",
    "Base URL of your Coolify instance, e.g. https://coolify.example.com. The API path /api/v1 is added when the URL does not end with it.",
)
.kind(ValueKind::Url);

/// The API token.
pub const COOLIFY_API_KEY: EnvVarSpec = EnvVarSpec::required(
    "COOLIFY_API_KEY",
    "Coolify API token (Keys & Tokens > API tokens) with the read, write and deploy abilities. Sent only in the Authorization header, never logged.",
)
.secret()
.aliases(&["COOLIFY_API_TOKEN"]);

/// The project that holds the slot applications.
pub const COOLIFY_PROJECT_UUID: EnvVarSpec = EnvVarSpec::required(
    "COOLIFY_PROJECT_UUID",
    "UUID of the Coolify project that holds the bot slot applications. At start-up every application of this project named meeboter-slot-<installation id>-<zoom|teams|meet>-<number> with this installation's id is adopted into the pool; new slots are created in it. Several installations may share one project: each uses only its own slots.",
);

/// The server new slots run on.
pub const COOLIFY_SERVER_UUID: EnvVarSpec = EnvVarSpec::required(
    "COOLIFY_SERVER_UUID",
    "UUID of the Coolify server on which new slot applications are created.",
);

/// The project environment new slots are created in.
pub const COOLIFY_ENVIRONMENT_NAME: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_ENVIRONMENT_NAME",
    "production",
    "Name of the environment of the project in which new slot applications are created. It must exist in the project.",
);

/// The Zoom bot image.
pub const COOLIFY_BOT_IMAGE_ZOOM: EnvVarSpec = EnvVarSpec::optional(
    "COOLIFY_BOT_IMAGE_ZOOM",
    "Docker image of the Zoom bot, with its tag (e.g. ghcr.io/acme/zoom-bot:1.4.2), used when the pool creates a new Zoom slot. Unset: Zoom bots run only in slots that already exist.",
);

/// The Teams bot image.
pub const COOLIFY_BOT_IMAGE_TEAMS: EnvVarSpec = EnvVarSpec::optional(
    "COOLIFY_BOT_IMAGE_TEAMS",
    "Docker image of the Microsoft Teams bot, with its tag (e.g. ghcr.io/acme/teams-bot:1.4.2), used when the pool creates a new Teams slot. Unset: Teams bots run only in slots that already exist.",
);

/// The Google Meet bot image.
pub const COOLIFY_BOT_IMAGE_MEET: EnvVarSpec = EnvVarSpec::optional(
    "COOLIFY_BOT_IMAGE_MEET",
    "Docker image of the Google Meet bot, with its tag (e.g. ghcr.io/acme/meet-bot:1.4.2), used when the pool creates a new Meet slot. Unset: Meet bots run only in slots that already exist.",
);

/// Most Zoom slots.
pub const COOLIFY_POOL_MAX_ZOOM: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_POOL_MAX_ZOOM",
    "10",
    "Most Zoom slots the pool holds, adopted ones included: that many Zoom bots can run at once. When every slot is busy and the pool is at this size, a deploy fails with a retryable pool-exhausted error. 0: never create Zoom slots.",
)
.kind(ValueKind::Integer { min: 0, max: 500 });

/// Most Teams slots.
pub const COOLIFY_POOL_MAX_TEAMS: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_POOL_MAX_TEAMS",
    "10",
    "Most Microsoft Teams slots the pool holds, adopted ones included. When every slot is busy and the pool is at this size, a deploy fails with a retryable pool-exhausted error. 0: never create Teams slots.",
)
.kind(ValueKind::Integer { min: 0, max: 500 });

/// Most Meet slots.
pub const COOLIFY_POOL_MAX_MEET: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_POOL_MAX_MEET",
    "10",
    "Most Google Meet slots the pool holds, adopted ones included. When every slot is busy and the pool is at this size, a deploy fails with a retryable pool-exhausted error. 0: never create Meet slots.",
)
.kind(ValueKind::Integer { min: 0, max: 500 });

/// The port bot containers listen on.
pub const COOLIFY_BOT_PORT: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_BOT_PORT",
    "3000",
    "Port the bot container listens on (its health endpoint). Coolify requires an exposed port for every application it creates.",
)
.kind(ValueKind::Integer {
    min: 1,
    max: 65_535,
});

/// How long one API request may take.
pub const COOLIFY_API_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_API_TIMEOUT",
    "30",
    "Longest wait, in seconds, for one Coolify API answer before the call counts as timed out (and is retried when that is safe).",
)
.kind(ValueKind::Seconds { min: 1, max: 300 });

/// Client-side pacing.
pub const COOLIFY_API_REQUESTS_PER_MINUTE: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_API_REQUESTS_PER_MINUTE",
    "180",
    "Most Coolify API requests this service sends in any 60 seconds; a burst may send them all at once. Coolify allows 200 per minute per user by default (its API_RATE_LIMIT), shared by all of that user's tokens: stay below it, and split it between service replicas that use the same user. Fewer go out when Coolify reports fewer requests left; a 429 holds every call for its Retry-After and halves this budget, which then grows back.",
)
.kind(ValueKind::Integer {
    min: 1,
    max: 100_000,
});

/// How many slot applications may be created per minute.
pub const COOLIFY_POOL_CREATIONS_PER_MINUTE: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_POOL_CREATIONS_PER_MINUTE",
    "10",
    "Most slot applications the pool creates in any one minute, all meeting platforms together: a safety net against a Coolify that keeps accepting creations without yielding usable slots. A deploy that would create one more fails with a retryable capacity error and is tried again later. Whatever this says, one deploy creates at most 2 slots and stops at the first creation that yields no new slot.",
)
.kind(ValueKind::Integer { min: 1, max: 500 });

/// Every variable the Coolify platform reads.
pub const ENV_SPECS: &[EnvVarSpec] = &[
    COOLIFY_API_URL,
    COOLIFY_API_KEY,
    COOLIFY_PROJECT_UUID,
    COOLIFY_SERVER_UUID,
    COOLIFY_ENVIRONMENT_NAME,
    COOLIFY_BOT_IMAGE_ZOOM,
    COOLIFY_BOT_IMAGE_TEAMS,
    COOLIFY_BOT_IMAGE_MEET,
    COOLIFY_POOL_MAX_ZOOM,
    COOLIFY_POOL_MAX_TEAMS,
    COOLIFY_POOL_MAX_MEET,
    COOLIFY_POOL_CREATIONS_PER_MINUTE,
    COOLIFY_BOT_PORT,
    COOLIFY_API_TIMEOUT,
    COOLIFY_API_REQUESTS_PER_MINUTE,
];

/// The variables whose presence means "Coolify is configured" for
/// `DEPLOYMENT_PLATFORM=auto`.
pub const AUTO_MARKERS: &[EnvVarSpec] = &[COOLIFY_API_URL, COOLIFY_API_KEY];

/// The image spec of each meeting platform.
const fn image_spec(platform: MeetingPlatform) -> &'static EnvVarSpec {
    match platform {
        MeetingPlatform::Zoom => &COOLIFY_BOT_IMAGE_ZOOM,
        MeetingPlatform::Teams => &COOLIFY_BOT_IMAGE_TEAMS,
        MeetingPlatform::Meet => &COOLIFY_BOT_IMAGE_MEET,
    }
}

/// The variable that caps `platform`'s slots (`COOLIFY_POOL_MAX_ZOOM`).
pub fn pool_max_variable(platform: MeetingPlatform) -> &'static str {
    pool_max_spec(platform).name
}

/// The pool-maximum spec of each meeting platform.
pub(crate) const fn pool_max_spec(platform: MeetingPlatform) -> &'static EnvVarSpec {
    match platform {
        MeetingPlatform::Zoom => &COOLIFY_POOL_MAX_ZOOM,
        MeetingPlatform::Teams => &COOLIFY_POOL_MAX_TEAMS,
        MeetingPlatform::Meet => &COOLIFY_POOL_MAX_MEET,
    }
}

/// The variable an operator sets to give `platform` an image.
pub fn image_variable(platform: MeetingPlatform) -> &'static str {
    image_spec(platform).name
}

/// A Docker image reference split the way Coolify stores it: repository and
/// tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotImage {
    /// The repository, registry included (`ghcr.io/acme/zoom-bot`).
    pub name: String,
    /// The tag (`1.4.2`).
    pub tag: String,
}

impl BotImage {
    /// Parses `repository:tag`. A tag is required: a slot created from
    /// `latest` would silently change bot version whenever it is redeployed.
    pub fn parse(reference: &str) -> Result<Self, String> {
        let reference = reference.trim();
        let hint = "must be a Docker image with a tag, like ghcr.io/acme/zoom-bot:1.4.2";
        if reference.is_empty() || reference.chars().any(char::is_whitespace) {
            return Err(format!("{hint} (no spaces)"));
        }
        if reference.contains('@') {
            return Err(format!("{hint}; digests (@sha256:…) are not supported"));
        }
        let last_segment_start = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[last_segment_start..].rfind(':') {
            Some(i) => {
                let split = last_segment_start + i;
                let (name, tag) = (&reference[..split], &reference[split + 1..]);
                if name.is_empty() || tag.is_empty() {
                    Err(hint.to_owned())
                } else {
                    Ok(Self {
                        name: name.to_owned(),
                        tag: tag.to_owned(),
                    })
                }
            }
            None => Err(format!("{hint}; no tag was given")),
        }
    }
}

impl fmt::Display for BotImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// One value per meeting platform.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerMeetingPlatform<T> {
    /// The Zoom value.
    pub zoom: T,
    /// The Teams value.
    pub teams: T,
    /// The Google Meet value.
    pub meet: T,
}

impl<T> PerMeetingPlatform<T> {
    /// The same value for every meeting platform.
    pub fn all(value: T) -> Self
    where
        T: Clone,
    {
        Self {
            zoom: value.clone(),
            teams: value.clone(),
            meet: value,
        }
    }

    /// The value of `platform`.
    pub fn get(&self, platform: MeetingPlatform) -> &T {
        match platform {
            MeetingPlatform::Zoom => &self.zoom,
            MeetingPlatform::Teams => &self.teams,
            MeetingPlatform::Meet => &self.meet,
        }
    }

    /// The value of `platform`, to change it.
    pub fn get_mut(&mut self, platform: MeetingPlatform) -> &mut T {
        match platform {
            MeetingPlatform::Zoom => &mut self.zoom,
            MeetingPlatform::Teams => &mut self.teams,
            MeetingPlatform::Meet => &mut self.meet,
        }
    }
}

/// How fast the client may send requests: at most this many in any minute
/// (a burst may spend them at once).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    /// Most requests in any 60 seconds (`COOLIFY_API_REQUESTS_PER_MINUTE`).
    pub requests_per_minute: u32,
}

/// The longest wait for a connection: a Coolify that takes longer to accept
/// one is as good as down, whatever the request timeout allows.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the Coolify platform needs, validated.
#[derive(Clone, Debug)]
pub struct CoolifyConfig {
    /// The API base, always ending in `/api/v1`.
    pub api_url: Url,
    /// The API token.
    pub api_key: SecretString,
    /// The project holding the slots.
    pub project_uuid: String,
    /// The server new slots are created on.
    pub server_uuid: String,
    /// The environment new slots are created in.
    pub environment_name: String,
    /// The image of each meeting platform's bot; `None`: no new slots.
    pub images: PerMeetingPlatform<Option<BotImage>>,
    /// The most slots of each meeting platform.
    pub pool_max: PerMeetingPlatform<usize>,
    /// The most slot applications created in any one minute.
    pub pool_creations_per_minute: u32,
    /// The port bot containers expose.
    pub bot_port: u16,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Client-side pacing.
    pub pacing: Pacing,
    /// How calls that are safe to repeat are retried.
    pub retry: RetryPolicy,
}

impl CoolifyConfig {
    /// A configuration of the four required values, every other value at
    /// the default its variable documents ([`ENV_SPECS`]): no images, retries
    /// with the [`RetryPolicy`] defaults. `api_url` is normalised as
    /// [`normalise_api_url`] does.
    pub fn new(
        api_url: &str,
        api_key: SecretString,
        project_uuid: impl Into<String>,
        server_uuid: impl Into<String>,
    ) -> Result<Self, Error> {
        let env = MapEnv::from([
            (COOLIFY_API_URL.name, api_url.to_owned()),
            (COOLIFY_API_KEY.name, api_key.expose().to_owned()),
            (COOLIFY_PROJECT_UUID.name, project_uuid.into()),
            (COOLIFY_SERVER_UUID.name, server_uuid.into()),
        ]);
        Self::from_env(&env)
    }

    /// Reads and validates every variable in [`ENV_SPECS`], reporting every
    /// problem at once.
    pub fn from_env(env: &dyn EnvLookup) -> Result<Self, Error> {
        let loaded = load_env(PLATFORM, ENV_SPECS, env);
        // Image references need a check `ValueKind` cannot express; run it
        // even when other variables failed, so the operator sees everything.
        let mut problems = match &loaded {
            Err(Error::Config { problems, .. }) => problems.clone(),
            Err(other) => {
                return Err(Error::Internal {
                    platform: PLATFORM,
                    resource: "configuration".into(),
                    message: other.to_string(),
                });
            }
            Ok(_) => Vec::new(),
        };
        let mut images = PerMeetingPlatform::default();
        for platform in MeetingPlatform::ALL {
            let spec = image_spec(platform);
            if let Some((_, raw)) = spec.lookup(env) {
                match BotImage::parse(&raw) {
                    Ok(image) => *images.get_mut(platform) = Some(image),
                    Err(problem) => problems.push(ConfigProblem::new(
                        spec.name,
                        format!("{problem}: got {:?}", raw.trim()),
                    )),
                }
            }
        }
        let values = match loaded {
            Ok(values) if problems.is_empty() => values,
            _ => {
                return Err(Error::Config {
                    platform: PLATFORM,
                    problems,
                });
            }
        };
        let api_url = normalise_api_url(values.require(&COOLIFY_API_URL)?)
            .map_err(|problem| invalid(&COOLIFY_API_URL, problem))?;
        let mut pool_max = PerMeetingPlatform::all(0);
        for platform in MeetingPlatform::ALL {
            *pool_max.get_mut(platform) = number(&values, pool_max_spec(platform))?;
        }
        // Every typed value below has a default in its spec and was checked
        // against its kind by `load_env`, so none can be absent or out of
        // range; the defaults live in the specs alone.
        let request_timeout = checked(&COOLIFY_API_TIMEOUT, values.seconds(&COOLIFY_API_TIMEOUT))?;
        Ok(Self {
            api_url,
            api_key: checked(&COOLIFY_API_KEY, values.secret(&COOLIFY_API_KEY))?,
            project_uuid: values.require(&COOLIFY_PROJECT_UUID)?.to_owned(),
            server_uuid: values.require(&COOLIFY_SERVER_UUID)?.to_owned(),
            environment_name: values.require(&COOLIFY_ENVIRONMENT_NAME)?.to_owned(),
            images,
            pool_max,
            pool_creations_per_minute: number(&values, &COOLIFY_POOL_CREATIONS_PER_MINUTE)?,
            bot_port: number(&values, &COOLIFY_BOT_PORT)?,
            request_timeout,
            connect_timeout: request_timeout.min(MAX_CONNECT_TIMEOUT),
            pacing: Pacing {
                requests_per_minute: number(&values, &COOLIFY_API_REQUESTS_PER_MINUTE)?,
            },
            retry: RetryPolicy::default(),
        })
    }
}

/// A problem with `spec`'s value, as a configuration error.
fn invalid(spec: &EnvVarSpec, problem: impl Into<String>) -> Error {
    Error::Config {
        platform: PLATFORM,
        problems: vec![ConfigProblem::new(spec.name, problem)],
    }
}

/// A value `load_env` has already checked. Absent only if the spec and the
/// code that reads it disagree: reported as that variable's problem, never
/// replaced by a second copy of its default.
fn checked<T>(spec: &EnvVarSpec, value: Option<T>) -> Result<T, Error> {
    value.ok_or_else(|| {
        invalid(
            spec,
            format!("could not be read as {}", spec.kind.describe()),
        )
    })
}

/// A whole number `load_env` has already checked against its kind's range.
fn number<T: TryFrom<i64>>(values: &EnvValues, spec: &EnvVarSpec) -> Result<T, Error> {
    checked(spec, values.integer(spec).and_then(|n| T::try_from(n).ok()))
}

/// Turns what an operator types into the API base: `https://c.example.com`,
/// `https://c.example.com/`, `…/api` and `…/api/v1` all become
/// `https://c.example.com/api/v1`. A path in front (Coolify behind a prefix)
/// is kept.
pub fn normalise_api_url(input: &str) -> Result<Url, String> {
    let mut url = Url::parse(input.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.ends_with("/api/v1") {
        path
    } else if path.ends_with("/api") {
        format!("{path}/v1")
    } else {
        format!("{path}/api/v1")
    };
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use platform_core::MapEnv;

    use super::*;

    fn minimal() -> MapEnv {
        MapEnv::from([
            ("COOLIFY_API_URL", "https://coolify.example.com"),
            ("COOLIFY_API_KEY", "3|s3cr3t-token"),
            ("COOLIFY_PROJECT_UUID", "proj123"),
            ("COOLIFY_SERVER_UUID", "srv456"),
        ])
    }

    #[test]
    fn minimal_configuration_gets_the_documented_defaults() {
        let config = CoolifyConfig::from_env(&minimal()).unwrap();
        assert_eq!(
            config.api_url.as_str(),
            "https://coolify.example.com/api/v1"
        );
        assert_eq!(config.api_key.expose(), "3|s3cr3t-token");
        assert_eq!(config.project_uuid, "proj123");
        assert_eq!(config.server_uuid, "srv456");
        assert_eq!(config.environment_name, "production");
        assert_eq!(config.images, PerMeetingPlatform::default());
        assert_eq!(config.pool_max, PerMeetingPlatform::all(10));
        assert_eq!(config.bot_port, 3000);
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        assert_eq!(config.pacing.requests_per_minute, 180);
        assert_eq!(config.pool_creations_per_minute, 10);
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }

    #[test]
    fn new_takes_every_default_from_the_specs() {
        let from_env = CoolifyConfig::from_env(&minimal()).unwrap();
        let new = CoolifyConfig::new(
            "https://coolify.example.com",
            SecretString::new("3|s3cr3t-token"),
            "proj123",
            "srv456",
        )
        .unwrap();
        assert_eq!(format!("{new:?}"), format!("{from_env:?}"));
        for spec in ENV_SPECS {
            if let Some(default) = spec.default_value() {
                let number: Option<usize> = default.parse().ok();
                match spec.name {
                    "COOLIFY_ENVIRONMENT_NAME" => assert_eq!(new.environment_name, default),
                    "COOLIFY_POOL_MAX_ZOOM" => assert_eq!(Some(new.pool_max.zoom), number),
                    "COOLIFY_POOL_MAX_TEAMS" => assert_eq!(Some(new.pool_max.teams), number),
                    "COOLIFY_POOL_MAX_MEET" => assert_eq!(Some(new.pool_max.meet), number),
                    "COOLIFY_BOT_PORT" => assert_eq!(Some(usize::from(new.bot_port)), number),
                    "COOLIFY_API_TIMEOUT" => assert_eq!(
                        Some(new.request_timeout),
                        number.map(|n| Duration::from_secs(n as u64))
                    ),
                    "COOLIFY_API_REQUESTS_PER_MINUTE" => {
                        assert_eq!(Some(new.pacing.requests_per_minute as usize), number)
                    }
                    "COOLIFY_POOL_CREATIONS_PER_MINUTE" => {
                        assert_eq!(Some(new.pool_creations_per_minute as usize), number)
                    }
                    other => panic!("{other} has a default this test does not check"),
                }
            }
        }
    }

    #[test]
    fn a_value_that_cannot_be_read_is_reported_never_defaulted() {
        let Err(Error::Config { problems, .. }) = checked::<u16>(&COOLIFY_BOT_PORT, None) else {
            panic!("expected a config error");
        };
        assert_eq!(problems[0].variable, "COOLIFY_BOT_PORT");
        assert!(
            problems[0].problem.starts_with("could not be read as"),
            "{}",
            problems[0].problem
        );
    }

    #[test]
    fn the_token_alias_images_and_maxima_are_read() {
        let env = MapEnv::from([
            ("COOLIFY_API_URL", "https://coolify.example.com/api/v1/"),
            ("COOLIFY_API_TOKEN", "via-alias"),
            ("COOLIFY_PROJECT_UUID", "p"),
            ("COOLIFY_SERVER_UUID", "s"),
            ("COOLIFY_ENVIRONMENT_NAME", "bots"),
            ("COOLIFY_BOT_IMAGE_ZOOM", "ghcr.io/acme/zoom-bot:1.4.2"),
            ("COOLIFY_BOT_IMAGE_MEET", "localhost:5000/meet-bot:7"),
            ("COOLIFY_POOL_MAX_ZOOM", "25"),
            ("COOLIFY_POOL_MAX_TEAMS", "0"),
            ("COOLIFY_API_REQUESTS_PER_MINUTE", "60"),
        ]);
        let config = CoolifyConfig::from_env(&env).unwrap();
        assert_eq!(config.api_key.expose(), "via-alias");
        assert_eq!(config.environment_name, "bots");
        assert_eq!(
            config.images.zoom,
            Some(BotImage {
                name: "ghcr.io/acme/zoom-bot".into(),
                tag: "1.4.2".into()
            })
        );
        assert_eq!(
            config.images.meet,
            Some(BotImage {
                name: "localhost:5000/meet-bot".into(),
                tag: "7".into()
            })
        );
        assert_eq!(config.images.teams, None);
        assert_eq!(config.pool_max.zoom, 25);
        assert_eq!(config.pool_max.teams, 0);
        assert_eq!(config.pool_max.meet, 10);
        assert_eq!(config.pacing.requests_per_minute, 60);
    }

    #[test]
    fn every_problem_is_reported_at_once_and_the_key_never_shows() {
        let env = MapEnv::from([
            ("COOLIFY_API_KEY", "k3y-never-shown"),
            ("COOLIFY_BOT_IMAGE_TEAMS", "ghcr.io/acme/teams-bot"),
            ("COOLIFY_POOL_MAX_MEET", "9999"),
        ]);
        let err = CoolifyConfig::from_env(&env).unwrap_err();
        let Error::Config { platform, problems } = &err else {
            panic!("expected a config error, got {err:?}");
        };
        assert_eq!(*platform, "coolify");
        let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "COOLIFY_API_URL",
                "COOLIFY_PROJECT_UUID",
                "COOLIFY_SERVER_UUID",
                "COOLIFY_POOL_MAX_MEET",
                "COOLIFY_BOT_IMAGE_TEAMS"
            ]
        );
        let text = err.to_string();
        assert!(text.contains("no tag was given"), "{text}");
        assert!(text.contains("from 0 to 500"), "{text}");
        assert!(!text.contains("k3y-never-shown"));
        assert!(!format!("{err:?}").contains("k3y-never-shown"));
    }

    #[test]
    fn image_references() {
        assert_eq!(
            BotImage::parse("zoom-bot:2").unwrap().to_string(),
            "zoom-bot:2"
        );
        assert!(BotImage::parse("registry:5000/zoom-bot").is_err());
        assert!(BotImage::parse("zoom-bot:").is_err());
        assert!(BotImage::parse(":1").is_err());
        assert!(BotImage::parse("zoom-bot@sha256:abc").is_err());
        assert!(BotImage::parse("zoom bot:1").is_err());
    }

    #[test]
    fn api_urls_are_normalised() {
        for input in [
            "https://c.example.com",
            "https://c.example.com/",
            "https://c.example.com/api",
            "https://c.example.com/api/v1",
            "https://c.example.com/api/v1/",
        ] {
            assert_eq!(
                normalise_api_url(input).unwrap().as_str(),
                "https://c.example.com/api/v1",
                "{input}"
            );
        }
        assert_eq!(
            normalise_api_url("http://10.0.0.5:8000/coolify")
                .unwrap()
                .as_str(),
            "http://10.0.0.5:8000/coolify/api/v1"
        );
        assert!(normalise_api_url("ftp://c.example.com").is_err());
        assert!(normalise_api_url("https://c.example.com/?x=1").is_err());
    }
}
