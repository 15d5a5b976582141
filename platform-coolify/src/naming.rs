//! How slot applications are named in Coolify: `meeboter-slot-<meeting
//! platform>-<number>`, e.g. `meeboter-slot-zoom-007`.
//!
//! The name is how the pool recognises its own applications when it adopts
//! them at start-up, and tells an operator browsing Coolify what each
//! application is for. Numbers start at 1 and are padded to three digits so
//! that the Coolify UI sorts them; larger numbers simply get longer.

use std::collections::BTreeSet;

use platform_core::MeetingPlatform;

/// Every slot application's name starts with this.
pub const SLOT_NAME_PREFIX: &str = "meeboter-slot-";

/// A slot application's name, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotName {
    /// The meeting platform whose bot image the slot runs.
    pub meeting_platform: MeetingPlatform,
    /// Its number within that meeting platform's slots (from 1).
    pub number: u32,
}

impl SlotName {
    /// `meeboter-slot-zoom-007`.
    pub fn format(&self) -> String {
        format!(
            "{SLOT_NAME_PREFIX}{}-{:03}",
            self.meeting_platform, self.number
        )
    }

    /// Reads a name made by [`SlotName::format`]; `None` for any other
    /// application name, so that the pool never adopts an application it
    /// did not make.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(SLOT_NAME_PREFIX)?;
        let (platform, number) = rest.rsplit_once('-')?;
        let meeting_platform = MeetingPlatform::ALL
            .into_iter()
            .find(|p| p.as_str() == platform)?;
        if number.len() < 3 || !number.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let number: u32 = number.parse().ok()?;
        (number >= 1).then_some(Self {
            meeting_platform,
            number,
        })
    }

    /// The lowest number of `meeting_platform` not among `taken`.
    pub fn first_free(meeting_platform: MeetingPlatform, taken: &BTreeSet<u32>) -> Self {
        let number = (1..).find(|n| !taken.contains(n)).unwrap_or(u32::MAX);
        Self {
            meeting_platform,
            number,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = SlotName {
            meeting_platform: MeetingPlatform::Zoom,
            number: 7,
        };
        assert_eq!(name.format(), "meeboter-slot-zoom-007");
        assert_eq!(SlotName::parse("meeboter-slot-zoom-007"), Some(name));
        assert_eq!(
            SlotName::parse("meeboter-slot-teams-1234"),
            Some(SlotName {
                meeting_platform: MeetingPlatform::Teams,
                number: 1234
            })
        );
    }

    #[test]
    fn other_names_are_not_slots() {
        for name in [
            "meeboter-slot-zoom-7",
            "meeboter-slot-zoom-000",
            "meeboter-slot-webex-001",
            "meeboter-slot-Zoom-001",
            "meeboter-slot-zoom-001-copy",
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
        assert_eq!(
            SlotName::first_free(MeetingPlatform::Meet, &taken).number,
            3
        );
        assert_eq!(
            SlotName::first_free(MeetingPlatform::Meet, &BTreeSet::new()).number,
            1
        );
    }
}
