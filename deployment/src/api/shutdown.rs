//! Stopping `serve` cleanly: SIGTERM or SIGINT stops accepting connections,
//! lets requests in flight finish (within `SHUTDOWN_GRACE`), and stops the
//! reconciler after its current pass. Running bots keep running: they are
//! in the database, and the next start picks them up.

use tokio::sync::watch;

/// Resolves on the first SIGTERM or SIGINT. If the handlers cannot be
/// installed, never resolves (the process is then stopped by SIGKILL,
/// which crash safety covers).
pub async fn terminate_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; stop the service with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// One stop signal that several tasks wait for.
#[derive(Clone, Debug)]
pub struct StopSignal {
    sender: watch::Sender<bool>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    /// Not stopped yet.
    pub fn new() -> Self {
        Self {
            sender: watch::Sender::new(false),
        }
    }

    /// Tells every waiter to stop.
    pub fn stop(&self) {
        self.sender.send_replace(true);
    }

    /// Resolves once [`stop`](Self::stop) was called (at once if it was).
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            // An error means the sender is gone: nobody can stop us any
            // more, so stop now rather than never.
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }
}
