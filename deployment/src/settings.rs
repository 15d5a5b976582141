//! The service's own configuration, declared once as data.
//!
//! Every variable the `meeboter-deploy` binary reads is a `const`
//! [`EnvVarSpec`] here (or a platform's, in its plugin crate, or the
//! stand-in bot's in [`sim_bot`](crate::sim_bot)). Loading, `doctor`,
//! `platforms --json` and the generated docs all read these lists.

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::{
    ConfigProblem, DEPLOYMENT_PLATFORM, EnvLookup, EnvVarSpec, SecretString, ValueKind, load_env,
};

/// Where the service keeps its state.
pub const DATABASE_URL: EnvVarSpec = EnvVarSpec::with_default(
    "DATABASE_URL",
    "sqlite:meeboter-deploy.db",
    "Where the service keeps its bots: sqlite:<path> (a file, created on first start, readable by its owner only) or postgres://user@host:5432/database for production and several service processes. Secret because a PostgreSQL URL may hold a password.",
)
.secret();

/// Where `serve` listens.
pub const LISTEN_ADDR: EnvVarSpec = EnvVarSpec::with_default(
    "LISTEN_ADDR",
    "127.0.0.1:8080",
    "The address and port the HTTP API listens on (serve). Binding to a non-loopback address requires API_TOKEN.",
);

/// The API's bearer token.
pub const API_TOKEN: EnvVarSpec = EnvVarSpec::optional(
    "API_TOKEN",
    "The bearer token every API request must carry (serve), at least 16 characters (for example the output of `openssl rand -hex 32`). Required when LISTEN_ADDR is not a loopback address; on loopback one is generated at start and printed once when unset. /healthz, /readyz and /metrics need no token.",
)
.secret();

/// The shortest `API_TOKEN` accepted: shorter ones can be guessed.
pub const MIN_API_TOKEN_CHARS: usize = 16;

/// The largest request body the API reads.
pub const API_MAX_BODY_BYTES: EnvVarSpec = EnvVarSpec::with_default(
    "API_MAX_BODY_BYTES",
    "65536",
    "The largest request body, in bytes, the HTTP API reads (serve); a larger one is refused with 413 body_too_large before it is parsed. A bot request is well under 4 KiB.",
)
.kind(ValueKind::Integer {
    min: 1024,
    max: 10_485_760,
});

/// How long `serve` waits for requests in flight when asked to stop.
pub const SHUTDOWN_GRACE: EnvVarSpec = EnvVarSpec::with_default(
    "SHUTDOWN_GRACE",
    "30",
    "Seconds serve waits, after SIGTERM or SIGINT, for requests in flight to finish before it exits anyway. New connections are refused at once. A deploy cut off by the deadline is finished by the reconciler on the next start, and running bots keep running either way.",
)
.kind(ValueKind::Seconds { min: 0, max: 600 });

/// How often the reconciler runs.
pub const RECONCILE_INTERVAL: EnvVarSpec = EnvVarSpec::with_default(
    "RECONCILE_INTERVAL",
    "10",
    "Seconds between two reconciler passes, which sync every active bot's status from the platform in batches, finish work a crash left half-done and release what ended bots held. 10 s notices an ended bot quickly while costing one batch call per 100 bots per pass.",
)
.kind(ValueKind::Seconds { min: 1, max: 3600 });

/// How long a deploy may take before it counts as failed.
pub const DEPLOY_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "DEPLOY_TIMEOUT",
    "600",
    "Seconds a bot may take from the deploy request to running before it is failed and cleaned up. At least 300: Fargate tasks with large images take minutes to start.",
)
.kind(ValueKind::Seconds {
    min: 300,
    max: 86_400,
});

/// How long one platform call (with its retries) may take.
pub const PLATFORM_CALL_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "PLATFORM_CALL_TIMEOUT",
    "60",
    "Seconds one platform call (a deploy or a stop, the platform's own retries included) may take before the service stops waiting and leaves it to the reconciler. Also how long a request's claim on a bot keeps the reconciler away from it, so after a crash the reconciler takes over at most this long (plus 2 s) later.",
)
.kind(ValueKind::Seconds { min: 1, max: 600 });

/// Human or JSON logs.
pub const LOG_FORMAT: EnvVarSpec = EnvVarSpec::with_default(
    "LOG_FORMAT",
    "human",
    "How logs are written to standard error: human (readable lines) or json (one JSON object per line, for log collectors).",
)
.kind(ValueKind::OneOf {
    values: &["human", "json"],
});

