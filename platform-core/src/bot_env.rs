//! The container environment of a bot: the one place a deployment config
//! becomes environment variables. Every platform uses [`bot_environment`].

use std::fmt;

use crate::config::BotDeploymentConfig;
use crate::settings::{EnvVarSpec, ValueKind};

/// Names of the variables a bot container receives.
pub mod names {
    /// The Meeboter bot id.
    pub const BOT_ID: &str = "BOT_ID";
    /// The full meeting URL (passcode included).
    pub const MEETING_URL: &str = "MEETING_URL";
    /// The meeting password; absent when the meeting has none.
    pub const MEETING_PASSWORD: &str = "MEETING_PASSWORD";
    /// The name shown in the meeting.
    pub const BOT_DISPLAY_NAME: &str = "BOT_DISPLAY_NAME";
    /// `true` or `false`.
    pub const RECORDING_ENABLED: &str = "RECORDING_ENABLED";
    /// Waiting-room timeout in whole seconds.
    pub const WAITING_ROOM_TIMEOUT: &str = "WAITING_ROOM_TIMEOUT";
    /// No-one-joined timeout in whole seconds.
    pub const NO_ONE_JOINED_TIMEOUT: &str = "NO_ONE_JOINED_TIMEOUT";
    /// Everyone-left timeout in whole seconds.
    pub const EVERYONE_LEFT_TIMEOUT: &str = "EVERYONE_LEFT_TIMEOUT";
    /// Where the bot reaches the service (the bot protocol); absent when the
    /// service gives bots no protocol.
    pub const MEEBOTER_API_URL: &str = "MEEBOTER_API_URL";
    /// The bot's own token for the bot protocol, valid for this bot and
    /// deploy attempt only; absent with `MEEBOTER_API_URL`.
    pub const BOT_TOKEN: &str = "BOT_TOKEN";

    /// Every name [`bot_environment`](super::bot_environment) can produce, in
    /// its order. Platforms that keep a slot's environment between bots use
    /// it to remove what the previous bot had and this one does not.
    pub const ALL: [&str; 10] = [
        BOT_ID,
        MEETING_URL,
        MEETING_PASSWORD,
        BOT_DISPLAY_NAME,
        RECORDING_ENABLED,
        WAITING_ROOM_TIMEOUT,
        NO_ONE_JOINED_TIMEOUT,
        EVERYONE_LEFT_TIMEOUT,
        MEEBOTER_API_URL,
        BOT_TOKEN,
    ];
}

/// The bot environment described as data, for the generated environment
/// reference ("What a bot receives") and for bots written in Rust (the
/// stand-in bot) that load it with [`load_env`](crate::load_env).
pub const SPECS: &[EnvVarSpec] = &[
    EnvVarSpec::required(names::BOT_ID, "The Meeboter bot id, for the bot's logs and callbacks.")
        .kind(ValueKind::Integer { min: 0, max: i64::MAX }),
    EnvVarSpec::required(
        names::MEETING_URL,
        "The meeting invite link, passcode included; validated for the meeting platform (https, a host of that platform).",
    )
    .secret()
    .kind(ValueKind::Url),
    EnvVarSpec::optional(
        names::MEETING_PASSWORD,
        "The meeting password; absent when the meeting has none.",
    )
    .secret(),
    EnvVarSpec::with_default(
        names::BOT_DISPLAY_NAME,
        crate::config::DisplayName::DEFAULT,
        "The name the bot shows in the meeting (1 to 100 characters).",
    ),
    EnvVarSpec::with_default(names::RECORDING_ENABLED, "false", "Whether the bot records the meeting.")
        .kind(ValueKind::Bool),
    EnvVarSpec::with_default(
        names::WAITING_ROOM_TIMEOUT,
        "300",
        "Seconds the bot waits to be admitted from a waiting room or lobby before leaving.",
    )
    .kind(ValueKind::Seconds { min: 1, max: 86_400 }),
    EnvVarSpec::with_default(
        names::NO_ONE_JOINED_TIMEOUT,
        "300",
        "Seconds the bot stays when nobody else joins.",
    )
    .kind(ValueKind::Seconds { min: 1, max: 86_400 }),
    EnvVarSpec::with_default(
        names::EVERYONE_LEFT_TIMEOUT,
        "60",
        "Seconds the bot stays after every other participant left.",
    )
    .kind(ValueKind::Seconds { min: 1, max: 86_400 }),
    EnvVarSpec::optional(
        names::MEEBOTER_API_URL,
        "Where the bot reaches the service for the bot protocol (the service's BOT_API_URL): it reports its meeting status to POST $MEEBOTER_API_URL/v1/bot/$BOT_ID/events, heartbeats to POST …/heartbeat (the answer says when to leave) and may read its configuration from GET …/config, each with Authorization: Bearer $BOT_TOKEN.",
    )
    .kind(ValueKind::Url),
    EnvVarSpec::optional(
        names::BOT_TOKEN,
        "The bot's own token for the bot protocol: valid only for this bot and deploy attempt, refused once the bot ends, never accepted by the operator API. Set together with MEEBOTER_API_URL.",
    )
    .secret(),
];

