//! The container endpoint's authorization tokens: one per role, and one for the active role
//! (`/creds`), so a process or container handed role A's token gets 403 for role B and for
//! whatever role is active.
//!
//! Each token is an HMAC-SHA256 of what it opens under a 256-bit key, in 64 hex characters (no
//! newline: the Rust SDK and JS v3's `fromHttp` reject one). The key lives in a 0600 file in
//! the state directory ([`KEY_FILE`]), so tokens survive restarts (containers keep the value they
//! were started with) and need no table; the client (`fintors exec`, `fintors env`) reads the
//! same key from its own user's state directory and derives the token itself, so nothing the
//! daemon says decides which file a client reads.
//!
//! The daemon checks a token by deriving the one for what the request asks and comparing; a
//! token that passed is [`Remembered`] with what it opens, so a pinned client's next requests
//! are checked by a constant-time comparison, without a MAC (in software, 13 k instructions of
//! each request's 50 k). What a token opens is looked up by the token the client presents, never by the role
//! asked for: how long a refusal takes says nothing about other roles' tokens.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::Secret;
use crate::model::remembered::Remembered;

/// The key file's name in the state directory.
pub const KEY_FILE: &str = "container.key";
/// The key's length: 256 bits.
pub const KEY_LEN: usize = 32;
/// Separates this MAC's purpose from any other use of the key.
const DOMAIN: &[u8] = b"fintors container token v1\0";

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `/creds`: the active role, whichever it is.
    Active,
    /// `/creds/ROLE`: that role only.
    Role(&'a str),
}

/// What a remembered token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Opens {
    Active,
    Role(Box<str>),
}

impl Opens {
    fn is(&self, scope: Scope<'_>) -> bool {
        match (self, scope) {
            (Opens::Active, Scope::Active) => true,
            (Opens::Role(role), Scope::Role(alias)) => **role == *alias,
            _ => false,
        }
    }
}

impl From<Scope<'_>> for Opens {
    fn from(scope: Scope<'_>) -> Self {
        match scope {
            Scope::Active => Opens::Active,
            Scope::Role(alias) => Opens::Role(alias.into()),
        }
    }
}

pub struct ContainerKey {
    /// The HMAC with the key and the domain absorbed; each MAC starts from a copy of it.
    keyed: Hmac<Sha256>,
    admitted: Remembered<Opens>,
    /// MACs computed, for the tests that show the table saves them.
    #[cfg(test)]
    macs: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for ContainerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContainerKey(<redacted>)")
    }
}

impl ContainerKey {
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        let mut keyed = Hmac::<Sha256>::new_from_slice(&key).expect("any key length works");
        keyed.update(DOMAIN);
        ContainerKey {
            keyed,
            admitted: Remembered::new(),
            #[cfg(test)]
            macs: Default::default(),
        }
    }

    /// The token for `scope`.
    pub fn token(&self, scope: Scope<'_>) -> Secret {
        let mac = self.mac(scope);
        let mut hex = String::with_capacity(2 * mac.len());
        for byte in mac {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        Secret::new(hex)
    }

    /// Whether `given` is the token for `scope`, compared in constant time.
    pub fn admits(&self, scope: Scope<'_>, given: &[u8]) -> bool {
        // A token opens one scope (a MAC collision aside), so a remembered token that opens
        // another is refused without deriving anything.
        if let Some(admitted) = self.admitted.recall(given, |opens| opens.is(scope)) {
            return admitted;
        }
        let admitted = self.token(scope).matches(given);
        if admitted {
            self.admitted.remember(given, scope.into());
        }
        admitted
    }

    fn mac(&self, scope: Scope<'_>) -> [u8; 32] {
        #[cfg(test)]
        self.macs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut mac = self.keyed.clone();
        match scope {
            Scope::Active => mac.update(b"active"),
            Scope::Role(alias) => {
                mac.update(b"role\0");
                mac.update(alias.as_bytes());
            }
        }
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ContainerKey {
        ContainerKey::from_key([byte; KEY_LEN])
    }

    #[test]
    fn a_token_is_64_hex_characters_and_the_same_for_the_same_key() {
        let token = key(1).token(Scope::Role("ops"));
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key(1).token(Scope::Role("ops")), token);
        assert_ne!(key(2).token(Scope::Role("ops")), token);
    }

    #[test]
    fn a_roles_token_opens_that_role_only() {
        let key = key(7);
        let ops = key.token(Scope::Role("ops"));
        assert!(key.admits(Scope::Role("ops"), ops.expose().as_bytes()));
        assert!(!key.admits(Scope::Role("dev"), ops.expose().as_bytes()));
        assert!(!key.admits(Scope::Role("ops2"), ops.expose().as_bytes()));
        assert!(!key.admits(Scope::Active, ops.expose().as_bytes()));
    }

    #[test]
    fn the_active_roles_token_opens_no_named_role() {
        let key = key(7);
        let active = key.token(Scope::Active);
        assert!(key.admits(Scope::Active, active.expose().as_bytes()));
        assert!(!key.admits(Scope::Role("active"), active.expose().as_bytes()));
    }

    #[test]
    fn a_token_presented_again_is_checked_without_a_mac() {
        let key = key(7);
        let ops = ContainerKey::from_key([7; KEY_LEN]).token(Scope::Role("ops"));
        for _ in 0..3 {
            assert!(key.admits(Scope::Role("ops"), ops.expose().as_bytes()));
        }
        assert_eq!(key.macs.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn a_remembered_token_still_opens_its_role_only() {
        let key = key(7);
        let ops = key.token(Scope::Role("ops"));
        assert!(key.admits(Scope::Role("ops"), ops.expose().as_bytes()));
        assert!(!key.admits(Scope::Role("dev"), ops.expose().as_bytes()));
        assert!(!key.admits(Scope::Role("op"), ops.expose().as_bytes()));
        assert!(!key.admits(Scope::Active, ops.expose().as_bytes()));
        assert!(key.admits(Scope::Role("ops"), ops.expose().as_bytes()));
    }

    #[test]
    fn a_wrong_token_is_never_remembered() {
        let key = key(7);
        let foreign = ContainerKey::from_key([8; KEY_LEN]).token(Scope::Role("ops"));
        for _ in 0..2 {
            assert!(!key.admits(Scope::Role("ops"), foreign.expose().as_bytes()));
        }
        assert_eq!(key.macs.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn debug_shows_nothing_of_the_key() {
        assert_eq!(format!("{:?}", key(9)), "ContainerKey(<redacted>)");
    }
}
