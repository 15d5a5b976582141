//! Running the API: the HTTP server and the reconciler loop in one
//! process, until a stop signal.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use super::auth::ApiToken;
use super::routes::router;
use super::shutdown::StopSignal;
use super::state::ApiState;
use crate::service::BotService;
use crate::webhooks::DeliveryWorker;

/// How `serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Time between reconciler passes (`RECONCILE_INTERVAL`).
    pub reconcile_interval: Duration,
    /// How long requests in flight may take to finish after the stop
    /// signal (`SHUTDOWN_GRACE`).
    pub shutdown_grace: Duration,
    /// The largest request body read (`API_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// The webhook delivery worker, when webhooks are configured.
    pub webhook_worker: Option<DeliveryWorker>,
}

/// Serves the API on `listener` and runs the reconciler until `shutdown`
/// resolves; then refuses new connections at once, waits up to the grace
/// for requests in flight, and lets the reconciler finish its pass. Bots
/// keep running. Does not close the database: the caller owns it.
pub async fn serve(
    listener: TcpListener,
    service: BotService,
    token: ApiToken,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = StopSignal::new();
    let app = router(
        ApiState::new(service.clone(), token),
        options.max_body_bytes,
    );
    let mut reconciler = tokio::spawn({
        let service = service.clone();
        let stopped = stop.stopped();
        let interval = options.reconcile_interval;
        async move { service.run_reconciler(interval, stopped).await }
    });
    // Heartbeats are buffered in memory and written every few seconds; the
    // flusher writes what is left when the service stops.
    let mut flusher = tokio::spawn({
        let service = service.clone();
        let stopped = stop.stopped();
        async move { service.run_heartbeat_flusher(stopped).await }
    });
    let mut webhooks = options.webhook_worker.clone().map(|worker| {
        let stopped = stop.stopped();
        tokio::spawn(async move { worker.run(stopped).await })
    });
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.stopped())
            .into_future(),
    );
    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!(
                grace_s = options.shutdown_grace.as_secs(),
                "stopping: new connections are refused, requests in flight may finish"
            );
            stop.stop();
            match tokio::time::timeout(options.shutdown_grace, &mut server).await {
                Ok(joined) => joined.unwrap_or_else(|e| Err(std::io::Error::other(e))),
                Err(_) => {
                    tracing::warn!(
                        "requests still in flight after the shutdown grace; stopping anyway (the reconciler finishes them on the next start)"
                    );
                    server.abort();
                    Ok(())
                }
            }
        }
        joined = &mut server => {
            stop.stop();
            joined.unwrap_or_else(|e| Err(std::io::Error::other(e)))
        }
    };
    // The reconciler sees the stop between passes; bound the wait for a
    // pass in progress by the same grace.
    if tokio::time::timeout(options.shutdown_grace, &mut reconciler)
        .await
        .is_err()
    {
        tracing::warn!("the reconciler pass did not end within the shutdown grace; stopping it");
        reconciler.abort();
    }
    // Deploys and stops handed to the deploy workers finish (each platform
    // call is bounded by PLATFORM_CALL_TIMEOUT); the ones still waiting at
    // the end of the grace are handed over again by the next start's
    // reconciler, with the same attempt.
    if tokio::time::timeout(options.shutdown_grace, service.finish_jobs())
        .await
        .is_err()
    {
        let left: usize = service
            .deploy_workers()
            .iter()
            .map(|(_, load)| load.waiting + load.running)
            .sum();
        tracing::warn!(
            jobs = left,
            "deploys and stops still in the deploy workers after the shutdown grace; the reconciler hands them over again at the next start"
        );
    }
    if tokio::time::timeout(options.shutdown_grace, &mut flusher)
        .await
        .is_err()
    {
        tracing::warn!("the last heartbeats were not written within the shutdown grace");
        flusher.abort();
    }
    // The worker finishes the attempts in flight (each bounded by
    // WEBHOOK_TIMEOUT); what it does not send waits in the outbox.
    if let Some(worker) = webhooks.as_mut()
        && tokio::time::timeout(options.shutdown_grace, &mut *worker)
            .await
            .is_err()
    {
        tracing::warn!(
            "webhook attempts still in flight after the shutdown grace; they are sent again at the next start"
        );
        worker.abort();
    }
    tracing::info!("stopped; running bots keep running and are picked up at the next start");
    outcome
}
