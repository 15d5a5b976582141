//! Every environment variable the AWS platform reads, declared once as data,
//! and loading them into an [`AwsConfig`].
//!
//! The same list drives loading, `doctor`, `.env.example` and
//! `docs/ENVIRONMENT.md`, so the descriptions are written for operators.

use std::time::Duration;

use platform_core::{
    ConfigProblem, EnvLookup, EnvValues, EnvVarSpec, Error, MeetingPlatform, SecretString,
    ValueKind, load_env,
};

use crate::PLATFORM_NAME;
use crate::capacity::CapacityProviderStrategy;

/// AWS Region of the cluster.
pub const AWS_REGION: EnvVarSpec = EnvVarSpec::required(
    "AWS_REGION",
    "AWS Region of the ECS cluster, e.g. `eu-west-1`. Setting it alone does not make `auto` pick AWS: \
     many machines set it for other tools.",
)
.aliases(&["AWS_DEFAULT_REGION"]);

/// The ECS cluster.
pub const ECS_CLUSTER: EnvVarSpec = EnvVarSpec::required(
    "ECS_CLUSTER",
    "Name or ARN of the ECS cluster that runs the bot tasks.",
)
.aliases(&["AWS_ECS_CLUSTER"]);

/// Subnets of the tasks' network interfaces.
pub const ECS_SUBNETS: EnvVarSpec = EnvVarSpec::required(
    "ECS_SUBNETS",
    "Subnet ids for the tasks' network interfaces (awsvpc), 1 to 16, e.g. `subnet-0a1b2c,subnet-3d4e5f`. \
     Use subnets in several availability zones so a capacity shortage in one zone does not stop launches.",
)
.kind(ValueKind::List);

/// Security groups of the tasks.
pub const ECS_SECURITY_GROUPS: EnvVarSpec = EnvVarSpec::required(
    "ECS_SECURITY_GROUPS",
    "Security group ids for the tasks, 1 to 5, e.g. `sg-0a1b2c`. They must let this service reach the \
     bot's port (`ECS_BOT_PORT`) and the bot reach the meeting.",
)
.kind(ValueKind::List);

/// Task definition of Zoom bots.
pub const ECS_TASK_DEF_ZOOM: EnvVarSpec = EnvVarSpec::required(
    "ECS_TASK_DEF_ZOOM",
    "Task definition of the Zoom bot: `family`, `family:revision` or its ARN. Without a revision the \
     latest ACTIVE revision runs.",
);

/// Task definition of Teams bots.
pub const ECS_TASK_DEF_TEAMS: EnvVarSpec = EnvVarSpec::required(
    "ECS_TASK_DEF_TEAMS",
    "Task definition of the Microsoft Teams bot: `family`, `family:revision` or its ARN.",
);

/// Task definition of Google Meet bots.
pub const ECS_TASK_DEF_MEET: EnvVarSpec = EnvVarSpec::required(
    "ECS_TASK_DEF_MEET",
    "Task definition of the Google Meet bot: `family`, `family:revision` or its ARN.",
);

/// Container of the Zoom task definition that receives the bot's environment.
pub const ECS_CONTAINER_ZOOM: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_CONTAINER_ZOOM",
    "zoom-bot",
    "Name of the container in the Zoom task definition that runs the bot; it receives the bot's \
     environment as a container override.",
);

/// Container of the Teams task definition that receives the bot's environment.
pub const ECS_CONTAINER_TEAMS: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_CONTAINER_TEAMS",
    "teams-bot",
    "Name of the container in the Teams task definition that runs the bot.",
);

/// Container of the Meet task definition that receives the bot's environment.
pub const ECS_CONTAINER_MEET: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_CONTAINER_MEET",
    "meet-bot",
    "Name of the container in the Google Meet task definition that runs the bot.",
);

