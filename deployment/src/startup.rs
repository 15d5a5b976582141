//! Opening the service as configured: the database from `DATABASE_URL`, the
//! platforms from `PLATFORM_PRIORITY` or `DEPLOYMENT_PLATFORM` (with the
//! database as their slot store), the options from the service's variables. What `serve` and every
//! CLI command that touches bots start with.

use std::sync::Arc;

use platform_core::{EnvLookup, SlotStore};

use crate::error::ServiceResult;
use crate::platforms;
use crate::service::{BotService, ServiceOptions};
use crate::settings::ServiceSettings;
use crate::store::Store;

/// Opens the database and builds the chosen platform over it. `env` is
/// where the platform reads its own variables (the process environment in
/// production, a map in tests).
pub async fn open_service(
    settings: &ServiceSettings,
    env: Arc<dyn EnvLookup>,
) -> ServiceResult<BotService> {
    let store = Store::connect(settings.database_url.expose()).await?;
    let slots: Arc<dyn SlotStore> = Arc::new(store.clone());
    let installation = store.installation().clone();
    let built = match platforms::build_platforms(env, slots, installation).await {
        Ok(built) => built,
        Err(error) => {
            store.close().await;
            return Err(error);
        }
    };
    let platforms: Vec<_> = built.into_iter().map(|(_, platform)| platform).collect();
    for platform in &platforms {
        let cap = platform.capacity().max_bots;
        if let Err(error) = store.record_platform_cap(platform.platform_name(), cap).await {
            store.close().await;
            return Err(error.into());
        }
    }
    match BotService::with_platforms(store.clone(), platforms, options_from(settings)) {
        Ok(service) => Ok(service),
        Err(error) => {
            store.close().await;
            Err(error)
        }
    }
}

/// The service options the settings ask for; the rest keep their defaults.
pub fn options_from(settings: &ServiceSettings) -> ServiceOptions {
    ServiceOptions {
        deploy_timeout: settings.deploy_timeout,
        platform_call_timeout: settings.platform_call_timeout,
        orphan_sweep_interval: settings.orphan_sweep_interval,
        queue_timeout: settings.queue_timeout,
        // One reconciler interval: renewed three times in it by its holder,
        // taken over by another process's next pass once it lapses.
        sweep_lease: settings.reconcile_interval,
        ..ServiceOptions::default()
    }
}
