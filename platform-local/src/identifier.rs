//! The local platform's bot identifier and the names derived from it.

use std::fmt;
use std::str::FromStr;

use platform_core::{BotId, InstallationId, PlatformId};

/// One deploy of one bot of one installation: `(installation, bot id,
/// attempt)`. At most one bot process is started per key; its state file,
/// log file, marker and deploy lock are named after it, so two
/// installations that share a state directory never meet.
///
/// The installation is `None` only for bots deployed before installation
/// ids existed: their identifiers, records, logs and markers carry none,
/// and they are still stopped, read and cleaned up through their
/// identifiers (see [`LocalBotId`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// The installation whose bot it is; `None` for a bot deployed before
    /// installation ids existed.
    pub installation: Option<InstallationId>,
    /// The Meeboter bot id.
    pub bot_id: BotId,
    /// The deploy attempt, from 1.
    pub attempt: u32,
}

impl InstanceKey {
    /// The key of `installation`'s bot `bot_id`, deploy number `attempt`.
    pub fn new(installation: &InstallationId, bot_id: BotId, attempt: u32) -> Self {
        Self {
            installation: Some(installation.clone()),
            bot_id,
            attempt,
        }
    }

    /// The key of a bot deployed before installation ids existed.
    pub fn without_installation(bot_id: BotId, attempt: u32) -> Self {
        Self {
            installation: None,
            bot_id,
            attempt,
        }
    }

    /// `bot-42-attempt-1`: the stem of the bot's state and log files, in
    /// its installation's directory.
    pub(crate) fn file_stem(&self) -> String {
        format!("bot-{}-attempt-{}", self.bot_id, self.attempt)
    }

    /// Parses a [`file_stem`](Self::file_stem) found in `installation`'s
    /// directory.
    pub(crate) fn from_file_stem(
        installation: Option<&InstallationId>,
        stem: &str,
    ) -> Option<Self> {
        let rest = stem.strip_prefix("bot-")?;
        let (bot, attempt) = rest.split_once("-attempt-")?;
        Some(Self {
            installation: installation.cloned(),
            bot_id: BotId(bot.parse().ok()?),
            attempt: attempt.parse().ok()?,
        })
    }
}

/// `0123abcd:42-1` (installation, bot id and attempt), or `42-1` for a bot
/// deployed before installation ids existed.
impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(installation) = &self.installation {
            write!(f, "{installation}:")?;
        }
        write!(f, "{}-{}", self.bot_id, self.attempt)
    }
}

impl FromStr for InstanceKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (installation, deploy) = match s.split_once(':') {
            Some((installation, deploy)) => (Some(installation.parse().map_err(drop)?), deploy),
            None => (None, s),
        };
        let (bot, attempt) = deploy.split_once('-').ok_or(())?;
        Ok(Self {
            installation,
            bot_id: BotId(bot.parse().map_err(drop)?),
            attempt: attempt.parse().map_err(drop)?,
        })
    }
}

/// A process as the kernel knows it for as long as it lives: its pid and its
/// start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
/// A pid alone is reused by the kernel; the pair is not, within one boot.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// A bot's identifier on the local platform, as stored by the deployment
/// service: `<pid>:<start ticks>:<installation>:<bot id>-<attempt>`, for
/// example `48211:9338172:0123456789abcdef:42-1`.
///
/// - `pid` is the bot's process id; the bot runs in its own process group,
///   whose id is the same number;
/// - `start ticks` is the process start time from `/proc/<pid>/stat`, so an
///   identifier never matches a later process that got the same pid;
/// - `installation`, `bot id` and `attempt` name the bot's state file, log
///   file and marker.
///
/// Identifiers issued before installation ids existed have no installation
/// (`48211:9338172:42-1`); they keep working, with the record, log and
/// marker of that time.
///
/// It stays valid across restarts of the service: everything it needs is in
/// the identifier, `/proc` and the state directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalBotId {
    /// The bot's process.
    pub process: ProcessIdentity,
    /// Which deploy of which bot of which installation it is.
    pub instance: InstanceKey,
}

