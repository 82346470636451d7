//! What reaches a user from someone else's words (an SDK's error, a server's message, which can
//! hold newlines or a whole HTML page): one line, cut short.

/// The longest message of a service's (or of an error beneath) that fintors passes on.
pub const MAX_MESSAGE: usize = 300;

/// `text` cut to one line of at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// The deepest cause in `err`'s chain, on one line: the part that says what actually happened
/// ("Connection refused", "profile `x` was not defined"), where the outer layers only say that
/// something failed.
pub fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = err;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    one_line(&deepest.to_string(), MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_whitespace_and_cuts_long_text() {
        assert_eq!(one_line("a\n  b\tc", 80), "a b c");
        assert_eq!(
            one_line(&"x".repeat(300), 10),
            format!("{}...", "x".repeat(10))
        );
    }
}