/// Whether tasks get a public IP.
pub const ECS_ASSIGN_PUBLIC_IP: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_ASSIGN_PUBLIC_IP",
    "true",
    "Whether each task gets a public IP (`assignPublicIp`). Needed in public subnets, where a task \
     without one cannot pull its image or reach the meeting; set `false` in private subnets with a NAT \
     gateway.",
)
.kind(ValueKind::Bool);

/// Optional capacity-provider strategy.
pub const ECS_CAPACITY_PROVIDER_STRATEGY: EnvVarSpec = EnvVarSpec::optional(
    "ECS_CAPACITY_PROVIDER_STRATEGY",
    "Capacity providers to launch on instead of the `FARGATE` launch type: comma-separated \
     `NAME[:WEIGHT][:base=BASE]` entries, e.g. `FARGATE_SPOT:4,FARGATE:1:base=1` (one on-demand task \
     first, then four Spot tasks for each on-demand one). WEIGHT is 0 to 1000 (default 1), BASE is 0 to \
     100000 (default 0) and only one entry may have a base. The providers must be attached to the \
     cluster. Unset: launch type `FARGATE`.",
);

/// The bot's port, for its connection URL.
pub const ECS_BOT_PORT: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_BOT_PORT",
    "8080",
    "Port the bot container listens on; its connection URL is `http://<task private IP>:<port>`. Must \
     match the container port in the task definitions.",
)
.kind(ValueKind::Integer { min: 1, max: 65535 });

/// How this installation marks its tasks.
pub const ECS_STARTED_BY: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_STARTED_BY",
    "meeboter-deploy",
    "The `startedBy` of the tasks this service starts, and the value its orphan sweep lists tasks by \
     (`ListTasks`): up to 32 letters, digits, `-` or `_`. Tasks are also tagged with the database's \
     installation id (`meeboter:installation`), and the sweep only ever touches tasks that carry its \
     own, so installations sharing an AWS account and cluster never take each other's bots for theirs \
     even with the same value; a value of its own per installation keeps each one's listing short.",
);

/// Time limit of one ECS API request.
pub const ECS_REQUEST_TIMEOUT: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_REQUEST_TIMEOUT",
    "20",
    "Longest wait for one ECS API answer, in seconds. A RunTask that times out is retried with the \
     same idempotency token, so it never starts a second task.",
)
.kind(ValueKind::Seconds { min: 1, max: 300 });

/// Share of the documented ECS request rates this service may use.
pub const ECS_API_RATE_PERCENT: EnvVarSpec = EnvVarSpec::with_default(
    "ECS_API_RATE_PERCENT",
    "80",
    "Share of the account's documented ECS token buckets this service paces itself to, in percent, burst \
     and refill alike (Fargate launches: a burst of 100, then 20 per second; RunTask and StopTask together: \
     100, then 40 per second; DescribeTasks and ListTasks: 100, then 20 per second). A burst of bots spends \
     the share of the burst at once, then goes at the share of the refill rate; a call ECS throttles anyway \
     halves that pace for a while. The limits are per account and Region: lower it when several replicas \
     or other tools call ECS there, e.g. 40 for two replicas.",
)
.kind(ValueKind::Integer { min: 1, max: 100 });

/// Cap on bots at once.
pub const AWS_MAX_BOTS: EnvVarSpec = EnvVarSpec::optional(
    "AWS_MAX_BOTS",
    "Most bots this installation runs on ECS at once (deploying, running or stopping). The service \
     counts them in its database in the same transaction that places a bot, so several replicas \
     together never exceed it; past it a bot goes to the next platform of PLATFORM_PRIORITY or is \
     queued. Unset: no cap of the service's own (ECS's own quotas still apply).",
)
.kind(ValueKind::Integer {
    min: 0,
    max: 1_000_000,
});

/// Endpoint override for every AWS service.
pub const AWS_ENDPOINT_URL: EnvVarSpec = EnvVarSpec::optional(
    "AWS_ENDPOINT_URL",
    "Send AWS API calls to this URL instead of the Region's endpoint (a local emulator, a VPC \
     endpoint). Standard AWS SDK setting.",
)
.kind(ValueKind::Url);

