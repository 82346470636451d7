//! Quoting for POSIX shells, and for fish, which does not read single quotes the same way
//! (inside them `\\` and `\'` are escapes): what fintors prints for `eval` or `source`, and the
//! commands it tells a user to run, must mean what they say when pasted, whatever a value holds.

/// `s` in single quotes, each `'` in it closed, escaped and reopened.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` in single quotes as fish reads them: `\` and `'` escaped with a backslash.
pub fn quote_fish(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// `s` as one word of a command line: as it is when no shell would read it differently (the
/// usual session and profile names), quoted otherwise.
pub fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,%".contains(&b));
    if plain { s.to_owned() } else { quote(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a/b+c="), "'a/b+c='");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn fish_quoting_escapes_backslashes_and_quotes_inside_the_quotes() {
        assert_eq!(quote_fish("it's"), r"'it\'s'");
        assert_eq!(quote_fish(r"a\\b"), r"'a\\\\b'");
        assert_eq!(quote_fish("plain"), "'plain'");
    }

    #[test]
    fn a_word_is_quoted_only_when_a_shell_would_split_or_expand_it() {
        assert_eq!(word("corp"), "corp");
        assert_eq!(word("my-org.dev"), "my-org.dev");
        assert_eq!(word("my session"), "'my session'");
        assert_eq!(word("$(id)"), "'$(id)'");
        assert_eq!(word(""), "''");
    }
}
