//! How slot applications are named in Coolify:
//! `meeboter-slot-<installation>-<meeting platform>-<number>`, e.g.
//! `meeboter-slot-5f3a9c01d2e4b687-zoom-007`.
//!
//! The name is how the pool recognises its own applications when it adopts
//! them at start-up, and tells an operator browsing Coolify what each
//! application is for and which installation (database) it belongs to. Two
//! installations pointed at one Coolify project (a staging and a production
//! service, a database that was reset) therefore never adopt each other's
//! slots. The name is the mark because it is the one field Coolify always
//! returns when it lists applications and lets us choose freely.
//!
//! Numbers start at 1 and are padded to three digits so that the Coolify UI
//! sorts them; larger numbers simply get longer.
//!
//! Slots created before installations existed are named
//! `meeboter-slot-<meeting platform>-<number>` ([`SlotName::installation`]
//! is then `None`). An installation id is 8 to 16 letters and digits and no
//! meeting platform's name is that long, so the two forms cannot be
//! confused.

use std::collections::BTreeSet;

use platform_core::{InstallationId, MeetingPlatform};

/// Every slot application's name starts with this.
pub const SLOT_NAME_PREFIX: &str = "meeboter-slot-";

/// A slot application's name, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotName {
    /// The installation whose slot it is; `None` for a slot named before
    /// names carried the installation, which no installation adopts on its
    /// own (see the crate docs).
    pub installation: Option<InstallationId>,
    /// The meeting platform whose bot image the slot runs.
    pub meeting_platform: MeetingPlatform,
    /// Its number within that installation's slots of that meeting platform
    /// (from 1).
    pub number: u32,
}

impl SlotName {
    /// The name of slot `number` of `meeting_platform` for `installation`.
    pub fn new(
        installation: &InstallationId,
        meeting_platform: MeetingPlatform,
        number: u32,
    ) -> Self {
        Self {
            installation: Some(installation.clone()),
            meeting_platform,
            number,
        }
    }

    /// `meeboter-slot-5f3a9c01d2e4b687-zoom-007` (or, for an unmarked
    /// slot, `meeboter-slot-zoom-007`).
    pub fn format(&self) -> String {
        match &self.installation {
            Some(installation) => format!(
                "{SLOT_NAME_PREFIX}{installation}-{}-{:03}",
                self.meeting_platform, self.number
            ),
            None => format!(
                "{SLOT_NAME_PREFIX}{}-{:03}",
                self.meeting_platform, self.number
            ),
        }
    }

    /// Reads a name made by [`SlotName::format`]; `None` for any other
    /// application name, so that the pool never adopts an application it
    /// did not make.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(SLOT_NAME_PREFIX)?;
        let (rest, number) = rest.rsplit_once('-')?;
        let (installation, platform) = match rest.split_once('-') {
            Some((installation, platform)) => {
                (Some(InstallationId::new(installation).ok()?), platform)
            }
            None => (None, rest),
        };
        let meeting_platform = MeetingPlatform::ALL
            .into_iter()
            .find(|p| p.as_str() == platform)?;
        if number.len() < 3 || !number.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let number: u32 = number.parse().ok()?;
        (number >= 1).then_some(Self {
            installation,
            meeting_platform,
            number,
        })
    }

    /// Whether this is a slot of `installation`.
    pub fn belongs_to(&self, installation: &InstallationId) -> bool {
        self.installation.as_ref() == Some(installation)
    }

    /// The lowest number of `meeting_platform` not among `taken`, for
    /// `installation`.
    pub fn first_free(
        installation: &InstallationId,
        meeting_platform: MeetingPlatform,
        taken: &BTreeSet<u32>,
    ) -> Self {
        let number = (1..).find(|n| !taken.contains(n)).unwrap_or(u32::MAX);
        Self::new(installation, meeting_platform, number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation() -> InstallationId {
        InstallationId::new("5f3a9c01d2e4b687").unwrap()
    }

    #[test]
    fn names_round_trip_with_the_installation() {
        let name = SlotName::new(&installation(), MeetingPlatform::Zoom, 7);
        assert_eq!(name.format(), "meeboter-slot-5f3a9c01d2e4b687-zoom-007");
        assert_eq!(SlotName::parse(&name.format()), Some(name.clone()));
        assert!(name.belongs_to(&installation()));
        assert!(!name.belongs_to(&InstallationId::new("otherinst1").unwrap()));
        assert_eq!(
            SlotName::parse("meeboter-slot-staging01-teams-1234"),
            Some(SlotName::new(
                &InstallationId::new("staging01").unwrap(),
                MeetingPlatform::Teams,
                1234
            ))
        );
    }

    #[test]
    fn names_from_before_installations_read_as_unmarked() {
        let name = SlotName::parse("meeboter-slot-zoom-007").unwrap();
        assert_eq!(name.installation, None);
        assert_eq!(name.meeting_platform, MeetingPlatform::Zoom);
        assert_eq!(name.number, 7);
        assert_eq!(name.format(), "meeboter-slot-zoom-007");
        assert!(!name.belongs_to(&installation()));
    }

    #[test]
    fn other_names_are_not_slots() {
        for name in [
            "meeboter-slot-zoom-7",
            "meeboter-slot-zoom-000",
            "meeboter-slot-webex-001",
            "meeboter-slot-Zoom-001",
            "meeboter-slot-zoom-001-copy",
            "meeboter-slot-short-zoom-001",
            "meeboter-slot-UPPERCASE01-zoom-001",
            "meeboter-slot-5f3a9c01d2e4b687-webex-001",
            "meeboter-slot-5f3a9c01d2e4b687-zoom-01",
            "meeboter-slot-5f3a9c01d2e4b687-zoom",
            "meeboter-slot-5f3a9c01d2e4b687--zoom-001",
            "my-app",
            "docker-image-k8w2x0c4p1",
            "meeboter-slot-zoom-",
        ] {
            assert_eq!(SlotName::parse(name), None, "{name}");
        }
    }

    #[test]
    fn first_free_fills_gaps() {
        let taken = BTreeSet::from([1, 2, 4]);
        let name = SlotName::first_free(&installation(), MeetingPlatform::Meet, &taken);
        assert_eq!(name.number, 3);
        assert_eq!(name.format(), "meeboter-slot-5f3a9c01d2e4b687-meet-003");
        assert_eq!(
            SlotName::first_free(&installation(), MeetingPlatform::Meet, &BTreeSet::new()).number,
            1
        );
    }
}