/// Endpoint override for ECS alone.
pub const AWS_ENDPOINT_URL_ECS: EnvVarSpec = EnvVarSpec::optional(
    "AWS_ENDPOINT_URL_ECS",
    "Send ECS API calls to this URL; wins over `AWS_ENDPOINT_URL`. Standard AWS SDK setting.",
)
.kind(ValueKind::Url);

/// Static access key id.
pub const AWS_ACCESS_KEY_ID: EnvVarSpec = EnvVarSpec::optional(
    "AWS_ACCESS_KEY_ID",
    "Access key id of static credentials, with `AWS_SECRET_ACCESS_KEY`. Unset: the default AWS \
     credential chain (profile, web identity, ECS task role, EC2 instance role). The credentials need \
     `ecs:RunTask`, `ecs:StopTask`, `ecs:DescribeTasks`, `ecs:ListTasks` (the orphan sweep), \
     `ecs:DescribeClusters`, `ecs:DescribeTaskDefinition` (`doctor`), `ecs:TagResource` and \
     `iam:PassRole` for the task definitions' roles.",
);

/// Static secret access key.
pub const AWS_SECRET_ACCESS_KEY: EnvVarSpec = EnvVarSpec::optional(
    "AWS_SECRET_ACCESS_KEY",
    "Secret access key of static credentials, with `AWS_ACCESS_KEY_ID`.",
)
.secret();

/// Session token of temporary static credentials.
pub const AWS_SESSION_TOKEN: EnvVarSpec = EnvVarSpec::optional(
    "AWS_SESSION_TOKEN",
    "Session token, when the static credentials are temporary ones.",
)
.secret();

/// Named profile for the default credential chain.
pub const AWS_PROFILE: EnvVarSpec = EnvVarSpec::optional(
    "AWS_PROFILE",
    "Profile of the shared AWS config and credentials files to use when no static credentials are set.",
);

/// Every variable the platform reads, in the order of the documentation.
pub const ENV_SPECS: &[EnvVarSpec] = &[
    AWS_REGION,
    ECS_CLUSTER,
    ECS_SUBNETS,
    ECS_SECURITY_GROUPS,
    ECS_TASK_DEF_ZOOM,
    ECS_TASK_DEF_TEAMS,
    ECS_TASK_DEF_MEET,
    ECS_CONTAINER_ZOOM,
    ECS_CONTAINER_TEAMS,
    ECS_CONTAINER_MEET,
    ECS_ASSIGN_PUBLIC_IP,
    ECS_CAPACITY_PROVIDER_STRATEGY,
    ECS_BOT_PORT,
    ECS_STARTED_BY,
    ECS_REQUEST_TIMEOUT,
    ECS_API_RATE_PERCENT,
    AWS_MAX_BOTS,
    AWS_ENDPOINT_URL,
    AWS_ENDPOINT_URL_ECS,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    AWS_PROFILE,
];

/// The variables that name `platform`'s task definition and its bot
/// container, for messages that tell the operator which one to fix.
pub fn target_variables(platform: MeetingPlatform) -> (&'static str, &'static str) {
    match platform {
        MeetingPlatform::Zoom => (ECS_TASK_DEF_ZOOM.name, ECS_CONTAINER_ZOOM.name),
        MeetingPlatform::Teams => (ECS_TASK_DEF_TEAMS.name, ECS_CONTAINER_TEAMS.name),
        MeetingPlatform::Meet => (ECS_TASK_DEF_MEET.name, ECS_CONTAINER_MEET.name),
    }
}

/// The variables whose presence makes `DEPLOYMENT_PLATFORM=auto` choose AWS.
pub const DETECTION_MARKERS: &[EnvVarSpec] = &[AWS_REGION, ECS_CLUSTER];

