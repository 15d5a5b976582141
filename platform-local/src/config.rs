//! The local platform's configuration: its environment variables, declared
//! once as data, and [`LocalConfig`].

use std::path::PathBuf;
use std::time::Duration;

use platform_core::{ConfigProblem, EnvLookup, EnvVarSpec, Error, MapEnv, ValueKind, load_env};

use crate::command_line::BotCommand;
use crate::error::PLATFORM;

/// The bot command.
pub const LOCAL_BOT_COMMAND: EnvVarSpec = EnvVarSpec::with_default(
    "LOCAL_BOT_COMMAND",
    "meeboter-deploy sim-bot",
    "The command run for each bot, one process per bot. It is split into program and arguments with shell-like quoting ('…', \"…\", backslash) but not run by a shell: no variables, pipes or redirections (write sh -c '…' for those). The bot gets only its configuration (BOT_ID, MEETING_URL, …), BOT_PORT (a free port on 127.0.0.1 where it should listen: the bot's connection URL is http://127.0.0.1:BOT_PORT), MEEBOTER_LOCAL_INSTANCE (a marker), and the variables listed in LOCAL_BOT_INHERIT_ENV. The default runs the built-in stand-in bot, which joins no meeting; `meeboter-deploy` means this very executable when the service is meeboter-deploy.",
);

/// Where bot records and logs are kept.
pub const LOCAL_STATE_DIR: EnvVarSpec = EnvVarSpec::with_default(
    "LOCAL_STATE_DIR",
    "./meeboter-local",
    "Directory (created if missing, owner-only) where the local platform keeps one small record per bot in bots/<installation id>/, so a restarted service finds the bots it started, and each bot's output in logs/<installation id>/bot-<id>-attempt-<n>.log. Installations (databases) sharing the directory never see each other's bots. Logs are kept for 7 days after the bot is cleaned up. A relative path is taken from the service's working directory at start-up; a service started on another directory still stops and cleans up the bots it started before, through the marker in their environment.",
);

/// The stop grace period.
pub const LOCAL_STOP_GRACE_SECONDS: EnvVarSpec = EnvVarSpec::with_default(
    "LOCAL_STOP_GRACE_SECONDS",
    "10",
    "How long a stopping bot may take to leave its meeting after SIGTERM before it and everything it started are killed with SIGKILL. 0 kills at once.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// The cap on running bots.
pub const LOCAL_MAX_BOTS: EnvVarSpec = EnvVarSpec::optional(
    "LOCAL_MAX_BOTS",
    "The most bots running on this machine at once; a deploy beyond it fails with a retryable capacity error. Unset: no limit.",
)
.kind(ValueKind::Integer {
    min: 1,
    max: 100_000,
});

/// How long a new bot is watched for an immediate exit.
pub const LOCAL_START_CHECK_MS: EnvVarSpec = EnvVarSpec::with_default(
    "LOCAL_START_CHECK_MS",
    "200",
    "How long, in milliseconds, a deploy watches a new bot process before reporting it started: a bot that exits within this time (a taken port, a bad argument) fails the deploy with its exit status and the end of its log. 0 skips the check.",
)
.kind(ValueKind::Integer { min: 0, max: 60_000 });

/// Extra variables passed from the service's environment to bots.
pub const LOCAL_BOT_INHERIT_ENV: EnvVarSpec = EnvVarSpec::optional(
    "LOCAL_BOT_INHERIT_ENV",
    "Names of variables of the service's own environment that bots also get, comma-separated; a name ending in * takes every variable with that prefix (DISPLAY,PUPPETEER_*). Bots always get PATH, HOME, USER, LOGNAME, LANG, LC_*, TZ, TMPDIR, RUST_LOG, RUST_BACKTRACE and the stand-in bot's SIM_BOT_* settings, and nothing else: the service's environment holds its credentials (database URL, API tokens, cloud keys), which a bot must not see.",
)
.kind(ValueKind::List);

/// Every variable the local platform reads.
pub const ENV_VARS: &[EnvVarSpec] = &[
    LOCAL_BOT_COMMAND,
    LOCAL_STATE_DIR,
    LOCAL_STOP_GRACE_SECONDS,
    LOCAL_MAX_BOTS,
    LOCAL_START_CHECK_MS,
    LOCAL_BOT_INHERIT_ENV,
];

/// Variables of the service's environment every bot gets: what a program
/// needs to find its tools, its home and its locale, our log settings, and
/// the settings of the built-in stand-in bot (`SIM_BOT_LIFETIME`, …), the
/// default bot, so an operator trying it can set them where they set
/// everything else. None of them is a secret.
pub const ALWAYS_INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_*",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "SIM_BOT_*",
];

