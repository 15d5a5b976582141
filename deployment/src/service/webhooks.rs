//! Webhooks as the service offers them: a create's `webhook_url` checked,
//! a bot's deliveries shown, a delivery sent again.

use platform_core::BotId;

use super::BotService;
use crate::error::{ServiceError, ServiceResult};
use crate::store::RetryOutcome;
use crate::webhooks::destination;
use crate::webhooks::view::{BotWebhooks, WebhookDelivery};

impl BotService {
    /// Checks a create's `webhook_url`: webhooks must be signed, and the
    /// URL must be https and reach only public addresses (unless the
    /// operator allows private ones). Returns it as it will be stored.
    pub(crate) async fn check_webhook_url(&self, url: &str) -> ServiceResult<String> {
        let policy = self.options().webhooks;
        if !policy.enabled {
            return Err(ServiceError::WebhooksNotConfigured);
        }
        let checked = destination::check(url, policy.allow_private).await?;
        Ok(checked.to_string())
    }

    /// A bot's webhook deliveries, oldest first, with every attempt.
    pub async fn webhooks(&self, id: BotId) -> ServiceResult<BotWebhooks> {
        let record = self.load(id).await?;
        let deliveries = self.store_ref().bot_deliveries(id).await?;
        Ok(BotWebhooks {
            bot_id: record.id,
            deliveries: deliveries
                .into_iter()
                .map(|(delivery, attempts)| WebhookDelivery::new(delivery, attempts))
                .collect(),
        })
    }

    /// Sends a pending or failed delivery again now (a failed one gets a
    /// fresh `WEBHOOK_MAX_AGE`); a delivered one is refused.
    pub async fn retry_webhook(&self, delivery: i64) -> ServiceResult<WebhookDelivery> {
        match self.store_ref().retry_delivery(delivery).await? {
            RetryOutcome::Scheduled(record) => {
                tracing::info!(
                    delivery,
                    bot_id = record.bot_id,
                    "webhook delivery scheduled again by hand"
                );
                let attempts = self
                    .store_ref()
                    .delivery(delivery)
                    .await?
                    .map(|(_, attempts)| attempts)
                    .unwrap_or_default();
                Ok(WebhookDelivery::new(record, attempts))
            }
            RetryOutcome::AlreadyDelivered(_) => {
                Err(ServiceError::DeliveryAlreadyDelivered(delivery))
            }
            RetryOutcome::NotFound => Err(ServiceError::DeliveryNotFound(delivery)),
        }
    }
}