/// ECS accepts at most this many subnets in `awsvpcConfiguration`.
pub const MAX_SUBNETS: usize = 16;
/// ECS accepts at most this many security groups in `awsvpcConfiguration`.
pub const MAX_SECURITY_GROUPS: usize = 5;
/// The longest `ECS_STARTED_BY`: ECS documents `startedBy` as up to 128
/// characters for RunTask but has refused more than 36 in ListTasks
/// filters, which the orphan sweep depends on.
pub const MAX_STARTED_BY_LEN: usize = 32;

/// What runs one meeting platform's bots: a task definition and the container
/// in it that gets the bot's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotTaskTarget {
    /// `family`, `family:revision` or a task definition ARN.
    pub task_definition: String,
    /// The container that receives the environment override.
    pub container_name: String,
}

/// Static credentials given in the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never printed).
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials (never printed).
    pub session_token: Option<SecretString>,
}

/// The AWS platform's configuration, validated. Built by
/// [`AwsConfig::from_env`], which reports every problem at once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsConfig {
    /// The AWS Region.
    pub region: String,
    /// Cluster name or ARN.
    pub cluster: String,
    /// Subnet ids (1 to 16).
    pub subnets: Vec<String>,
    /// Security group ids (1 to 5).
    pub security_groups: Vec<String>,
    /// Zoom bots' task definition and container.
    pub zoom: BotTaskTarget,
    /// Teams bots' task definition and container.
    pub teams: BotTaskTarget,
    /// Google Meet bots' task definition and container.
    pub meet: BotTaskTarget,
    /// Whether tasks get a public IP.
    pub assign_public_ip: bool,
    /// Capacity providers to use instead of the `FARGATE` launch type.
    pub capacity_provider_strategy: Option<CapacityProviderStrategy>,
    /// The port in bots' connection URLs.
    pub bot_port: u16,
    /// The `startedBy` of the tasks this service starts, which the orphan
    /// sweep lists by.
    pub started_by: String,
    /// Time limit of one ECS request.
    pub request_timeout: Duration,
    /// Share of the documented ECS rates to pace to, 1 to 100.
    pub api_rate_percent: u8,
    /// Most bots at once (`AWS_MAX_BOTS`); `None` is no cap.
    pub max_bots: Option<u32>,
    /// Endpoint override (`AWS_ENDPOINT_URL_ECS`, else `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Static credentials; `None` means the default credential chain.
    pub static_credentials: Option<StaticCredentials>,
    /// Profile for the default credential chain.
    pub profile: Option<String>,
}

