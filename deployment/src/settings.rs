//! The service's own configuration, declared once as data.
//!
//! Every variable the `meeboter-deploy` binary reads is a `const`
//! [`EnvVarSpec`] here (or a platform's, in its plugin crate, or the
//! stand-in bot's in [`sim_bot`](crate::sim_bot)). Loading, `doctor`,
//! `platforms --json` and the generated docs all read these lists.

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::{
    ConfigProblem, DEPLOYMENT_PLATFORM, EnvLookup, EnvVarSpec, PLATFORM_PRIORITY, SecretString,
    ValueKind, load_env,
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

/// How often the orphan sweep runs.
pub const ORPHAN_SWEEP_INTERVAL: EnvVarSpec = EnvVarSpec::with_default(
    "ORPHAN_SWEEP_INTERVAL",
    "600",
    "Seconds between two orphan sweeps (serve and reconcile; the first runs at start-up). A sweep lists what the platform runs under this installation's mark and stops what no active bot holds, once it has been seen so on two sweeps at least PLATFORM_CALL_TIMEOUT apart, so a deploy in flight is never hit. 10 minutes bounds what a leaked Fargate task or slot costs while keeping the listing calls rare.",
)
.kind(ValueKind::Seconds {
    min: 10,
    max: 86_400,
});

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

/// How many deploys and stops one service process runs at once per
/// platform.
pub const DEPLOY_CONCURRENCY: EnvVarSpec = EnvVarSpec::with_default(
    "DEPLOY_CONCURRENCY",
    "32",
    "How many deploys and stops of one platform this service process runs at once, in its deploy workers. A create answers as soon as its bot is placed; the platform call waits here for a free worker, in the order bots were placed, and each platform paces its own calls under its rate limits (ECS's RunTask bucket, Coolify's requests per minute). 32 keeps ECS's launch burst busy; lower it to spare a small Coolify server.",
)
.kind(ValueKind::Integer { min: 1, max: 512 });

/// How long a bot may wait in the queue.
pub const QUEUE_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "QUEUE_TIMEOUT",
    "600",
    "Seconds a bot may wait in the queue (no platform of PLATFORM_PRIORITY had room under its cap) before it fails with the reason queue_timeout. A meeting bot that joins ten minutes late is rarely still wanted; raise it for bots that may start late.",
)
.kind(ValueKind::Seconds {
    min: 10,
    max: 86_400,
});

/// Where bots reach the service (the bot protocol).
pub const BOT_API_URL: EnvVarSpec = EnvVarSpec::optional(
    "BOT_API_URL",
    "The URL bots use to reach this service for the bot protocol; every bot gets it as MEEBOTER_API_URL, with its own BOT_TOKEN. Defaults to http://LISTEN_ADDR (a wildcard address read as 127.0.0.1) on the local platform; required on every other platform, where bots run elsewhere (for example https://meeboter.example.com; serve refuses to start without it, doctor checks it).",
)
.kind(ValueKind::Url);

/// How long a bot in a meeting may stay silent.
pub const HEARTBEAT_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "HEARTBEAT_TIMEOUT",
    "300",
    "Seconds a bot in a meeting (joining, in_waiting_room, in_call) may go without a heartbeat, once it has sent one, before it is failed as heartbeat_timeout and torn down. Bots heartbeat every 10 s; keep this many heartbeats long. A bot that never heartbeats (a plain image) is never judged by it.",
)
.kind(ValueKind::Seconds {
    min: 5,
    max: 86_400,
});

/// How long a bot asked to leave has to end on its own.
pub const LEAVE_GRACE: EnvVarSpec = EnvVarSpec::with_default(
    "LEAVE_GRACE",
    "60",
    "Seconds a bot asked to leave (POST /v1/bots/{id}/leave, meeboter-deploy leave) has to report call_ended and exit before the service stops it as stop does.",
)
.kind(ValueKind::Seconds { min: 1, max: 3600 });

/// Whether a bot must speak the bot protocol.
pub const BOT_PROTOCOL_REQUIRED: EnvVarSpec = EnvVarSpec::with_default(
    "BOT_PROTOCOL_REQUIRED",
    "false",
    "When true, a running bot that has neither heartbeat nor reported a meeting status within DEPLOY_TIMEOUT of its deploy is failed (bot_protocol_silent) and torn down. When false, a bot image that does not speak the protocol runs as before.",
)
.kind(ValueKind::Bool);

