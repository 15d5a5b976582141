//! Scheduled bots: the lead time each platform needs to have a bot in its
//! meeting by `join_at`, the spread of a burst's deploys, how late is too
//! late, and what a `join_at` may be.
//!
//! # Which platform's lead a scheduled bot gets
//!
//! A bot is placed when its deploy is due, not when it is created: a day
//! ahead nobody knows which platform of `PLATFORM_PRIORITY` will have room
//! at 10:00. So a scheduled bot's deploy time is `join_at` minus the
//! *largest* lead of the platforms the service holds (and minus its share
//! of `DEPLOY_JITTER`). Whichever platform takes it then, it has at least
//! that platform's own lead: a bot that falls through from a full Coolify
//! pool to ECS is still on time. The price is that a bot placed on a faster
//! platform is in its meeting a little early (with the defaults, Coolify
//! then ECS: two minutes), which a meeting bot waits out in the lobby; a
//! bot joining late is the failure the feature exists to prevent.

use std::time::Duration;

use platform_core::{EnvLookup, EnvVarSpec, FieldError, ValueKind, load_env};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::duration_ms;

/// The lead time of ECS (Fargate).
pub const AWS_DEPLOY_LEAD: EnvVarSpec = EnvVarSpec::with_default(
    "AWS_DEPLOY_LEAD",
    "180",
    "Seconds before a scheduled bot's join_at that its deploy starts when the aws platform may take it. Fargate needs 45 to 95 s to start a bot and a burst of RunTask calls is paced (about 20 per second), so 180 s puts a burst of a thousand bots in their meetings on time.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// The lead time of Coolify.
pub const COOLIFY_DEPLOY_LEAD: EnvVarSpec = EnvVarSpec::with_default(
    "COOLIFY_DEPLOY_LEAD",
    "60",
    "Seconds before a scheduled bot's join_at that its deploy starts when the coolify platform may take it. A warm slot with a cached image starts in seconds; the margin covers Coolify's request rate limit in a burst.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// The lead time of local processes.
pub const LOCAL_DEPLOY_LEAD: EnvVarSpec = EnvVarSpec::with_default(
    "LOCAL_DEPLOY_LEAD",
    "5",
    "Seconds before a scheduled bot's join_at that its deploy starts when the local platform may take it. A child process starts at once.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// The lead time of Kubernetes.
pub const K8S_DEPLOY_LEAD: EnvVarSpec = EnvVarSpec::with_default(
    "K8S_DEPLOY_LEAD",
    "60",
    "Seconds before a scheduled bot's join_at that its deploy starts when the kubernetes platform may take it. A pod whose image is cached on the node starts in seconds; 60 s covers scheduling and an image pull of a small image.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// How widely a burst's deploys are spread.
pub const DEPLOY_JITTER: EnvVarSpec = EnvVarSpec::with_default(
    "DEPLOY_JITTER",
    "0",
    "Seconds over which the deploys of bots scheduled for the same join_at are spread, before the lead time: each bot's deploy starts a random 0 to DEPLOY_JITTER seconds earlier than join_at minus the lead. 0 (the default) starts them all at join_at minus the lead and lets the platforms' own pacing spread them.",
)
.kind(ValueKind::Seconds { min: 0, max: 3600 });

/// How late a scheduled bot may still be deployed.
pub const SCHEDULE_MAX_LATENESS: EnvVarSpec = EnvVarSpec::with_default(
    "SCHEDULE_MAX_LATENESS",
    "900",
    "Seconds past its join_at a scheduled bot may still be deployed (after an outage of every service process). One found later fails with the reason missed_join_time, saying how late it was, instead of joining a meeting that is long under way. Also how far in the past a join_at given on create or reschedule may be.",
)
.kind(ValueKind::Seconds {
    min: 10,
    max: 86_400,
});

/// The scheduling variables, in the order the docs list them.
pub const SCHEDULE_ENV: &[EnvVarSpec] = &[
    AWS_DEPLOY_LEAD,
    COOLIFY_DEPLOY_LEAD,
    LOCAL_DEPLOY_LEAD,
    K8S_DEPLOY_LEAD,
    DEPLOY_JITTER,
    SCHEDULE_MAX_LATENESS,
];

/// The lead of a platform without a lead variable of its own.
pub const DEFAULT_DEPLOY_LEAD: Duration = Duration::from_secs(60);

/// How far ahead a `join_at` may be: a year and a day.
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// The reason code of a scheduled bot found too late; the code clients
/// match on is the reason's first word.
pub const MISSED_JOIN_TIME_CODE: &str = "missed_join_time";

/// How bots with a `join_at` are scheduled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// Lead time per platform name (`aws`, `coolify`, `local`,
    /// `kubernetes`); a platform not listed gets [`DEFAULT_DEPLOY_LEAD`].
    pub leads: Vec<(String, Duration)>,
    /// `DEPLOY_JITTER`. Default 0.
    pub jitter: Duration,
    /// `SCHEDULE_MAX_LATENESS`. Default 900 s.
    pub max_lateness: Duration,
}

impl Default for ScheduleOptions {
    /// The variables' defaults, read from their specs (the one place they
    /// are written).
    fn default() -> Self {
        match Self::load(&platform_core::MapEnv::new()) {
            Some(options) => options,
            None => unreachable!("every scheduling variable has a valid default"),
        }
    }
}

impl ScheduleOptions {
    /// Reads the scheduling variables. Their kinds are checked (and
    /// reported) with the service's other variables; `None` when one is
    /// wrong.
    pub fn load(env: &dyn EnvLookup) -> Option<Self> {
        let values = load_env("service", SCHEDULE_ENV, env).ok()?;
        let lead = |spec: &EnvVarSpec| values.checked_seconds(spec).ok();
        Some(Self {
            leads: vec![
                ("aws".to_owned(), lead(&AWS_DEPLOY_LEAD)?),
                ("coolify".to_owned(), lead(&COOLIFY_DEPLOY_LEAD)?),
                ("local".to_owned(), lead(&LOCAL_DEPLOY_LEAD)?),
                ("kubernetes".to_owned(), lead(&K8S_DEPLOY_LEAD)?),
            ],
            jitter: values.checked_seconds(&DEPLOY_JITTER).ok()?,
            max_lateness: values.checked_seconds(&SCHEDULE_MAX_LATENESS).ok()?,
        })
    }

    /// The lead time of the platform named `platform`.
    pub fn lead_for(&self, platform: &str) -> Duration {
        self.leads
            .iter()
            .find(|(name, _)| name == platform)
            .map_or(DEFAULT_DEPLOY_LEAD, |(_, lead)| *lead)
    }

    /// The lead a scheduled bot gets among `platforms` (the service's
    /// priority list): the largest, and the platform it is for (see the
    /// module docs for why).
    pub fn lead_among<'a>(&self, platforms: &[&'a str]) -> (&'a str, Duration) {
        platforms
            .iter()
            .map(|name| (*name, self.lead_for(name)))
            .fold(("", Duration::ZERO), |best, this| {
                if this.1 > best.1 || best.0.is_empty() {
                    this
                } else {
                    best
                }
            })
    }

    /// A random share of `DEPLOY_JITTER`, in ms.
    pub(crate) fn jitter_ms(&self) -> i64 {
        let max = duration_ms(self.jitter);
        if max <= 0 { 0 } else { fastrand::i64(0..=max) }
    }
}

/// Reads a `join_at` as a client sent it: an RFC 3339 time no further than
/// `max_lateness` in the past and no further than a year and a day ahead
/// of `now_ms`. The error names the field and what is allowed.
pub fn parse_join_at(raw: &str, now_ms: i64, max_lateness: Duration) -> Result<i64, FieldError> {
    let allowed = format!(
        "allowed: an RFC 3339 time with its offset, such as 2026-03-02T10:00:00Z, from {} s in the past (SCHEDULE_MAX_LATENESS) to 366 days ahead",
        max_lateness.as_secs()
    );
    let shown: String = raw.chars().take(64).collect();
    let at = OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| {
        FieldError::new(
            "join_at",
            format!("is {shown:?}, which is not an RFC 3339 time; {allowed}"),
        )
    })?;
    let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    if ms < now_ms.saturating_sub(duration_ms(max_lateness)) {
        return Err(FieldError::new(
            "join_at",
            format!(
                "is {shown}, {} s in the past; {allowed}",
                (now_ms - ms) / 1000
            ),
        ));
    }
    if ms > now_ms.saturating_add(duration_ms(MAX_SCHEDULE_AHEAD)) {
        return Err(FieldError::new(
            "join_at",
            format!("is {shown}, more than 366 days ahead; {allowed}"),
        ));
    }
    Ok(ms)
}