impl AwsConfig {
    /// Reads and validates the configuration from `env`, reporting every
    /// missing or invalid variable at once as [`Error::Config`].
    pub fn from_env(env: &dyn EnvLookup) -> Result<Self, Error> {
        let loaded = load_env(PLATFORM_NAME, ENV_SPECS, env);
        let mut problems = match &loaded {
            Ok(_) => Vec::new(),
            Err(Error::Config { problems, .. }) => problems.clone(),
            Err(other) => {
                return Err(Error::Internal {
                    platform: PLATFORM_NAME,
                    resource: "configuration".into(),
                    message: format!("loading the environment failed unexpectedly: {other}"),
                });
            }
        };
        // Checks beyond what a value kind can say, on the raw values, so that
        // they are reported together with missing variables.
        let already_reported = |spec: &EnvVarSpec, problems: &[ConfigProblem]| {
            problems.iter().any(|p| p.variable == spec.name)
        };
        let mut extra = Vec::new();
        for (spec, check) in SHAPE_CHECKS {
            if already_reported(spec, &problems) {
                continue;
            }
            if let Some((found_as, value)) = spec.lookup(env)
                && let Err(problem) = check(value.trim())
            {
                let via = if found_as == spec.name {
                    String::new()
                } else {
                    format!(" (set as {found_as})")
                };
                extra.push(ConfigProblem::new(spec.name, format!("{problem}{via}")));
            }
        }
        let access_key = AWS_ACCESS_KEY_ID.is_set(env);
        let secret_key = AWS_SECRET_ACCESS_KEY.is_set(env);
        if access_key != secret_key {
            let (set, missing) = if access_key {
                (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
            } else {
                (AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID)
            };
            extra.push(ConfigProblem::new(
                missing.name,
                format!(
                    "is missing: {} is set, and static credentials need both (unset both to use the default credential chain)",
                    set.name
                ),
            ));
        }
        if AWS_SESSION_TOKEN.is_set(env) && !access_key {
            extra.push(ConfigProblem::new(
                AWS_SESSION_TOKEN.name,
                "is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; a session token belongs to static credentials",
            ));
        }
        problems.extend(extra);
        let values = match loaded {
            Ok(values) if problems.is_empty() => values,
            _ => {
                // Report in declaration order, whichever check found them.
                problems.sort_by_key(|p| ENV_SPECS.iter().position(|s| s.name == p.variable));
                return Err(Error::Config {
                    platform: PLATFORM_NAME,
                    problems,
                });
            }
        };

        let text = |spec: &EnvVarSpec| values.require(spec).map(str::to_owned);
        let target = |task: &EnvVarSpec, container: &EnvVarSpec| -> Result<BotTaskTarget, Error> {
            Ok(BotTaskTarget {
                task_definition: text(task)?,
                container_name: text(container)?,
            })
        };
        let capacity_provider_strategy = values
            .get(&ECS_CAPACITY_PROVIDER_STRATEGY)
            .map(|raw| raw.parse::<CapacityProviderStrategy>())
            .transpose()
            .map_err(|problem| invalid(&ECS_CAPACITY_PROVIDER_STRATEGY, problem))?;
        let static_credentials = match (
            values.get(&AWS_ACCESS_KEY_ID),
            values.secret(&AWS_SECRET_ACCESS_KEY),
        ) {
            (Some(id), Some(secret)) => Some(StaticCredentials {
                access_key_id: id.to_owned(),
                secret_access_key: secret,
                session_token: values.secret(&AWS_SESSION_TOKEN),
            }),
            _ => None,
        };
        // Every typed value below has a default in its spec and was checked
        // against its kind by `load_env`, so none can be absent or out of
        // range; the defaults live in the specs alone.
        Ok(Self {
            region: text(&AWS_REGION)?,
            cluster: text(&ECS_CLUSTER)?,
            subnets: values.list(&ECS_SUBNETS),
            security_groups: values.list(&ECS_SECURITY_GROUPS),
            zoom: target(&ECS_TASK_DEF_ZOOM, &ECS_CONTAINER_ZOOM)?,
            teams: target(&ECS_TASK_DEF_TEAMS, &ECS_CONTAINER_TEAMS)?,
            meet: target(&ECS_TASK_DEF_MEET, &ECS_CONTAINER_MEET)?,
            assign_public_ip: checked(&ECS_ASSIGN_PUBLIC_IP, values.bool(&ECS_ASSIGN_PUBLIC_IP))?,
            capacity_provider_strategy,
            bot_port: number(&values, &ECS_BOT_PORT)?,
            started_by: text(&ECS_STARTED_BY)?,
            request_timeout: checked(&ECS_REQUEST_TIMEOUT, values.seconds(&ECS_REQUEST_TIMEOUT))?,
            api_rate_percent: number(&values, &ECS_API_RATE_PERCENT)?,
            max_bots: values
                .integer(&AWS_MAX_BOTS)
                .and_then(|n| u32::try_from(n).ok()),
            endpoint_url: values
                .get(&AWS_ENDPOINT_URL_ECS)
                .or_else(|| values.get(&AWS_ENDPOINT_URL))
                .map(str::to_owned),
            static_credentials,
            profile: values.get(&AWS_PROFILE).map(str::to_owned),
        })
    }

    /// The task definition and container for bots of `platform`.
    pub fn target(&self, platform: MeetingPlatform) -> &BotTaskTarget {
        match platform {
            MeetingPlatform::Zoom => &self.zoom,
            MeetingPlatform::Teams => &self.teams,
            MeetingPlatform::Meet => &self.meet,
        }
    }

    /// The configured bot container names, one per meeting platform.
    pub fn bot_container_names(&self) -> [&str; 3] {
        [
            self.zoom.container_name.as_str(),
            self.teams.container_name.as_str(),
            self.meet.container_name.as_str(),
        ]
    }
}

/// A problem with `spec`'s value, as a configuration error.
fn invalid(spec: &EnvVarSpec, problem: impl Into<String>) -> Error {
    Error::Config {
        platform: PLATFORM_NAME,
        problems: vec![ConfigProblem::new(spec.name, problem)],
    }
}

/// A typed value `load_env` has already checked. Absent only if the spec and
/// the code that reads it disagree: reported as that variable's problem,
/// never replaced by a second copy of its default.
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

type ShapeCheck = fn(&str) -> Result<(), String>;

/// Checks of what a value must look like beyond its [`ValueKind`].
const SHAPE_CHECKS: &[(EnvVarSpec, ShapeCheck)] = &[
    (AWS_REGION, check_region),
    (ECS_CLUSTER, check_no_whitespace),
    (ECS_SUBNETS, check_subnets),
    (ECS_SECURITY_GROUPS, check_security_groups),
    (ECS_TASK_DEF_ZOOM, check_no_whitespace),
    (ECS_TASK_DEF_TEAMS, check_no_whitespace),
    (ECS_TASK_DEF_MEET, check_no_whitespace),
    (ECS_CONTAINER_ZOOM, check_container_name),
    (ECS_CONTAINER_TEAMS, check_container_name),
    (ECS_CONTAINER_MEET, check_container_name),
    (ECS_CAPACITY_PROVIDER_STRATEGY, check_strategy),
    (ECS_STARTED_BY, check_started_by),
];

fn check_region(value: &str) -> Result<(), String> {
    let shaped = value.contains('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && value.ends_with(|c: char| c.is_ascii_digit())
        && value.starts_with(|c: char| c.is_ascii_lowercase());
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "is not an AWS Region code like eu-west-1 or us-east-2: got {value:?}"
        ))
    }
}

