//! Hiding a bot's secrets in text the platform passes on (the end of a
//! bot's log in a start-failure error).

use platform_core::BotDeploymentConfig;

const REDACTED: &str = "[redacted]";

/// Shorter secret fragments are not replaced on their own: a two-digit
/// passcode would blank out every matching number. The whole meeting URL
/// and the meeting password are always replaced.
const MIN_FRAGMENT_LEN: usize = 4;

/// `text` with the meeting URL, the meeting password and the URL's
/// passcode values replaced by `[redacted]`.
pub(crate) fn redact_secrets(text: &str, config: &BotDeploymentConfig) -> String {
    let url = config.meeting_url();
    let mut secrets: Vec<String> = vec![url.expose().to_owned()];
    if let Some(password) = config.meeting_password() {
        secrets.push(password.expose().to_owned());
    }
    // Passcode parameters are the query values the redacted URL hides.
    let shown = url.redacted();
    if let Some((_, query)) = url.expose().split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for pair in query.split('&') {
            if let Some((_, value)) = pair.split_once('=')
                && value.len() >= MIN_FRAGMENT_LEN
                && !shown.contains(pair)
            {
                secrets.push(value.to_owned());
            }
        }
    }
    // Longest first, so the URL goes before the passcode inside it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), REDACTED)
        })
}

#[cfg(test)]
mod tests {
    use platform_core::{BotId, MeetingPlatform, MeetingUrl, SecretString};

    use super::*;

    #[test]
    fn url_password_and_passcode_are_hidden() {
        let url = MeetingUrl::parse(
            MeetingPlatform::Zoom,
            "https://us02web.zoom.us/j/81234567890?pwd=Zm9vYmFyYmF6&from=addon",
        )
        .unwrap();
        let config = BotDeploymentConfig::new(BotId(1), url)
            .with_meeting_password(Some(SecretString::new("hunter22")))
            .unwrap();
        let text = "joining https://us02web.zoom.us/j/81234567890?pwd=Zm9vYmFyYmF6&from=addon\n\
                    password hunter22, passcode Zm9vYmFyYmF6, from addon";
        let shown = redact_secrets(text, &config);
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(!shown.contains("Zm9vYmFyYmF6"), "{shown}");
        assert!(shown.contains("joining [redacted]"), "{shown}");
        assert!(shown.contains("from addon"), "{shown}");
    }
}
