//! Meeting platforms and validated meeting URLs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

/// The video-meeting service a bot joins. Each has its own bot image, task
/// definition or slot pool.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingPlatform {
    /// Zoom (`zoom.us`, `zoomgov.com`).
    Zoom,
    /// Microsoft Teams (`teams.microsoft.com`, `teams.live.com`, government clouds).
    Teams,
    /// Google Meet (`meet.google.com`).
    Meet,
}

impl MeetingPlatform {
    /// Every meeting platform, in a stable order.
    pub const ALL: [MeetingPlatform; 3] = [Self::Zoom, Self::Teams, Self::Meet];

    /// The lowercase name used in configuration, APIs and environment variables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Zoom => "zoom",
            Self::Teams => "teams",
            Self::Meet => "meet",
        }
    }

    /// The host names a meeting URL of this platform may use. An entry starting
    /// with `*.` admits any subdomain (but not the bare domain).
    pub const fn allowed_hosts(self) -> &'static [&'static str] {
        match self {
            Self::Zoom => &["zoom.us", "*.zoom.us", "zoomgov.com", "*.zoomgov.com"],
            Self::Teams => &[
                "teams.microsoft.com",
                "teams.live.com",
                "teams.microsoft.us",
                "gov.teams.microsoft.us",
                "dod.teams.microsoft.us",
            ],
            Self::Meet => &["meet.google.com"],
        }
    }

    fn example_url(self) -> &'static str {
        match self {
            Self::Zoom => "https://us02web.zoom.us/j/81234567890?pwd=…",
            Self::Teams => "https://teams.microsoft.com/l/meetup-join/…",
            Self::Meet => "https://meet.google.com/abc-defg-hij",
        }
    }
}

impl fmt::Display for MeetingPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A meeting platform name that is not `zoom`, `teams` or `meet`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown meeting platform {given:?}: expected one of zoom, teams, meet")]
pub struct UnknownMeetingPlatform {
    /// What was given (cut to 64 characters).
    pub given: String,
}

impl FromStr for MeetingPlatform {
    type Err = UnknownMeetingPlatform;

    /// Exactly `zoom`, `teams` or `meet`, as the API documents them: a
    /// client generated from the OpenAPI document sends nothing else, and a
    /// name the document refuses must not be accepted either.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownMeetingPlatform {
                given: s.chars().take(64).collect(),
            })
    }
}

/// The longest meeting URL we accept. Real invite links are well under 1 KiB;
/// Teams links are the longest at a few hundred characters.
pub const MAX_MEETING_URL_LEN: usize = 2048;

/// Query parameters that carry a meeting passcode and are hidden when a URL is
/// printed (`pwd` in Zoom links, `p` in Teams links).
const PASSCODE_PARAMS: &[&str] = &["pwd", "p", "passcode", "password", "tk", "token"];

/// A meeting URL checked against its meeting platform: `https`, no
/// credentials, no control characters, the default port, a host that belongs
/// to the platform and a path that looks like an invite.
///
/// `Display` and `Debug` hide passcode query parameters (`pwd=…`); the full
/// URL, which the bot needs, is [`MeetingUrl::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingUrl {
    platform: MeetingPlatform,
    url: Url,
}

/// Why a meeting URL was refused. The message names the rule and what is
/// allowed, never the URL's passcode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {platform} meeting URL: {reason} (expected something like {example})")]
pub struct InvalidMeetingUrl {
    /// The meeting platform the URL was checked for.
    pub platform: MeetingPlatform,
    /// What is wrong with it.
    pub reason: String,
    /// What a valid URL looks like.
    pub example: &'static str,
}

