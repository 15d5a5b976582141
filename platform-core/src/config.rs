//! What a bot needs to join a meeting: the deployment config and its validation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::meeting::{MeetingPlatform, MeetingUrl};
use crate::secret::SecretString;

/// The identifier of a bot in Meeboter: assigned by the deployment service,
/// unique and stable for the bot's whole life. Not the platform's identifier.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BotId(pub u64);

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for BotId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Self)
    }
}

/// The longest display name we pass to a bot. Zoom cuts names at 64
/// characters; Teams and Meet accept a little more.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// The name the bot shows in the meeting: 1 to 100 characters, no control
/// characters, no leading or trailing whitespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// The name used when a request gives none.
    pub const DEFAULT: &'static str = "Meeboter";

    /// Validates a display name.
    pub fn new(name: impl Into<String>) -> Result<Self, FieldError> {
        let name = name.into();
        let fail = |message: String| FieldError::new("display_name", message);
        let chars = name.chars().count();
        if name.trim().is_empty() {
            return Err(fail("must not be empty".into()));
        }
        if chars > MAX_DISPLAY_NAME_CHARS {
            return Err(fail(format!(
                "is {chars} characters long; at most {MAX_DISPLAY_NAME_CHARS} are allowed"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(fail("must not contain control characters".into()));
        }
        if name.trim() != name {
            return Err(fail("must not start or end with whitespace".into()));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for DisplayName {
    fn default() -> Self {
        Self(Self::DEFAULT.into())
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest automatic-leave timeout: one day. Anything longer is a typo
/// that would keep a bot (and what it costs) in an empty meeting.
pub const MAX_LEAVE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// When the bot leaves on its own. Each timeout is passed to the bot in whole
/// seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutomaticLeave {
    /// How long the bot waits to be admitted from a waiting room or lobby.
    /// Default 300 s: hosts often admit late, but a bot left in a lobby
    /// forever still costs a container.
    pub waiting_room_timeout: Duration,
    /// How long the bot stays when nobody else has joined. Default 300 s:
    /// covers participants who arrive a few minutes late.
    pub no_one_joined_timeout: Duration,
    /// How long the bot stays after every other participant left. Default
    /// 60 s: long enough to survive someone rejoining after a dropped
    /// connection.
    pub everyone_left_timeout: Duration,
}

impl AutomaticLeave {
    /// Default waiting-room timeout.
    pub const DEFAULT_WAITING_ROOM: Duration = Duration::from_secs(300);
    /// Default no-one-joined timeout.
    pub const DEFAULT_NO_ONE_JOINED: Duration = Duration::from_secs(300);
    /// Default everyone-left timeout.
    pub const DEFAULT_EVERYONE_LEFT: Duration = Duration::from_secs(60);

    /// Validates three timeouts given in seconds: each from 1 s to one day.
    pub fn from_secs(
        waiting_room: u64,
        no_one_joined: u64,
        everyone_left: u64,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, secs: u64| {
            let max = MAX_LEAVE_TIMEOUT.as_secs();
            if secs == 0 || secs > max {
                errors.push(FieldError::new(
                    field,
                    format!("is {secs} s; allowed: 1 to {max} s"),
                ));
            }
            Duration::from_secs(secs)
        };
        let leave = Self {
            waiting_room_timeout: check("automatic_leave.waiting_room_timeout", waiting_room),
            no_one_joined_timeout: check("automatic_leave.no_one_joined_timeout", no_one_joined),
            everyone_left_timeout: check("automatic_leave.everyone_left_timeout", everyone_left),
        };
        if errors.is_empty() {
            Ok(leave)
        } else {
            Err(errors)
        }
    }
}

impl Default for AutomaticLeave {
    fn default() -> Self {
        Self {
            waiting_room_timeout: Self::DEFAULT_WAITING_ROOM,
            no_one_joined_timeout: Self::DEFAULT_NO_ONE_JOINED,
            everyone_left_timeout: Self::DEFAULT_EVERYONE_LEFT,
        }
    }
}

/// The longest meeting password we accept.
pub const MAX_MEETING_PASSWORD_LEN: usize = 256;

/// Everything a platform needs to start one bot. Built only through
/// validation ([`BotDeploymentConfig::new`] or [`BotDeploymentInput::validate`]),
/// so a value of this type is always valid. The meeting platform is the one
/// the meeting URL was validated for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotDeploymentConfig {
    bot_id: BotId,
    meeting_url: MeetingUrl,
    meeting_password: Option<SecretString>,
    display_name: DisplayName,
    recording_enabled: bool,
    automatic_leave: AutomaticLeave,
    bot_protocol: Option<BotProtocolAccess>,
}

/// How a bot reaches the service that deployed it: the service's URL and
/// the bot's own token, valid for this bot and deploy attempt only. Its
/// `Debug` hides the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotProtocolAccess {
    /// Where the bot reaches the service (`MEEBOTER_API_URL`), without a
    /// trailing slash.
    pub api_url: String,
    /// The bot's token (`BOT_TOKEN`).
    pub token: SecretString,
}

impl BotDeploymentConfig {
    /// A config with the default display name, recording off and the default
    /// automatic-leave timeouts.
    pub fn new(bot_id: BotId, meeting_url: MeetingUrl) -> Self {
        Self {
            bot_id,
            meeting_url,
            meeting_password: None,
            display_name: DisplayName::default(),
            recording_enabled: false,
            automatic_leave: AutomaticLeave::default(),
            bot_protocol: None,
        }
    }

    /// Gives the bot the service's URL and its own token, so it can report
    /// its meeting status and heartbeat (the bot protocol). Without it the
    /// bot's environment has neither.
    pub fn with_bot_protocol(mut self, access: BotProtocolAccess) -> Self {
        self.bot_protocol = Some(access);
        self
    }

    /// Sets the meeting password. An empty password means none.
    pub fn with_meeting_password(
        mut self,
        password: Option<SecretString>,
    ) -> Result<Self, FieldError> {
        if let Some(p) = &password {
            check_password(p)?;
        }
        self.meeting_password = password.filter(|p| !p.is_empty());
        Ok(self)
    }

    /// Sets the display name.
    pub fn with_display_name(mut self, name: DisplayName) -> Self {
        self.display_name = name;
        self
    }

    /// Turns recording on or off.
    pub fn with_recording(mut self, enabled: bool) -> Self {
        self.recording_enabled = enabled;
        self
    }

    /// Sets the automatic-leave timeouts.
    pub fn with_automatic_leave(mut self, leave: AutomaticLeave) -> Self {
        self.automatic_leave = leave;
        self
    }

    /// The bot's id.
    pub fn bot_id(&self) -> BotId {
        self.bot_id
    }

    /// The meeting platform (the one the URL was validated for).
    pub fn meeting_platform(&self) -> MeetingPlatform {
        self.meeting_url.platform()
    }

    /// The meeting URL.
    pub fn meeting_url(&self) -> &MeetingUrl {
        &self.meeting_url
    }

    /// The meeting password, if the meeting has one.
    pub fn meeting_password(&self) -> Option<&SecretString> {
        self.meeting_password.as_ref()
    }

    /// The name the bot shows in the meeting.
    pub fn display_name(&self) -> &DisplayName {
        &self.display_name
    }

    /// Whether the bot records the meeting.
    pub fn recording_enabled(&self) -> bool {
        self.recording_enabled
    }

    /// When the bot leaves on its own.
    pub fn automatic_leave(&self) -> AutomaticLeave {
        self.automatic_leave
    }

    /// How the bot reaches the service, when it was given the bot protocol.
    pub fn bot_protocol(&self) -> Option<&BotProtocolAccess> {
        self.bot_protocol.as_ref()
    }
}

fn check_password(password: &SecretString) -> Result<(), FieldError> {
    let p = password.expose();
    if p.chars().count() > MAX_MEETING_PASSWORD_LEN || p.chars().any(char::is_control) {
        return Err(FieldError::new(
            "meeting_password",
            format!(
                "must be at most {MAX_MEETING_PASSWORD_LEN} characters without control characters"
            ),
        ));
    }
    Ok(())
}

/// One field of a deployment request that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct FieldError {
    /// The field's name as a client spells it (`meeting_url`, `automatic_leave.waiting_room_timeout`).
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Every problem found in a deployment request, reported together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid bot deployment config: {}", join_errors(.errors))]
pub struct InvalidDeploymentConfig {
    /// The problems, in field order.
    pub errors: Vec<FieldError>,
}

impl InvalidDeploymentConfig {
    /// Whether a problem concerns `field`.
    pub fn concerns(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A deployment request as it arrives from a client, before validation. All
/// fields are plain data; [`BotDeploymentInput::validate`] checks them all and
/// reports every problem at once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotDeploymentInput {
    /// `zoom`, `teams` or `meet`.
    pub meeting_platform: String,
    /// The invite link.
    pub meeting_url: String,
    /// The meeting password, if any.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Password))]
    pub meeting_password: Option<SecretString>,
    /// The bot's display name; default [`DisplayName::DEFAULT`].
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether to record; default off.
    #[serde(default)]
    pub recording_enabled: bool,
    /// Automatic-leave timeouts in seconds; each defaults as documented on [`AutomaticLeave`].
    #[serde(default)]
    pub automatic_leave: AutomaticLeaveInput,
}

/// Automatic-leave timeouts in whole seconds, each optional.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AutomaticLeaveInput {
    /// Waiting-room timeout in seconds, 1 to 86400; default 300.
    #[serde(default, deserialize_with = "whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub waiting_room_timeout: Option<u64>,
    /// No-one-joined timeout in seconds, 1 to 86400; default 300.
    #[serde(default, deserialize_with = "whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub no_one_joined_timeout: Option<u64>,
    /// Everyone-left timeout in seconds, 1 to 86400; default 60.
    #[serde(default, deserialize_with = "whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 86400))]
    pub everyone_left_timeout: Option<u64>,
}

/// A whole number as JSON Schema means it: `3460` and `3460.0` alike (a
/// client that writes every number as a float sends the latter), never
/// `3460.5`, a negative number or one past `u64`.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    struct WholeNumber;

    impl serde::de::Visitor<'_> for WholeNumber {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number of seconds")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            u64::try_from(n).map(Some).map_err(|_| {
                E::invalid_value(
                    serde::de::Unexpected::Signed(n),
                    &"a whole number of seconds, 1 or more",
                )
            })
        }

        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
            // 2^64 as a float: the first value past u64::MAX.
            const PAST_U64: f64 = 18_446_744_073_709_551_616.0;
            if n.fract() == 0.0 && (0.0..PAST_U64).contains(&n) {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "checked above: a whole number within u64"
                )]
                Ok(Some(n as u64))
            } else {
                Err(E::invalid_value(
                    serde::de::Unexpected::Float(n),
                    &"a whole number of seconds",
                ))
            }
        }
    }

    deserializer.deserialize_any(WholeNumber)
}