/// How the local platform runs bots.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LocalConfig {
    /// The command run for each bot.
    pub command: BotCommand,
    /// Where bot records and logs are kept.
    pub state_dir: PathBuf,
    /// How long a bot may take to stop after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// The most bots running at once; `None` for no limit.
    pub max_bots: Option<usize>,
    /// How long a deploy watches a new bot for an immediate exit.
    pub start_check: Duration,
    /// Names (or `PREFIX*` patterns) of service variables bots also get,
    /// besides [`ALWAYS_INHERITED_ENV`].
    pub inherit_env: Vec<String>,
}

impl LocalConfig {
    /// A config running `command` with its state in `state_dir`, and the
    /// documented defaults (those of [`ENV_VARS`]) for everything else.
    pub fn new(command: BotCommand, state_dir: impl Into<PathBuf>) -> Self {
        // An empty environment reads as every spec's default, so the
        // defaults have one home. Those defaults are valid, as
        // `defaults_when_nothing_is_set` checks.
        let defaults = Self::from_env(&MapEnv::new()).unwrap_or_else(|e| {
            unreachable!("the local platform's env specs have invalid defaults: {e}")
        });
        Self {
            command,
            state_dir: state_dir.into(),
            ..defaults
        }
    }

    /// Reads the configuration from [`ENV_VARS`], reporting every problem
    /// at once.
    pub fn from_env(env: &dyn EnvLookup) -> Result<Self, Error> {
        let loaded = load_env(PLATFORM, ENV_VARS, env);
        // The command line is checked even when other variables are wrong,
        // so one run reports every problem; it is loaded on its own for
        // that, with its default from its spec.
        const COMMAND_ONLY: &[EnvVarSpec] = &[LOCAL_BOT_COMMAND];
        let command_line = load_env(PLATFORM, COMMAND_ONLY, env)?;
        let command = BotCommand::parse(command_line.require(&LOCAL_BOT_COMMAND)?)
            .map_err(|e| ConfigProblem::new(LOCAL_BOT_COMMAND.name, e.to_string()));
        let (values, command) = match (loaded, command) {
            (Ok(values), Ok(command)) => (values, command),
            (loaded, command) => {
                let mut problems = match loaded {
                    Err(Error::Config { problems, .. }) => problems,
                    Err(other) => return Err(other),
                    Ok(_) => Vec::new(),
                };
                problems.extend(command.err());
                problems.sort_by_key(|p| ENV_VARS.iter().position(|s| s.name == p.variable));
                return Err(Error::Config {
                    platform: PLATFORM,
                    problems,
                });
            }
        };
        // Every typed value below was checked against its kind by
        // `load_env`, and those with a default got it there: the defaults
        // live in the specs alone.
        Ok(Self {
            command,
            state_dir: values.require(&LOCAL_STATE_DIR)?.into(),
            stop_grace: values.checked_seconds(&LOCAL_STOP_GRACE_SECONDS)?,
            max_bots: values
                .get(&LOCAL_MAX_BOTS)
                .map(|_| values.checked_integer(&LOCAL_MAX_BOTS))
                .transpose()?,
            start_check: Duration::from_millis(values.checked_integer(&LOCAL_START_CHECK_MS)?),
            inherit_env: values.list(&LOCAL_BOT_INHERIT_ENV),
        })
    }

    /// Sets the stop grace period.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Sets the cap on running bots.
    pub fn with_max_bots(mut self, max: Option<usize>) -> Self {
        self.max_bots = max;
        self
    }

    /// Sets the start check.
    pub fn with_start_check(mut self, check: Duration) -> Self {
        self.start_check = check;
        self
    }

