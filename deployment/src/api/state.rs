//! What every handler shares.

use std::sync::Arc;

use super::auth::ApiToken;
use crate::service::BotService;

/// The service and the token, shared by every request. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiState {
    service: BotService,
    token: Arc<ApiToken>,
}

impl ApiState {
    /// State over `service`, protected by `token`.
    pub fn new(service: BotService, token: ApiToken) -> Self {
        Self {
            service,
            token: Arc::new(token),
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
}
