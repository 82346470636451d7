//! IMDSv2 session tokens: stateless, unforgeable, and still valid after a restart.
//!
//! A token is its own expiry time plus an HMAC-SHA256 of it under a 256-bit key, so verifying one
//! needs no table and a flood of `PUT /latest/api/token` costs no memory. The key lives in a 0600
//! file in the state directory, because the Rust SDK caches its token for up to six hours and does
//! not fetch a new one after a 401: a daemon restart must not invalidate tokens already handed out.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The TTL range EC2 accepts for a token, in seconds.
pub const MIN_TTL: u32 = 1;
pub const MAX_TTL: u32 = 21_600;

/// The key's length: 256 bits.
pub const KEY_LEN: usize = 32;
/// Separates this MAC's purpose from any other use of the key.
const DOMAIN: &[u8] = b"fintors imds token v1\0";
const EXPIRY_LEN: usize = 8;
const MAC_LEN: usize = 32;

pub struct Tokens {
    key: [u8; KEY_LEN],
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
        Tokens { key }
    }

    fn mac(&self, expiry: &[u8; EXPIRY_LEN]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(DOMAIN);
        mac.update(expiry);
        mac
    }

    /// A token valid for `ttl` seconds from `now` (Unix seconds).
    pub fn issue(&self, ttl: u32, now: i64) -> String {
        let expiry = (now + i64::from(ttl)).to_be_bytes();
        let mut raw = [0u8; EXPIRY_LEN + MAC_LEN];
        raw[..EXPIRY_LEN].copy_from_slice(&expiry);
        raw[EXPIRY_LEN..].copy_from_slice(&self.mac(&expiry).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a token and returns its remaining lifetime in seconds.
    pub fn verify(&self, token: &str, now: i64) -> Result<u32, TokenError> {
        let mut raw = [0u8; EXPIRY_LEN + MAC_LEN];
        match URL_SAFE_NO_PAD.decode_slice(token.as_bytes(), &mut raw) {
            Ok(n) if n == raw.len() => {}
            _ => return Err(TokenError::Malformed),
        }
        let expiry: [u8; EXPIRY_LEN] = raw[..EXPIRY_LEN].try_into().expect("fixed size");
        // Constant-time comparison: timing must not reveal how much of a forged MAC was right.
        self.mac(&expiry)
            .verify_slice(&raw[EXPIRY_LEN..])
            .map_err(|_| TokenError::BadSignature)?;
        let remaining = i64::from_be_bytes(expiry) - now;
        if remaining <= 0 {
            return Err(TokenError::Expired);
        }
        Ok(remaining.min(i64::from(MAX_TTL)) as u32)
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

    #[test]
    fn debug_hides_the_key() {
        assert!(!format!("{:?}", tokens()).contains('7'));
    }
}
