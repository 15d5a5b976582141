//! The delivery worker: one per `serve` process. It claims due deliveries
//! from the outbox (the oldest undelivered event of each bot and receiver,
//! never one another process holds), sends up to `concurrency` at once,
//! records each attempt and schedules the next, and wakes as soon as this
//! process writes an event (other processes' events are found on the next
//! poll).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::schedule::RetrySchedule;
use super::sender::Sender;
use crate::store::{AfterAttempt, AttemptRecord, DeliveryRecord, Store, now_ms};

/// How the worker runs; every field has a production default.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Deliveries in flight at once. Default 32: one slow receiver holds
    /// one of them, never the others.
    pub concurrency: usize,
    /// How often the outbox is read when this process wrote nothing (other
    /// replicas' events, retries coming due). Default 1 s.
    pub poll_interval: Duration,
    /// The retry schedule.
    pub schedule: RetrySchedule,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 32,
            poll_interval: Duration::from_secs(1),
            schedule: RetrySchedule::default(),
        }
    }
}

/// How much longer than an attempt's timeout a claim lasts: the database
/// writes around the attempt. A claim outlives every attempt of a live
/// worker, so no other worker sends the same delivery while it is in
/// flight.
pub const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// The delivery worker.
#[derive(Clone, Debug)]
pub struct DeliveryWorker {
    store: Store,
    sender: Sender,
    options: WorkerOptions,
    owner: Arc<str>,
}

impl DeliveryWorker {
    /// A worker over `store`, sending with `sender`.
    pub fn new(store: Store, sender: Sender, options: WorkerOptions) -> Self {
        let owner = format!(
            "webhooks-pid{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            store,
            sender,
            options,
            owner: Arc::from(owner),
        }
    }

    /// Runs until `stopped` resolves, then lets the attempts in flight
    /// finish (each is bounded by the timeout).
    pub async fn run(self, stopped: impl Future<Output = ()> + Send) {
        let written = self.store.outbox_written();
        let mut in_flight: JoinSet<()> = JoinSet::new();
        tokio::pin!(stopped);
        tracing::info!(owner = %self.owner, "webhook delivery worker started");
        loop {
            let free = self.options.concurrency.saturating_sub(in_flight.len());
            if free > 0 {
                let lease = self.sender.timeout() + CLAIM_MARGIN;
                let until = now_ms() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                match self.store.claim_deliveries(&self.owner, until, limit).await {
                    Ok(batch) => {
                        for delivery in batch {
                            let worker = self.clone();
                            in_flight.spawn(async move { worker.attempt(delivery).await });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot read the webhook outbox; trying again shortly");
                    }
                }
            }
            tokio::select! {
                () = &mut stopped => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = written.notified() => {}
                () = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
        let bound = self.sender.timeout() + Duration::from_secs(5);
        if tokio::time::timeout(bound, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            // Unrecorded attempts are sent again after their claim expires:
            // at least once, never lost.
            in_flight.abort_all();
        }
        tracing::info!("webhook delivery worker stopped");
    }

    /// One attempt at `delivery`, recorded with what follows from it.
    async fn attempt(&self, delivery: DeliveryRecord) {
        crate::failpoint::pause_if_armed(crate::failpoint::BEFORE_WEBHOOK_SEND).await;
        let started_at = now_ms();
        let clock = Instant::now();
        let result = self.sender.send(&delivery).await;
        let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        let number = delivery.attempts + 1;
        let after = if result.delivered {
            AfterAttempt::Delivered
        } else {
            let failures = u32::try_from(number).unwrap_or(u32::MAX);
            let wait = self.options.schedule.delay(failures, result.retry_after);
            let next = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            let max_age =
                i64::try_from(self.options.schedule.max_age.as_millis()).unwrap_or(i64::MAX / 2);
            if next - delivery.age_from > max_age {
                AfterAttempt::Failed
            } else {
                AfterAttempt::RetryAt(next)
            }
        };
        let record = AttemptRecord {
            delivery_id: delivery.id,
            number,
            started_at,
            duration_ms,
            status_code: result.status_code.map(i32::from),
            error: result.error.clone(),
            response: result.response.clone(),
        };
        match self.store.finish_attempt(&self.owner, &record, after).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                delivery = delivery.id,
                "a webhook delivery's claim was lost during the attempt; its result is not recorded"
            ),
            Err(error) => tracing::warn!(
                delivery = delivery.id,
                error = %error,
                "a webhook attempt could not be recorded; it is sent again once its claim expires"
            ),
        }
        match after {
            AfterAttempt::Delivered => tracing::debug!(
                delivery = delivery.id,
                bot_id = delivery.bot_id,
                event = %delivery.event_type,
                attempt = number,
                "webhook delivered"
            ),
            AfterAttempt::RetryAt(at) => tracing::info!(
                delivery = delivery.id,
                bot_id = delivery.bot_id,
                event = %delivery.event_type,
                attempt = number,
                error = result.error.as_deref().unwrap_or_default(),
                retry_in_ms = at - now_ms(),
                "webhook not accepted; retrying later"
            ),
            AfterAttempt::Failed => tracing::warn!(
                delivery = delivery.id,
                bot_id = delivery.bot_id,
                event = %delivery.event_type,
                attempt = number,
                error = result.error.as_deref().unwrap_or_default(),
                "webhook given up after WEBHOOK_MAX_AGE; POST /v1/webhooks/{{delivery}}/retry sends it again"
            ),
        }
    }
}
