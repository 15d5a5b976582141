//! How many bots a platform may hold at once, as its operator capped it,
//! and how fast it can start them.
//!
//! The deployment service counts the bots that hold capacity on each
//! platform (deploying, running or stopping) in its database, in the same
//! transaction that places a bot, and places a bot only where the count is
//! below the cap. A platform states its cap here; it never counts itself.
//!
//! A platform also states its [`DeployPace`]: how many deploys its own
//! pacer lets out at once and per second after that, and how long a bot
//! typically takes from the platform call to `running`. The service uses it
//! only to *project* when a burst of bots will be in their meetings (and
//! warn a client at create time when some will be late); the pacing itself
//! stays the platform's.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::MeetingPlatform;

/// The rate limit a platform's pacer puts on deploys: a token bucket of
/// `burst` deploys refilled at `per_second` deploys a second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DeployRate {
    /// Deploys that go out at once from rest (the full bucket).
    pub burst: f64,
    /// Deploys a second once the burst is spent.
    pub per_second: f64,
}

/// How fast a platform starts bots (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DeployPace {
    /// The limit its pacer puts on deploy calls; `None`: no limit (a bot's
    /// deploy starts as soon as it is due).
    pub rate: Option<DeployRate>,
    /// How long a bot typically takes from the platform call to `running`
    /// (an image pull, a task start), as the platform documents it.
    pub typical_start: Duration,
}

impl DeployPace {
    /// Deploys paced by a bucket of `burst` refilled at `per_second`; each
    /// bot typically `running` `typical_start` after its call. A burst below
    /// one deploy or a rate of zero (or not a number) is read as one deploy
    /// and the slowest rate the pacers accept.
    pub fn limited(burst: f64, per_second: f64, typical_start: Duration) -> Self {
        Self {
            rate: Some(DeployRate {
                burst: burst.floor().max(1.0),
                per_second: per_second.max(1e-6),
            }),
            typical_start,
        }
    }

    /// Deploys not paced at all (a child process on this machine).
    pub fn unlimited(typical_start: Duration) -> Self {
        Self {
            rate: None,
            typical_start,
        }
    }

    /// How long after the first of `n` deploys let out at once (the bucket
    /// full) the `n`-th goes out: 0 within the burst, then one refill per
    /// deploy beyond it.
    pub fn delay_of(&self, n: u64) -> Duration {
        match self.rate {
            None => Duration::ZERO,
            Some(rate) => {
                let beyond = n as f64 - rate.burst;
                if beyond <= 0.0 {
                    Duration::ZERO
                } else {
                    Duration::try_from_secs_f64(beyond / rate.per_second).unwrap_or(Duration::MAX)
                }
            }
        }
    }
}

impl fmt::Display for DeployPace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rate {
            None => f.write_str("no limit")?,
            Some(rate) => write!(
                f,
                "{} at once, then {} a second",
                rate.burst,
                (rate.per_second * 100.0).round() / 100.0
            )?,
        }
        write!(
            f,
            "; running about {} s after the call",
            self.typical_start.as_secs()
        )
    }
}

/// A platform's caps: on all its bots, and per meeting platform where the
/// platform has separate room for each (a warm pool per meeting platform);
/// and how fast it starts bots.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
    /// How fast it starts bots; `None` when the platform does not say
    /// (projected like a platform without a limit that starts bots at once).
    pub deploy_pace: Option<DeployPace>,
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
            deploy_pace: None,
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
            deploy_pace: None,
        }
    }

    /// The same caps, with the pace the platform starts bots at.
    pub fn with_deploy_pace(mut self, pace: DeployPace) -> Self {
        self.deploy_pace = Some(pace);
        self
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

    #[test]
    fn a_paced_platform_lets_its_burst_out_at_once_then_one_refill_per_deploy() {
        let pace = DeployPace::limited(80.0, 16.0, Duration::from_secs(70));
        assert_eq!(pace.delay_of(1), Duration::ZERO);
        assert_eq!(pace.delay_of(80), Duration::ZERO);
        assert_eq!(pace.delay_of(81), Duration::from_millis(62_500) / 1000);
        assert_eq!(pace.delay_of(1000), Duration::from_millis(57_500));
        assert_eq!(
            pace.to_string(),
            "80 at once, then 16 a second; running about 70 s after the call"
        );
        let local = DeployPace::unlimited(Duration::from_secs(1));
        assert_eq!(local.delay_of(1_000_000), Duration::ZERO);
        // Nonsense sizes never divide by zero.
        let odd = DeployPace::limited(0.2, 0.0, Duration::ZERO);
        assert_eq!(odd.rate.map(|r| r.burst), Some(1.0));
        assert!(odd.delay_of(2) > Duration::from_secs(86_400));
    }
}
