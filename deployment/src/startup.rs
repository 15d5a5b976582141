//! Opening the service as configured: the database from `DATABASE_URL`, the
//! platforms from `PLATFORM_PRIORITY` or `DEPLOYMENT_PLATFORM` (with the
//! database as their slot store), the options from the service's variables. What `serve` and every
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
        if let Err(error) = store
            .record_platform_cap(platform.platform_name(), cap)
            .await
        {
            store.close().await;
            return Err(error.into());
        }
    }
    let mut options = options_from(settings);
    // Every platform's bots must reach the service at the one URL.
    let mut url = None;
    for platform in &platforms {
        match settings.bot_api_url_for(platform.platform_name()) {
            Ok(found) => url = Some(found),
            Err(problem) => {
                // `serve` refuses to start this way; a one-shot command still
                // works, and bots it deploys get no protocol.
                tracing::warn!(problem = %problem, "bots deployed now get no bot protocol");
                url = None;
                break;
            }
        }
    }
    options.bot_api_url = url;
    match BotService::with_platforms(store.clone(), platforms, options) {
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
        deploy_concurrency: settings.deploy_concurrency,
        schedule: settings.schedule.clone(),
        // Four fifths of a reconciler interval: renewed three times in it
        // by its holder, and once it lapses another process's next pass
        // (at most one interval later) takes it: within two intervals.
        sweep_lease: settings.reconcile_interval * 4 / 5,
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
