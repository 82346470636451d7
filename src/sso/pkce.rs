//! The authorization code grant's proof key (RFC 7636) and the authorize URL, as the AWS CLI
//! makes them: a 64-character verifier of unreserved characters, its S256 challenge (base64url
//! without padding), a UUID-shaped `state`, and `GET {oidc}/authorize` with `response_type`,
//! `client_id`, `redirect_uri`, `state`, `code_challenge_method`, `scopes` (space-separated)
//! and `code_challenge`.

use base64::Engine;
use sha2::Digest;

use crate::model::Secret;

/// One sign-in's secrets: the verifier stays in this process; the challenge and state go out.
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
    pub state: String,
}

const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

impl Pkce {
    pub fn new() -> Pkce {
        let mut bytes = [0u8; 64 + 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        let (verifier, state) = bytes.split_at(64);
        // 66 symbols: `% 66` favours a few by under 1 in 3; 64 of them keep 383 bits.
        let verifier: String = verifier
            .iter()
            .map(|b| UNRESERVED[usize::from(*b) % UNRESERVED.len()] as char)
            .collect();
        Pkce {
            challenge: challenge(&verifier),
            verifier: Secret::new(verifier),
            state: uuid_form(state),
        }
    }
}

/// S256: base64url of the verifier's SHA-256, without padding.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// 16 random bytes written as a version-4 UUID, as the AWS CLI's `state` is.
fn uuid_form(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Percent-encodes everything but the unreserved characters (so a space is `%20`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if UNRESERVED.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page the browser signs in on: `{oidc}/authorize?...`.
pub fn authorize_url(
    oidc: &str,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    scopes: &[String],
) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", &pkce.state),
        ("code_challenge_method", "S256"),
        ("scopes", &scopes.join(" ")),
        ("code_challenge", &pkce.challenge),
    ];
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!(
        "{}/authorize?{}",
        oidc.trim_end_matches('/'),
        query.join("&")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn each_sign_in_has_its_own_verifier_and_state_of_the_right_form() {
        let (a, b) = (Pkce::new(), Pkce::new());
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, b.state);
        let v = a.verifier.expose();
        assert_eq!(v.len(), 64);
        assert!(v.bytes().all(|c| UNRESERVED.contains(&c)));
        assert_eq!(a.challenge, challenge(v));
        assert_eq!(a.state.len(), 36);
        assert_eq!(&a.state[14..15], "4", "{}", a.state);
    }

    #[test]
    fn the_authorize_url_carries_every_parameter_encoded() {
        let pkce = Pkce {
            verifier: Secret::new("v"),
            challenge: "CH".into(),
            state: "st".into(),
        };
        let url = authorize_url(
            "https://oidc.us-east-1.amazonaws.com/",
            "client",
            "http://127.0.0.1:4321/oauth/callback",
            &pkce,
            &["sso:account:access".into(), "extra".into()],
        );
        assert_eq!(
            url,
            "https://oidc.us-east-1.amazonaws.com/authorize?response_type=code&client_id=client\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A4321%2Foauth%2Fcallback&state=st\
             &code_challenge_method=S256&scopes=sso%3Aaccount%3Aaccess%20extra&code_challenge=CH"
        );
    }
}