/// One variable of a bot's environment.
#[derive(Clone, PartialEq, Eq)]
pub struct BotEnvVar {
    name: &'static str,
    value: String,
    secret: bool,
}

impl BotEnvVar {
    /// The variable's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value, as the container must receive it. Secret values included:
    /// do not log it.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the value is a secret (the meeting password, and the meeting
    /// URL, which is itself a way into the meeting).
    pub fn is_secret(&self) -> bool {
        self.secret
    }
}

impl fmt::Debug for BotEnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.secret {
            &"[redacted]"
        } else {
            &self.value
        };
        write!(f, "{}={value:?}", self.name)
    }
}

/// The environment of one bot container, in a fixed order.
#[derive(Clone, PartialEq, Eq)]
pub struct BotEnvironment {
    vars: Vec<BotEnvVar>,
}

impl BotEnvironment {
    /// The variables in their fixed order.
    pub fn iter(&self) -> impl Iterator<Item = &BotEnvVar> {
        self.vars.iter()
    }

    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }

    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are none (never the case for a real config).
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// `(name, value)` pairs, for APIs that take plain strings. Secret values
    /// included: do not log the result.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .map(|v| (v.name.to_owned(), v.value.clone()))
            .collect()
    }
}

impl fmt::Debug for BotEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.vars).finish()
    }
}

impl<'a> IntoIterator for &'a BotEnvironment {
    type Item = &'a BotEnvVar;
    type IntoIter = std::slice::Iter<'a, BotEnvVar>;

    fn into_iter(self) -> Self::IntoIter {
        self.vars.iter()
    }
}

