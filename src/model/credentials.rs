//! Temporary credentials as fintors holds them: the secret parts live in [`Secret`].

use std::fmt;

use chrono::{DateTime, Utc};

use super::secret::Secret;

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
