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
    /// finish (each is bounded by the timeout) and records them.
    ///
    /// Each turn of the loop records every attempt that finished since the
    /// last turn in one transaction, then claims as many due deliveries as
    /// there are free slots in another: two writes per turn however many
    /// deliveries it handles, which is what SQLite's single writer needs
    /// under load. A bot's next event becomes claimable in the same turn
    /// its previous one is recorded.
    pub async fn run(self, stopped: impl Future<Output = ()> + Send) {
        let written = self.store.outbox_written();
        let mut in_flight: JoinSet<Finished> = JoinSet::new();
        let mut finished: Vec<Finished> = Vec::new();
        tokio::pin!(stopped);
        tracing::info!(owner = %self.owner, "webhook delivery worker started");
        loop {
            while let Some(joined) = in_flight.try_join_next() {
                if let Ok(done) = joined {
                    finished.push(done);
                }
            }
            self.record(&mut finished).await;
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
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Ok(done) = joined {
                        finished.push(done);
                    }
                }
                () = written.notified() => {}
                () = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
        let bound = self.sender.timeout() + Duration::from_secs(5);
        let drained = tokio::time::timeout(bound, async {
            while let Some(joined) = in_flight.join_next().await {
                if let Ok(done) = joined {
                    finished.push(done);
                }
            }
        })
        .await;
        if drained.is_err() {
            // Unrecorded attempts are sent again after their claim expires:
            // at least once, never lost.
            in_flight.abort_all();
        }
        self.record(&mut finished).await;
        tracing::info!("webhook delivery worker stopped");
    }

    /// Records finished attempts in one transaction and logs them.
    async fn record(&self, finished: &mut Vec<Finished>) {
        if finished.is_empty() {
            return;
        }
        let batch: Vec<(AttemptRecord, AfterAttempt)> = finished
            .iter()
            .map(|f| (f.record.clone(), f.after))
            .collect();
        match self.store.finish_attempts(&self.owner, &batch).await {
            Ok(recorded) if recorded < batch.len() => tracing::warn!(
                lost = batch.len() - recorded,
                "some webhook deliveries' claims were lost during their attempt; their results are not recorded"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error = %error,
                attempts = batch.len(),
                "webhook attempts could not be recorded; they are sent again once their claims expire"
            ),
        }
        for done in finished.drain(..) {
            done.log();
        }
    }

    /// One attempt at `delivery`, and what follows from it.
    async fn attempt(&self, delivery: DeliveryRecord) -> Finished {
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
        Finished {
            record: AttemptRecord {
                delivery_id: delivery.id,
                number,
                started_at,
                duration_ms,
                status_code: result.status_code.map(i32::from),
                error: result.error,
                response: result.response,
            },
            after,
            bot_id: delivery.bot_id,
            event_type: delivery.event_type,
        }
    }
}

/// An attempt made, waiting to be recorded.
#[derive(Debug)]
struct Finished {
    record: AttemptRecord,
    after: AfterAttempt,
    bot_id: i64,
    event_type: String,
}

impl Finished {
    fn log(&self) {
        let delivery = self.record.delivery_id;
        let attempt = self.record.number;
        let error = self.record.error.as_deref().unwrap_or_default();
        match self.after {
            AfterAttempt::Delivered => tracing::debug!(
                delivery,
                bot_id = self.bot_id,
                event = %self.event_type,
                attempt,
                "webhook delivered"
            ),
            AfterAttempt::RetryAt(at) => tracing::info!(
                delivery,
                bot_id = self.bot_id,
                event = %self.event_type,
                attempt,
                error,
                retry_in_ms = at - now_ms(),
                "webhook not accepted; retrying later"
            ),
            AfterAttempt::Failed => tracing::warn!(
                delivery,
                bot_id = self.bot_id,
                event = %self.event_type,
                attempt,
                error,
                "webhook given up after WEBHOOK_MAX_AGE; POST /v1/webhooks/{{delivery}}/retry sends it again"
            ),
        }
    }
}
