//! Signing secrets and signatures, as the Standard Webhooks specification
//! defines them: a secret is `whsec_` followed by the base64 of 24 to 64
//! random bytes; a signature is `v1,` followed by the base64 of
//! HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{body}"`; the
//! `webhook-signature` header lists one signature per secret in force,
//! separated by spaces, so receivers keep verifying while a secret is
//! rotated.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a symmetric Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest key the specification allows, in bytes.
pub const MIN_SECRET_BYTES: usize = 24;
/// The longest key the specification allows, in bytes.
pub const MAX_SECRET_BYTES: usize = 64;

/// One signing key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

impl SigningSecret {
    /// Reads `whsec_<base64>`. The error says what is wrong without
    /// repeating any of the value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(encoded) = text.trim().strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "must start with {SECRET_PREFIX} followed by the base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes (for example: echo {SECRET_PREFIX}$(openssl rand -base64 32))"
            ));
        };
        let key = BASE64.decode(encoded).map_err(|_| {
            format!("is not {SECRET_PREFIX} followed by standard base64 (A-Z, a-z, 0-9, +, /, = padding)")
        })?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(format!(
                "holds a key of {} bytes; the Standard Webhooks specification asks for {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} (for example: echo {SECRET_PREFIX}$(openssl rand -base64 32))",
                key.len()
            ));
        }
        Ok(Self { key })
    }

    /// A new random secret (tests, benchmarks, and a suggestion in errors).
    pub fn random() -> Self {
        let mut key = vec![0_u8; 32];
        fastrand::fill(&mut key);
        Self { key }
    }

    /// The `whsec_…` form, to hand to a receiver. Shows the secret: only for
    /// the operator's own tooling and tests.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length; the error is unreachable, and an
        // empty key would still give a (useless) signature rather than a
        // panic.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(&[0]).expect("one byte"));
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The secrets in force: the current one and, while receivers move to it,
/// the previous one (`WEBHOOK_SECRET`, `WEBHOOK_SECRET_PREVIOUS`).
#[derive(Clone, Debug)]
pub struct Signer {
    current: SigningSecret,
    previous: Option<SigningSecret>,
}

impl Signer {
    /// Signs with `current`, and also with `previous` when given.
    pub fn new(current: SigningSecret, previous: Option<SigningSecret>) -> Self {
        Self { current, previous }
    }

    /// The `webhook-signature` header: the current secret's signature, then
    /// the previous one's, separated by a space.
    pub fn signature_header(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut header = self.current.sign(message_id, timestamp, body);
        if let Some(previous) = &self.previous {
            header.push(' ');
            header.push_str(&previous.sign(message_id, timestamp, body));
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_example_signs_as_published() {
        // The example of the specification's reference libraries.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_without_echoing_them() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            let problem = SigningSecret::parse(bad).unwrap_err();
            assert!(!problem.contains(bad), "{problem}");
        }
        let secret = SigningSecret::random();
        assert_eq!(SigningSecret::parse(&secret.expose()).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "SigningSecret(***)");
    }

    #[test]
    fn rotation_sends_both_signatures() {
        let current = SigningSecret::random();
        let previous = SigningSecret::random();
        let header = Signer::new(current.clone(), Some(previous.clone()))
            .signature_header("msg_1", 5, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                current.sign("msg_1", 5, b"{}"),
                previous.sign("msg_1", 5, b"{}")
            ]
        );
    }
}
