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
    Ok(BotService::new(store, platform, options_from(settings)))
}

/// The service options the settings ask for; the rest keep their defaults.
pub fn options_from(settings: &ServiceSettings) -> ServiceOptions {
    ServiceOptions {
        deploy_timeout: settings.deploy_timeout,
        platform_call_timeout: settings.platform_call_timeout,
        orphan_sweep_interval: settings.orphan_sweep_interval,
        webhooks: WebhookPolicy {
            enabled: settings.webhooks.enabled(),
            allow_private: settings.webhooks.allow_private,
        },
        ..ServiceOptions::default()
    }
}
