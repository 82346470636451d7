//! IMDSv2 session tokens: stateless, unforgeable, and still valid after a restart.
//!
//! A token is its own expiry time plus an HMAC-SHA256 of it under a 256-bit key, so verifying one
//! needs no table and a flood of `PUT /latest/api/token` costs no memory. The key lives in a 0600
//! file in the state directory, because the Rust SDK caches its token for up to six hours and does
//! not fetch a new one after a 401: a daemon restart must not invalidate tokens already handed out.
//!
//! Computed in software, the MAC was 13 k of the 30 k instructions a cached credential cost to
//! serve (CPUs with SHA instructions do it in a few hundred cycles, but many laptops' have
//! none), so the key is absorbed once, and tokens recently issued or verified are
//! [`Remembered`]: a client's token is checked by a constant-time comparison and its expiry,
//! without a MAC.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::remembered::Remembered;

/// The TTL range EC2 accepts for a token, in seconds.
pub const MIN_TTL: u32 = 1;
pub const MAX_TTL: u32 = 21_600;

/// The key's length: 256 bits.
pub const KEY_LEN: usize = 32;
/// Separates this MAC's purpose from any other use of the key.
const DOMAIN: &[u8] = b"fintors imds token v1\0";
const EXPIRY_LEN: usize = 8;
const MAC_LEN: usize = 32;
const RAW_LEN: usize = EXPIRY_LEN + MAC_LEN;

pub struct Tokens {
    /// The HMAC with the key and the domain absorbed; each MAC starts from a copy of it.
    keyed: Hmac<Sha256>,
    /// Tokens recently issued or verified, with their expiry (Unix seconds).
    recent: Remembered<i64>,
    /// MACs computed, for the tests that show the table saves them.
    #[cfg(test)]
    macs: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens { key: <redacted> }")
    }
}

/// Why a token was refused: every case is a 401 to the client, the reason is for the debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