/// Turns a deployment config into the bot container's environment.
///
/// The variables are `BOT_ID`, `MEETING_URL`,
/// `MEETING_PASSWORD` (only when the meeting has a password: an empty
/// variable would read as "password is the empty string"),
/// `BOT_DISPLAY_NAME`, `RECORDING_ENABLED` (`true`/`false`) and the three
/// timeouts `WAITING_ROOM_TIMEOUT`, `NO_ONE_JOINED_TIMEOUT`,
/// `EVERYONE_LEFT_TIMEOUT` in whole seconds, then, when the config carries
/// the bot protocol ([`BotDeploymentConfig::with_bot_protocol`]),
/// `MEEBOTER_API_URL` and `BOT_TOKEN` (a secret).
pub fn bot_environment(config: &BotDeploymentConfig) -> BotEnvironment {
    let leave = config.automatic_leave();
    let plain = |name, value: String| BotEnvVar {
        name,
        value,
        secret: false,
    };
    let secret = |name, value: String| BotEnvVar {
        name,
        value,
        secret: true,
    };
    let mut vars = vec![
        plain(names::BOT_ID, config.bot_id().to_string()),
        secret(names::MEETING_URL, config.meeting_url().expose().to_owned()),
    ];
    if let Some(password) = config.meeting_password() {
        vars.push(secret(
            names::MEETING_PASSWORD,
            password.expose().to_owned(),
        ));
    }
    vars.extend([
        plain(names::BOT_DISPLAY_NAME, config.display_name().to_string()),
        plain(
            names::RECORDING_ENABLED,
            config.recording_enabled().to_string(),
        ),
        plain(
            names::WAITING_ROOM_TIMEOUT,
            leave.waiting_room_timeout.as_secs().to_string(),
        ),
        plain(
            names::NO_ONE_JOINED_TIMEOUT,
            leave.no_one_joined_timeout.as_secs().to_string(),
        ),
        plain(
            names::EVERYONE_LEFT_TIMEOUT,
            leave.everyone_left_timeout.as_secs().to_string(),
        ),
    ]);
    if let Some(access) = config.bot_protocol() {
        vars.push(plain(names::MEEBOTER_API_URL, access.api_url.clone()));
        vars.push(secret(names::BOT_TOKEN, access.token.expose().to_owned()));
    }
    BotEnvironment { vars }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{AutomaticLeave, BotId, DisplayName};
    use crate::meeting::{MeetingPlatform, MeetingUrl};
    use crate::secret::SecretString;

    fn config(password: Option<&str>) -> BotDeploymentConfig {
        let url = MeetingUrl::parse(
            MeetingPlatform::Teams,
            "https://teams.live.com/meet/123?p=abc",
        )
        .unwrap();
        BotDeploymentConfig::new(BotId(42), url)
            .with_meeting_password(password.map(SecretString::from))
            .unwrap()
            .with_display_name(DisplayName::new("Notes Bot").unwrap())
            .with_recording(true)
            .with_automatic_leave(AutomaticLeave {
                waiting_room_timeout: Duration::from_secs(120),
                no_one_joined_timeout: Duration::from_secs(240),
                everyone_left_timeout: Duration::from_secs(30),
            })
    }

    fn with_protocol(config: BotDeploymentConfig) -> BotDeploymentConfig {
        config.with_bot_protocol(crate::config::BotProtocolAccess {
            api_url: "https://bots.example.com".into(),
            token: SecretString::from("mbb_t0ken-value"),
        })
    }

    #[test]
    fn exact_names_and_values() {
        let env = bot_environment(&config(Some("letmein")));
        let pairs = env.to_pairs();
        let expected = [
            ("BOT_ID", "42"),
            ("MEETING_URL", "https://teams.live.com/meet/123?p=abc"),
            ("MEETING_PASSWORD", "letmein"),
            ("BOT_DISPLAY_NAME", "Notes Bot"),
            ("RECORDING_ENABLED", "true"),
            ("WAITING_ROOM_TIMEOUT", "120"),
            ("NO_ONE_JOINED_TIMEOUT", "240"),
            ("EVERYONE_LEFT_TIMEOUT", "30"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn all_lists_every_name_the_function_produces() {
        let env = bot_environment(&with_protocol(config(Some("pw"))));
        let produced: Vec<&str> = env.iter().map(BotEnvVar::name).collect();
        assert_eq!(produced, names::ALL);
    }

    #[test]
    fn the_specs_describe_every_variable_and_accept_what_the_function_writes() {
        let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        assert_eq!(names, names::ALL);
        let env = bot_environment(&with_protocol(config(Some("pw"))));
        let map: std::collections::BTreeMap<String, String> = env.to_pairs().into_iter().collect();
        crate::load_env("bot", SPECS, &map).unwrap();
        // The documented defaults are the config's defaults.
        let defaults = AutomaticLeave::default();
        assert_eq!(
            SPECS[5].default_value(),
            Some(defaults.waiting_room_timeout.as_secs().to_string().as_str())
        );
        assert_eq!(
            SPECS[6].default_value(),
            Some(
                defaults
                    .no_one_joined_timeout
                    .as_secs()
                    .to_string()
                    .as_str()
            )
        );
        assert_eq!(
            SPECS[7].default_value(),
            Some(
                defaults
                    .everyone_left_timeout
                    .as_secs()
                    .to_string()
                    .as_str()
            )
        );
    }

    #[test]
    fn password_is_absent_when_there_is_none() {
        let env = bot_environment(&config(None));
        assert_eq!(env.get("MEETING_PASSWORD"), None);
        assert!(env.iter().all(|v| v.name() != "MEETING_PASSWORD"));
        assert_eq!(env.len(), 7);
    }

    #[test]
    fn the_bot_protocol_adds_the_url_and_a_secret_token() {
        let plain = bot_environment(&config(None));
        assert_eq!(plain.get(names::MEEBOTER_API_URL), None);
        assert_eq!(plain.get(names::BOT_TOKEN), None);
        let env = bot_environment(&with_protocol(config(None)));
        assert_eq!(
            env.get(names::MEEBOTER_API_URL),
            Some("https://bots.example.com")
        );
        assert_eq!(env.get(names::BOT_TOKEN), Some("mbb_t0ken-value"));
        let token = env.iter().find(|v| v.name() == names::BOT_TOKEN).unwrap();
        assert!(token.is_secret());
        let shown = format!("{env:?}");
        assert!(!shown.contains("t0ken"), "{shown}");
        assert!(!format!("{:?}", with_protocol(config(None))).contains("t0ken"));
    }

    #[test]
    fn debug_hides_the_password_and_the_url() {
        let env = bot_environment(&config(Some("letmein")));
        let shown = format!("{env:?}");
        assert!(!shown.contains("letmein"), "{shown}");
        assert!(!shown.contains("p=abc"), "{shown}");
        assert!(shown.contains("BOT_ID=\"42\""), "{shown}");
    }
}
