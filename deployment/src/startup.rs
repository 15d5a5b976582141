//! Opening the service as configured: the database from `DATABASE_URL`, the
//! platform from `DEPLOYMENT_PLATFORM` (with the database as its slot
//! store), the options from the service's variables. What `serve` and every
//! CLI command that touches bots start with.

use std::sync::Arc;

use platform_core::{EnvLookup, SlotStore};

use crate::error::ServiceResult;
use crate::platforms;
use crate::service::{BotService, ServiceOptions, WebhookPolicy};
use crate::settings::ServiceSettings;
use crate::store::Store;

/// Opens the database and builds the chosen platform over it. `env` is
/// where the platform reads its own variables (the process environment in
/// production, a map in tests).
pub async fn open_service(
    settings: &ServiceSettings,
    env: Arc<dyn EnvLookup>,
) -> ServiceResult<BotService> {
    let store = Store::connect(settings.database_url.expose())
        .await?
        .with_operator_webhook(settings.webhooks.url.clone());
    let slots: Arc<dyn SlotStore> = Arc::new(store.clone());
    let installation = store.installation().clone();
    let platform = match platforms::build_platform(env, slots, installation).await {
        Ok((_, platform)) => platform,
        Err(error) => {
            store.close().await;
            return Err(error);
        }
    };
    let mut options = options_from(settings);
    options.bot_api_url = match settings.bot_api_url_for(platform.platform_name()) {
        Ok(url) => Some(url),
        Err(problem) => {
            // `serve` refuses to start this way; a one-shot command still
            // works, and bots it deploys get no protocol.
            tracing::warn!(problem = %problem, "bots deployed now get no bot protocol");
            None
        }
    };
    Ok(BotService::new(store, platform, options))
}

/// The service options the settings ask for; the rest keep their defaults.
pub fn options_from(settings: &ServiceSettings) -> ServiceOptions {
    ServiceOptions {
        deploy_timeout: settings.deploy_timeout,
        platform_call_timeout: settings.platform_call_timeout,
        orphan_sweep_interval: settings.orphan_sweep_interval,
        bot_api_url: settings.bot_api_url.clone(),
        heartbeat_timeout: settings.heartbeat_timeout,
        leave_grace: settings.leave_grace,
        bot_protocol_required: settings.bot_protocol_required,
        bot_events_per_minute: settings.bot_events_per_minute,
        webhooks: WebhookPolicy {
            enabled: settings.webhooks.enabled(),
            allow_private: settings.webhooks.allow_private,
        },
        ..ServiceOptions::default()
    }
}
