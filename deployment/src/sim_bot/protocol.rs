//! The stand-in bot's side of the bot protocol: meeting-status reports with
//! event ids (so a retried report counts once), retried with a doubling
//! wait while the service does not answer (a restart, a deploy), and
//! heartbeats whose answer says when to leave.

use std::time::Duration;

use platform_core::SecretString;
use serde_json::{Value, json};

/// The longest wait between two tries of one report.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How one report or heartbeat went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The service took it; whether it asks the bot to leave.
    Taken {
        /// `leave` in the answer.
        leave: bool,
    },
    /// The service refused it for good (4xx other than 429), with its code.
    Refused(String),
    /// The bot's token is no longer valid: the bot has ended.
    Ended,
}

/// Talks to the service as one bot.
pub struct ProtocolClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    events: std::sync::atomic::AtomicU64,
    bot_id: String,
}

impl std::fmt::Debug for ProtocolClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolClient")
            .field("base", &self.base)
            .field("bot_id", &self.bot_id)
            .finish_non_exhaustive()
    }
}

impl ProtocolClient {
    /// A client for bot `bot_id` at `api_url` with `token`.
    pub fn new(api_url: &str, bot_id: &str, token: SecretString) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base: format!("{}/v1/bot/{bot_id}", api_url.trim_end_matches('/')),
            token,
            events: std::sync::atomic::AtomicU64::new(0),
            bot_id: bot_id.to_owned(),
        })
    }

    async fn post_once(&self, path: &str, body: &Value) -> Result<Delivery, Option<Duration>> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|error| {
                tracing::debug!(error = %error, "the service did not answer");
                None
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Delivery::Taken {
                leave: answer["leave"].as_bool().unwrap_or(false),
            });
        }
        let code = answer["error"]["code"].as_str().unwrap_or("").to_owned();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(retry_after);
        }
        if status.as_u16() == 401 {
            return Ok(Delivery::Ended);
        }
        Ok(Delivery::Refused(code))
    }

    /// Sends a heartbeat once (the next one is the retry).
    pub async fn heartbeat(&self) -> Option<Delivery> {
        self.post_once("/heartbeat", &json!({})).await.ok()
    }

    /// Reports `report` (a JSON object with `status` and its fields) with a
    /// fresh event id, retrying until the service takes or refuses it.
    pub async fn report(&self, mut report: Value) -> Delivery {
        let n = self
            .events
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        report["event_id"] = json!(format!("sim-{}-{pid}-{n}", self.bot_id));
        let mut wait = Duration::from_millis(500);
        loop {
            match self.post_once("/events", &report).await {
                Ok(delivery) => {
                    tracing::info!(status = %report["status"], outcome = ?delivery, "sim-bot reported its meeting status");
                    return delivery;
                }
                Err(hint) => {
                    let pause = hint.unwrap_or(wait).min(MAX_BACKOFF);
                    tracing::info!(status = %report["status"], retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX), "report not taken yet; retrying");
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