impl BotDeploymentInput {
    /// Validates every field and builds the config for `bot_id`, or lists
    /// every problem.
    pub fn validate(&self, bot_id: BotId) -> Result<BotDeploymentConfig, InvalidDeploymentConfig> {
        let mut errors = Vec::new();
        let platform = match self.meeting_platform.parse::<MeetingPlatform>() {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(FieldError::new(
                    "meeting_platform",
                    format!(
                        "{:?} is not a meeting platform; allowed: zoom, teams, meet",
                        e.given
                    ),
                ));
                None
            }
        };
        let url = platform.and_then(|p| match MeetingUrl::parse(p, &self.meeting_url) {
            Ok(url) => Some(url),
            Err(e) => {
                errors.push(FieldError::new(
                    "meeting_url",
                    format!(
                        "is invalid: {} (expected something like {})",
                        e.reason, e.example
                    ),
                ));
                None
            }
        });
        let name = match &self.display_name {
            None => Some(DisplayName::default()),
            Some(n) => DisplayName::new(n.clone()).map_err(|e| errors.push(e)).ok(),
        };
        let leave = AutomaticLeave::from_secs(
            self.automatic_leave
                .waiting_room_timeout
                .unwrap_or(AutomaticLeave::DEFAULT_WAITING_ROOM.as_secs()),
            self.automatic_leave
                .no_one_joined_timeout
                .unwrap_or(AutomaticLeave::DEFAULT_NO_ONE_JOINED.as_secs()),
            self.automatic_leave
                .everyone_left_timeout
                .unwrap_or(AutomaticLeave::DEFAULT_EVERYONE_LEFT.as_secs()),
        )
        .map_err(|e| errors.extend(e))
        .ok();
        let password = match &self.meeting_password {
            Some(p) => check_password(p).map_err(|e| errors.push(e)).is_ok(),
            None => true,
        };
        let config = url.filter(|_| password).map(|url| BotDeploymentConfig {
            meeting_password: self.meeting_password.clone().filter(|p| !p.is_empty()),
            ..BotDeploymentConfig::new(bot_id, url)
        });
        match (config, name, leave) {
            (Some(config), Some(name), Some(leave)) if errors.is_empty() => Ok(config
                .with_display_name(name)
                .with_recording(self.recording_enabled)
                .with_automatic_leave(leave)),
            _ => Err(InvalidDeploymentConfig { errors }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        let parse = |json: &str| serde_json::from_str::<AutomaticLeaveInput>(json);
        let leave =
            parse(r#"{"waiting_room_timeout": 3460.0, "everyone_left_timeout": 60}"#).unwrap();
        assert_eq!(leave.waiting_room_timeout, Some(3460));
        assert_eq!(leave.everyone_left_timeout, Some(60));
        assert_eq!(leave.no_one_joined_timeout, None);
        assert_eq!(
            parse(r#"{"waiting_room_timeout": null}"#).unwrap(),
            AutomaticLeaveInput::default()
        );
        for bad in [
            r#"{"waiting_room_timeout": 3460.5}"#,
            r#"{"waiting_room_timeout": -1}"#,
            r#"{"waiting_room_timeout": 1e30}"#,
            r#"{"waiting_room_timeout": "300"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    fn input(platform: &str, url: &str) -> BotDeploymentInput {
        BotDeploymentInput {
            meeting_platform: platform.into(),
            meeting_url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_request_gets_the_documented_defaults() {
        let config = input("zoom", "https://zoom.us/j/123")
            .validate(BotId(7))
            .unwrap();
        assert_eq!(config.bot_id(), BotId(7));
        assert_eq!(config.meeting_platform(), MeetingPlatform::Zoom);
        assert_eq!(config.display_name().as_str(), "Meeboter");
        assert!(!config.recording_enabled());
        assert_eq!(config.automatic_leave(), AutomaticLeave::default());
        assert_eq!(
            config.automatic_leave().waiting_room_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(
            config.automatic_leave().no_one_joined_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(
            config.automatic_leave().everyone_left_timeout,
            Duration::from_secs(60)
        );
        assert!(config.meeting_password().is_none());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut bad = input("webex", "https://zoom.us/j/1");
        bad.display_name = Some(" ".into());
        bad.automatic_leave.everyone_left_timeout = Some(0);
        bad.automatic_leave.waiting_room_timeout = Some(100_000);
        let err = bad.validate(BotId(1)).unwrap_err();
        assert!(err.concerns("meeting_platform"));
        assert!(err.concerns("display_name"));
        assert!(err.concerns("automatic_leave.everyone_left_timeout"));
        assert!(err.concerns("automatic_leave.waiting_room_timeout"));
        assert_eq!(err.errors.len(), 4, "{err}");
        assert!(err.to_string().contains("allowed: zoom, teams, meet"));
    }

    #[test]
    fn a_url_of_another_platform_is_refused() {
        let err = input("meet", "https://zoom.us/j/1")
            .validate(BotId(1))
            .unwrap_err();
        assert!(err.concerns("meeting_url"));
        assert!(err.to_string().contains("does not belong to meet"), "{err}");
    }

    #[test]
    fn an_empty_password_means_none_and_a_password_never_prints() {
        let mut req = input("zoom", "https://zoom.us/j/1");
        req.meeting_password = Some("".into());
        assert!(req.validate(BotId(1)).unwrap().meeting_password().is_none());
        req.meeting_password = Some("s3cr3t-pass".into());
        let config = req.validate(BotId(1)).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-pass"));
        assert!(!format!("{req:?}").contains("s3cr3t-pass"));
        req.meeting_password = Some("bad\npass".into());
        assert!(
            req.validate(BotId(1))
                .unwrap_err()
                .concerns("meeting_password")
        );
    }

    #[test]
    fn unknown_fields_are_refused_when_parsing_json() {
        let err = serde_json::from_str::<BotDeploymentInput>(
            r#"{"meeting_platform":"zoom","meeting_url":"https://zoom.us/j/1","colour":"red"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"));
    }

    #[test]
    fn display_name_rules() {
        assert!(DisplayName::new("Notetaker").is_ok());
        assert!(
            DisplayName::new("x".repeat(101))
                .unwrap_err()
                .message
                .contains("at most 100")
        );
        assert!(DisplayName::new("a\u{0}b").is_err());
        assert!(DisplayName::new(" padded").is_err());
    }
}