/// How many bot-protocol requests a bot may make per minute.
pub const BOT_EVENTS_PER_MINUTE: EnvVarSpec = EnvVarSpec::with_default(
    "BOT_EVENTS_PER_MINUTE",
    "120",
    "How many bot-protocol requests (heartbeats, events, config reads) one bot may make per minute, in bursts of up to as many; more are answered 429 bot_rate_limited with Retry-After and change nothing. Counted by each service process.",
)
.kind(ValueKind::Integer {
    min: 1,
    max: 100_000,
});

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
    "Which logs are written: error, warn, info, debug, trace or off, or comma-separated directives such as info,deployment=debug (a target, =, then one of those levels). Anything else is refused at start. One-shot CLI commands (deploy, stop, status, …) log warnings only unless this is set.",
);

/// The levels a `LOG_LEVEL` directive may name.
const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// Checks a `LOG_LEVEL` value: comma-separated directives, each a level or
/// `target=level`, as the log filter reads them. A bare word that is not
/// a level (`warning`) would be read as a target name and silence every
/// log, errors included, so it is refused.
pub fn check_log_level(value: &str) -> Result<(), String> {
    let allowed = LOG_LEVELS.join(", ");
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("is empty; use one of {allowed}"));
    }
    for directive in value.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) => {
                let target_ok = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'));
                if !target_ok {
                    return Err(format!(
                        "has the directive {:?}, whose target is not a module path such as deployment or platform_aws::client",
                        directive.chars().take(60).collect::<String>()
                    ));
                }
                level
            }
            None => directive,
        };
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "has {:?}, which is not a level; use one of {allowed}, or target=level such as info,deployment=debug",
                level.chars().take(40).collect::<String>()
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(drop)
        .map_err(|e| format!("is not a log filter: {e}"))
}

/// The operator's webhook receiver.
pub const WEBHOOK_URL: EnvVarSpec = EnvVarSpec::optional(
    "WEBHOOK_URL",
    "Where every bot's status webhooks are sent (serve), signed by the Standard Webhooks specification (docs/WEBHOOKS.md): an http(s) URL the operator trusts, so it is not checked against private addresses. Requires WEBHOOK_SECRET. Bots may also name their own receiver (webhook_url on create). Secret because a receiver URL often carries a token.",
)
.kind(ValueKind::Url)
.secret();

/// The key webhooks are signed with.
pub const WEBHOOK_SECRET: EnvVarSpec = EnvVarSpec::optional(
    "WEBHOOK_SECRET",
    "The Standard Webhooks signing secret: whsec_ followed by the base64 of 24 to 64 random bytes (echo whsec_$(openssl rand -base64 32)). Required by WEBHOOK_URL and by bots created with a webhook_url; receivers verify the webhook-signature header with it.",
)
.secret();

/// The key being retired.
pub const WEBHOOK_SECRET_PREVIOUS: EnvVarSpec = EnvVarSpec::optional(
    "WEBHOOK_SECRET_PREVIOUS",
    "While rotating WEBHOOK_SECRET: the old secret, same format. Every webhook then carries both signatures in its webhook-signature header, so receivers keep verifying until they have the new secret; unset it once they do.",
)
.secret();

/// How long one delivery attempt may take.
pub const WEBHOOK_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "WEBHOOK_TIMEOUT",
    "10",
    "Seconds a webhook receiver has to answer one delivery attempt (connection included) before the attempt counts as failed and is retried on the schedule of docs/WEBHOOKS.md.",
)
.kind(ValueKind::Seconds { min: 1, max: 120 });

/// How long a webhook is retried.
pub const WEBHOOK_MAX_AGE: EnvVarSpec = EnvVarSpec::with_default(
    "WEBHOOK_MAX_AGE",
    "86400",
    "Seconds after its event a webhook that no receiver accepted is given up and marked failed (GET /v1/bots/{id}/webhooks shows it; POST /v1/webhooks/{delivery}/retry sends it again). 24 hours by default: a receiver down for a night still gets everything.",
)
.kind(ValueKind::Seconds {
    min: 60,
    max: 604_800,
});

/// Whether bots' webhooks may go to private addresses.
pub const WEBHOOK_ALLOW_PRIVATE: EnvVarSpec = EnvVarSpec::with_default(
    "WEBHOOK_ALLOW_PRIVATE",
    "false",
    "Whether a bot's own webhook_url may be http or reach loopback, private, link-local (cloud metadata) or reserved addresses. Keep false wherever API clients are not fully trusted: true lets a client make this service call anything it can reach. For development and tests on one machine.",
)
.kind(ValueKind::Bool);