    /// Sets the extra inherited variables.
    pub fn with_inherited_env(
        mut self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.inherit_env = names.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the service variable `name` is passed to bots.
    pub(crate) fn passes_env(&self, name: &str) -> bool {
        ALWAYS_INHERITED_ENV
            .iter()
            .copied()
            .chain(self.inherit_env.iter().map(String::as_str))
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = LocalConfig::from_env(&MapEnv::new()).unwrap();
        assert_eq!(config.command.program(), "meeboter-deploy");
        assert_eq!(config.command.args(), ["sim-bot"]);
        assert_eq!(config.state_dir, PathBuf::from("./meeboter-local"));
        assert_eq!(config.stop_grace, Duration::from_secs(10));
        assert_eq!(config.max_bots, None);
        assert_eq!(config.start_check, Duration::from_millis(200));
        assert!(config.inherit_env.is_empty());
        // The constructor has the same defaults, from the same specs.
        let built = LocalConfig::new(BotCommand::parse("my-bot").unwrap(), "/state");
        assert_eq!(built.stop_grace, config.stop_grace);
        assert_eq!(built.start_check, config.start_check);
        assert_eq!(built.max_bots, None);
        assert_eq!(built.state_dir, PathBuf::from("/state"));
        assert_eq!(built.command.program(), "my-bot");
    }

    #[test]
    fn a_value_that_cannot_be_held_names_its_variable() {
        // Within the spec's range but not what the field holds: named, never
        // replaced by a default.
        let values = load_env(
            PLATFORM,
            ENV_VARS,
            &MapEnv::from([("LOCAL_START_CHECK_MS", "60000")]),
        )
        .unwrap();
        let Err(Error::Config { platform, problems }) =
            values.checked_integer::<u8>(&LOCAL_START_CHECK_MS)
        else {
            panic!("expected a config error");
        };
        assert_eq!(platform, "local");
        assert_eq!(problems[0].variable, "LOCAL_START_CHECK_MS");
        assert_eq!(
            problems[0].problem,
            "could not be read as a whole number from 0 to 60000"
        );
    }

    #[test]
    fn every_value_is_read() {
        let env = MapEnv::from([
            (
                "LOCAL_BOT_COMMAND",
                "sh -c 'exec my-bot --port \"$BOT_PORT\"'",
            ),
            ("LOCAL_STATE_DIR", "/var/lib/meeboter"),
            ("LOCAL_STOP_GRACE_SECONDS", "0"),
            ("LOCAL_MAX_BOTS", "25"),
            ("LOCAL_START_CHECK_MS", "500"),
            ("LOCAL_BOT_INHERIT_ENV", "DISPLAY, PUPPETEER_*"),
        ]);
        let config = LocalConfig::from_env(&env).unwrap();
        assert_eq!(config.command.program(), "sh");
        assert_eq!(
            config.command.args(),
            ["-c", "exec my-bot --port \"$BOT_PORT\""]
        );
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/meeboter"));
        assert_eq!(config.stop_grace, Duration::ZERO);
        assert_eq!(config.max_bots, Some(25));
        assert_eq!(config.start_check, Duration::from_millis(500));
        assert!(config.passes_env("DISPLAY"));
        assert!(config.passes_env("PUPPETEER_EXECUTABLE_PATH"));
        assert!(config.passes_env("PATH"));
        assert!(config.passes_env("LC_ALL"));
        assert!(config.passes_env("SIM_BOT_LIFETIME"));
        assert!(!config.passes_env("DATABASE_URL"));
        assert!(!config.passes_env("COOLIFY_API_TOKEN"));
        assert!(!config.passes_env("AWS_SECRET_ACCESS_KEY"));
        assert!(!config.passes_env("DISPLAYX"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env = MapEnv::from([
            ("LOCAL_BOT_COMMAND", "bot 'unclosed"),
            ("LOCAL_STOP_GRACE_SECONDS", "soon"),
            ("LOCAL_MAX_BOTS", "0"),
            ("LOCAL_START_CHECK_MS", "-1"),
        ]);
        let Error::Config { platform, problems } = LocalConfig::from_env(&env).unwrap_err() else {
            panic!("expected a config error");
        };
        assert_eq!(platform, "local");
        let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "LOCAL_BOT_COMMAND",
                "LOCAL_STOP_GRACE_SECONDS",
                "LOCAL_MAX_BOTS",
                "LOCAL_START_CHECK_MS"
            ]
        );
        assert!(
            problems[0].problem.contains("unterminated single quote"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].problem.contains("from 0 to 3600"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_bad_command_line_names_the_variable_and_the_rule() {
        let env = MapEnv::from([("LOCAL_BOT_COMMAND", "my-bot > bot.log")]);
        let err = LocalConfig::from_env(&env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("local: invalid configuration: LOCAL_BOT_COMMAND"),
            "{text}"
        );
        assert!(text.contains("unquoted `>`"), "{text}");
    }
}
