//! Status webhooks: every change of a bot is announced to the operator's
//! `WEBHOOK_URL` and to the bot's own `webhook_url`, signed by the Standard
//! Webhooks specification, delivered at least once and in order per bot
//! and receiver, retried for up to `WEBHOOK_MAX_AGE`.
//!
//! - [`event`]: the envelope and the events, built when a change commits;
//! - the outbox ([`crate::store`]): rows written in the transaction of the
//!   change, claimed by one worker at a time;
//! - [`worker`]: the delivery loop inside `serve`;
//! - [`sender`]: one signed HTTP attempt;
//! - [`secret`]: secrets and signatures;
//! - [`schedule`]: the retry schedule and `Retry-After`;
//! - [`destination`]: which receivers a bot may name (no private
//!   addresses), checked at create and again at connect time;
//! - [`view`]: what the operator sees of deliveries.

pub mod destination;
pub mod event;
pub mod schedule;
pub mod secret;
pub mod sender;
pub mod view;
pub mod worker;

use std::time::Duration;

use platform_core::{ConfigProblem, EnvLookup, EnvVarSpec, load_env};

use crate::settings::{
    WEBHOOK_ALLOW_PRIVATE, WEBHOOK_MAX_AGE, WEBHOOK_SECRET, WEBHOOK_SECRET_PREVIOUS,
    WEBHOOK_TIMEOUT, WEBHOOK_URL,
};
pub use destination::DestinationError;
pub use schedule::RetrySchedule;
pub use secret::{Signer, SigningSecret};
pub use sender::Sender;
pub use worker::{DeliveryWorker, WorkerOptions};

/// The webhook variables, loaded and checked. Its `Debug` shows the
/// receiver without its query (which may hold a token) and no secret.
#[derive(Clone)]
pub struct WebhookSettings {
    /// `WEBHOOK_URL`.
    pub url: Option<String>,
    /// `WEBHOOK_SECRET` and `WEBHOOK_SECRET_PREVIOUS`.
    pub signer: Option<Signer>,
    /// `WEBHOOK_TIMEOUT`.
    pub timeout: Duration,
    /// `WEBHOOK_MAX_AGE`.
    pub max_age: Duration,
    /// `WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url.as_deref().map(destination::shown))
            .field("signer", &self.signer)
            .field("timeout", &self.timeout)
            .field("max_age", &self.max_age)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

const TYPED: &[EnvVarSpec] = &[
    WEBHOOK_URL,
    WEBHOOK_TIMEOUT,
    WEBHOOK_MAX_AGE,
    WEBHOOK_ALLOW_PRIVATE,
];

impl WebhookSettings {
    /// Reads the webhook variables, adding what is wrong to `problems`.
    /// `None` when something is (the service's own loading reports the
    /// variables' kinds; this adds the secrets and how they go together).
    pub fn load(env: &dyn EnvLookup, problems: &mut Vec<ConfigProblem>) -> Option<Self> {
        let before = problems.len();
        let secret = |spec: &EnvVarSpec, problems: &mut Vec<ConfigProblem>| {
            let (name, value) = spec.lookup(env)?;
            match SigningSecret::parse(&value) {
                Ok(secret) => Some(secret),
                Err(problem) => {
                    problems.push(ConfigProblem::new(name, problem));
                    None
                }
            }
        };
        let current = secret(&WEBHOOK_SECRET, problems);
        let previous = secret(&WEBHOOK_SECRET_PREVIOUS, problems);
        let secret_set = WEBHOOK_SECRET.is_set(env);
        if WEBHOOK_URL.is_set(env) && !secret_set {
            problems.push(ConfigProblem::new(
                WEBHOOK_URL.name,
                "is set but WEBHOOK_SECRET is not: webhooks are always signed; set WEBHOOK_SECRET to whsec_ followed by the base64 of 24 to 64 random bytes (echo whsec_$(openssl rand -base64 32))",
            ));
        }
        if WEBHOOK_SECRET_PREVIOUS.is_set(env) && !secret_set {
            problems.push(ConfigProblem::new(
                WEBHOOK_SECRET_PREVIOUS.name,
                "is set but WEBHOOK_SECRET is not: the previous secret only signs beside a current one",
            ));
        }
        // The kinds of these were checked (and reported) with the other
        // service variables.
        let values = load_env("service", TYPED, env).ok()?;
        if problems.len() > before {
            return None;
        }
        Some(Self {
            url: values.get(&WEBHOOK_URL).map(|u| u.trim().to_owned()),
            signer: current.map(|current| Signer::new(current, previous)),
            timeout: values.checked_seconds(&WEBHOOK_TIMEOUT).ok()?,
            max_age: values.checked_seconds(&WEBHOOK_MAX_AGE).ok()?,
            allow_private: values.checked_bool(&WEBHOOK_ALLOW_PRIVATE).ok()?,
        })
    }

