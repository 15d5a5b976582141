//! Turning what Coolify (or whatever answered in its place) said into text
//! an operator can read in a bot's reason, a CLI line or an API error: one
//! line, no HTML, no Rust `Debug` output, at most a few hundred characters.
//! The raw answer goes to the debug log instead (see the client).

/// Most characters of a provider's message kept in an error or a reason.
pub(crate) const MAX_MESSAGE_CHARS: usize = 300;

/// `text` on one line (runs of whitespace, newlines included, become one
/// space), cut at a word boundary to at most `max` characters, with `…` at
/// the end when something was cut.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    // Room for the ellipsis.
    let budget = max.saturating_sub(1);
    let cut: String = collapsed.chars().take(budget).collect();
    let next_is_space = collapsed
        .chars()
        .nth(budget)
        .is_some_and(char::is_whitespace);
    let kept = if next_is_space {
        cut.as_str()
    } else {
        // Drop the partial last word, unless the text is one long word.
        match cut.rfind(' ') {
            Some(space) if space > 0 => &cut[..space],
            _ => cut.as_str(),
        }
    };
    let kept = kept.trim_end_matches([' ', ',', ';', ':', '.']);
    format!("{kept}…")
}

/// Whether a body is an HTML page (an error page of a proxy, Laravel's
/// rendering of an error, a login page, a web site's front page).
pub(crate) fn looks_like_html(body: &str) -> bool {
    let start = body.trim_start();
    let head: String = start
        .chars()
        .take(15)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype")
        || head.starts_with("<html")
        || head.starts_with("<?xml")
        || (head.starts_with('<') && body.contains("</"))
}

/// The `(os error 111)` that `std::io::Error` appends, removed, and the
/// first letter lower-cased so the text reads inside a sentence.
pub(crate) fn io_phrase(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        Some(first) => std::iter::once(first).chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_on_one_line() {
        assert_eq!(
            one_line("  Validation failed.\n  (name: required)  ", 300),
            "Validation failed. (name: required)"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_word_with_an_ellipsis() {
        let text = "The quick brown fox jumps over the lazy dog";
        assert_eq!(one_line(text, 20), "The quick brown fox…");
        assert_eq!(one_line(text, 18), "The quick brown…");
        assert!(one_line(text, 18).chars().count() <= 18);
        let word = "x".repeat(50);
        let cut = one_line(&word, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        let long = "word ".repeat(200);
        let cut = one_line(&long, MAX_MESSAGE_CHARS);
        assert!(cut.chars().count() <= MAX_MESSAGE_CHARS, "{cut}");
        assert!(cut.ends_with("word…"), "{cut}");
    }

    #[test]
    fn html_pages_are_recognised() {
        assert!(looks_like_html("<!DOCTYPE html><html><head>"));
        assert!(looks_like_html("\n  <html lang=\"en\">…</html>"));
        assert!(looks_like_html("<h1>Not Found</h1>"));
        assert!(!looks_like_html("4.3.11"));
        assert!(!looks_like_html("{\"message\":\"<b>\"}"));
    }

    #[test]
    fn io_errors_read_inside_a_sentence() {
        assert_eq!(
            io_phrase("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(io_phrase("TLS handshake failed"), "TLS handshake failed");
        assert_eq!(io_phrase("dns error"), "dns error");
    }
}
