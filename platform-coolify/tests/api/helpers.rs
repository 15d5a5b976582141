//! Spawning a Coolify platform against a fake Coolify on 127.0.0.1.

use std::sync::Arc;

use platform_coolify::{CoolifyConfig, CoolifyPlatform, POOL};
use platform_core::{
    BotDeploymentConfig, BotId, Error, InMemorySlotStore, InstallationId, MeetingPlatform,
    MeetingUrl, Slot, SlotState, SlotStore,
};
use wiremock::{MockServer, Request};

use crate::fake_coolify::{FakeCoolify, INSTALLATION};

/// A fake Coolify, mounted on its own server.
pub struct TestCoolify {
    pub server: MockServer,
    pub fake: FakeCoolify,
    pub store: Arc<InMemorySlotStore>,
}

impl TestCoolify {
    /// A server whose fake answers every call (mount narrower mocks first).
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let fake = FakeCoolify::new();
        fake.mount(&server).await;
        Self {
            server,
            fake,
            store: Arc::new(InMemorySlotStore::new()),
        }
    }

    /// The configuration a test uses: [`platform_coolify::testkit::config`].
    pub fn config(&self) -> CoolifyConfig {
        platform_coolify::testkit::config(&self.server.uri())
    }

    /// The tests' installation's platform over this server and store.
    pub async fn platform_with(&self, config: CoolifyConfig) -> Result<CoolifyPlatform, Error> {
        CoolifyPlatform::new(config, self.store.clone(), installation()).await
    }

    pub async fn platform(&self) -> CoolifyPlatform {
        self.platform_with(self.config()).await.unwrap()
    }

    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// `METHOD /path?query` of every request received, `/api/v1` removed.
    pub async fn calls(&self) -> Vec<String> {
        self.requests().await.iter().map(describe).collect()
    }

    pub async fn slot(&self, slot_id: &str) -> Slot {
        self.store.get_slot(POOL, slot_id).await.unwrap().unwrap()
    }

    pub async fn slot_state(&self, slot_id: &str) -> SlotState {
        self.slot(slot_id).await.state
    }
}

/// The tests' installation.
pub fn installation() -> InstallationId {
    InstallationId::new(INSTALLATION).unwrap()
}

pub fn describe(request: &Request) -> String {
    let path = request
        .url
        .path()
        .strip_prefix("/api/v1")
        .unwrap_or(request.url.path());
    match request.url.query() {
        Some(query) => format!("{} {path}?{query}", request.method),
        None => format!("{} {path}", request.method),
    }
}

/// A bot of `platform` with a meeting URL of that platform and no password.
pub fn bot(id: u64, platform: MeetingPlatform) -> BotDeploymentConfig {
    let url = match platform {
        MeetingPlatform::Zoom => format!("https://us02web.zoom.us/j/8{id:010}?pwd=zoompass{id}"),
        MeetingPlatform::Teams => format!("https://teams.live.com/meet/9{id:012}?p=teamspass{id}"),
        MeetingPlatform::Meet => "https://meet.google.com/abc-defg-hij".to_owned(),
    };
    BotDeploymentConfig::new(BotId(id), MeetingUrl::parse(platform, &url).unwrap())
}

pub fn zoom_bot(id: u64) -> BotDeploymentConfig {
    bot(id, MeetingPlatform::Zoom)
}

/// The error's text and `Debug` output together, to search for secrets.
pub fn everything_printed(error: &Error) -> String {
    format!("{error} {error:?}")
}