impl Tokens {
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        let mut keyed = Hmac::<Sha256>::new_from_slice(&key).expect("any key length works");
        keyed.update(DOMAIN);
        Tokens {
            keyed,
            recent: Remembered::new(),
            #[cfg(test)]
            macs: Default::default(),
        }
    }

    fn mac(&self, expiry: &[u8; EXPIRY_LEN]) -> Hmac<Sha256> {
        #[cfg(test)]
        self.macs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut mac = self.keyed.clone();
        mac.update(expiry);
        mac
    }

    /// A token valid for `ttl` seconds from `now` (Unix seconds). Tokens with the same expiry
    /// are the same token, so one issued this second is handed out again without a MAC.
    pub fn issue(&self, ttl: u32, now: i64) -> String {
        let expiry = now + i64::from(ttl);
        if let Some(token) = self.recent.find(|&e| e == expiry) {
            return String::from_utf8(token.into_vec()).expect("tokens are base64");
        }
        let expiry_bytes = expiry.to_be_bytes();
        let mut raw = [0u8; RAW_LEN];
        raw[..EXPIRY_LEN].copy_from_slice(&expiry_bytes);
        raw[EXPIRY_LEN..].copy_from_slice(&self.mac(&expiry_bytes).finalize().into_bytes());
        let token = URL_SAFE_NO_PAD.encode(raw);
        self.recent.remember(token.as_bytes(), expiry);
        token
    }

    /// Checks a token and returns its remaining lifetime in seconds.
    pub fn verify(&self, token: &str, now: i64) -> Result<u32, TokenError> {
        let token = token.as_bytes();
        let (expiry, remembered) = match self.recent.recall(token, |&expiry| expiry) {
            Some(expiry) => (expiry, true),
            None => (self.verify_mac(token)?, false),
        };
        let remaining = expiry - now;
        if remaining <= 0 {
            return Err(TokenError::Expired);
        }
        // Only a token that is still good takes a slot.
        if !remembered {
            self.recent.remember(token, expiry);
        }
        Ok(remaining.min(i64::from(MAX_TTL)) as u32)
    }

    /// The expiry `token` carries, once its MAC is checked.
    fn verify_mac(&self, token: &[u8]) -> Result<i64, TokenError> {
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
            Ok(n) if n == raw.len() => {}
            _ => return Err(TokenError::Malformed),
        }
        let expiry: [u8; EXPIRY_LEN] = raw[..EXPIRY_LEN].try_into().expect("fixed size");
        // Constant-time comparison: timing must not reveal how much of a forged MAC was right.
        self.mac(&expiry)
            .verify_slice(&raw[EXPIRY_LEN..])
            .map_err(|_| TokenError::BadSignature)?;
        Ok(i64::from_be_bytes(expiry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::from_key([7; KEY_LEN])
    }

    #[test]
    fn issued_token_verifies_with_its_remaining_lifetime() {
        let t = tokens().issue(21_600, 1_000);
        assert_eq!(tokens().verify(&t, 1_000), Ok(21_600));
        assert_eq!(tokens().verify(&t, 22_599), Ok(1));
    }

    #[test]
    fn expired_token_is_refused() {
        let t = tokens().issue(60, 1_000);
        assert_eq!(tokens().verify(&t, 1_060), Err(TokenError::Expired));
        assert_eq!(tokens().verify(&t, 5_000), Err(TokenError::Expired));
    }

    #[test]
    fn token_from_another_key_is_refused() {
        let t = Tokens::from_key([8; KEY_LEN]).issue(60, 1_000);
        assert_eq!(tokens().verify(&t, 1_000), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_expiry_is_refused() {
        let t = tokens().issue(60, 1_000);
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[7] ^= 0x40; // push the expiry out
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            tokens().verify(&forged, 1_000),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn truncated_or_garbage_tokens_are_malformed() {
        let t = tokens().issue(60, 1_000);
        for bad in [
            &t[..t.len() - 1],
            "",
            "not a token",
            &format!("{t}A"),
            "AAAA",
        ] {
            assert_eq!(
                tokens().verify(bad, 1_000),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    fn macs(tokens: &Tokens) -> usize {
        tokens.macs.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_token_used_again_is_verified_without_a_mac() {
        let tokens = tokens();
        let t = Tokens::from_key([7; KEY_LEN]).issue(600, 1_000);
        assert_eq!(tokens.verify(&t, 1_000), Ok(600));
        assert_eq!(macs(&tokens), 1);
        assert_eq!(tokens.verify(&t, 1_100), Ok(500));
        assert_eq!(tokens.verify(&t, 1_599), Ok(1));
        assert_eq!(macs(&tokens), 1);
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let tokens = tokens();
        let t = tokens.issue(60, 1_000);
        assert_eq!(tokens.verify(&t, 1_059), Ok(1));
        assert_eq!(tokens.verify(&t, 1_060), Err(TokenError::Expired));
        assert_eq!(macs(&tokens), 1);
    }

    #[test]
    fn an_expired_token_is_not_remembered() {
        let tokens = tokens();
        let old = Tokens::from_key([7; KEY_LEN]).issue(60, 1_000);
        for _ in 0..2 {
            assert_eq!(tokens.verify(&old, 2_000), Err(TokenError::Expired));
        }
        assert_eq!(macs(&tokens), 2);
    }

    #[test]
    fn tokens_issued_in_the_same_second_are_one_mac() {
        let tokens = tokens();
        let first = tokens.issue(600, 1_000);
        assert_eq!(tokens.issue(600, 1_000), first);
        assert_eq!(tokens.verify(&first, 1_000), Ok(600));
        assert_eq!(macs(&tokens), 1);
        assert_ne!(tokens.issue(601, 1_000), first);
        assert_eq!(macs(&tokens), 2);
    }

    #[test]
    fn a_forgery_beside_a_remembered_token_is_still_refused() {
        let tokens = tokens();
        let t = tokens.issue(600, 1_000);
        // Every character changed in turn, the last one (which picks the slot) included.
        for i in 0..t.len() {
            let mut forged = t.clone().into_bytes();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            assert!(tokens.verify(&forged, 1_000).is_err(), "{forged}");
        }
        assert_eq!(tokens.verify(&t, 1_000), Ok(600));
    }

    #[test]
    fn a_token_from_another_key_is_refused_after_being_seen() {
        let tokens = tokens();
        let foreign = Tokens::from_key([8; KEY_LEN]).issue(600, 1_000);
        for _ in 0..2 {
            assert_eq!(
                tokens.verify(&foreign, 1_000),
                Err(TokenError::BadSignature)
            );
        }
        assert_eq!(macs(&tokens), 2);
    }

    #[test]
    fn the_key_absorbed_once_makes_the_same_tokens_as_hmac_of_the_whole() {
        let key = [7; KEY_LEN];
        let expiry = 1_600i64.to_be_bytes();
        let mut whole = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        whole.update(DOMAIN);
        whole.update(&expiry);
        let mut raw = expiry.to_vec();
        raw.extend_from_slice(&whole.finalize().into_bytes());
        assert_eq!(tokens().issue(600, 1_000), URL_SAFE_NO_PAD.encode(raw));
    }

    #[test]
    fn debug_hides_the_key() {
        assert!(!format!("{:?}", tokens()).contains('7'));
    }
}
