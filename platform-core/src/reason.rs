//! Reasons people can read: what a provider (or whatever answered in its
//! place) said, and what an HTTP client's connector reported, turned into
//! text for a bot's reason, a CLI line or an API error — one line, no HTML,
//! no Rust `Debug` output, at most a few hundred characters. Every platform
//! and the service use these, so a reason reads the same wherever it came
//! from; the raw detail belongs in the debug log.

use std::error::Error as StdError;

/// Most characters of a provider's message (or of a status reason) kept in
/// an error or a reason.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// `text` on one line, whitespace runs (newlines included) read as one
/// space, and at most `max` characters: when it is longer it is cut after
/// the last whole word that fits and ends with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let room = max.saturating_sub(1);
    let mut kept = String::new();
    for word in &words {
        let needed = kept.chars().count() + usize::from(!kept.is_empty()) + word.chars().count();
        if needed > room {
            break;
        }
        if !kept.is_empty() {
            kept.push(' ');
        }
        kept.push_str(word);
    }
    if kept.is_empty() {
        // One word longer than the room: cut inside it.
        kept = joined.chars().take(room).collect();
    }
    let kept = kept.trim_end_matches([',', ';', ':', '.', '-']);
    format!("{kept}…")
}

/// What an answer body that is not an ECS answer looks like, in a few
/// words: the title (or first heading) of an HTML page, the start of some
/// other text, or that it was empty.
pub fn describe_foreign_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_owned();
    }
    if looks_like_html(text) {
        return match html_heading(text) {
            Some(title) => format!("an HTML page titled \"{}\"", one_line(&title, 80)),
            None => "an HTML page".to_owned(),
        };
    }
    if text.starts_with(['{', '[']) {
        return "a JSON body without an error code".to_owned();
    }
    format!("\"{}\"", one_line(text, 120))
}

/// Whether `text` is markup rather than a message: a proxy's or load
/// balancer's error page.
pub fn looks_like_html(text: &str) -> bool {
    let start: String = text
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    start.starts_with("<!doctype")
        || start.starts_with("<html")
        || start.starts_with("<?xml")
        || (start.starts_with('<') && text.contains("</"))
}

/// The text of the first `<title>`, else of the first `<h1>`, tags inside
/// it removed.
fn html_heading(page: &str) -> Option<String> {
    let lower = page.to_ascii_lowercase();
    ["title", "h1"].iter().find_map(|tag| {
        let open = lower.find(&format!("<{tag}"))?;
        let content_start = open + lower[open..].find('>')? + 1;
        let content_end = content_start + lower[content_start..].find(&format!("</{tag}"))?;
        let text = strip_tags(&page[content_start..content_end]);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        (!text.is_empty()).then_some(text)
    })
}

fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// `error` and every error under it. After an `io::Error` the next one is
/// its payload: `io::Error::source` skips the payload and goes to the
/// payload's own source, which would lose the payload's text.
pub fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&error| {
        match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => error.source(),
        }
    })
}

/// The texts the SDK's layers wrap a connection failure in, which say
/// nothing about what happened.
const WRAPPER_TEXTS: &[&str] = &[
    "dispatch failure",
    "io error",
    "timeout",
    "user error",
    "other",
    "unhandled error",
];

/// What a failure to send a request was, from its causes: the texts that
/// say something (`tcp connect error: connection refused`), without the
/// wrappers around them, repeats, or the `(os error 111)` that
/// `std::io::Error` adds; one line of at most [`MAX_MESSAGE_CHARS`].
pub fn describe_causes(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        let text = text.trim();
        let generic = text.is_empty()
            || WRAPPER_TEXTS.contains(&text)
            // hyper-util's `client error (Connect)`, `(SendRequest)`.
            || (text.starts_with("client error (") && text.ends_with(')'));
        if generic {
            continue;
        }
        let text = without_os_error(text);
        // A layer that repeats the text of the one under it (or whose text
        // the one under it repeats) is said once.
        if let Some(last) = parts.last_mut() {
            if last.contains(&text) {
                continue;
            }
            if text.contains(last.as_str()) {
                *last = text;
                continue;
            }
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return "the connection failed and gave no reason".to_owned();
    }
    one_line(&parts.join(": "), MAX_MESSAGE_CHARS)
}

/// `Connection refused (os error 111)` as `connection refused`: the error
/// number removed, and a capital that only starts the sentence lowered so
/// the text reads after a colon.
pub fn without_os_error(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    };
    let mut chars = text.chars();
    match (chars.next(), chars.clone().next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::io;

    use super::*;

    #[test]
    fn short_text_is_one_line_as_it_is() {
        assert_eq!(
            one_line(" Rate\n exceeded.\t(retry) ", 300),
            "Rate exceeded. (retry)"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_word_with_an_ellipsis() {
        let text = "Capacity is unavailable at this time, please try again later";
        assert_eq!(one_line(text, 25), "Capacity is unavailable…");
        assert_eq!(one_line(text, 33), "Capacity is unavailable at this…");
        for max in 5..text.len() {
            let cut = one_line(text, max);
            assert!(cut.chars().count() <= max, "{max}: {cut}");
            assert!(cut.ends_with('…'), "{cut}");
        }
        let word = "x".repeat(40);
        assert_eq!(one_line(&word, 10), format!("{}…", "x".repeat(9)));
    }

    #[test]
    fn foreign_bodies_are_named_not_copied() {
        let page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(
            describe_foreign_body(page.as_bytes()),
            "an HTML page titled \"502 Bad Gateway\""
        );
        assert_eq!(
            describe_foreign_body(b"<!DOCTYPE html><body><h1>Service <b>Unavailable</b></h1>"),
            "an HTML page titled \"Service Unavailable\""
        );
        assert_eq!(
            describe_foreign_body(b"<html><body></body></html>"),
            "an HTML page"
        );
        assert_eq!(describe_foreign_body(b"  "), "an empty body");
        assert_eq!(
            describe_foreign_body(b"upstream timed out"),
            "\"upstream timed out\""
        );
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<dyn StdError + Send + Sync>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn a_failure_reads_as_its_causes() {
        let refused = io::Error::from_raw_os_error(111);
        let error = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer(
                    "client error (Connect)",
                    Some(Box::new(Layer(
                        "tcp connect error",
                        Some(Box::new(refused)),
                    ))),
                ))),
            ))),
        );
        assert_eq!(
            describe_causes(&error),
            "tcp connect error: connection refused"
        );
        let wrapped = io::Error::other(Layer("tls handshake eof", None));
        let error = Layer("client error (Connect)", Some(Box::new(wrapped)));
        assert_eq!(describe_causes(&error), "tls handshake eof");
        assert_eq!(
            describe_causes(&Layer("dispatch failure", None)),
            "the connection failed and gave no reason"
        );
    }
}
