//! One delivery attempt: the signed POST, its answer read to at most
//! 1 KiB, and what it means.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::destination::{self, CheckedResolver};
use super::schedule::parse_retry_after;
use super::secret::Signer;
use crate::store::{DESTINATION_BOT, DeliveryRecord};

/// The most of a receiver's answer kept for diagnosis.
pub const MAX_RESPONSE_BYTES: usize = 1024;

/// What one attempt gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    /// Whether the receiver accepted it (2xx).
    pub delivered: bool,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// Why it failed.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response: Option<String>,
    /// How long a 429 or 503 asked us to wait.
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            delivered: false,
            status_code: None,
            error: Some(error.into()),
            response: None,
            retry_after: None,
        }
    }
}

/// Sends deliveries: two HTTP clients (the operator's receiver as
/// configured; bots' receivers only to checked public addresses), the
/// signer, the timeout. Redirects are never followed.
#[derive(Clone, Debug)]
pub struct Sender {
    operator: reqwest::Client,
    bots: reqwest::Client,
    signer: Arc<Signer>,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    /// A sender signing with `signer`, giving each attempt `timeout`.
    pub fn new(
        signer: Signer,
        timeout: Duration,
        allow_private: bool,
    ) -> Result<Self, reqwest::Error> {
        let base = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("meeboter-deploy/", env!("CARGO_PKG_VERSION")))
        };
        let operator = base().build()?;
        let bots = if allow_private {
            base().build()?
        } else {
            // No proxy: a proxy would resolve the name itself, past the
            // check.
            base()
                .no_proxy()
                .dns_resolver(Arc::new(CheckedResolver))
                .build()?
        };
        Ok(Self {
            operator,
            bots,
            signer: Arc::new(signer),
            allow_private,
            timeout,
        })
    }

    /// The attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Makes one attempt at `delivery`.
    pub async fn send(&self, delivery: &DeliveryRecord) -> AttemptResult {
        let client = if delivery.destination == DESTINATION_BOT {
            // Checked again now: the rules or the address may have changed
            // since the bot was created.
            let url = match destination::check_form(&delivery.url, self.allow_private) {
                Ok(url) => url,
                Err(error) => return AttemptResult::failed(error.to_string()),
            };
            if !self.allow_private
                && let Some(ip) = destination::literal_ip(&url)
                && !destination::is_public(ip)
            {
                return AttemptResult::failed(format!(
                    "webhook_url reaches {ip}, a loopback, private, link-local or reserved address; not sent"
                ));
            }
            &self.bots
        } else {
            &self.operator
        };
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let body = delivery.payload.as_bytes();
        let signature = self
            .signer
            .signature_header(&delivery.message_id, timestamp, body);
        let request = client
            .post(&delivery.url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                concat!("meeboter-deploy/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone());
        // reqwest's own timeout covers connecting and the answer's headers;
        // this one also bounds reading the (cut) body.
        match tokio::time::timeout(self.timeout, exchange(request)).await {
            Ok(result) => result,
            Err(_) => AttemptResult::failed(format!(
                "no complete answer within WEBHOOK_TIMEOUT ({} s)",
                self.timeout.as_secs()
            )),
        }
    }
}

async fn exchange(request: reqwest::RequestBuilder) -> AttemptResult {
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return AttemptResult::failed(describe(&error)),
    };
    let status = response.status();
    let retry_after = if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
    } else {
        None
    };
    let mut kept = Vec::new();
    while kept.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            // A body cut short says nothing more about the delivery than
            // its status does.
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(MAX_RESPONSE_BYTES);
    let text = String::from_utf8_lossy(&kept).into_owned();
    let response_text = (!text.is_empty()).then_some(text);
    let delivered = status.is_success();
    let error = if delivered {
        None
    } else if status.is_redirection() {
        Some(format!(
            "the receiver answered {status} (a redirect; redirects are not followed: configure the final URL)"
        ))
    } else {
        Some(format!("the receiver answered {status}"))
    };
    AttemptResult {
        delivered,
        status_code: Some(status.as_u16()),
        error,
        response: response_text,
        retry_after,
    }
}

/// Why a request failed, without its URL (which may carry a receiver's
/// token): the kind, then the innermost cause.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "no answer in time"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error.source();
    let mut innermost = None;
    while let Some(current) = cause {
        innermost = Some(current.to_string());
        cause = current.source();
    }
    match innermost {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}