impl MeetingUrl {
    /// Validates `input` as a meeting URL of `platform`.
    pub fn parse(platform: MeetingPlatform, input: &str) -> Result<Self, InvalidMeetingUrl> {
        let fail = |reason: String| InvalidMeetingUrl {
            platform,
            reason,
            example: platform.example_url(),
        };
        if input.is_empty() {
            return Err(fail("the URL is empty".into()));
        }
        if input.len() > MAX_MEETING_URL_LEN {
            return Err(fail(format!(
                "the URL is {} bytes long; at most {MAX_MEETING_URL_LEN} are allowed",
                input.len()
            )));
        }
        // The url crate silently drops tabs and newlines, so look before parsing.
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(fail(
                "the URL contains whitespace or control characters".into(),
            ));
        }
        let url = Url::parse(input).map_err(|e| fail(format!("not a valid URL ({e})")))?;
        if url.scheme() != "https" {
            return Err(fail(format!(
                "the scheme must be https, not {:?}",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail(
                "the URL must not contain credentials (user:pass@)".into(),
            ));
        }
        if url.port().is_some() {
            return Err(fail("the URL must use the default https port".into()));
        }
        let host = match url.host() {
            Some(url::Host::Domain(host)) => host.to_ascii_lowercase(),
            Some(_) => {
                return Err(fail(
                    "the host must be a domain name, not an IP address".into(),
                ));
            }
            None => return Err(fail("the URL has no host".into())),
        };
        if !host_allowed(platform, &host) {
            return Err(fail(format!(
                "host {host:?} does not belong to {platform} (allowed: {})",
                platform.allowed_hosts().join(", ")
            )));
        }
        check_path(platform, &url).map_err(|reason| fail(reason.into()))?;
        Ok(Self { platform, url })
    }

    /// The meeting platform this URL was validated for.
    pub fn platform(&self) -> MeetingPlatform {
        self.platform
    }

    /// The full URL, passcode included: what the bot is given.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The host the URL points at.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The URL with passcode query parameters replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        if self.url.query().is_none() {
            return self.url.to_string();
        }
        let mut shown = self.url.clone();
        let pairs: Vec<(String, String)> = self
            .url
            .query_pairs()
            .map(|(k, v)| {
                let hidden = PASSCODE_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(&k));
                let v = if hidden {
                    "[redacted]".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
        shown.to_string()
    }
}

fn host_allowed(platform: MeetingPlatform, host: &str) -> bool {
    platform
        .allowed_hosts()
        .iter()
        .any(|allowed| match allowed.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == *allowed,
        })
}

fn check_path(platform: MeetingPlatform, url: &Url) -> Result<(), &'static str> {
    let path = url.path();
    match platform {
        MeetingPlatform::Zoom => {
            let ok = ["/j/", "/s/", "/w/", "/my/", "/wc/join/", "/wc/"]
                .iter()
                .any(|prefix| path.len() > prefix.len() && path.starts_with(prefix));
            if ok {
                Ok(())
            } else {
                Err("a Zoom invite path starts with /j/<meeting id>, /w/, /s/ or /my/<name>")
            }
        }
        MeetingPlatform::Teams => {
            let has_join_link = url.fragment().is_some_and(|f| f.contains("meetup-join"));
            let ok = ["/l/meetup-join/", "/meet/", "/l/meet/"]
                .iter()
                .any(|prefix| path.len() > prefix.len() && path.starts_with(prefix))
                || has_join_link;
            if ok {
                Ok(())
            } else {
                Err("a Teams invite path starts with /l/meetup-join/ or /meet/<meeting id>")
            }
        }
        MeetingPlatform::Meet => {
            let code = path.trim_start_matches('/');
            if is_meet_code(code) || code.strip_prefix("lookup/").is_some_and(|n| !n.is_empty()) {
                Ok(())
            } else {
                Err("a Google Meet path is a meeting code like /abc-defg-hij")
            }
        }
    }
}

/// `abc-defg-hij`: three, four and three lowercase letters.
fn is_meet_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .zip([3, 4, 3])
            .all(|(part, len)| part.len() == len && part.bytes().all(|b| b.is_ascii_lowercase()))
}

