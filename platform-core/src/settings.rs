//! Configuration as data: environment variables declared once, loaded through
//! an injected lookup, every problem reported at once.
//!
//! A plugin declares its variables as `const` [`EnvVarSpec`]s. The same list
//! drives loading ([`load_env`]), `doctor` output, error messages,
//! `.env.example` and the generated environment reference.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::secret::SecretString;

/// Where configuration values come from. The service passes the process
/// environment ([`ProcessEnv`]); tests pass a map and never touch the
/// process environment.
///
/// An empty value counts as absent: `COOLIFY_API_URL=` in an env file means
/// "not set", not "the empty URL".
pub trait EnvLookup: Send + Sync {
    /// The raw value of `name`, if set.
    fn get_raw(&self, name: &str) -> Option<String>;

    /// The value of `name`, if set and not blank.
    fn get(&self, name: &str) -> Option<String> {
        self.get_raw(name).filter(|v| !v.trim().is_empty())
    }
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn get_raw(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvLookup for HashMap<String, String> {
    fn get_raw(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn get_raw(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// A map-backed lookup, convenient in tests:
/// `MapEnv::from([("AWS_REGION", "eu-west-1")])`.
#[derive(Clone, Debug, Default)]
pub struct MapEnv(BTreeMap<String, String>);

impl MapEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Sets a variable, builder style.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for MapEnv {
    fn from(pairs: [(K, V); N]) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl EnvLookup for MapEnv {
    fn get_raw(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Whether a variable must be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Requirement {
    /// Must be set; loading fails without it.
    Required,
    /// May be left unset; the code has a documented behaviour for "unset".
    Optional,
    /// Falls back to this value when unset.
    Default(&'static str),
}

/// What a value must look like. Loading checks every value against its kind,
/// so typed getters on [`EnvValues`] never fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ValueKind {
    /// Any text.
    Text,
    /// An `http` or `https` URL.
    Url,
    /// A whole number in `min..=max`.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A duration in whole seconds in `min..=max`.
    Seconds {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, `enabled`/`disabled`).
    Bool,
    /// A comma-separated list of non-empty items.
    List,
    /// One of a fixed set of words (case-insensitive).
    OneOf {
        /// The allowed words.
        values: &'static [&'static str],
    },
}

impl ValueKind {
    /// A short human description of what is allowed, for docs and errors.
    pub fn describe(&self) -> String {
        match self {
            Self::Text => "text".into(),
            Self::Url => "an http(s) URL".into(),
            Self::Integer { min, max } => format!("a whole number from {min} to {max}"),
            Self::Seconds { min, max } => format!("whole seconds from {min} to {max}"),
            Self::Bool => "true or false".into(),
            Self::List => "a comma-separated list".into(),
            Self::OneOf { values } => format!("one of {}", values.join(", ")),
        }
    }

    fn check(&self, value: &str) -> Result<(), String> {
        let v = value.trim();
        match self {
            Self::Text => Ok(()),
            Self::Url => {
                let ok = (v.starts_with("http://") || v.starts_with("https://"))
                    && url::Url::parse(v).is_ok_and(|u| u.host_str().is_some());
                if ok {
                    Ok(())
                } else {
                    Err(format!("is not {}", self.describe()))
                }
            }
            Self::Integer { min, max } => match v.parse::<i64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(()),
                _ => Err(format!("is not {}", self.describe())),
            },
            Self::Seconds { min, max } => match v.parse::<u64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(()),
                _ => Err(format!("is not {}", self.describe())),
            },
            Self::Bool => parse_bool(v)
                .map(|_| ())
                .ok_or_else(|| format!("is not {}", self.describe())),
            Self::List => {
                if split_list(v).is_empty() || v.split(',').any(|i| i.trim().is_empty()) {
                    Err("is not a comma-separated list of non-empty items".into())
                } else {
                    Ok(())
                }
            }
            Self::OneOf { values } => {
                if values.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                    Ok(())
                } else {
                    Err(format!("is not {}", self.describe()))
                }
            }
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "enabled" => Some(true),
        "false" | "0" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One environment variable, declared once as data.
///
/// Serialises (for `platforms --json` and the generated docs) as its fields
/// plus `allowed`, the human description of its [`ValueKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvVarSpec {
    /// The name operators should use.
    pub name: &'static str,
    /// Other names accepted for it (older or other tools' spellings). The
    /// main name wins when both are set.
    pub aliases: &'static [&'static str],
    /// Whether it must be set.
    pub requirement: Requirement,
    /// Whether its value is a secret (never printed).
    pub secret: bool,
    /// What its value must look like.
    pub kind: ValueKind,
    /// What it is for, in one or two sentences.
    pub description: &'static str,
}

impl EnvVarSpec {
    /// A required text variable.
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            aliases: &[],
            requirement: Requirement::Required,
            secret: false,
            kind: ValueKind::Text,
            description,
        }
    }

    /// An optional text variable.
    pub const fn optional(name: &'static str, description: &'static str) -> Self {
        Self {
            requirement: Requirement::Optional,
            ..Self::required(name, description)
        }
    }

    /// A text variable with a default value.
    pub const fn with_default(
        name: &'static str,
        default: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            requirement: Requirement::Default(default),
            ..Self::required(name, description)
        }
    }

    /// Marks the value as a secret.
    pub const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }

    /// Sets the accepted aliases.
    pub const fn aliases(self, aliases: &'static [&'static str]) -> Self {
        Self { aliases, ..self }
    }

