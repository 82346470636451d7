//! Temporary credentials as fintors holds them: the secret parts live in [`Secret`], whose `Debug`
//! prints nothing of the value, so no `{:?}` in a log line or an error can leak them.

use std::fmt;

use chrono::{DateTime, Utc};

/// A value that must never be logged. Read it with [`Secret::expose`], only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret, compared in constant time: an early exit would tell an
    /// attacker, through timing, how many leading bytes of a guess were right.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        expected.len() == candidate.len()
            && expected
                .iter()
                .zip(candidate)
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One set of STS session credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Not a secret on its own, but half of one: it is shown only in part.
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: DateTime<Utc>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Enough of the key id to tell two credentials apart in a debug log, as the AWS console does.
        let tail: String = self
            .access_key_id
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        f.debug_struct("Credentials")
            .field("access_key_id", &format_args!("…{tail}"))
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("expiration", &self.expiration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_compares_whole_values() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b"abcd"));
        assert!(!Secret::new("").matches(b"a"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials {
            access_key_id: "ASIAEXAMPLEKEYID1234".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: Secret::new("FwoGZXIvYXdzEXAMPLETOKEN"),
            expiration: DateTime::from_timestamp(0, 0).unwrap(),
        };
        let debug = format!("{c:?}");
        assert!(!debug.contains("wJalr"), "{debug}");
        assert!(!debug.contains("FwoGZ"), "{debug}");
        assert!(!debug.contains("ASIAEXAMPLE"), "{debug}");
        assert!(debug.contains("…1234"), "{debug}");
    }
}