impl fmt::Display for MeetingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for MeetingUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeetingUrl")
            .field("platform", &self.platform)
            .field("url", &self.redacted())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::MeetingPlatform::{Meet, Teams, Zoom};
    use super::*;

    #[test]
    fn accepts_real_invite_shapes() {
        let good = [
            (
                Zoom,
                "https://us02web.zoom.us/j/81234567890?pwd=aBcDeFgHiJkLmNoP.1",
            ),
            (Zoom, "https://zoom.us/j/1234567890"),
            (Zoom, "https://acme.zoom.us/my/jane.doe"),
            (Zoom, "https://zoomgov.com/j/1601234567"),
            (Zoom, "https://us06web.zoom.us/w/81234567890?tk=abc"),
            (
                Teams,
                "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjM0%40thread.v2/0?context=%7b%22Tid%22%3a%22x%22%7d",
            ),
            (Teams, "https://teams.live.com/meet/9876543210123?p=AbCdEf"),
            (Teams, "https://teams.microsoft.com/meet/26543212345?p=xyz"),
            (
                Teams,
                "https://gov.teams.microsoft.us/l/meetup-join/19%3ameeting_x/0",
            ),
            (
                Teams,
                "https://teams.microsoft.com/v2/?meetingjoin=true#/l/meetup-join/19:meeting_x@thread.v2/0",
            ),
            (Meet, "https://meet.google.com/abc-defg-hij"),
            (Meet, "https://meet.google.com/abc-defg-hij?authuser=1"),
            (Meet, "https://meet.google.com/lookup/teamstandup"),
        ];
        for (platform, url) in good {
            let parsed = MeetingUrl::parse(platform, url)
                .unwrap_or_else(|e| panic!("{url} should be accepted: {e}"));
            assert_eq!(parsed.platform(), platform);
        }
    }

    fn reason(platform: MeetingPlatform, url: &str) -> String {
        MeetingUrl::parse(platform, url)
            .expect_err(&format!("{url} should be refused"))
            .to_string()
    }

    #[test]
    fn refuses_other_hosts_and_lookalikes() {
        assert!(reason(Zoom, "https://example.com/j/123").contains("does not belong to zoom"));
        assert!(reason(Zoom, "https://evilzoom.us/j/123").contains("does not belong"));
        assert!(reason(Zoom, "https://zoom.us.evil.com/j/123").contains("does not belong"));
        assert!(
            reason(Meet, "https://meet.google.com.evil.io/abc-defg-hij")
                .contains("does not belong")
        );
        assert!(
            reason(Teams, "https://teams.microsoft.com.example/l/meetup-join/x")
                .contains("does not belong")
        );
        // The right host for the wrong platform is refused too.
        assert!(reason(Meet, "https://zoom.us/j/123").contains("does not belong to meet"));
        assert!(reason(Zoom, "https://1.2.3.4/j/123").contains("IP address"));
    }

    #[test]
    fn refuses_plain_http_credentials_ports_and_control_characters() {
        assert!(reason(Zoom, "http://zoom.us/j/123").contains("must be https"));
        assert!(reason(Zoom, "https://user:pw@zoom.us/j/123").contains("credentials"));
        assert!(reason(Zoom, "https://user@zoom.us/j/123").contains("credentials"));
        assert!(reason(Zoom, "https://zoom.us:8443/j/123").contains("default https port"));
        assert!(reason(Zoom, "https://zoom.us/j/12\n3").contains("control"));
        assert!(reason(Zoom, "https://zoom.us/j/12\t3").contains("control"));
        assert!(reason(Zoom, "https://zoom.us/j/1\u{7f}").contains("control"));
        assert!(reason(Zoom, " https://zoom.us/j/1").contains("whitespace"));
        assert!(reason(Zoom, "").contains("empty"));
        assert!(reason(Zoom, "zoom.us/j/123").contains("not a valid URL"));
        assert!(
            reason(Zoom, &format!("https://zoom.us/j/{}", "1".repeat(3000)))
                .contains("at most 2048")
        );
    }

    #[test]
    fn refuses_paths_that_are_not_invites() {
        assert!(reason(Zoom, "https://zoom.us/").contains("Zoom invite path"));
        assert!(reason(Zoom, "https://zoom.us/pricing").contains("Zoom invite path"));
        assert!(reason(Meet, "https://meet.google.com/").contains("meeting code"));
        assert!(reason(Meet, "https://meet.google.com/abc-defg-hi").contains("meeting code"));
        assert!(reason(Teams, "https://teams.microsoft.com/").contains("Teams invite path"));
    }

    #[test]
    fn printing_hides_the_passcode() {
        let url =
            MeetingUrl::parse(Zoom, "https://us02web.zoom.us/j/812?pwd=s3cr3t&uname=Bot").unwrap();
        assert!(!url.to_string().contains("s3cr3t"));
        assert!(!format!("{url:?}").contains("s3cr3t"));
        assert!(url.to_string().contains("uname=Bot"));
        assert!(url.expose().contains("pwd=s3cr3t"));
        // Errors never echo the URL.
        let err = reason(Zoom, "http://zoom.us/j/812?pwd=s3cr3t");
        assert!(!err.contains("s3cr3t"));
    }

    #[test]
    fn meeting_platform_names() {
        assert_eq!("zoom".parse::<MeetingPlatform>().unwrap(), Zoom);
        assert_eq!("meet".parse::<MeetingPlatform>().unwrap(), Meet);
        assert!("ZOOM".parse::<MeetingPlatform>().is_err());
        assert!(" meet ".parse::<MeetingPlatform>().is_err());
        let err = "webex".parse::<MeetingPlatform>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown meeting platform \"webex\": expected one of zoom, teams, meet"
        );
        assert_eq!(serde_json::to_string(&Teams).unwrap(), "\"teams\"");
    }
}