    /// Sets the value kind.
    pub const fn kind(self, kind: ValueKind) -> Self {
        Self { kind, ..self }
    }

    /// Whether the variable must be set.
    pub const fn is_required(&self) -> bool {
        matches!(self.requirement, Requirement::Required)
    }

    /// The default value, if any.
    pub const fn default_value(&self) -> Option<&'static str> {
        match self.requirement {
            Requirement::Default(v) => Some(v),
            _ => None,
        }
    }

    /// Finds the variable in `env`, under its name or an alias. Returns the
    /// name it was found under and the value.
    pub fn lookup(&self, env: &dyn EnvLookup) -> Option<(&'static str, String)> {
        std::iter::once(self.name)
            .chain(self.aliases.iter().copied())
            .find_map(|name| env.get(name).map(|v| (name, v)))
    }

    /// Whether the variable is set, under its name or an alias.
    pub fn is_set(&self, env: &dyn EnvLookup) -> bool {
        self.lookup(env).is_some()
    }
}

impl Serialize for EnvVarSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("EnvVarSpec", 7)?;
        s.serialize_field("name", self.name)?;
        s.serialize_field("aliases", self.aliases)?;
        s.serialize_field("requirement", &self.requirement)?;
        s.serialize_field("secret", &self.secret)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("allowed", &self.kind.describe())?;
        s.serialize_field("description", self.description)?;
        s.end()
    }
}

/// One problem with one variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// The variable's name (the main name, even when an alias was used).
    pub variable: &'static str,
    /// What is wrong, e.g. `is missing` or `is not a whole number from 1 to 500`.
    /// Never contains a secret's value.
    pub problem: String,
}

impl ConfigProblem {
    /// A problem with a variable.
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }

    /// `A is missing; B is not a whole number …`.
    pub fn join(problems: &[ConfigProblem]) -> String {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.variable, self.problem)
    }
}

