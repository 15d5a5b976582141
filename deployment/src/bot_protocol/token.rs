//! A bot's own token: 32 random bytes, base64url, given to one bot for one
//! deploy attempt. The database keeps its SHA-256 digest; the token itself
//! is only in the bot's environment (and, while the platform has not
//! answered the deploy, beside the attempt so a repeated call sends the same
//! one).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_core::SecretString;
use sha2::{Digest, Sha256};

/// What every bot token starts with, so one is recognised in a leak scan
/// and never confused with the operator's `API_TOKEN`.
pub const BOT_TOKEN_PREFIX: &str = "mbb_";

/// A bot token. Its `Debug` shows only that it exists.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken {
    value: SecretString,
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken([redacted])")
    }
}

impl BotToken {
    /// A fresh token from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self {
            value: SecretString::new(format!(
                "{BOT_TOKEN_PREFIX}{}",
                URL_SAFE_NO_PAD.encode(bytes)
            )),
        })
    }

    /// A token as it was given before (read back for a repeated deploy
    /// call of the same attempt).
    pub(crate) fn from_stored(value: &str) -> Self {
        Self {
            value: SecretString::new(value.to_owned()),
        }
    }

    /// The token, for the bot's environment. Do not log it.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// The token as a secret, for the deployment config.
    pub fn secret(&self) -> SecretString {
        self.value.clone()
    }

    /// The digest the database keeps (SHA-256, lowercase hex).
    pub fn hash(&self) -> String {
        hash_presented(self.expose().as_bytes())
    }
}

/// The digest of a token a request presents, to look it up: the database
/// holds digests only, so the lookup itself never handles a stored token.
pub fn hash_presented(token: &[u8]) -> String {
    let digest = Sha256::digest(token);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_long_and_never_shown() {
        let a = BotToken::generate().unwrap();
        let b = BotToken::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(BOT_TOKEN_PREFIX));
        // 32 bytes in unpadded base64 are 43 characters.
        assert_eq!(a.expose().len(), BOT_TOKEN_PREFIX.len() + 43);
        assert_eq!(format!("{a:?}"), "BotToken([redacted])");
        assert_eq!(a.hash().len(), 64);
        assert_eq!(a.hash(), hash_presented(a.expose().as_bytes()));
        assert_ne!(a.hash(), b.hash());
        assert!(!a.hash().contains(&a.expose()[4..]));
    }

    #[test]
    fn the_digest_is_sha256_hex() {
        assert_eq!(
            hash_presented(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