/// How late `late_ms` is, for people: `16 min 40 s`.
pub fn describe_lateness(late_ms: i64) -> String {
    let secs = late_ms.max(0) / 1000;
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_lead_of_the_list_applies() {
        let options = ScheduleOptions::default();
        assert_eq!(
            options.lead_among(&["coolify", "aws"]),
            ("aws", Duration::from_secs(180))
        );
        assert_eq!(
            options.lead_among(&["local"]),
            ("local", Duration::from_secs(5))
        );
        assert_eq!(options.lead_for("fake"), DEFAULT_DEPLOY_LEAD);
    }

    #[test]
    fn join_at_is_checked_and_the_error_names_the_field() {
        let now = 1_800_000_000_000;
        let lateness = Duration::from_secs(900);
        assert_eq!(
            parse_join_at("2027-01-15T08:00:00Z", now, lateness).unwrap(),
            1_800_000_000_000
        );
        let err = parse_join_at("tomorrow", now, lateness).unwrap_err();
        assert_eq!(err.field, "join_at");
        assert!(err.message.contains("RFC 3339"), "{}", err.message);
        let err = parse_join_at("2027-01-15T07:00:00Z", now, lateness).unwrap_err();
        assert!(
            err.message.contains("3600 s in the past"),
            "{}",
            err.message
        );
        assert!(parse_join_at("2027-01-15T07:50:00Z", now, lateness).is_ok());
        assert!(parse_join_at("2029-01-15T07:50:00Z", now, lateness).is_err());
    }

    #[test]
    fn lateness_reads_like_a_person_would_say_it() {
        assert_eq!(describe_lateness(42_000), "42 s");
        assert_eq!(describe_lateness(1_000_000), "16 min 40 s");
        assert_eq!(describe_lateness(7_500_000), "2 h 5 min");
    }
}
