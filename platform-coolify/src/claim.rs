//! The platform identifier of a Coolify bot: one *claim* of one slot.
//!
//! A slot application serves many bots over its life, so its UUID alone
//! would let a stale identifier (a bot that ended long ago) stop, report or
//! release the bot that holds the slot now. The identifier therefore names
//! the slot and the bot: `<application uuid>/bot-<bot id>`, e.g.
//! `k8w2x0c4p1/bot-1042`. It is current only while the slot store says that
//! bot holds that slot.
//!
//! It needs no installation id of its own: the application it names carries
//! the installation in its name, application uuids are unique within a
//! Coolify instance, and a claim is only ever read against the slot store
//! of the installation that made it, so another installation's identifier
//! finds no claim there and touches nothing. Identifiers already stored by
//! earlier versions therefore stay valid.

use std::fmt;

use platform_core::{BotId, PlatformId};

const SEPARATOR: &str = "/bot-";

/// One bot's claim of one slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlotClaim {
    /// The slot's Coolify application UUID.
    pub application_uuid: String,
    /// The bot that claimed it.
    pub bot_id: BotId,
}

impl SlotClaim {
    /// The claim of `application_uuid` by `bot_id`.
    pub fn new(application_uuid: impl Into<String>, bot_id: BotId) -> Self {
        Self {
            application_uuid: application_uuid.into(),
            bot_id,
        }
    }

    /// Reads an identifier made by [`SlotClaim::to_platform_id`]; `None` for
    /// anything else.
    pub fn parse(identifier: &PlatformId) -> Option<Self> {
        let (uuid, bot) = identifier.as_str().rsplit_once(SEPARATOR)?;
        let valid_uuid = !uuid.is_empty()
            && uuid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let valid_bot = !bot.is_empty() && bot.chars().all(|c| c.is_ascii_digit());
        if !(valid_uuid && valid_bot) {
            return None;
        }
        Some(Self::new(uuid, BotId(bot.parse().ok()?)))
    }

    /// The identifier handed to the deployment service.
    pub fn to_platform_id(&self) -> PlatformId {
        PlatformId::new(self.to_string())
    }
}

impl fmt::Display for SlotClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.application_uuid, self.bot_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let claim = SlotClaim::new("k8w2x0c4p1", BotId(1042));
        let id = claim.to_platform_id();
        assert_eq!(id.as_str(), "k8w2x0c4p1/bot-1042");
        assert_eq!(SlotClaim::parse(&id), Some(claim));
    }

    #[test]
    fn anything_else_is_not_a_claim() {
        for bad in [
            "",
            "k8w2x0c4p1",
            "/bot-1",
            "k8w2x0c4p1/bot-",
            "k8w2x0c4p1/bot-12a",
            "k8w2x0c4p1/bot--1",
            "a/b/bot-1",
            "arn:aws:ecs:eu-west-1:1:task/x",
            "k8w2x0c4p1/bot-99999999999999999999999",
        ] {
            assert_eq!(SlotClaim::parse(&PlatformId::new(bad)), None, "{bad}");
        }
    }
}
