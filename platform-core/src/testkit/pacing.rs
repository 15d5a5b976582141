//! Measuring a pacer: when concurrent callers were let out.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Starts `count` concurrent callers, each awaiting `acquire()` once, and
/// returns how long after the start each was let out, sorted. Meant for a
/// paused tokio clock, where the instants are exact.
pub async fn release_times<F, Fut>(count: usize, acquire: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let callers: Vec<_> = (0..count)
        .map(|_| {
            let acquired = acquire();
            tokio::spawn(async move {
                acquired.await;
                started.elapsed()
            })
        })
        .collect();
    let mut times = Vec::with_capacity(count);
    for caller in callers {
        times.push(caller.await.expect("a caller panicked"));
    }
    times.sort();
    times
}
