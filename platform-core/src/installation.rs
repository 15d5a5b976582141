//! The installation id: which database (and so which set of bot ids) a
//! platform resource belongs to.
//!
//! Bot ids count from 1 in every database. Two installations that share a
//! cluster (a staging and a production service, a CLI run from another
//! directory, a database reset) would otherwise give their bots the same
//! names, idempotency tokens and marks, and one could adopt or stop the
//! other's bots. So every name and mark a platform gives a bot includes the
//! installation id, and a platform only ever lists, adopts or sweeps what
//! carries its own.
//!
//! The service's database creates the id with its schema and never changes
//! it; a platform learns it from its
//! [`PlatformContext`](crate::PlatformContext).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The shortest installation id accepted.
pub const MIN_LEN: usize = 8;
/// The longest installation id accepted: short enough that an ECS client
/// token (64 characters), a Kubernetes label value (63) and a pod name stay
/// within their limits with the bot id and attempt beside it.
pub const MAX_LEN: usize = 16;

/// A database's installation id: 8 to 16 lowercase ASCII letters and
/// digits, so it is valid in every platform's names, tags and labels as it
/// is. Not a secret.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstallationId(String);

/// A string that is not an installation id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not an installation id: it must be {MIN_LEN} to {MAX_LEN} lowercase ASCII letters and digits"
)]
pub struct InvalidInstallationId {
    /// What was given (cut to 40 characters).
    pub value: String,
}

impl InstallationId {
    /// Checks and wraps an installation id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidInstallationId> {
        let id = id.into();
        let valid = (MIN_LEN..=MAX_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidInstallationId {
                value: id.chars().take(40).collect(),
            })
        }
    }

    /// A new random id of [`MAX_LEN`] hexadecimal digits (64 bits), as a
    /// new database gets one.
    pub fn random() -> Self {
        Self(format!("{:016x}", fastrand::u64(..)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for InstallationId {
    type Error = InvalidInstallationId;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<InstallationId> for String {
    fn from(id: InstallationId) -> Self {
        id.0
    }
}

impl std::str::FromStr for InstallationId {
    type Err = InvalidInstallationId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_every_platform_can_carry() {
        assert!(InstallationId::new("0123abcd").is_ok());
        assert!(InstallationId::new("0123456789abcdef").is_ok());
        for bad in [
            "",
            "short",
            "UPPERCASE01",
            "with-dash01",
            "0123456789abcdef0",
            "ünïcode01",
        ] {
            let err = InstallationId::new(bad).unwrap_err();
            assert!(err.to_string().contains("8 to 16 lowercase"), "{err}");
        }
    }

    #[test]
    fn random_ids_are_valid_and_differ() {
        let a = InstallationId::random();
        let b = InstallationId::random();
        assert_eq!(InstallationId::new(a.as_str()), Ok(a.clone()));
        assert_ne!(a, b);
    }
}