/// Which logs are written.
pub const LOG_LEVEL: EnvVarSpec = EnvVarSpec::with_default(
    "LOG_LEVEL",
    "info",
    "Which logs are written: error, warn, info, debug or trace, or per-module directives such as info,deployment=debug. One-shot CLI commands (deploy, stop, status, …) log warnings only unless this is set.",
);

/// Every variable of the service itself, in the order the docs list them.
pub const SERVICE_ENV: &[EnvVarSpec] = &[
    DEPLOYMENT_PLATFORM,
    DATABASE_URL,
    LISTEN_ADDR,
    API_TOKEN,
    API_MAX_BODY_BYTES,
    SHUTDOWN_GRACE,
    RECONCILE_INTERVAL,
    DEPLOY_TIMEOUT,
    PLATFORM_CALL_TIMEOUT,
    LOG_FORMAT,
    LOG_LEVEL,
];

/// The meeting URL for `meeboter-deploy deploy`, so a passcode in it never
/// appears in `ps` output as a flag.
pub const MEETING_URL_ENV: EnvVarSpec = EnvVarSpec::optional(
    "MEEBOTER_MEETING_URL",
    "The meeting URL for `meeboter-deploy deploy` when --meeting-url is not given, so a passcode in the link never shows in the process list.",
)
.secret();

/// The meeting password for `meeboter-deploy deploy`, so it never appears
/// in `ps` output as a flag.
pub const MEETING_PASSWORD_ENV: EnvVarSpec = EnvVarSpec::optional(
    "MEEBOTER_MEETING_PASSWORD",
    "The meeting password for `meeboter-deploy deploy` (instead of --password-stdin), so it never shows in the process list.",
)
.secret();

