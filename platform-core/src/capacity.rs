//! How many bots a platform may hold at once, as its operator capped it.
//!
//! The deployment service counts the bots that hold capacity on each
//! platform (deploying, running or stopping) in its database, in the same
//! transaction that places a bot, and places a bot only where the count is
//! below the cap. A platform states its cap here; it never counts itself.

use std::fmt;

use serde::Serialize;

use crate::MeetingPlatform;

/// A platform's caps: on all its bots, and per meeting platform where the
/// platform has separate room for each (a warm pool per meeting platform).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlatformCapacity {
    /// At most this many bots at once; `None` is no cap.
    pub max_bots: Option<u32>,
    /// At most this many bots of one meeting platform at once (empty: no
    /// per-meeting-platform cap).
    pub per_meeting_platform: Vec<(MeetingPlatform, u32)>,
    /// The variables that set the caps, for messages (`AWS_MAX_BOTS`).
    pub variables: &'static str,
    /// Whether the room is a warm pool ("pool full") rather than a cap on
    /// bots started on demand ("at its cap").
    pub pooled: bool,
}

impl PlatformCapacity {
    /// No cap at all.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// At most `max` bots, set by `variable`.
    pub fn at_most(max: Option<u32>, variable: &'static str) -> Self {
        Self {
            max_bots: max,
            per_meeting_platform: Vec::new(),
            variables: variable,
            pooled: false,
        }
    }

    /// A warm pool per meeting platform, of these sizes; the platform's cap
    /// is their sum.
    pub fn pools(sizes: Vec<(MeetingPlatform, u32)>, variables: &'static str) -> Self {
        let total = sizes
            .iter()
            .map(|(_, n)| *n)
            .fold(0_u32, u32::saturating_add);
        Self {
            max_bots: Some(total),
            per_meeting_platform: sizes,
            variables,
            pooled: true,
        }
    }

    /// The cap for bots of `meeting`, when there is one.
    pub fn for_meeting_platform(&self, meeting: MeetingPlatform) -> Option<u32> {
        self.per_meeting_platform
            .iter()
            .find(|(m, _)| *m == meeting)
            .map(|(_, n)| *n)
    }
}

impl fmt::Display for PlatformCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max_bots {
            None => f.write_str("no cap"),
            Some(max) => {
                write!(f, "at most {max} bots")?;
                if !self.per_meeting_platform.is_empty() {
                    let parts: Vec<String> = self
                        .per_meeting_platform
                        .iter()
                        .map(|(m, n)| format!("{m} {n}"))
                        .collect();
                    write!(f, " ({})", parts.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_sum_to_the_platform_cap() {
        let capacity = PlatformCapacity::pools(
            vec![(MeetingPlatform::Zoom, 5), (MeetingPlatform::Teams, 2)],
            "COOLIFY_POOL_MAX_*",
        );
        assert_eq!(capacity.max_bots, Some(7));
        assert_eq!(
            capacity.for_meeting_platform(MeetingPlatform::Zoom),
            Some(5)
        );
        assert_eq!(capacity.for_meeting_platform(MeetingPlatform::Meet), None);
        assert_eq!(capacity.to_string(), "at most 7 bots (zoom 5, teams 2)");
        assert_eq!(PlatformCapacity::unlimited().to_string(), "no cap");
    }
}
