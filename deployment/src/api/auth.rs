//! Bearer-token authentication: every endpoint but `/healthz`, `/readyz`
//! and `/metrics` needs `Authorization: Bearer <API_TOKEN>`.
//!
//! The token is compared in constant time, and as SHA-256 digests so that
//! not even its length leaks through timing. A missing or wrong token gets
//! the same kind of 401 answer, which says what to send but never what the
//! token is.

use std::fmt;
use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform_core::{ConfigProblem, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::errors::ApiError;
use super::state::ApiState;
use crate::error::ServiceError;
use crate::settings::{API_TOKEN, LISTEN_ADDR};

/// The token requests must carry, kept only as its digest.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([redacted])")
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl ApiToken {
    /// The token `secret`.
    pub fn new(secret: &SecretString) -> Self {
        Self {
            digest: digest(secret.expose().trim().as_bytes()),
        }
    }

    /// A fresh random token (256 bits from the operating system's random
    /// source, through UUID v4), and its value to show the operator once.
    pub fn generate() -> (Self, SecretString) {
        let value = SecretString::new(format!(
            "mbt_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        (Self::new(&value), value)
    }

    /// Whether `candidate` is the token, in time independent of where (and
    /// whether) they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        digest(candidate).ct_eq(&self.digest).into()
    }
}

/// Which token `serve` uses, and whether it made it up.
#[derive(Debug)]
pub enum TokenChoice {
    /// `API_TOKEN` as configured.
    Configured(ApiToken),
    /// None was configured and the address is loopback: this one was
    /// generated, to be printed once.
    Generated(ApiToken, SecretString),
}

impl TokenChoice {
    /// The token.
    pub fn token(&self) -> &ApiToken {
        match self {
            Self::Configured(token) | Self::Generated(token, _) => token,
        }
    }
}

/// Decides the token for `listen`: the configured one, else a generated
/// one on a loopback address. Without a token on any other address the
/// service refuses to start: anyone who can reach it could deploy bots.
pub fn choose_token(
    listen: SocketAddr,
    configured: Option<&SecretString>,
) -> Result<TokenChoice, ServiceError> {
    match configured {
        Some(secret) => Ok(TokenChoice::Configured(ApiToken::new(secret))),
        None if listen.ip().is_loopback() => {
            let (token, value) = ApiToken::generate();
            Ok(TokenChoice::Generated(token, value))
        }
        None => Err(ServiceError::Config(platform_core::Error::Config {
            platform: "service",
            problems: vec![ConfigProblem::new(
                API_TOKEN.name,
                format!(
                    "is not set, but {} {listen} is not a loopback address: anyone who can reach it could deploy and stop bots. Set API_TOKEN (for example to the output of `openssl rand -hex 32`), or listen on 127.0.0.1",
                    LISTEN_ADDR.name
                ),
            )],
        })),
    }
}

/// What a request presents as `Authorization: Bearer …`.
fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(value[7..].trim_ascii())
}

/// Refuses requests without the right token.
pub async fn require_bearer(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    match presented_token(request.headers()) {
        Some(candidate) if !candidate.is_empty() && state.token().matches(candidate) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not the one this service expects (API_TOKEN)",
        )
        .with_challenge(r#"Bearer realm="meeboter-deploy", error="invalid_token""#)
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs the header Authorization: Bearer <API_TOKEN>",
        )
        .with_challenge(r#"Bearer realm="meeboter-deploy""#)
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = ApiToken::new(&SecretString::from("0123456789abcdef-token"));
        assert!(token.matches(b"0123456789abcdef-token"));
        assert!(!token.matches(b"0123456789abcdef-toke"));
        assert!(!token.matches(b"0123456789abcdef-token "));
        assert!(!token.matches(b""));
        assert!(!format!("{token:?}").contains("0123"));
    }

    #[test]
    fn generated_tokens_are_long_and_different() {
        let (a, value_a) = ApiToken::generate();
        let (_, value_b) = ApiToken::generate();
        assert_eq!(value_a.expose().len(), 68);
        assert_ne!(value_a.expose(), value_b.expose());
        assert!(a.matches(value_a.expose().as_bytes()));
    }

    #[test]
    fn a_public_address_without_a_token_is_refused() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let error = choose_token(public, None).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("API_TOKEN"), "{text}");
        assert!(text.contains("not a loopback address"), "{text}");
        let loopback: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(matches!(
            choose_token(loopback, None).unwrap(),
            TokenChoice::Generated(..)
        ));
        let configured = SecretString::from("a-configured-token-of-length");
        assert!(matches!(
            choose_token(public, Some(&configured)).unwrap(),
            TokenChoice::Configured(_)
        ));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(presented_token(&headers), Some(&b"abc"[..]));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(presented_token(&headers), None);
    }
}