/// Every variable of the service itself, in the order the docs list them.
pub const SERVICE_ENV: &[EnvVarSpec] = &[
    DEPLOYMENT_PLATFORM,
    PLATFORM_PRIORITY,
    DATABASE_URL,
    LISTEN_ADDR,
    API_TOKEN,
    API_MAX_BODY_BYTES,
    SHUTDOWN_GRACE,
    RECONCILE_INTERVAL,
    ORPHAN_SWEEP_INTERVAL,
    DEPLOY_TIMEOUT,
    PLATFORM_CALL_TIMEOUT,
    DEPLOY_CONCURRENCY,
    QUEUE_TIMEOUT,
    crate::schedule::AWS_DEPLOY_LEAD,
    crate::schedule::COOLIFY_DEPLOY_LEAD,
    crate::schedule::LOCAL_DEPLOY_LEAD,
    crate::schedule::K8S_DEPLOY_LEAD,
    crate::schedule::DEPLOY_JITTER,
    crate::schedule::SCHEDULE_MAX_LATENESS,
    BOT_API_URL,
    HEARTBEAT_TIMEOUT,
    LEAVE_GRACE,
    BOT_PROTOCOL_REQUIRED,
    BOT_EVENTS_PER_MINUTE,
    LOG_FORMAT,
    LOG_LEVEL,
    WEBHOOK_URL,
    WEBHOOK_SECRET,
    WEBHOOK_SECRET_PREVIOUS,
    WEBHOOK_TIMEOUT,
    WEBHOOK_MAX_AGE,
    WEBHOOK_ALLOW_PRIVATE,
];