/// Checks every variable in `specs` and returns their values, or an
/// [`Error::Config`] naming `owner` and listing every missing or invalid
/// variable at once.
pub fn load_env(
    owner: &'static str,
    specs: &'static [EnvVarSpec],
    env: &dyn EnvLookup,
) -> Result<EnvValues, Error> {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for spec in specs {
        let found = spec.lookup(env);
        let value = match (&found, spec.requirement) {
            (Some((_, v)), _) => Some(v.trim().to_owned()),
            (None, Requirement::Default(d)) => Some(d.to_owned()),
            (None, Requirement::Required) => {
                let also = if spec.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (also accepted as {})", spec.aliases.join(", "))
                };
                problems.push(ConfigProblem::new(
                    spec.name,
                    format!("is missing{also}: {}", spec.description),
                ));
                None
            }
            (None, Requirement::Optional) => None,
        };
        if let Some(value) = value {
            match spec.kind.check(&value) {
                Ok(()) => {
                    values.insert(spec.name, value);
                }
                Err(problem) => {
                    let via = match &found {
                        Some((name, _)) if *name != spec.name => format!(" (set as {name})"),
                        _ => String::new(),
                    };
                    let mut text = format!("{problem}{via}");
                    // Never echo a secret; echo short plain values to help spot typos.
                    if !spec.secret && value.len() <= 80 {
                        text.push_str(&format!(": got {value:?}"));
                    }
                    problems.push(ConfigProblem::new(spec.name, text));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(EnvValues { owner, values })
    } else {
        Err(Error::Config {
            platform: owner,
            problems,
        })
    }
}

/// Values loaded by [`load_env`], already checked against their kinds.
#[derive(Clone)]
pub struct EnvValues {
    owner: &'static str,
    values: BTreeMap<&'static str, String>,
}

impl fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values are not shown at all: we do not know here which are secrets.
        f.debug_struct("EnvValues")
            .field("owner", &self.owner)
            .field("set", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EnvValues {
    /// The value of `spec` (its default when unset), if any.
    pub fn get(&self, spec: &EnvVarSpec) -> Option<&str> {
        self.values.get(spec.name).map(String::as_str)
    }

    /// The value of a required (or defaulted) variable. Fails with a config
    /// error only if `spec` is optional and unset, or was not in the loaded
    /// list: a bug in the caller, reported rather than panicking.
    pub fn require(&self, spec: &EnvVarSpec) -> Result<&str, Error> {
        self.get(spec).ok_or_else(|| Error::Config {
            platform: self.owner,
            problems: vec![ConfigProblem::new(spec.name, "is missing")],
        })
    }

    /// The value as a secret.
    pub fn secret(&self, spec: &EnvVarSpec) -> Option<SecretString> {
        self.get(spec).map(SecretString::from)
    }

    /// The value as a whole number.
    pub fn integer(&self, spec: &EnvVarSpec) -> Option<i64> {
        self.get(spec).and_then(|v| v.trim().parse().ok())
    }

    /// The value as a duration in whole seconds.
    pub fn seconds(&self, spec: &EnvVarSpec) -> Option<Duration> {
        self.get(spec)
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs)
    }

    /// The value as a boolean.
    pub fn bool(&self, spec: &EnvVarSpec) -> Option<bool> {
        self.get(spec).and_then(parse_bool)
    }

    /// The value as a list (empty when unset).
    pub fn list(&self, spec: &EnvVarSpec) -> Vec<String> {
        self.get(spec).map(split_list).unwrap_or_default()
    }

    /// The duration of a variable that has a default and was checked
    /// against its kind by [`load_env`]. Absent only when the spec and the
    /// code that reads it disagree: reported as that variable's problem,
    /// never replaced by a second copy of its default.
    pub fn checked_seconds(&self, spec: &EnvVarSpec) -> Result<Duration, Error> {
        self.checked(spec, self.seconds(spec))
    }

    /// The whole number of a defaulted, checked variable, in the type the
    /// caller needs (see [`checked_seconds`](Self::checked_seconds)).
    pub fn checked_integer<T: TryFrom<i64>>(&self, spec: &EnvVarSpec) -> Result<T, Error> {
        self.checked(spec, self.integer(spec).and_then(|n| T::try_from(n).ok()))
    }

    /// The boolean of a defaulted, checked variable (see
    /// [`checked_seconds`](Self::checked_seconds)).
    pub fn checked_bool(&self, spec: &EnvVarSpec) -> Result<bool, Error> {
        self.checked(spec, self.bool(spec))
    }

    fn checked<T>(&self, spec: &EnvVarSpec, value: Option<T>) -> Result<T, Error> {
        value.ok_or_else(|| Error::Config {
            platform: self.owner,
            problems: vec![ConfigProblem::new(
                spec.name,
                format!("could not be read as {}", spec.kind.describe()),
            )],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: EnvVarSpec =
        EnvVarSpec::required("TEST_API_URL", "Where the API is.").kind(ValueKind::Url);
    const KEY: EnvVarSpec = EnvVarSpec::required("TEST_API_KEY", "The API key.")
        .secret()
        .aliases(&["TEST_API_TOKEN"]);
    const MAX: EnvVarSpec = EnvVarSpec::with_default("TEST_POOL_MAX", "10", "Pool size.")
        .kind(ValueKind::Integer { min: 1, max: 500 });
    const SUBNETS: EnvVarSpec =
        EnvVarSpec::optional("TEST_SUBNETS", "Subnets.").kind(ValueKind::List);
    const PUBLIC: EnvVarSpec =
        EnvVarSpec::with_default("TEST_PUBLIC_IP", "true", "Public IP.").kind(ValueKind::Bool);
    const SPECS: &[EnvVarSpec] = &[URL, KEY, MAX, SUBNETS, PUBLIC];

    #[test]
    fn every_missing_variable_is_listed_at_once() {
        let err = load_env("test", SPECS, &MapEnv::new()).unwrap_err();
        let Error::Config { platform, problems } = &err else {
            panic!("expected a config error, got {err:?}");
        };
        assert_eq!(*platform, "test");
        let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(names, ["TEST_API_URL", "TEST_API_KEY"]);
        let text = err.to_string();
        assert!(
            text.starts_with("test: invalid configuration: TEST_API_URL is missing"),
            "{text}"
        );
        assert!(
            text.contains("TEST_API_KEY is missing (also accepted as TEST_API_TOKEN)"),
            "{text}"
        );
    }

    #[test]
    fn invalid_values_are_listed_with_missing_ones() {
        let env = MapEnv::from([
            ("TEST_API_URL", "ftp://nope"),
            ("TEST_POOL_MAX", "9000"),
            ("TEST_PUBLIC_IP", "maybe"),
            ("TEST_SUBNETS", "a,,b"),
        ]);
        let Error::Config { problems, .. } = load_env("test", SPECS, &env).unwrap_err() else {
            panic!("expected a config error");
        };
        let names: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            names,
            [
                "TEST_API_URL",
                "TEST_API_KEY",
                "TEST_POOL_MAX",
                "TEST_SUBNETS",
                "TEST_PUBLIC_IP"
            ]
        );
        assert!(
            problems[2].problem.contains("from 1 to 500"),
            "{}",
            problems[2]
        );
        assert!(problems[2].problem.contains("\"9000\""), "{}", problems[2]);
    }

    #[test]
    fn aliases_defaults_and_typed_values() {
        let env = MapEnv::from([
            ("TEST_API_URL", "https://coolify.example.com"),
            ("TEST_API_TOKEN", "tok-123"),
            ("TEST_SUBNETS", "subnet-1, subnet-2"),
            ("TEST_PUBLIC_IP", "DISABLED"),
        ]);
        let values = load_env("test", SPECS, &env).unwrap();
        assert_eq!(values.secret(&KEY).unwrap().expose(), "tok-123");
        assert_eq!(values.integer(&MAX), Some(10));
        assert_eq!(values.list(&SUBNETS), ["subnet-1", "subnet-2"]);
        assert_eq!(values.bool(&PUBLIC), Some(false));
        assert_eq!(values.require(&URL).unwrap(), "https://coolify.example.com");
        // The main name wins over an alias.
        let env = MapEnv::from([
            ("TEST_API_URL", "https://c.example.com"),
            ("TEST_API_KEY", "main"),
            ("TEST_API_TOKEN", "alias"),
        ]);
        assert_eq!(
            load_env("test", SPECS, &env)
                .unwrap()
                .secret(&KEY)
                .unwrap()
                .expose(),
            "main"
        );
    }

    #[test]
    fn specs_serialise_with_a_description_of_what_is_allowed() {
        let json = serde_json::to_value(MAX).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "TEST_POOL_MAX",
                "aliases": [],
                "requirement": {"kind": "default", "value": "10"},
                "secret": false,
                "kind": {"kind": "integer", "min": 1, "max": 500},
                "allowed": "a whole number from 1 to 500",
                "description": "Pool size."
            })
        );
        assert_eq!(
            serde_json::to_value(KEY).unwrap()["requirement"],
            serde_json::json!({"kind": "required"})
        );
    }

    #[test]
    fn blank_values_count_as_unset() {
        let env = MapEnv::from([("TEST_API_URL", "  "), ("TEST_API_KEY", "")]);
        let Error::Config { problems, .. } = load_env("test", SPECS, &env).unwrap_err() else {
            panic!("expected a config error");
        };
        assert_eq!(problems.len(), 2);
        assert!(problems.iter().all(|p| p.problem.starts_with("is missing")));
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        const STRICT_KEY: EnvVarSpec = EnvVarSpec::required("TEST_SECRET_NUM", "A secret number.")
            .secret()
            .kind(ValueKind::Integer { min: 0, max: 9 });
        const STRICT: &[EnvVarSpec] = &[STRICT_KEY];
        let env = MapEnv::from([("TEST_SECRET_NUM", "sup3r-s3cret")]);
        let err = load_env("test", STRICT, &env).unwrap_err();
        assert!(!err.to_string().contains("sup3r-s3cret"), "{err}");
        assert!(!format!("{err:?}").contains("sup3r-s3cret"));

        let env = MapEnv::from([
            ("TEST_API_URL", "https://x.example.com"),
            ("TEST_API_KEY", "k-s3cret"),
        ]);
        let values = load_env("test", SPECS, &env).unwrap();
        assert!(!format!("{values:?}").contains("k-s3cret"));
        assert!(!format!("{:?}", values.secret(&KEY)).contains("k-s3cret"));
    }
}
