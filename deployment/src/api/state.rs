//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;

use super::auth::ApiToken;
use crate::service::{BotService, Readiness};

/// The last readiness answer and when it was taken.
pub(crate) type ReadinessCache = tokio::sync::Mutex<Option<(Instant, Readiness)>>;

/// The service and the token, shared by every request. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiState {
    service: BotService,
    token: Arc<ApiToken>,
    readiness: Arc<ReadinessCache>,
}

impl ApiState {
    /// State over `service`, protected by `token`.
    pub fn new(service: BotService, token: ApiToken) -> Self {
        Self {
            service,
            token: Arc::new(token),
            readiness: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The bot service.
    pub fn service(&self) -> &BotService {
        &self.service
    }

    /// The token requests must carry.
    pub fn token(&self) -> &ApiToken {
        &self.token
    }

    pub(crate) fn readiness_cache(&self) -> &ReadinessCache {
        &self.readiness
    }
}
