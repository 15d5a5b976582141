//! A webhook receiver on a loopback port: records every request it gets
//! (path, headers, body, when) and answers as the test says, so delivery is
//! tested over real HTTP, not against a mock of our own code.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// How long it takes before answering.
    pub delay: Duration,
    /// A `Retry-After` header.
    pub retry_after: Option<&'static str>,
}

impl Answer {
    /// 200 at once.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// `status` at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    /// The same answer after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path and query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as sent.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
    /// When the receiver answered it.
    pub answered_at: Instant,
    /// The status answered.
    pub status: u16,
}

impl Received {
    /// The `webhook-id` header.
    pub fn webhook_id(&self) -> String {
        self.headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

type Decide = dyn Fn(&str, usize) -> Answer + Send + Sync;

struct Shared {
    log: Mutex<Vec<Received>>,
    in_flight: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
    seen: Mutex<std::collections::HashMap<String, usize>>,
    decide: Box<Decide>,
}

/// The receiver. Stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.to_string();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let nth = {
        let mut seen = shared.seen.lock().unwrap();
        let n = seen.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    if !shared.in_flight.lock().unwrap().insert(id.clone()) {
        shared.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    let answer = (shared.decide)(&path, nth);
    tokio::time::sleep(answer.delay).await;
    shared.in_flight.lock().unwrap().remove(&id);
    shared.log.lock().unwrap().push(Received {
        path,
        headers,
        body,
        at,
        answered_at: Instant::now(),
        status: answer.status,
    });
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap(),
        "receiver says hello",
    )
        .into_response();
    if let Some(after) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static(after));
    }
    response
}

impl Receiver {
    /// A receiver answering `decide(path, nth)`, where `nth` counts the
    /// requests with this `webhook-id` (1 for the first).
    pub async fn start(decide: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, decide)
    }

    /// The same on a listener the test bound.
    pub fn on(
        listener: tokio::net::TcpListener,
        decide: impl Fn(&str, usize) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashSet::new()),
            overlaps: AtomicUsize::new(0),
            seen: Mutex::new(Default::default()),
            decide: Box::new(decide),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request answered so far, in the order they were answered.
    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// How many requests arrived while another with the same `webhook-id`
    /// was still being answered.
    pub fn overlaps(&self) -> usize {
        self.shared.overlaps.load(Ordering::SeqCst)
    }

    /// Waits (at most `within`) until `done(received)` holds.
    pub async fn wait_until(&self, within: Duration, done: impl Fn(&[Received]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if done(&self.received()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get what was expected in time; got {} requests",
                self.received().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