impl ServiceSettings {
    /// Where bots of `platform` reach this service: `BOT_API_URL`, or on
    /// the local platform (bots run on this machine) this service's own
    /// listen address. On any other platform a missing `BOT_API_URL` is a
    /// problem naming the variable.
    pub fn bot_api_url_for(&self, platform: &str) -> Result<String, ConfigProblem> {
        if let Some(url) = &self.bot_api_url {
            return Ok(url.clone());
        }
        if platform == "local" {
            let mut addr = self.listen_addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            return Ok(format!("http://{addr}"));
        }
        Err(ConfigProblem::new(
            BOT_API_URL.name,
            format!(
                "is not set, but bots on the {platform} platform run elsewhere and need the URL they reach this service at (their MEEBOTER_API_URL for heartbeats and meeting-status reports); set it, for example to https://meeboter.example.com"
            ),
        ))
    }
}

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
    /// `ORPHAN_SWEEP_INTERVAL`.
    pub orphan_sweep_interval: Duration,
    /// `DEPLOY_TIMEOUT`.
    pub deploy_timeout: Duration,
    /// `PLATFORM_CALL_TIMEOUT`.
    pub platform_call_timeout: Duration,
    /// `DEPLOY_CONCURRENCY`.
    pub deploy_concurrency: usize,
    /// `QUEUE_TIMEOUT`.
    pub queue_timeout: Duration,
    /// `BOT_API_URL`, without a trailing slash.
    pub bot_api_url: Option<String>,
    /// `HEARTBEAT_TIMEOUT`.
    pub heartbeat_timeout: Duration,
    /// `LEAVE_GRACE`.
    pub leave_grace: Duration,
    /// `BOT_PROTOCOL_REQUIRED`.
    pub bot_protocol_required: bool,
    /// `BOT_EVENTS_PER_MINUTE`.
    pub bot_events_per_minute: u32,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`.
    pub log_level: String,
    /// `WEBHOOK_*`.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// `*_DEPLOY_LEAD`, `DEPLOY_JITTER`, `SCHEDULE_MAX_LATENESS`.
    pub schedule: crate::schedule::ScheduleOptions,
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
            .or_else(|| LISTEN_ADDR.default_value().map(str::to_owned))
            .unwrap_or_default();
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
        if let Some((name, level)) = LOG_LEVEL.lookup(env)
            && let Err(problem) = check_log_level(&level)
        {
            problems.push(ConfigProblem::new(name, problem));
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
        let webhooks = crate::webhooks::WebhookSettings::load(env, &mut problems);
        let schedule = crate::schedule::ScheduleOptions::load(env);
        match (values, listen_addr, webhooks, schedule) {
            (Some(values), Some(listen_addr), Some(webhooks), Some(schedule))
                if problems.is_empty() =>
            {
                // Every value below has a default in its spec and was
                // checked by `load_env`; the defaults live in the specs alone.
                let log_format = match values.require(&LOG_FORMAT)? {
                    v if v.eq_ignore_ascii_case("json") => LogFormat::Json,
                    _ => LogFormat::Human,
                };
                Ok(Self {
                    database_url: SecretString::from(values.require(&DATABASE_URL)?),
                    listen_addr,
                    api_token: values.secret(&API_TOKEN),
                    api_max_body_bytes: values.checked_integer(&API_MAX_BODY_BYTES)?,
                    shutdown_grace: values.checked_seconds(&SHUTDOWN_GRACE)?,
                    reconcile_interval: values.checked_seconds(&RECONCILE_INTERVAL)?,
                    orphan_sweep_interval: values.checked_seconds(&ORPHAN_SWEEP_INTERVAL)?,
                    deploy_timeout: values.checked_seconds(&DEPLOY_TIMEOUT)?,
                    platform_call_timeout: values.checked_seconds(&PLATFORM_CALL_TIMEOUT)?,
                    deploy_concurrency: values.checked_integer(&DEPLOY_CONCURRENCY)?,
                    queue_timeout: values.checked_seconds(&QUEUE_TIMEOUT)?,
                    bot_api_url: values
                        .get(&BOT_API_URL)
                        .map(|url| url.trim().trim_end_matches('/').to_owned()),
                    heartbeat_timeout: values.checked_seconds(&HEARTBEAT_TIMEOUT)?,
                    leave_grace: values.checked_seconds(&LEAVE_GRACE)?,
                    bot_protocol_required: values.checked_bool(&BOT_PROTOCOL_REQUIRED)?,
                    bot_events_per_minute: values.checked_integer(&BOT_EVENTS_PER_MINUTE)?,
                    log_format,
                    log_level: values.require(&LOG_LEVEL)?.trim().to_owned(),
                    webhooks,
                    schedule,
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
    fn a_log_level_that_is_not_one_is_refused_by_name() {
        for bad in ["warning", "info,deployment=verbose", "=debug", "inf o"] {
            let env = MapEnv::from([("LOG_LEVEL", bad)]);
            let text = ServiceSettings::load(&env).unwrap_err().to_string();
            assert!(text.contains("LOG_LEVEL"), "{bad}: {text}");
        }
        for good in [
            "warn",
            "INFO",
            "info,deployment=debug",
            "off",
            "platform_aws::client=trace",
        ] {
            let env = MapEnv::from([("LOG_LEVEL", good)]);
            assert!(ServiceSettings::load(&env).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_orphan_sweep_runs_every_ten_minutes_by_default() {
        let settings = ServiceSettings::load(&MapEnv::new()).unwrap();
        assert_eq!(settings.orphan_sweep_interval, Duration::from_secs(600));
        let env = MapEnv::from([("ORPHAN_SWEEP_INTERVAL", "5")]);
        let text = ServiceSettings::load(&env).unwrap_err().to_string();
        assert!(text.contains("ORPHAN_SWEEP_INTERVAL"), "{text}");
    }

    #[test]
    fn the_bot_protocol_has_defaults_and_a_local_url() {
        let settings = ServiceSettings::load(&MapEnv::new()).unwrap();
        assert_eq!(settings.heartbeat_timeout, Duration::from_secs(300));
        assert_eq!(settings.leave_grace, Duration::from_secs(60));
        assert!(!settings.bot_protocol_required);
        assert_eq!(settings.bot_events_per_minute, 120);
        assert_eq!(
            settings.bot_api_url_for("local").unwrap(),
            "http://127.0.0.1:8080"
        );
        let problem = settings.bot_api_url_for("coolify").unwrap_err();
        assert!(problem.to_string().contains("BOT_API_URL"), "{problem}");
        let env = MapEnv::from([
            ("BOT_API_URL", "https://bots.example.com/"),
            ("LISTEN_ADDR", "0.0.0.0:9000"),
        ]);
        let settings = ServiceSettings::load(&env).unwrap();
        assert_eq!(
            settings.bot_api_url_for("aws").unwrap(),
            "https://bots.example.com"
        );
        let env = MapEnv::from([("LISTEN_ADDR", "0.0.0.0:9000")]);
        let settings = ServiceSettings::load(&env).unwrap();
        assert_eq!(
            settings.bot_api_url_for("local").unwrap(),
            "http://127.0.0.1:9000"
        );
        let env = MapEnv::from([
            ("BOT_API_URL", "bots.example.com"),
            ("HEARTBEAT_TIMEOUT", "1"),
            ("BOT_EVENTS_PER_MINUTE", "0"),
            ("BOT_PROTOCOL_REQUIRED", "maybe"),
        ]);
        let text = ServiceSettings::load(&env).unwrap_err().to_string();
        for name in [
            "BOT_API_URL",
            "HEARTBEAT_TIMEOUT",
            "BOT_EVENTS_PER_MINUTE",
            "BOT_PROTOCOL_REQUIRED",
        ] {
            assert!(text.contains(name), "{name}: {text}");
        }
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
