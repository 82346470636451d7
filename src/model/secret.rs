//! Values that must never be logged. [`Secret`]'s `Debug` prints nothing of the value, so no
//! `{:?}` in a log line or an error can leak one.

use std::fmt;

use serde::Deserialize;

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
    /// attacker, through timing, how many leading bytes of a guess were right. (`subtle` keeps the
    /// optimizer from turning the comparison back into an early exit.)
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

/// Secrets arrive in request bodies (`POST /bootstrap/creds`); they are wrapped as they are read.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// For `#[serde(serialize_with = "...")]` on the one field of a message whose point is to carry
/// a secret (a credential document, a console sign-in URL). `Secret` itself is not `Serialize`,
/// so no other message can carry one by accident: serializing is sending, like
/// [`Secret::expose`], and is written out where it happens.
pub fn serialize_exposed<S: serde::Serializer>(
    secret: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose()),
        None => s.serialize_none(),
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
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
}
