//! The files `aws sso login` keeps in `~/.aws/sso/cache`, read and written in the AWS CLI's
//! exact form, so that the CLI, every SDK and fintors share one login:
//!
//! - the **token**, `<sha1 of the session name>.json`: `startUrl`, `region`, `accessToken`,
//!   `expiresAt`, and what renews it, `clientId`, `clientSecret`, `registrationExpiresAt`,
//!   `refreshToken` (aws-config's and botocore's SSO token providers refresh with exactly
//!   these; both need the times as `%Y-%m-%dT%H:%M:%SZ`);
//! - the **client registration**, named as botocore names it (the SHA-1 of a JSON object of
//!   the session's settings, in Python's `json.dumps(..., sort_keys=True)` form): `clientId`,
//!   `clientSecret`, `expiresAt`, `scopes`, `grantTypes`. A registration lasts about 90 days;
//!   sharing the file means neither tool registers again while the other's is good.
//!
//! Both are written whole (beside, then renamed) and 0600: they hold secrets.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Session, SsoError};
use crate::model::Secret;

/// What the token file holds. Fields other tools add are kept out of the way, not refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    #[serde(default)]
    pub start_url: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    pub access_token: Secret,
    #[serde(with = "crate::model::time")]
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default, with = "crate::model::time::option")]
    pub registration_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
}

/// The token file as written: the AWS CLI's field order, its time format.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    start_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    access_token: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

impl CachedToken {
    /// The token in `file`; `None` if there is none or it cannot be read (as for aws-config).
    pub fn read(file: &Path) -> Option<CachedToken> {
        let bytes = std::fs::read(file).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the token to `file`, whole and private.
    pub fn write(&self, file: &Path) -> Result<(), SsoError> {
        let time = |t: DateTime<Utc>| crate::model::time::format(t);
        let out = TokenOut {
            start_url: self.start_url.as_deref(),
            region: self.region.as_deref(),
            access_token: self.access_token.expose(),
            expires_at: time(self.expires_at),
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_ref().map(Secret::expose),
            registration_expires_at: self.registration_expires_at.map(time),
            refresh_token: self.refresh_token.as_ref().map(Secret::expose),
        };
        write(file, &serde_json::to_vec(&out).expect("serializes"))
    }

    /// Whether the token can be renewed without the user at `now`: it carries a refresh token
    /// and a client registration that has not expired.
    pub fn refreshable(&self, now: DateTime<Utc>) -> bool {
        self.refresh_token.is_some()
            && self.client_id.is_some()
            && self.client_secret.is_some()
            && self.registration_expires_at.is_some_and(|t| t > now)
    }
}

/// A client registration of SSO OIDC, as botocore caches it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(with = "crate::model::time")]
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationOut<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grant_types: Option<&'a [String]>,
}

/// The grant of the browser sign-in; a registration without it serves the device code only.
pub const AUTHORIZATION_CODE: &str = "authorization_code";

/// How long a cached registration must still last to be used, as botocore judges it.
const REGISTRATION_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

impl Registration {
    /// The cached registration for `session`, if there is one.
    pub fn read(session: &Session) -> Option<Registration> {
        let bytes = std::fs::read(registration_file(session)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write(&self, session: &Session) -> Result<(), SsoError> {
        let file = registration_file(session).ok_or_else(no_home)?;
        let out = RegistrationOut {
            client_id: &self.client_id,
            client_secret: self.client_secret.expose(),
            expires_at: crate::model::time::format(self.expires_at),
            scopes: self.scopes.as_deref(),
            grant_types: self.grant_types.as_deref(),
        };
        write(&file, &serde_json::to_vec(&out).expect("serializes"))
    }

    /// Whether this registration serves a sign-in for `scopes` at `now`: it was made for those
    /// scopes, lasts 15 more minutes, and has the authorization code grant exactly when the
    /// browser sign-in needs it (botocore keeps one registration per session, for the last
    /// flow used). The AWS CLI registers a session that names no scopes with none, and such a
    /// registration's logins cannot be renewed: fintors registers again rather than use it.
    pub fn serves(&self, scopes: &[String], now: DateTime<Utc>, browser: bool) -> bool {
        let sorted = |s: &[String]| {
            let mut s = s.to_vec();
            s.sort();
            s.dedup();
            s
        };
        let same_scopes = self
            .scopes
            .as_deref()
            .is_some_and(|mine| sorted(mine) == sorted(scopes));
        let has_code_grant = self
            .grant_types
            .iter()
            .flatten()
            .any(|g| g == AUTHORIZATION_CODE);
        same_scopes && self.expires_at - now > REGISTRATION_MARGIN && has_code_grant == browser
    }
}

/// `~/.aws/sso/cache`.
fn cache_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".aws/sso/cache"))
}

