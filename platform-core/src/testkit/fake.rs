//! An in-memory platform for tests and benchmarks of the code above the
//! trait.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::bot_env::{BotEnvironment, bot_environment};
use crate::config::{BotDeploymentConfig, BotId};
use crate::error::{Error, Result};
use crate::platform::{DeployResult, MarkedBot, PlatformId, PlatformService};
use crate::status::{BotStatus, StatusKind};

/// How many times each trait method was called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeCalls {
    /// `deploy_bot` calls.
    pub deploy: u64,
    /// `stop_bot` calls.
    pub stop: u64,
    /// `get_bot_status` calls.
    pub status: u64,
    /// `get_bot_statuses` calls.
    pub statuses: u64,
    /// `cleanup` calls.
    pub cleanup: u64,
    /// `list_marked_bots` calls.
    pub list_marked: u64,
}

#[derive(Debug)]
struct FakeBot {
    bot_id: BotId,
    attempt: u32,
    status: BotStatus,
}

#[derive(Debug, Default)]
struct FakeState {
    bots: HashMap<PlatformId, FakeBot>,
    deploy_errors: VecDeque<Error>,
    stop_errors: VecDeque<Error>,
    status_errors: VecDeque<Error>,
    list_errors: VecDeque<Error>,
    calls: FakeCalls,
    unreachable: bool,
    /// The most bots ever live at once.
    peak_live: usize,
    /// `deploy_bot` calls in flight now, and the most ever at once.
    deploys_in_flight: usize,
    peak_deploys_in_flight: usize,
    environments: Vec<(BotId, u32, BotEnvironment)>,
}

/// A platform that keeps its bots in memory. Deploys are idempotent per
/// `(bot id, attempt)` (identifier `fake-<bot>-<attempt>`); bots start as
/// `running` unless told otherwise; errors can be queued for the next calls.
#[derive(Debug)]
pub struct FakePlatform {
    name: &'static str,
    starts_as: StatusKind,
    latency: Duration,
    capacity: crate::PlatformCapacity,
    state: Mutex<FakeState>,
}

/// Counts a `deploy_bot` call in flight until dropped, a call its caller
/// gave up on mid-way included.
struct DeployInFlight<'a>(&'a FakePlatform);

impl<'a> DeployInFlight<'a> {
    fn start(fake: &'a FakePlatform) -> Self {
        let mut state = fake.state();
        state.deploys_in_flight += 1;
        state.peak_deploys_in_flight = state.peak_deploys_in_flight.max(state.deploys_in_flight);
        Self(fake)
    }
}

impl Drop for DeployInFlight<'_> {
    fn drop(&mut self) {
        self.0.state().deploys_in_flight -= 1;
    }
}

impl Default for FakePlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl FakePlatform {
    /// A fake named `fake` whose bots start as `running`.
    pub fn new() -> Self {
        Self {
            name: "fake",
            starts_as: StatusKind::Running,
            latency: Duration::ZERO,
            capacity: crate::PlatformCapacity::unlimited(),
            state: Mutex::new(FakeState::default()),
        }
    }

    /// Renames it (the name it reports in `platform_name`).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The status new bots report until changed with [`set_status`](Self::set_status).
    pub fn starting_as(mut self, kind: StatusKind) -> Self {
        self.starts_as = kind;
        self
    }

