//! Where a bot's own webhook may be sent: https only, and never to this
//! network's inside — loopback, private, link-local (cloud metadata lives
//! at 169.254.169.254), carrier-grade NAT, multicast or reserved addresses
//! — unless the operator allows it (`WEBHOOK_ALLOW_PRIVATE=true`, for
//! development). A client could otherwise use its bot's webhook to reach
//! services only this host can reach (server-side request forgery).
//!
//! The check runs when the bot is created and again at every delivery, on
//! the addresses the delivery then connects to ([`CheckedResolver`]): a
//! name that resolved to a public address at create time and to
//! 127.0.0.1 later (DNS rebinding) is refused at connect time. The
//! operator's own `WEBHOOK_URL` is trusted and not checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// The longest webhook URL accepted.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2048;

/// How long a create waits for the receiver's name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a per-bot webhook URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Not a URL we can send to (scheme, credentials, length, syntax).
    #[error("webhook_url {0}")]
    Invalid(String),
    /// It reaches, or resolves to, an address on the inside.
    #[error("webhook_url {0}")]
    Forbidden(String),
}

impl DestinationError {
    /// The stable API code: `invalid_webhook_url` or `webhook_url_forbidden`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_webhook_url",
            Self::Forbidden(_) => "webhook_url_forbidden",
        }
    }
}

/// Whether `ip` is an address on the public internet. Everything a
/// request from this host could reach that the internet cannot is not:
/// loopback, private, link-local (metadata services), shared (CGNAT),
/// multicast, broadcast, documentation, benchmarking and reserved ranges,
/// and IPv6 forms that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let inside = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT; Alibaba's metadata).
        || (a == 100 && (64..=127).contains(&b))
        // IETF protocol assignments (192.0.0.0/24, Oracle's metadata).
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved for future use.
        || a >= 240;
    !inside
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(segments[1], segments[2]));
    }
    let inside = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7, AWS's fd00:ec2::254 metadata among them).
        || (segments[0] & 0xfe00) == 0xfc00
        // Link-local (fe80::/10) and the old site-local (fec0::/10).
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // IPv4-compatible (::/96), Teredo (2001::/32), documentation.
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || (segments[0] == 0x2001 && segments[1] == 0)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8);
    !inside
}

/// Checks a per-bot webhook URL's form: https (http too when private
/// destinations are allowed), a host, no credentials, at most
/// [`MAX_WEBHOOK_URL_CHARS`]. Returns the parsed URL.
pub fn check_form(text: &str, allow_private: bool) -> Result<Url, DestinationError> {
    if text.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(DestinationError::Invalid(format!(
            "is longer than {MAX_WEBHOOK_URL_CHARS} characters"
        )));
    }
    let url = Url::parse(text.trim()).map_err(|e| {
        DestinationError::Invalid(format!(
            "is not an absolute URL ({e}); use https://host/path"
        ))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(DestinationError::Invalid(
                "must use https (http is accepted only when WEBHOOK_ALLOW_PRIVATE=true)".into(),
            ));
        }
        _ => {
            return Err(DestinationError::Invalid("must be an https:// URL".into()));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Invalid(
            "must not carry credentials (user:password@); put a token in the path or rely on the signature".into(),
        ));
    }
    if url.host().is_none() {
        return Err(DestinationError::Invalid("has no host".into()));
    }
    Ok(url)
}

/// The address literal of `url`'s host, if it is one.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

fn forbidden_address(ip: IpAddr) -> DestinationError {
    DestinationError::Forbidden(format!(
        "reaches {ip}, a loopback, private, link-local or reserved address; webhooks go to public https receivers (WEBHOOK_ALLOW_PRIVATE=true lifts this for development)"
    ))
}

/// Checks a per-bot webhook URL completely, as a create does: its form,
/// then every address its host resolves to now.
pub async fn check(text: &str, allow_private: bool) -> Result<Url, DestinationError> {
    let url = check_form(text, allow_private)?;
    if allow_private {
        return Ok(url);
    }
    if let Some(ip) = literal_ip(&url) {
        return if is_public(ip) {
            Ok(url)
        } else {
            Err(forbidden_address(ip))
        };
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let resolved = tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        DestinationError::Invalid(format!(
            "names a host whose address did not resolve within {} s",
            RESOLVE_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|_| DestinationError::Invalid("names a host that does not resolve".into()))?;
    let mut any = false;
    for address in resolved {
        any = true;
        if !is_public(address.ip()) {
            return Err(forbidden_address(address.ip()));
        }
    }
    if any {
        Ok(url)
    } else {
        Err(DestinationError::Invalid(
            "names a host that resolves to no address".into(),
        ))
    }
}

/// The URL as the operator view shows it: scheme, host, port and path,
/// without the query or fragment (which may carry a receiver's token).
pub fn shown(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some();
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let mut text = parsed.to_string();
            if had_query {
                text.push_str("?…");
            }
            text
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// The DNS resolver of per-bot deliveries: resolves with the system's
/// resolver and hands the HTTP client only public addresses, so the
/// connection goes to an address that was checked, whatever the name
/// resolves to a moment later.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckedResolver;

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addresses
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() || public.len() != addresses.len() {
                let shown = addresses
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(format!(
                    "{host} resolves to {shown}, which includes a loopback, private, link-local or reserved address; not sent"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "192.0.0.192",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn forms_are_checked() {
        assert_eq!(
            check_form("http://example.com/hook", false)
                .unwrap_err()
                .code(),
            "invalid_webhook_url"
        );
        assert!(check_form("http://example.com/hook", true).is_ok());
        assert!(check_form("ftp://example.com/hook", true).is_err());
        assert!(check_form("https://u:p@example.com/hook", false).is_err());
        assert!(check_form("not a url", false).is_err());
        assert!(check_form(&format!("https://e.com/{}", "a".repeat(3000)), false).is_err());
        assert!(check_form("https://example.com/hook?token=1", false).is_ok());
    }

    #[test]
    fn the_shown_url_hides_queries() {
        assert_eq!(
            shown("https://hooks.example.com/in?token=s3cret"),
            "https://hooks.example.com/in?…"
        );
        assert_eq!(
            shown("https://hooks.example.com/in"),
            "https://hooks.example.com/in"
        );
    }
}
