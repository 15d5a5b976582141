//! Reading a Kubernetes resource quantity (`64Mi`, `1.5Gi`, `128974848`,
//! `129e6`) as a number of bytes, for the template checks.

/// The quantity in bytes, rounded down; `None` when it is not a quantity.
pub fn parse_bytes(quantity: &str) -> Option<u64> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            10f64.powi(digits.parse().ok()?)
        }
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes >= 0.0).then(|| bytes.floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn reads_the_suffixes_kubernetes_accepts() {
        assert_eq!(parse_bytes("64Mi"), Some(64 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5Gi"), Some(1024 * 1024 * 1536));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("128974848"), Some(128_974_848));
        assert_eq!(parse_bytes("129e6"), Some(129_000_000));
        assert_eq!(parse_bytes("500m"), Some(0));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("12Qi"), None);
    }
}
