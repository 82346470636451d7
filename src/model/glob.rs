//! Shell-like name patterns, where `*` matches any run of characters: the `include`/`exclude`
//! filters of discovered roles and the files `ssh_public_key` names (`~/.ssh/*.pub`).

/// Whether `pattern` matches all of `text`.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_with_stars_anywhere() {
        assert!(glob("pay*", "payments"));
        assert!(glob("*dev*", "payments-dev-eu"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(glob("*.pub", "id_ed25519.pub"));
        assert!(!glob("pay", "payments"));
        assert!(!glob("*prod", "prod-eu"));
        assert!(!glob("*.pub", "id_ed25519"));
        assert!(glob("*", ""));
    }
}