fn check_no_whitespace(value: &str) -> Result<(), String> {
    if value.chars().any(char::is_whitespace) {
        Err(format!("must not contain whitespace: got {value:?}"))
    } else {
        Ok(())
    }
}

fn check_ids(value: &str, prefix: &str, what: &str, max: usize) -> Result<(), String> {
    let ids: Vec<&str> = value.split(',').map(str::trim).collect();
    if ids.len() > max {
        return Err(format!(
            "lists {} {what}s; ECS accepts at most {max}",
            ids.len()
        ));
    }
    let bad: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| {
            !id.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
            })
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "has entries that are not {what} ids ({prefix}…): {}",
            bad.iter()
                .map(|b| format!("{b:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn check_subnets(value: &str) -> Result<(), String> {
    check_ids(value, "subnet-", "subnet", MAX_SUBNETS)
}

fn check_security_groups(value: &str) -> Result<(), String> {
    check_ids(value, "sg-", "security group", MAX_SECURITY_GROUPS)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn check_container_name(value: &str) -> Result<(), String> {
    if value.len() <= 255 && value.chars().all(is_name_char) {
        Ok(())
    } else {
        Err(format!(
            "is not an ECS container name (up to 255 letters, digits, - or _): got {value:?}"
        ))
    }
}

fn check_strategy(value: &str) -> Result<(), String> {
    value.parse::<CapacityProviderStrategy>().map(|_| ())
}

fn check_started_by(value: &str) -> Result<(), String> {
    if value.len() <= MAX_STARTED_BY_LEN && value.chars().all(is_name_char) {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_STARTED_BY_LEN} letters, digits, - or _: got {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use platform_core::MapEnv;

    use super::*;

    fn complete_env() -> MapEnv {
        MapEnv::from([
            ("AWS_REGION", "eu-west-1"),
            ("ECS_CLUSTER", "meeboter"),
            ("ECS_SUBNETS", "subnet-0a1b2c3d, subnet-4e5f6a7b"),
            ("ECS_SECURITY_GROUPS", "sg-0123abcd"),
            ("ECS_TASK_DEF_ZOOM", "meeboter-zoom:3"),
            ("ECS_TASK_DEF_TEAMS", "meeboter-teams"),
            (
                "ECS_TASK_DEF_MEET",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/meeboter-meet:7",
            ),
        ])
    }

    fn problems(env: &MapEnv) -> Vec<ConfigProblem> {
        match AwsConfig::from_env(env) {
            Err(Error::Config { problems, .. }) => problems,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn complete_environment_with_defaults() {
        let config = AwsConfig::from_env(&complete_env()).unwrap();
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.cluster, "meeboter");
        assert_eq!(config.subnets, ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]);
        assert_eq!(config.security_groups, ["sg-0123abcd"]);
        assert_eq!(
            config.target(MeetingPlatform::Zoom).task_definition,
            "meeboter-zoom:3"
        );
        assert_eq!(
            config.target(MeetingPlatform::Teams).container_name,
            "teams-bot"
        );
        assert_eq!(
            config.bot_container_names(),
            ["zoom-bot", "teams-bot", "meet-bot"]
        );
        assert!(config.assign_public_ip);
        assert_eq!(config.capacity_provider_strategy, None);
        assert_eq!(config.bot_port, 8080);
        assert_eq!(config.started_by, "meeboter-deploy");
        assert_eq!(config.request_timeout, Duration::from_secs(20));
        assert_eq!(config.api_rate_percent, 80);
        assert_eq!(config.endpoint_url, None);
        assert_eq!(config.static_credentials, None);
    }

    #[test]
    fn aliases_overrides_and_endpoints() {
        let mut env = complete_env();
        env.set("AWS_REGION", "");
        env.set("AWS_DEFAULT_REGION", "us-east-2");
        env.set("ECS_CLUSTER", "");
        env.set("AWS_ECS_CLUSTER", "bots");
        env.set("ECS_ASSIGN_PUBLIC_IP", "false");
        env.set("ECS_CONTAINER_MEET", "bot");
        env.set(
            "ECS_CAPACITY_PROVIDER_STRATEGY",
            "FARGATE_SPOT:4,FARGATE:1:base=1",
        );
        env.set("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
        env.set("AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:9999");
        let config = AwsConfig::from_env(&env).unwrap();
        assert_eq!(config.region, "us-east-2");
        assert_eq!(config.cluster, "bots");
        assert!(!config.assign_public_ip);
        assert_eq!(config.meet.container_name, "bot");
        assert_eq!(
            config.capacity_provider_strategy.unwrap().to_string(),
            "FARGATE_SPOT:4,FARGATE:1:base=1"
        );
        // The ECS-specific endpoint wins, as in the AWS SDKs.
        assert_eq!(
            config.endpoint_url.as_deref(),
            Some("http://127.0.0.1:9999")
        );
    }

    #[test]
    fn every_missing_variable_is_reported_at_once() {
        let names: Vec<_> = problems(&MapEnv::new())
            .iter()
            .map(|p| p.variable)
            .collect();
        assert_eq!(
            names,
            [
                "AWS_REGION",
                "ECS_CLUSTER",
                "ECS_SUBNETS",
                "ECS_SECURITY_GROUPS",
                "ECS_TASK_DEF_ZOOM",
                "ECS_TASK_DEF_TEAMS",
                "ECS_TASK_DEF_MEET"
            ]
        );
        let err = AwsConfig::from_env(&MapEnv::new()).unwrap_err().to_string();
        assert!(err.starts_with("aws: invalid configuration: AWS_REGION is missing (also accepted as AWS_DEFAULT_REGION)"), "{err}");
    }

    #[test]
    fn shape_problems_are_reported_with_missing_variables() {
        let mut env = complete_env();
        env.set("AWS_REGION", "Ireland");
        env.set("ECS_TASK_DEF_TEAMS", "");
        env.set("ECS_SUBNETS", "subnet-1,vpc-2");
        env.set("ECS_SECURITY_GROUPS", "sg-1,sg-2,sg-3,sg-4,sg-5,sg-6");
        env.set("ECS_CAPACITY_PROVIDER_STRATEGY", "FARGATE_SPOT:many");
        env.set("ECS_STARTED_BY", "meeboter deploy");
        env.set("ECS_BOT_PORT", "70000");
        let found = problems(&env);
        let names: Vec<_> = found.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "AWS_REGION",
                "ECS_SUBNETS",
                "ECS_SECURITY_GROUPS",
                "ECS_TASK_DEF_TEAMS",
                "ECS_CAPACITY_PROVIDER_STRATEGY",
                "ECS_BOT_PORT",
                "ECS_STARTED_BY"
            ]
        );
        let text = |name: &str| {
            found
                .iter()
                .find(|p| p.variable == name)
                .unwrap()
                .problem
                .clone()
        };
        assert!(
            text("AWS_REGION").contains("like eu-west-1"),
            "{}",
            text("AWS_REGION")
        );
        assert!(
            text("ECS_SUBNETS").contains("\"vpc-2\""),
            "{}",
            text("ECS_SUBNETS")
        );
        assert!(
            text("ECS_SECURITY_GROUPS").contains("at most 5"),
            "{}",
            text("ECS_SECURITY_GROUPS")
        );
        assert!(
            text("ECS_CAPACITY_PROVIDER_STRATEGY").contains("FARGATE_SPOT:4,FARGATE:1:base=1"),
            "the error shows the syntax: {}",
            text("ECS_CAPACITY_PROVIDER_STRATEGY")
        );
        assert!(
            text("ECS_STARTED_BY").contains("1 to 32"),
            "{}",
            text("ECS_STARTED_BY")
        );
    }

    #[test]
    fn static_credentials_need_both_halves_and_never_print() {
        let mut env = complete_env();
        env.set("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-s3cret");
        let found = problems(&env);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].variable, "AWS_ACCESS_KEY_ID");
        assert!(!format!("{found:?}").contains("s3cret"));

        env.set("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
        env.set("AWS_SESSION_TOKEN", "session-s3cret");
        let config = AwsConfig::from_env(&env).unwrap();
        let credentials = config.static_credentials.as_ref().unwrap();
        assert_eq!(credentials.access_key_id, "AKIDEXAMPLE");
        assert_eq!(
            credentials.secret_access_key.expose(),
            "wJalrXUtnFEMI-s3cret"
        );
        assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
    }

    #[test]
    fn a_value_that_cannot_be_read_is_reported_never_defaulted() {
        let Err(Error::Config { problems, .. }) = checked::<u16>(&ECS_BOT_PORT, None) else {
            panic!("expected a config error");
        };
        assert_eq!(problems[0].variable, "ECS_BOT_PORT");
        assert_eq!(
            problems[0].problem,
            "could not be read as a whole number from 1 to 65535"
        );
    }

    #[test]
    fn started_by_is_short_enough_for_list_tasks_filters() {
        let mut env = complete_env();
        env.set("ECS_STARTED_BY", "a".repeat(33));
        assert_eq!(problems(&env)[0].variable, "ECS_STARTED_BY");
        env.set("ECS_STARTED_BY", "a".repeat(32));
        assert!(AwsConfig::from_env(&env).is_ok());
    }
}
