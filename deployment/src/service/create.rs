//! Creating a bot: validation, the record, idempotency keys.

use platform_core::{BotDeploymentInput, BotId, FieldError, InvalidDeploymentConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{BotService, DeployWait};

use crate::bot::{Bot, BotState};
use crate::error::{ServiceError, ServiceResult};
use crate::store::{CreateOutcome, IdempotencyKey, NewBot};

/// A request to create a bot.
#[derive(Clone, Debug)]
pub struct CreateBot {
    /// What the client sent.
    pub input: BotDeploymentInput,
    /// The client's idempotency key, with the fingerprint of its request.
    pub idempotency: Option<IdempotencyKey>,
    /// Whether to deploy it at once.
    pub deploy: bool,
    /// Its queue priority: when no platform has room, a queued bot with a
    /// higher priority is placed first, then the one that waited longest.
    /// Default 0; from -1000000 to 1000000.
    pub priority: i64,
    /// The bot's own webhook receiver, besides the operator's.
    pub webhook_url: Option<String>,
    /// When the bot must be in its meeting (RFC 3339). With a deploy, a
    /// bot whose deploy time (`join_at` minus the platforms' lead time) is
    /// ahead waits as `scheduled`; otherwise it deploys now.
    pub join_at: Option<String>,
}

/// The lowest queue priority a bot may have.
pub const MIN_PRIORITY: i64 = -1_000_000;
/// The highest queue priority a bot may have.
pub const MAX_PRIORITY: i64 = 1_000_000;

/// What [`BotService::create_bot`] did.
#[derive(Clone, Debug, Serialize)]
pub struct CreatedBot {
    /// The bot, after the deploy if one was asked for.
    pub bot: Bot,
    /// `false` when an idempotency key returned an existing bot.
    pub created: bool,
}

/// Validates a client's idempotency key and fingerprints its request body:
/// the same key with the same body returns the same bot, with another body
/// it is a conflict. Keys are 1 to 255 visible ASCII characters.
pub fn idempotency_key(key: &str, body: &[u8]) -> ServiceResult<IdempotencyKey> {
    let valid = !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ServiceError::InvalidIdempotencyKey);
    }
    let fingerprint = format!("{:x}", Sha256::digest(body));
    Ok(IdempotencyKey {
        key: key.to_owned(),
        fingerprint,
    })
}

impl BotService {
    /// Creates a bot and, if asked, deploys it, waiting until the platform
    /// answered (see [`DeployWait::ForPlatform`]); the same as
    /// [`create_bot_with`](Self::create_bot_with) with that wait.
    pub async fn create_bot(&self, request: CreateBot) -> ServiceResult<CreatedBot> {
        self.create_bot_with(request, DeployWait::ForPlatform, &mut |_| {})
            .await
    }

    /// Validates and records a bot (in `pending`), then deploys it if asked
    /// (see [`deploy_with`](Self::deploy_with) for `wait` and `progress`);
    /// a bot with a `join_at` whose deploy time is ahead is recorded
    /// `scheduled` instead and deployed at that time by the scheduler. The
    /// deploy intent is written with the bot, so a crash before the
    /// platform call leaves a due bot that any service process deploys on
    /// its next round. With an idempotency key, a repeated request returns the bot the first
    /// one created (deploying it if it is still pending), and a different
    /// request with the same key is refused. Nothing is written when the
    /// request is invalid.
    pub async fn create_bot_with(
        &self,
        request: CreateBot,
        wait: DeployWait,
        progress: &mut (dyn FnMut(&Bot) + Send),
    ) -> ServiceResult<CreatedBot> {
        if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&request.priority) {
            // A field of the body, refused like the body's other fields.
            return Err(ServiceError::InvalidRequest(InvalidDeploymentConfig {
                errors: vec![FieldError::new(
                    "priority",
                    format!(
                        "is {}; allowed: a whole number from {MIN_PRIORITY} to {MAX_PRIORITY} (higher is placed first)",
                        request.priority
                    ),
                )],
            }));
        }
        let config = request
            .input
            .validate(BotId(0))
            .map_err(ServiceError::InvalidRequest)?;
        let join_at = match &request.join_at {
            Some(raw) => Some(self.check_join_at(raw)?),
            None => None,
        };
        let plan = match (request.deploy, join_at) {
            (true, join_at) => Some(self.plan(join_at)),
            (false, _) => None,
        };
        let webhook_url = match &request.webhook_url {
            Some(url) => Some(self.check_webhook_url(url).await?),
            None => None,
        };
        let outcome = self
            .store_ref()
            .create_bot(
                NewBot {
                    config: &config,
                    priority: request.priority,
                    webhook_url: webhook_url.as_deref(),
                    status: plan.as_ref().map_or(BotState::Pending, |p| p.status),
                    reason: plan.as_ref().map_or("created", |p| p.reason.as_str()),
                    join_at,
                    deploy_at: plan.as_ref().map(|p| p.deploy_at),
                    // The request places the bot itself, unless it leaves
                    // that to the scheduler.
                    lease: plan
                        .as_ref()
                        .filter(|p| p.status == BotState::Pending && wait != DeployWait::Later)
                        .map(|_| (self.inner.instance.as_str(), self.intent_lease_until())),
                },
                request.idempotency.as_ref(),
            )
            .await?;
        let (record, created) = match outcome {
            CreateOutcome::Created(record) => (record, true),
            CreateOutcome::Existing(record) => (record, false),
            CreateOutcome::Conflict { bot } => {
                return Err(ServiceError::IdempotencyConflict {
                    key: request.idempotency.map(|k| k.key).unwrap_or_default(),
                    bot,
                });
            }
        };
        if created {
            tracing::info!(
                bot_id = %record.id(),
                meeting_platform = %config.meeting_platform(),
                meeting_url = %config.meeting_url(),
                "bot created"
            );
        }
        if created && request.deploy {
            crate::failpoint::pause_if_armed(crate::failpoint::AFTER_CREATE).await;
        }
        let bot = if request.deploy
            && record.state()? == BotState::Pending
            && !(created && wait == DeployWait::Later)
        {
            self.deploy_with(record.id(), wait, progress).await?
        } else {
            self.shown(record).await?
        };
        Ok(CreatedBot { bot, created })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_checked_and_fingerprinted() {
        let a = idempotency_key("req-1", b"{\"a\":1}").unwrap();
        let b = idempotency_key("req-1", b"{\"a\":1}").unwrap();
        let c = idempotency_key("req-1", b"{\"a\":2}").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.fingerprint.len(), 64);
        assert_eq!(
            idempotency_key("", b"").unwrap_err().code(),
            "invalid_idempotency_key"
        );
        assert!(idempotency_key("has space", b"").is_err());
        assert!(idempotency_key(&"k".repeat(256), b"").is_err());
    }
}