impl LocalBotId {
    /// Reads an identifier issued by the local platform.
    pub fn parse(id: &PlatformId) -> Result<Self, InvalidLocalBotId> {
        id.as_str().parse()
    }

    /// The identifier as the platform contract carries it.
    pub fn to_platform_id(&self) -> PlatformId {
        PlatformId::new(self.to_string())
    }

    /// The bot's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.process.pid
    }
}

impl fmt::Display for LocalBotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.process.pid, self.process.start_ticks, self.instance
        )
    }
}

impl FromStr for LocalBotId {
    type Err = InvalidLocalBotId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidLocalBotId {
            given: s.to_owned(),
        };
        let mut parts = s.splitn(3, ':');
        let (Some(pid), Some(start), Some(instance)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let pid: u32 = pid.parse().map_err(|_| invalid())?;
        // Pids 0 and 1 are the scheduler and init: never a bot, and a signal
        // to process group 0 would hit the service itself. Real pids fit in
        // an i32 (the kernel's limit is 2^22).
        if pid <= 1 || i32::try_from(pid).is_err() {
            return Err(invalid());
        }
        Ok(Self {
            process: ProcessIdentity {
                pid,
                start_ticks: start.parse().map_err(|_| invalid())?,
            },
            instance: instance.parse().map_err(|()| invalid())?,
        })
    }
}

/// A string that is not a local platform identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a local platform identifier; expected `<pid>:<start ticks>:<installation>:<bot id>-<attempt>`, e.g. `48211:9338172:0123456789abcdef:42-1`"
)]
pub struct InvalidLocalBotId {
    /// What was given.
    pub given: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation() -> InstallationId {
        InstallationId::new("0123456789abcdef").unwrap()
    }

    #[test]
    fn identifiers_round_trip_with_their_installation() {
        let id = LocalBotId {
            process: ProcessIdentity {
                pid: 48211,
                start_ticks: 9_338_172,
            },
            instance: InstanceKey::new(&installation(), BotId(42), 1),
        };
        assert_eq!(id.to_string(), "48211:9338172:0123456789abcdef:42-1");
        assert_eq!(LocalBotId::parse(&id.to_platform_id()).unwrap(), id);
        assert_eq!(id.pid(), 48211);
    }

    #[test]
    fn identifiers_issued_before_installation_ids_still_parse() {
        let id: LocalBotId = "48211:9338172:42-1".parse().unwrap();
        assert_eq!(id.instance, InstanceKey::without_installation(BotId(42), 1));
        assert_eq!(id.to_string(), "48211:9338172:42-1");
    }

    #[test]
    fn malformed_identifiers_are_refused_with_the_expected_format() {
        for bad in [
            "",
            "48211",
            "48211:9338172",
            "48211:9338172:42",
            "48211:x:42-1",
            "-5:1:42-1",
            "0:1:42-1",
            "1:1:42-1",
            "4294967295:1:42-1",
            "48211:1:42-1:extra",
            "48211:1:NOT-AN-INSTALLATION:42-1",
            "48211:1:0123456789abcdef:42",
            "48211:1:0123456789abcdef:42-1:extra",
            "arn:aws:ecs:eu-west-1:123:task/abc",
        ] {
            let err = bad.parse::<LocalBotId>().unwrap_err();
            assert!(
                err.to_string()
                    .contains("<pid>:<start ticks>:<installation>:<bot id>-<attempt>"),
                "{err}"
            );
        }
    }

    #[test]
    fn file_stems_round_trip() {
        let key = InstanceKey::new(&installation(), BotId(7), 3);
        assert_eq!(key.file_stem(), "bot-7-attempt-3");
        assert_eq!(
            InstanceKey::from_file_stem(Some(&installation()), "bot-7-attempt-3"),
            Some(key)
        );
        assert_eq!(InstanceKey::from_file_stem(None, "bot-7"), None);
        assert_eq!(
            InstanceKey::from_file_stem(None, ".bot-7-attempt-3.tmp"),
            None
        );
    }
}
