//! The local platform's bot identifier and the names derived from it.

use std::fmt;
use std::str::FromStr;

use platform_core::{BotId, PlatformId};

/// One deploy of one bot: `(bot id, attempt)`. At most one bot process is
/// started per key; its state file, log file and marker are named after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// The Meeboter bot id.
    pub bot_id: BotId,
    /// The deploy attempt, from 1.
    pub attempt: u32,
}

impl InstanceKey {
    /// The key of `bot_id`'s deploy number `attempt`.
    pub fn new(bot_id: BotId, attempt: u32) -> Self {
        Self { bot_id, attempt }
    }

    /// `bot-42-attempt-1`: the stem of the bot's state and log files.
    pub(crate) fn file_stem(&self) -> String {
        format!("bot-{}-attempt-{}", self.bot_id, self.attempt)
    }

    /// Parses a [`file_stem`](Self::file_stem).
    pub(crate) fn from_file_stem(stem: &str) -> Option<Self> {
        let rest = stem.strip_prefix("bot-")?;
        let (bot, attempt) = rest.split_once("-attempt-")?;
        Some(Self::new(BotId(bot.parse().ok()?), attempt.parse().ok()?))
    }
}

/// `42-1`: bot id and attempt.
impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.bot_id, self.attempt)
    }
}

impl FromStr for InstanceKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (bot, attempt) = s.split_once('-').ok_or(())?;
        Ok(Self::new(
            BotId(bot.parse().map_err(drop)?),
            attempt.parse().map_err(drop)?,
        ))
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
/// service: `<pid>:<start ticks>:<bot id>-<attempt>`, for example
/// `48211:9338172:42-1`.
///
/// - `pid` is the bot's process id; the bot runs in its own process group,
///   whose id is the same number;
/// - `start ticks` is the process start time from `/proc/<pid>/stat`, so an
///   identifier never matches a later process that got the same pid;
/// - `bot id` and `attempt` name the bot's state file and log file in the
///   state directory.
///
/// It stays valid across restarts of the service: everything it needs is in
/// the identifier, `/proc` and the state directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalBotId {
    /// The bot's process.
    pub process: ProcessIdentity,
    /// Which deploy of which bot it is.
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
        let mut parts = s.split(':');
        let (Some(pid), Some(start), Some(instance), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
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
    "{given:?} is not a local platform identifier; expected `<pid>:<start ticks>:<bot id>-<attempt>`, e.g. `48211:9338172:42-1`"
)]
pub struct InvalidLocalBotId {
    /// What was given.
    pub given: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_round_trip() {
        let id = LocalBotId {
            process: ProcessIdentity {
                pid: 48211,
                start_ticks: 9_338_172,
            },
            instance: InstanceKey::new(BotId(42), 1),
        };
        assert_eq!(id.to_string(), "48211:9338172:42-1");
        assert_eq!(LocalBotId::parse(&id.to_platform_id()).unwrap(), id);
        assert_eq!(id.pid(), 48211);
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
            "arn:aws:ecs:eu-west-1:123:task/abc",
        ] {
            let err = bad.parse::<LocalBotId>().unwrap_err();
            assert!(err.to_string().contains("<pid>:<start ticks>"), "{err}");
        }
    }

    #[test]
    fn file_stems_round_trip() {
        let key = InstanceKey::new(BotId(7), 3);
        assert_eq!(key.file_stem(), "bot-7-attempt-3");
        assert_eq!(InstanceKey::from_file_stem("bot-7-attempt-3"), Some(key));
        assert_eq!(InstanceKey::from_file_stem("bot-7"), None);
        assert_eq!(InstanceKey::from_file_stem(".bot-7-attempt-3.tmp"), None);
    }
}
