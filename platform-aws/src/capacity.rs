//! The capacity-provider strategy an operator may give instead of the
//! `FARGATE` launch type, e.g. `FARGATE_SPOT:4,FARGATE:1:base=1`.

use std::fmt;
use std::str::FromStr;

/// ECS's largest capacity-provider weight.
pub const MAX_WEIGHT: u32 = 1000;
/// ECS's largest capacity-provider base.
pub const MAX_BASE: u32 = 100_000;

const SYNTAX: &str = "expected comma-separated NAME[:WEIGHT][:base=BASE] entries, e.g. FARGATE_SPOT:4,FARGATE:1:base=1";

/// One capacity provider of a strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityProviderShare {
    /// The capacity provider (`FARGATE`, `FARGATE_SPOT`, or one of the
    /// cluster's own).
    pub provider: String,
    /// Its relative share of the tasks beyond the base, 0 to 1000.
    pub weight: u32,
    /// How many tasks run on it before weights apply, 0 to 100000.
    pub base: u32,
}

/// A validated capacity-provider strategy: at least one provider with a
/// weight above zero, no provider twice, at most one with a base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityProviderStrategy(Vec<CapacityProviderShare>);

impl CapacityProviderStrategy {
    /// The providers, in the order given.
    pub fn shares(&self) -> &[CapacityProviderShare] {
        &self.0
    }
}

impl FromStr for CapacityProviderStrategy {
    type Err = String;

    /// Parses `NAME[:WEIGHT][:base=BASE]` entries separated by commas. A
    /// weight may also be written `weight=N`; an omitted weight is 1 (ECS's
    /// own default, 0, would make a single-entry strategy place nothing).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut shares: Vec<CapacityProviderShare> = Vec::new();
        for (index, entry) in value.split(',').map(str::trim).enumerate() {
            let fail =
                |what: String| Err(format!("entry {} ({entry:?}) {what}; {SYNTAX}", index + 1));
            let mut parts = entry.split(':').map(str::trim);
            let provider = parts.next().unwrap_or_default();
            if provider.is_empty() {
                return fail("has no capacity provider name".into());
            }
            if provider.len() > 255
                || !provider
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return fail("has a name that is not letters, digits, - or _".into());
            }
            let mut weight = None;
            let mut base = None;
            for part in parts {
                let (field, number) = match part.split_once('=') {
                    Some((key, number)) if key.trim().eq_ignore_ascii_case("base") => {
                        ("base", number.trim())
                    }
                    Some((key, number)) if key.trim().eq_ignore_ascii_case("weight") => {
                        ("weight", number.trim())
                    }
                    Some((key, _)) => {
                        return fail(format!("has an unknown setting {:?}", key.trim()));
                    }
                    None => ("weight", part),
                };
                let (slot, max) = if field == "base" {
                    (&mut base, MAX_BASE)
                } else {
                    (&mut weight, MAX_WEIGHT)
                };
                if slot.is_some() {
                    return fail(format!("gives the {field} twice"));
                }
                match number.parse::<u32>() {
                    Ok(n) if n <= max => *slot = Some(n),
                    _ => {
                        return fail(format!(
                            "has {field} {number:?}, not a whole number from 0 to {max}"
                        ));
                    }
                }
            }
            if shares.iter().any(|s| s.provider == provider) {
                return fail(format!("names {provider} a second time"));
            }
            shares.push(CapacityProviderShare {
                provider: provider.to_owned(),
                weight: weight.unwrap_or(1),
                base: base.unwrap_or(0),
            });
        }
        if shares.iter().filter(|s| s.base > 0).count() > 1 {
            return Err(format!(
                "gives a base to more than one capacity provider; ECS allows a base on one only; {SYNTAX}"
            ));
        }
        if shares.iter().all(|s| s.weight == 0) {
            return Err(format!(
                "gives every capacity provider weight 0; at least one needs a weight above 0; {SYNTAX}"
            ));
        }
        Ok(Self(shares))
    }
}

impl fmt::Display for CapacityProviderStrategy {
    /// The canonical form, which parses back to the same strategy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, share) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", share.provider, share.weight)?;
            if share.base > 0 {
                write!(f, ":base={}", share.base)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(provider: &str, weight: u32, base: u32) -> CapacityProviderShare {
        CapacityProviderShare {
            provider: provider.into(),
            weight,
            base,
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        let strategy: CapacityProviderStrategy =
            "FARGATE_SPOT:4, FARGATE:1:base=1".parse().unwrap();
        assert_eq!(
            strategy.shares(),
            [share("FARGATE_SPOT", 4, 0), share("FARGATE", 1, 1)]
        );
        assert_eq!(strategy.to_string(), "FARGATE_SPOT:4,FARGATE:1:base=1");
        let single: CapacityProviderStrategy = "FARGATE_SPOT".parse().unwrap();
        assert_eq!(single.shares(), [share("FARGATE_SPOT", 1, 0)]);
        let named: CapacityProviderStrategy = "spot:base=2:weight=3,od:0".parse().unwrap();
        assert_eq!(named.shares(), [share("spot", 3, 2), share("od", 0, 0)]);
        assert_eq!(
            named
                .to_string()
                .parse::<CapacityProviderStrategy>()
                .unwrap(),
            named
        );
    }

    #[test]
    fn rejects_with_a_clear_reason_and_the_syntax() {
        let cases = [
            ("", "has no capacity provider name"),
            ("FARGATE,", "entry 2 (\"\") has no capacity provider name"),
            (
                "FARGATE:x",
                "has weight \"x\", not a whole number from 0 to 1000",
            ),
            ("FARGATE:1001", "not a whole number from 0 to 1000"),
            ("FARGATE:base=-1", "has base \"-1\""),
            ("FARGATE:1:2", "gives the weight twice"),
            ("FARGATE:prio=2", "unknown setting \"prio\""),
            ("FAR GATE", "not letters, digits, - or _"),
            ("FARGATE,FARGATE", "names FARGATE a second time"),
            ("A:1:base=1,B:1:base=2", "base on one only"),
            ("A:0,B:0", "at least one needs a weight above 0"),
        ];
        for (input, expected) in cases {
            let err = input.parse::<CapacityProviderStrategy>().unwrap_err();
            assert!(err.contains(expected), "{input:?}: {err}");
            assert!(
                err.contains("e.g. FARGATE_SPOT:4,FARGATE:1:base=1"),
                "{input:?}: {err}"
            );
        }
    }
}