    /// Adds a delay to every call, like a network round trip.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Declares a cap ([`PlatformService::capacity`]) for the service to
    /// place under; the fake itself starts whatever it is asked to, and
    /// [`peak_live_bots`](Self::peak_live_bots) tells whether the cap held.
    pub fn with_capacity(mut self, capacity: crate::PlatformCapacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most bots that were ever starting or running here at once.
    pub fn peak_live_bots(&self) -> usize {
        self.state().peak_live
    }

    /// The most `deploy_bot` calls that were ever in flight at once.
    pub fn peak_concurrent_deploys(&self) -> usize {
        self.state().peak_deploys_in_flight
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A panic in another test thread must not hide this test's result.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// The next `deploy_bot` calls fail with these errors, in order.
    pub fn fail_next_deploys(&self, errors: impl IntoIterator<Item = Error>) {
        self.state().deploy_errors.extend(errors);
    }

    /// The next `stop_bot` calls fail with these errors, in order.
    pub fn fail_next_stops(&self, errors: impl IntoIterator<Item = Error>) {
        self.state().stop_errors.extend(errors);
    }

    /// The next status calls (single or batch) fail with these errors.
    pub fn fail_next_status_reads(&self, errors: impl IntoIterator<Item = Error>) {
        self.state().status_errors.extend(errors);
    }

    /// The next `list_marked_bots` calls fail with these errors.
    pub fn fail_next_listings(&self, errors: impl IntoIterator<Item = Error>) {
        self.state().list_errors.extend(errors);
    }

    /// Starts a bot as if a deploy had run that the service never recorded
    /// (a lost database, a crash before the intent was written): an orphan
    /// for the sweep to find. Returns its identifier.
    pub fn start_unrecorded(&self, bot: BotId, attempt: u32) -> PlatformId {
        let id = Self::identifier(bot, attempt);
        let starts_as = self.starts_as;
        self.state().bots.insert(
            id.clone(),
            FakeBot {
                bot_id: bot,
                attempt,
                status: BotStatus::new(starts_as).with_raw(starts_as.as_str()),
            },
        );
        id
    }

    fn identifier(bot: BotId, attempt: u32) -> PlatformId {
        PlatformId::new(format!("fake-{bot}-{attempt}"))
    }

    /// Makes `check_reachable` fail (or succeed again).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// Sets what a bot reports, as if the platform had changed it. Returns
    /// whether the identifier is known.
    pub fn set_status(&self, id: &PlatformId, status: BotStatus) -> bool {
        match self.state().bots.get_mut(id) {
            Some(bot) => {
                bot.status = status;
                true
            }
            None => false,
        }
    }

    /// The bot of every deploy call, in call order (repeats included).
    pub fn deploy_order(&self) -> Vec<BotId> {
        self.state()
            .environments
            .iter()
            .map(|(bot, _, _)| *bot)
            .collect()
    }

    /// The environment every deploy call for `bot` received, with its
    /// attempt, in call order (secrets included: tests only).
    pub fn environments(&self, bot: BotId) -> Vec<(u32, BotEnvironment)> {
        self.state()
            .environments
            .iter()
            .filter(|(b, _, _)| *b == bot)
            .map(|(_, attempt, env)| (*attempt, env.clone()))
            .collect()
    }

    /// How many times each method was called.
    pub fn calls(&self) -> FakeCalls {
        self.state().calls
    }

    /// Bots that have not been cleaned up, with their status.
    pub fn bots(&self) -> Vec<(BotId, PlatformId, StatusKind)> {
        let mut bots: Vec<_> = self
            .state()
            .bots
            .iter()
            .map(|(id, bot)| (bot.bot_id, id.clone(), bot.status.kind))
            .collect();
        bots.sort();
        bots
    }

    /// How many bots are starting or running.
    pub fn live_bots(&self) -> usize {
        self.state()
            .bots
            .values()
            .filter(|b| matches!(b.status.kind, StatusKind::Starting | StatusKind::Running))
            .count()
    }

    fn unreachable_error(&self, resource: &str) -> Error {
        Error::Unavailable {
            platform: self.name,
            resource: resource.to_owned(),
            message: "the fake platform is set unreachable".into(),
        }
    }
}

#[async_trait]
impl PlatformService for FakePlatform {
    fn platform_name(&self) -> &'static str {
        self.name
    }

    fn capacity(&self) -> crate::PlatformCapacity {
        self.capacity.clone()
    }

    async fn deploy_bot(&self, config: &BotDeploymentConfig, attempt: u32) -> Result<DeployResult> {
        let in_flight = DeployInFlight::start(self);
        self.delay().await;
        drop(in_flight);
        let mut state = self.state();
        state.calls.deploy += 1;
        // Recorded even for a call that fails: a timed-out call may have
        // reached the platform with it.
        state
            .environments
            .push((config.bot_id(), attempt, bot_environment(config)));
        if let Some(error) = state.deploy_errors.pop_front() {
            return Err(error);
        }
        let id = Self::identifier(config.bot_id(), attempt);
        let starts_as = self.starts_as;
        state.bots.entry(id.clone()).or_insert_with(|| FakeBot {
            bot_id: config.bot_id(),
            attempt,
            status: BotStatus::new(starts_as).with_raw(starts_as.as_str()),
        });
        let live = state
            .bots
            .values()
            .filter(|b| !b.status.kind.is_terminal())
            .count();
        state.peak_live = state.peak_live.max(live);
        Ok(DeployResult {
            connection_url: Some(format!("fake://{id}")),
            identifier: id,
        })
    }

    async fn stop_bot(&self, identifier: &PlatformId) -> Result<()> {
        self.delay().await;
        let mut state = self.state();
        state.calls.stop += 1;
        if let Some(error) = state.stop_errors.pop_front() {
            return Err(error);
        }
        if let Some(bot) = state
            .bots
            .get_mut(identifier)
            .filter(|b| !b.status.kind.is_terminal())
        {
            bot.status = BotStatus::new(StatusKind::Stopped)
                .with_raw("stopped")
                .with_reason("stopped on request");
        }
        Ok(())
    }

    async fn get_bot_status(&self, identifier: &PlatformId) -> Result<BotStatus> {
        self.delay().await;
        let mut state = self.state();
        state.calls.status += 1;
        if let Some(error) = state.status_errors.pop_front() {
            return Err(error);
        }
        Ok(state
            .bots
            .get(identifier)
            .map(|b| b.status.clone())
            .unwrap_or_else(|| {
                BotStatus::unknown("the fake platform does not know this identifier")
            }))
    }

    async fn get_bot_statuses(
        &self,
        identifiers: &[PlatformId],
    ) -> Result<HashMap<PlatformId, BotStatus>> {
        self.delay().await;
        let mut state = self.state();
        state.calls.statuses += 1;
        if let Some(error) = state.status_errors.pop_front() {
            return Err(error);
        }
        Ok(identifiers
            .iter()
            .map(|id| {
                let status = state
                    .bots
                    .get(id)
                    .map(|b| b.status.clone())
                    .unwrap_or_else(|| {
                        BotStatus::unknown("the fake platform does not know this identifier")
                    });
                (id.clone(), status)
            })
            .collect())
    }

    async fn cleanup(&self, identifier: &PlatformId) -> Result<()> {
        self.delay().await;
        let mut state = self.state();
        state.calls.cleanup += 1;
        state.bots.remove(identifier);
        Ok(())
    }

    async fn check_reachable(&self) -> Result<()> {
        self.delay().await;
        if self.state().unreachable {
            return Err(self.unreachable_error("the fake platform"));
        }
        Ok(())
    }

    async fn list_marked_bots(&self) -> Result<Vec<MarkedBot>> {
        self.delay().await;
        let mut state = self.state();
        state.calls.list_marked += 1;
        if let Some(error) = state.list_errors.pop_front() {
            return Err(error);
        }
        let mut marked: Vec<MarkedBot> = state
            .bots
            .iter()
            .map(|(id, bot)| MarkedBot {
                identifier: id.clone(),
                bot: bot.bot_id,
                attempt: Some(bot.attempt),
                description: format!("fake bot {id}, {}", bot.status.kind),
            })
            .collect();
        marked.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        Ok(marked)
    }
}