/// Variables only the CLI's commands read.
pub const CLI_ENV: &[EnvVarSpec] = &[MEETING_URL_ENV, MEETING_PASSWORD_ENV];

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The service's configuration, loaded and checked.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// `DATABASE_URL`.
    pub database_url: SecretString,
    /// `LISTEN_ADDR`.
    pub listen_addr: SocketAddr,
    /// `API_TOKEN`.
    pub api_token: Option<SecretString>,
    /// `API_MAX_BODY_BYTES`.
    pub api_max_body_bytes: usize,
    /// `SHUTDOWN_GRACE`.
    pub shutdown_grace: Duration,
    /// `RECONCILE_INTERVAL`.
    pub reconcile_interval: Duration,
    /// `DEPLOY_TIMEOUT`.
    pub deploy_timeout: Duration,
    /// `PLATFORM_CALL_TIMEOUT`.
    pub platform_call_timeout: Duration,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`.
    pub log_level: String,
}

impl ServiceSettings {
    /// Loads every service variable from `env`, or lists every problem at
    /// once as a config error of `service`.
    pub fn load(env: &dyn EnvLookup) -> Result<Self, platform_core::Error> {
        let mut problems = Vec::new();
        let values = match load_env("service", SERVICE_ENV, env) {
            Ok(values) => Some(values),
            Err(platform_core::Error::Config {
                problems: found, ..
            }) => {
                problems.extend(found);
                None
            }
            Err(other) => return Err(other),
        };
        // Checks the spec kinds cannot express, reported with the others.
        let listen_addr = LISTEN_ADDR
            .lookup(env)
            .map(|(_, v)| v)
            .unwrap_or_else(|| LISTEN_ADDR.default_value().unwrap_or_default().to_owned());
        let listen_addr = match listen_addr.trim().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                problems.push(ConfigProblem::new(
                    LISTEN_ADDR.name,
                    format!(
                        "is not an address and port such as 127.0.0.1:8080 or 0.0.0.0:8080: got {:?}",
                        listen_addr.chars().take(80).collect::<String>()
                    ),
                ));
                None
            }
        };
        if let Some((_, url)) = DATABASE_URL.lookup(env) {
            let url = url.trim();
            let supported = ["sqlite:", "postgres://", "postgresql://"];
            if !supported.iter().any(|s| url.starts_with(s)) {
                problems.push(ConfigProblem::new(
                    DATABASE_URL.name,
                    "is not sqlite:<path> or postgres://user@host:5432/database",
                ));
            }
        }
        if let Some((name, token)) = API_TOKEN.lookup(env)
            && token.trim().chars().count() < MIN_API_TOKEN_CHARS
        {
            // Never echo the token, not even its length.
            problems.push(ConfigProblem::new(
                name,
                format!(
                    "is too short to resist guessing; use at least {MIN_API_TOKEN_CHARS} characters, for example the output of `openssl rand -hex 32`"
                ),
            ));
        }
        match (values, listen_addr) {
            (Some(values), Some(listen_addr)) if problems.is_empty() => {
                let log_format = match values.get(&LOG_FORMAT) {
                    Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
                    _ => LogFormat::Human,
                };
                Ok(Self {
                    database_url: values
                        .secret(&DATABASE_URL)
                        .unwrap_or_else(|| SecretString::new("sqlite:meeboter-deploy.db")),
                    listen_addr,
                    api_token: values.secret(&API_TOKEN),
                    api_max_body_bytes: values
                        .integer(&API_MAX_BODY_BYTES)
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(65_536),
                    shutdown_grace: values
                        .seconds(&SHUTDOWN_GRACE)
                        .unwrap_or(Duration::from_secs(30)),
                    reconcile_interval: values
                        .seconds(&RECONCILE_INTERVAL)
                        .unwrap_or(Duration::from_secs(10)),
                    deploy_timeout: values
                        .seconds(&DEPLOY_TIMEOUT)
                        .unwrap_or(Duration::from_secs(600)),
                    platform_call_timeout: values
                        .seconds(&PLATFORM_CALL_TIMEOUT)
                        .unwrap_or(Duration::from_secs(60)),
                    log_format,
                    log_level: values.get(&LOG_LEVEL).unwrap_or("info").to_owned(),
                })
            }
            _ => Err(platform_core::Error::Config {
                platform: "service",
                problems,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use platform_core::MapEnv;

    use super::*;

    #[test]
    fn defaults_need_nothing_set() {
        let settings = ServiceSettings::load(&MapEnv::new()).unwrap();
        assert_eq!(settings.database_url.expose(), "sqlite:meeboter-deploy.db");
        assert_eq!(settings.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.reconcile_interval, Duration::from_secs(10));
        assert!(settings.deploy_timeout >= Duration::from_secs(300));
        assert_eq!(settings.log_format, LogFormat::Human);
        assert!(settings.api_token.is_none());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env = MapEnv::from([
            ("DATABASE_URL", "mysql://root:hunter2@db/x"),
            ("LISTEN_ADDR", "localhost"),
            ("DEPLOY_TIMEOUT", "60"),
            ("LOG_FORMAT", "xml"),
        ]);
        let err = ServiceSettings::load(&env).unwrap_err();
        let text = err.to_string();
        for name in [
            "DATABASE_URL",
            "LISTEN_ADDR",
            "DEPLOY_TIMEOUT",
            "LOG_FORMAT",
        ] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
        assert!(text.starts_with("service: invalid configuration"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("whole seconds from 300"), "{text}");
    }

    #[test]
    fn the_secret_token_never_prints() {
        let env = MapEnv::from([("API_TOKEN", "tok-s3cret-0123456789")]);
        let settings = ServiceSettings::load(&env).unwrap();
        assert!(!format!("{settings:?}").contains("tok-s3cret"));
    }

    #[test]
    fn a_short_token_is_refused_without_echoing_it() {
        let env = MapEnv::from([("API_TOKEN", "hunter2")]);
        let text = ServiceSettings::load(&env).unwrap_err().to_string();
        assert!(text.contains("API_TOKEN"), "{text}");
        assert!(text.contains("at least 16 characters"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn body_limit_and_shutdown_grace_have_defaults_and_bounds() {
        let settings = ServiceSettings::load(&MapEnv::new()).unwrap();
        assert_eq!(settings.api_max_body_bytes, 65_536);
        assert_eq!(settings.shutdown_grace, Duration::from_secs(30));
        let env = MapEnv::from([("API_MAX_BODY_BYTES", "12"), ("SHUTDOWN_GRACE", "-1")]);
        let text = ServiceSettings::load(&env).unwrap_err().to_string();
        assert!(text.contains("API_MAX_BODY_BYTES"), "{text}");
        assert!(text.contains("SHUTDOWN_GRACE"), "{text}");
    }
}