fn sha1_hex(text: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The token file of the session (or legacy start URL) `key`, where aws-config looks for it.
pub fn token_file(key: &str) -> Option<PathBuf> {
    Some(cache_dir()?.join(format!("{}.json", sha1_hex(key))))
}

/// The registration file of `session`, named as botocore names it.
fn registration_file(session: &Session) -> Option<PathBuf> {
    Some(cache_dir()?.join(format!("{}.json", sha1_hex(&registration_key(session)))))
}

/// botocore's `json.dumps({...}, sort_keys=True)` of the session's settings.
fn registration_key(session: &Session) -> String {
    let scopes = match &session.configured_scopes {
        Some(scopes) => format!(
            "[{}]",
            scopes
                .iter()
                .map(|s| python_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "null".to_owned(),
    };
    format!(
        "{{\"region\": {}, \"scopes\": {scopes}, \"session_name\": {}, \"startUrl\": {}, \
         \"tool\": \"botocore\"}}",
        python_string(&session.region),
        match session.legacy {
            true => "null".to_owned(),
            false => python_string(&session.name),
        },
        python_string(&session.start_url),
    )
}

/// A string as Python's `json.dumps` writes it: ASCII only, everything else `\uXXXX`.
fn python_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Why there is no cache to read or write.
pub(super) fn no_home() -> SsoError {
    SsoError::Config("HOME is not set: fintors keeps the login in ~/.aws/sso/cache".into())
}

/// Writes `bytes` to `file` whole and 0600, making `~/.aws/sso/cache` (0700) if need be.
fn write(file: &Path, bytes: &[u8]) -> Result<(), SsoError> {
    let failed = |action, source| SsoError::File {
        action,
        path: file.to_owned(),
        source,
    };
    if let Some(dir) = file.parent() {
        crate::platform::files::create_private_dir(dir).map_err(|e| failed("create", e))?;
    }
    crate::platform::files::replace_private(file, bytes).map_err(|e| failed("write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corp(scopes: Option<&[&str]>) -> Session {
        Session {
            name: "corp".into(),
            legacy: false,
            start_url: "https://corp.awsapps.com/start".into(),
            region: "us-east-1".into(),
            configured_scopes: scopes.map(|s| s.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn the_registration_file_is_named_as_botocore_names_it() {
        // python3: hashlib.sha1(json.dumps({"tool": "botocore", "startUrl": ..., "region":
        // ..., "scopes": ..., "session_name": "corp"}, sort_keys=True).encode()).hexdigest()
        let key = |s| sha1_hex(&registration_key(&s));
        assert_eq!(
            key(corp(Some(&["sso:account:access"]))),
            "1b56c55d6e723362537167a7f43960b8185b5a80"
        );
        assert_eq!(key(corp(None)), "5fdb0c628fe4a3a78887b40232874154e433f9a4");
        let odd = Session {
            name: "c\"o".into(),
            start_url: "https://\u{e9}.example/start".into(),
            ..corp(None)
        };
        assert_eq!(key(odd), "fdf01a4266d75bfc5f6ef9aac80a29ab9e9f960a");
        // A legacy profile's: "scopes": null, "session_name": null.
        let legacy = Session {
            name: "https://corp.awsapps.com/start".into(),
            legacy: true,
            ..corp(None)
        };
        assert_eq!(key(legacy), "ffb6eff0a547e7a6123046d5853a4c054139b507");
    }

    #[test]
    fn a_token_is_written_as_the_aws_cli_writes_it_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sso/cache/t.json");
        let token = CachedToken {
            start_url: Some("https://corp.awsapps.com/start".into()),
            region: Some("us-east-1".into()),
            access_token: Secret::new("access"),
            expires_at: "2026-12-05T10:00:00.250Z".parse().unwrap(),
            client_id: Some("client".into()),
            client_secret: Some(Secret::new("secret")),
            registration_expires_at: Some("2027-03-05T10:00:00Z".parse().unwrap()),
            refresh_token: Some(Secret::new("refresh")),
        };
        token.write(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            r#"{"startUrl":"https://corp.awsapps.com/start","region":"us-east-1","accessToken":"access","expiresAt":"2026-12-05T10:00:00Z","clientId":"client","clientSecret":"secret","registrationExpiresAt":"2027-03-05T10:00:00Z","refreshToken":"refresh"}"#
        );
        let back = CachedToken::read(&file).unwrap();
        assert_eq!(
            back.expires_at,
            "2026-12-05T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(back.refresh_token, token.refresh_token);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }

    #[test]
    fn a_token_is_refreshable_only_with_a_refresh_token_and_a_live_registration() {
        let now: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        let mut token: CachedToken = serde_json::from_str(
            r#"{"accessToken":"a","expiresAt":"2026-12-05T09:00:00Z","clientId":"c",
                "clientSecret":"s","registrationExpiresAt":"2027-01-01T00:00:00Z",
                "refreshToken":"r"}"#,
        )
        .unwrap();
        assert!(token.refreshable(now));
        token.registration_expires_at = Some(now);
        assert!(!token.refreshable(now), "registration over");
        token.registration_expires_at = Some("2027-01-01T00:00:00Z".parse().unwrap());
        token.refresh_token = None;
        assert!(!token.refreshable(now), "a legacy 8-hour token");
    }

    #[test]
    fn a_registration_serves_the_flow_it_was_made_for_with_fifteen_minutes_left() {
        let now: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        let mut r = Registration {
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            expires_at: now + chrono::TimeDelta::days(90),
            scopes: Some(access()),
            grant_types: Some(vec![AUTHORIZATION_CODE.into(), "refresh_token".into()]),
        };
        assert!(r.serves(&access(), now, true));
        assert!(
            !r.serves(&access(), now, false),
            "device code: register without the code grant"
        );
        r.expires_at = now + chrono::TimeDelta::minutes(14);
        assert!(!r.serves(&access(), now, true), "about to expire");
        r.expires_at = now + chrono::TimeDelta::days(1);
        r.grant_types = None;
        assert!(
            !r.serves(&access(), now, true),
            "registered for the device code"
        );
        assert!(r.serves(&access(), now, false));
    }

    fn access() -> Vec<String> {
        vec!["sso:account:access".into()]
    }

    #[test]
    fn a_registration_made_for_other_scopes_is_not_used() {
        let now: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        let mut r = Registration {
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            expires_at: now + chrono::TimeDelta::days(90),
            scopes: None,
            grant_types: None,
        };
        assert!(
            !r.serves(&access(), now, false),
            "the AWS CLI's registration without scopes: its logins are not renewable"
        );
        r.scopes = Some(vec!["codewhisperer:completions".into()]);
        assert!(!r.serves(&access(), now, false));
        r.scopes = Some(vec!["b".into(), "a".into()]);
        assert!(
            r.serves(&["a".into(), "b".into()], now, false),
            "the same scopes in another order"
        );
    }
}
