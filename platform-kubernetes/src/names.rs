//! How a bot's pod is named and marked, and its identifier.
//!
//! The name comes from the installation, the bot and the attempt alone, so
//! a deploy repeated after a crash asks for the same name and finds the pod
//! it created; the labels let one LIST find every pod of this installation
//! and tell whose each is. The identifier is `namespace/name`, never the
//! pod's UID: every call on a pod goes by name.

use std::collections::BTreeMap;
use std::fmt;

use platform_core::{BotId, InstallationId, MeetingPlatform, PlatformId};

use crate::config::is_dns_label;

/// Label keys every bot pod carries.
pub mod labels {
    /// Who manages the pod: always [`MANAGED_BY_VALUE`](super::MANAGED_BY_VALUE).
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The installation (database) the bot belongs to.
    pub const INSTALLATION: &str = "meeboter.io/installation";
    /// The Meeboter bot id.
    pub const BOT_ID: &str = "meeboter.io/bot-id";
    /// The deploy attempt.
    pub const ATTEMPT: &str = "meeboter.io/attempt";
    /// `zoom`, `teams` or `meet`.
    pub const MEETING_PLATFORM: &str = "meeboter.io/meeting-platform";
}

/// The value of the managed-by label.
pub const MANAGED_BY_VALUE: &str = "meeboter-deploy";

/// The pod name of `bot`'s `attempt` in `installation`:
/// `meeboter-<installation>-<bot>-<attempt>`, at most 57 characters, so it
/// is also a valid host name (63).
pub fn pod_name(installation: &InstallationId, bot: BotId, attempt: u32) -> String {
    format!("meeboter-{installation}-{bot}-{attempt}")
}

const _: () = assert!(
    "meeboter-".len()
        + platform_core::installation::MAX_LEN
        + "-18446744073709551615".len()
        + "-4294967295".len()
        <= 63,
    "the longest pod name must be a valid host name"
);

/// The labels of a bot's pod.
pub fn pod_labels(
    installation: &InstallationId,
    bot: BotId,
    attempt: u32,
    meeting_platform: MeetingPlatform,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (labels::MANAGED_BY, MANAGED_BY_VALUE.to_owned()),
        (labels::INSTALLATION, installation.to_string()),
        (labels::BOT_ID, bot.to_string()),
        (labels::ATTEMPT, attempt.to_string()),
        (
            labels::MEETING_PLATFORM,
            meeting_platform.as_str().to_owned(),
        ),
    ])
}

/// The label selector of every bot pod of `installation`.
pub fn installation_selector(installation: &InstallationId) -> String {
    format!(
        "{}={MANAGED_BY_VALUE},{}={installation}",
        labels::MANAGED_BY,
        labels::INSTALLATION
    )
}

/// A pod, as a bot's identifier names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl PodRef {
    /// Reads an identifier: `namespace/name`. `None` when it is not one
    /// this platform issues (no pod of ours can have it).
    pub fn parse(identifier: &PlatformId) -> Option<Self> {
        let (namespace, name) = identifier.as_str().split_once('/')?;
        let name_ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label);
        (is_dns_label(namespace) && name_ok).then(|| Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The identifier: `namespace/name`.
    pub fn identifier(&self) -> PlatformId {
        PlatformId::new(self.to_string())
    }
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_carry_the_installation() {
        let a = InstallationId::new("0123abcd").unwrap();
        let b = InstallationId::new("9876zyxw").unwrap();
        assert_eq!(pod_name(&a, BotId(42), 3), "meeboter-0123abcd-42-3");
        assert_eq!(pod_name(&a, BotId(42), 3), pod_name(&a, BotId(42), 3));
        assert_ne!(pod_name(&a, BotId(42), 3), pod_name(&b, BotId(42), 3));
        assert_ne!(pod_name(&a, BotId(42), 3), pod_name(&a, BotId(42), 4));
        let longest = pod_name(
            &InstallationId::new("0123456789abcdef").unwrap(),
            BotId(u64::MAX),
            u32::MAX,
        );
        assert!(longest.len() <= 63 && is_dns_label(&longest), "{longest}");
    }

    #[test]
    fn identifiers_are_namespace_and_name() {
        let id = PlatformId::new("bots/meeboter-0123abcd-42-3");
        let pod = PodRef::parse(&id).unwrap();
        assert_eq!(pod.namespace, "bots");
        assert_eq!(pod.name, "meeboter-0123abcd-42-3");
        assert_eq!(pod.identifier(), id);
        for foreign in [
            "arn:aws:ecs:eu-west-1:1:task/c/abc",
            "no-slash",
            "/name",
            "ns/",
            "Bots/x",
            "6f1c2a34-uid-like",
        ] {
            assert_eq!(PodRef::parse(&PlatformId::new(foreign)), None, "{foreign}");
        }
    }
}