    /// Whether webhooks can be signed (and so sent) at all.
    pub fn enabled(&self) -> bool {
        self.signer.is_some()
    }
}

/// The delivery worker `serve` runs for `settings`: none when webhooks are
/// not configured (no `WEBHOOK_SECRET`), so nothing could be signed.
pub fn worker_for(
    settings: &WebhookSettings,
    store: &crate::store::Store,
) -> Result<Option<DeliveryWorker>, crate::error::ServiceError> {
    let Some(signer) = settings.signer.clone() else {
        return Ok(None);
    };
    let sender = Sender::new(signer, settings.timeout, settings.allow_private).map_err(|e| {
        crate::error::ServiceError::Server(format!("cannot build the webhook HTTP client: {e}"))
    })?;
    let options = WorkerOptions {
        schedule: RetrySchedule {
            max_age: settings.max_age,
            ..RetrySchedule::default()
        },
        ..WorkerOptions::default()
    };
    Ok(Some(DeliveryWorker::new(store.clone(), sender, options)))
}

impl Default for WebhookSettings {
    /// No webhooks; the variables' defaults otherwise.
    fn default() -> Self {
        Self {
            url: None,
            signer: None,
            timeout: Duration::from_secs(10),
            max_age: RetrySchedule::default().max_age,
            allow_private: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use platform_core::MapEnv;

    use super::*;
    use crate::settings::ServiceSettings;

    #[test]
    fn a_url_without_a_secret_is_refused() {
        let env = MapEnv::from([("WEBHOOK_URL", "https://hooks.example.com/in")]);
        let text = ServiceSettings::load(&env).unwrap_err().to_string();
        assert!(
            text.contains("WEBHOOK_URL is set but WEBHOOK_SECRET is not"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_checked_and_never_echoed() {
        let env = MapEnv::from([
            ("WEBHOOK_SECRET", "whsec_dG9vc2hvcnQ="),
            ("WEBHOOK_SECRET_PREVIOUS", "hunter2-not-a-secret"),
        ]);
        let text = ServiceSettings::load(&env).unwrap_err().to_string();
        assert!(
            text.contains("WEBHOOK_SECRET holds a key of 8 bytes"),
            "{text}"
        );
        assert!(
            text.contains("WEBHOOK_SECRET_PREVIOUS must start with whsec_"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn defaults_and_a_full_configuration() {
        let settings = ServiceSettings::load(&MapEnv::new()).unwrap();
        assert!(!settings.webhooks.enabled());
        assert_eq!(settings.webhooks.timeout, Duration::from_secs(10));
        assert_eq!(settings.webhooks.max_age, Duration::from_secs(86_400));
        let secret = SigningSecret::random().expose();
        let env = MapEnv::from([
            (
                "WEBHOOK_URL",
                "https://hooks.example.com/in?token=tok-s3cret",
            ),
            ("WEBHOOK_SECRET", secret.as_str()),
            ("WEBHOOK_TIMEOUT", "3"),
            ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ]);
        let settings = ServiceSettings::load(&env).unwrap();
        assert!(settings.webhooks.enabled());
        assert!(settings.webhooks.allow_private);
        assert_eq!(settings.webhooks.timeout, Duration::from_secs(3));
        let shown = format!("{settings:?}");
        assert!(!shown.contains(&secret[6..]), "{shown}");
        assert!(!shown.contains("tok-s3cret"), "{shown}");
        assert_eq!(
            settings.webhooks.url.as_deref(),
            Some("https://hooks.example.com/in?token=tok-s3cret")
        );
    }
}
