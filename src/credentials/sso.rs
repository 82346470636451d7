//! Base credentials from IAM Identity Center (SSO): knowing when the user has to log in again,
//! and noticing at once when they have.
//!
//! aws-config reads the token `aws sso login` caches in `~/.aws/sso/cache/<sha1>.json` (the
//! SHA-1 of the `sso_session` name, or of the start URL for a legacy profile) and refreshes it
//! through SSO OIDC when the cache holds a refresh token. When it cannot, it says only that the
//! provider failed, in a private error type, so fintors reads the profile and the cache itself:
//! a base that fails to load while its cached token is missing or past its `expiresAt` is an
//! expired session, reported as [`StsError::SsoLoginRequired`] with the exact command that fixes
//! it. [`watch`] looks at the cache file every couple of seconds and, when it changes (the user
//! ran `aws sso login`), has every failing role retried at once rather than after its backoff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::profile::ProfileSet;
use chrono::{DateTime, Utc};

use super::{Registry, StsError};
use crate::config::aws_profiles;
use crate::model::shell;

/// How often [`watch`] looks at the token cache: one `stat` each time.
const POLL: Duration = Duration::from_secs(2);

/// The SSO login behind a profile: `sso_session` (with its start URL) or a legacy profile's own
/// `sso_start_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLogin {
    /// The `sso-session` section's name; `None` for the legacy form.
    pub session: Option<String>,
    pub start_url: String,
    /// The profile that uses it, for the legacy form's login command.
    pub profile: String,
}

/// What the token cache says about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// No cached token: never logged in on this machine, or logged out.
    Missing,
    Valid {
        expires: DateTime<Utc>,
    },
    Expired {
        since: DateTime<Utc>,
    },
}

/// The parts of a cached token fintors reads (AWS CLI v2's format).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedToken {
    expires_at: String,
}

impl SsoLogin {
    /// The SSO login `profile` uses, if any, from the AWS config file: its own, or that of the
    /// profile it assumes its role from (`source_profile`, followed a few links deep).
    pub async fn of_profile(profile: &str) -> Option<SsoLogin> {
        Self::in_profiles(&aws_profiles::load().await.ok()?, profile)
    }

    /// [`SsoLogin::of_profile`] in profiles already read.
    fn in_profiles(profiles: &ProfileSet, profile: &str) -> Option<SsoLogin> {
        let mut name = profile;
        let mut p = profiles.get_profile(name)?;
        for _ in 0..8 {
            let is_sso = p.get("sso_session").is_some() || p.get("sso_start_url").is_some();
            match p.get("source_profile").filter(|_| !is_sso) {
                Some(source) if source != name => {
                    name = source;
                    p = profiles.get_profile(name)?;
                }
                _ => break,
            }
        }
        let profile = name;
        match p.get("sso_session") {
            Some(session) => Some(SsoLogin {
                session: Some(session.to_owned()),
                start_url: profiles
                    .sso_session(session)
                    .and_then(|s| s.get("sso_start_url"))
                    .unwrap_or_default()
                    .to_owned(),
                profile: profile.to_owned(),
            }),
            None => p.get("sso_start_url").map(|url| SsoLogin {
                session: None,
                start_url: url.to_owned(),
                profile: profile.to_owned(),
            }),
        }
    }

    /// The login of the `[sso-session NAME]` section, if the AWS config file has it.
    pub fn of_session(profiles: &ProfileSet, name: &str) -> Option<SsoLogin> {
        Some(SsoLogin {
            session: Some(name.to_owned()),
            start_url: profiles.sso_session(name)?.get("sso_start_url")?.to_owned(),
            profile: name.to_owned(),
        })
    }

    /// The command that logs in again, as it is pasted into a shell (and as `fintors login`
    /// runs it).
    pub fn command(&self) -> String {
        let argv = crate::api::sso_login_argv(self.session.as_deref(), &self.profile);
        argv.iter()
            .map(|a| shell::word(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// How a user knows the session: `SSO session "corp"`, or by its start URL.
    pub fn name(&self) -> String {
        match &self.session {
            Some(session) => format!("SSO session \"{session}\""),
            None => format!("SSO session {}", self.start_url),
        }
    }

    /// Where `aws sso login` caches its token, as aws-config looks for it.
    pub fn cache_file(&self) -> Option<PathBuf> {
        use sha1::Digest;
        let key = self.session.as_deref().unwrap_or(&self.start_url);
        let digest: String = sha1::Sha1::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        Some(PathBuf::from(home).join(format!(".aws/sso/cache/{digest}.json")))
    }

    /// The cached token's state at `now`.
    pub fn token(&self, now: DateTime<Utc>) -> TokenState {
        token_in(self.cache_file().as_deref(), now)
    }

    /// What a failure to load the base credentials means when they come from this login: the
    /// session has to be logged in again if its token is gone or expired; `None` otherwise (the
    /// token is valid, so something else failed).
    pub fn explain(&self, now: DateTime<Utc>) -> Option<StsError> {
        self.explain_state(self.token(now))
    }

    fn explain_state(&self, state: TokenState) -> Option<StsError> {
        let state = match state {
            TokenState::Valid { .. } => return None,
            TokenState::Missing => "has no cached login on this machine".to_owned(),
            TokenState::Expired { since } => {
                format!("expired at {}", crate::model::time::format(since))
            }
        };
        Some(self.login_required(&state))
    }

    /// The one-line error that says to log in again, because this login `why`.
    pub fn login_required(&self, why: &str) -> StsError {
        StsError::SsoLoginRequired(format!(
            "the {} {why}: run `{}` (fintors picks it up)",
            self.name(),
            self.command()
        ))
    }
}

/// The state of the token cached in `file` at `now`; a file that cannot be read or parsed
/// counts as none, as it does for aws-config.
fn token_in(file: Option<&Path>, now: DateTime<Utc>) -> TokenState {
    let expires = file
        .and_then(|file| std::fs::read(file).ok())
        .and_then(|bytes| serde_json::from_slice::<CachedToken>(&bytes).ok())
        .and_then(|token| DateTime::parse_from_rfc3339(&token.expires_at).ok())
        .map(|t| t.with_timezone(&Utc));
    match expires {
        None => TokenState::Missing,
        Some(expires) if expires > now => TokenState::Valid { expires },
        Some(since) => TokenState::Expired { since },
    }
}

/// Every SSO login the daemon's credentials depend on: the base profile's, those of the roles'
/// source profiles (imported with `aws_profiles`), the sessions of permission-set roles and
/// `listed` (the sessions whose roles are discovered), one per token cache file.
pub async fn logins<'a>(
    base_profile: &str,
    roles: impl Iterator<Item = &'a crate::model::Role>,
    listed: impl Iterator<Item = &'a str>,
) -> Vec<SsoLogin> {
    let roles: Vec<&crate::model::Role> = roles.collect();
    let mut profiles = vec![base_profile.to_owned()];
    let mut sessions: Vec<&str> = roles
        .iter()
        .filter_map(|r| r.permission_set().map(|set| set.sso_session.as_str()))
        .chain(listed)
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    let mut sources: Vec<String> = roles
        .iter()
        .filter_map(|r| r.source_profile.clone())
        .collect();
    sources.sort();
    sources.dedup();
    profiles.extend(sources);
    // One read of the AWS config file for all of them.
    let Ok(files) = aws_profiles::load().await else {
        return Vec::new();
    };
    let of_profiles = profiles
        .iter()
        .filter_map(|profile| SsoLogin::in_profiles(&files, profile));
    let of_permission_sets = sessions
        .iter()
        .filter_map(|session| SsoLogin::of_session(&files, session));
    let mut logins: Vec<SsoLogin> = Vec::new();
    for login in of_profiles.chain(of_permission_sets) {
        if !logins.iter().any(|l| l.cache_file() == login.cache_file()) {
            logins.push(login);
        }
    }
    logins
}

/// Looks at `login`'s token cache every `POLL`; when it changes, retries every role that is
/// failing, so a fresh `aws sso login` is served within seconds, and tells `changed` (which
/// lists the session's roles again if it needs to). Also warns once when the session is 15
/// minutes from expiring. Time is the registry's clock.
pub async fn watch(
    login: SsoLogin,
    registry: Arc<Registry>,
    changed: Arc<dyn Fn(&SsoLogin) + Send + Sync>,
) {
    let Some(file) = login.cache_file() else {
        return;
    };
    let clock = registry.clock();
    let mut cache = CacheWatch::new(file, clock.now());
    loop {
        tokio::time::sleep(POLL).await;
        let seen = cache.look(clock.now());
        if seen.changed {
            tracing::info!("{} changed: retrying what failed", cache.file.display());
            registry.forget_login_warnings();
            registry.retry_pending().await;
            changed(&login);
        }
        if let Some(expires) = seen.expiring {
            tracing::warn!(
                "the {} expires at {} unless it is refreshed: run `{}` to extend it",
                login.name(),
                crate::model::time::format(expires),
                login.command()
            );
        }
    }
}

/// How long before the session ends the log warns.
const EXPIRY_WARNING: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// What [`watch`] knows of a token cache file between looks: when it last changed, and the
/// token's expiry as of then (read again only when the file changes: a look is one `stat`).
struct CacheWatch {
    file: PathBuf,
    modified: Option<SystemTime>,
    expires: Option<DateTime<Utc>>,
    warned_for: Option<DateTime<Utc>>,
}

/// What one look saw.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// The file changed since the last look (a login, a logout, a refresh).
    changed: bool,
    /// The session ends within [`EXPIRY_WARNING`] at this time, not said before.
    expiring: Option<DateTime<Utc>>,
}

impl CacheWatch {
    fn new(file: PathBuf, now: DateTime<Utc>) -> CacheWatch {
        CacheWatch {
            modified: modified(&file),
            expires: expiry(token_in(Some(&file), now)),
            file,
            warned_for: None,
        }
    }

    fn look(&mut self, now: DateTime<Utc>) -> Seen {
        let modified = modified(&self.file);
        let changed = modified != self.modified;
        if changed {
            self.modified = modified;
            self.expires = expiry(token_in(Some(&self.file), now));
        }
        let expiring = self.expires.filter(|&expires| {
            let left = expires - now;
            left > chrono::TimeDelta::zero()
                && left <= EXPIRY_WARNING
                && self.warned_for != Some(expires)
        });
        if expiring.is_some() {
            self.warned_for = expiring;
        }
        Seen { changed, expiring }
    }
}

fn modified(file: &Path) -> Option<SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

/// When a token that is still valid expires.
fn expiry(state: TokenState) -> Option<DateTime<Utc>> {
    match state {
        TokenState::Valid { expires } => Some(expires),
        TokenState::Missing | TokenState::Expired { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corp() -> SsoLogin {
        SsoLogin {
            session: Some("corp".into()),
            start_url: "https://corp.awsapps.com/start".into(),
            profile: "identity".into(),
        }
    }

    /// A token cache file with `expires_at`, stamped as written at `written` seconds past the
    /// epoch (so a rewrite within the file system's timestamp granularity still reads as one).
    fn write_token(file: &std::path::Path, expires_at: DateTime<Utc>, written: u64) {
        std::fs::write(
            file,
            format!(
                r#"{{"accessToken":"t","expiresAt":"{}"}}"#,
                expires_at.to_rfc3339()
            ),
        )
        .unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(written);
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_watch_sees_a_new_login_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let now = at("2026-12-02T10:00:00Z");
        let mut watch = CacheWatch::new(file.clone(), now);
        assert!(!watch.look(now).changed, "no file yet, none now");
        write_token(&file, at("2026-12-02T18:00:00Z"), 1);
        assert!(watch.look(now).changed);
        assert!(!watch.look(now).changed, "seen already");
        write_token(&file, at("2026-12-02T19:00:00Z"), 2);
        assert!(watch.look(now).changed, "logged in again");
        std::fs::remove_file(&file).unwrap();
        assert!(watch.look(now).changed, "logged out");
    }

    #[test]
    fn the_watch_warns_once_fifteen_minutes_before_the_session_ends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let ends = at("2026-12-02T18:00:00Z");
        write_token(&file, ends, 1);
        let mut watch = CacheWatch::new(file.clone(), at("2026-12-02T10:00:00Z"));
        assert_eq!(watch.look(at("2026-12-02T17:44:59Z")).expiring, None);
        assert_eq!(watch.look(at("2026-12-02T17:45:00Z")).expiring, Some(ends));
        assert_eq!(
            watch.look(at("2026-12-02T17:50:00Z")).expiring,
            None,
            "once"
        );
        assert_eq!(
            watch.look(at("2026-12-02T18:00:01Z")).expiring,
            None,
            "ended"
        );
    }

    #[test]
    fn a_refreshed_session_is_warned_about_again_near_its_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        write_token(&file, at("2026-12-02T18:00:00Z"), 1);
        let mut watch = CacheWatch::new(file.clone(), at("2026-12-02T10:00:00Z"));
        assert!(watch.look(at("2026-12-02T17:50:00Z")).expiring.is_some());
        let later = at("2026-12-03T02:00:00Z");
        write_token(&file, later, 2);
        let seen = watch.look(at("2026-12-02T17:51:00Z"));
        assert_eq!(
            seen,
            Seen {
                changed: true,
                expiring: None
            }
        );
        assert_eq!(watch.look(at("2026-12-03T01:50:00Z")).expiring, Some(later));
    }

    #[test]
    fn the_login_command_names_the_session_or_the_legacy_profile() {
        assert_eq!(corp().command(), "aws sso login --sso-session corp");
        let legacy = SsoLogin {
            session: None,
            ..corp()
        };
        assert_eq!(legacy.command(), "aws sso login --profile identity");
    }

    #[test]
    fn the_cache_file_is_named_as_aws_config_names_it() {
        // `python3 -c "import hashlib; print(hashlib.sha1(b'corp').hexdigest())"`
        let file = corp().cache_file().unwrap();
        assert!(
            file.ends_with(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
            "{file:?}"
        );
    }

    #[test]
    fn an_expired_session_says_since_when_and_what_to_run_in_one_short_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        std::fs::write(
            &file,
            r#"{"accessToken":"t","expiresAt":"2026-12-02T09:00:00Z"}"#,
        )
        .unwrap();
        let now = "2026-12-02T10:00:00Z".parse().unwrap();
        let state = token_in(Some(&file), now);
        let e = corp().explain_state(state).unwrap();
        assert_eq!(e.code(), "SsoLoginRequired");
        assert_eq!(
            e.message(),
            "the SSO session \"corp\" expired at 2026-12-02T09:00:00Z: run `aws sso login \
             --sso-session corp` (fintors picks it up)"
        );
        assert!(e.message().len() <= 200);
        let earlier = "2026-12-02T08:00:00Z".parse().unwrap();
        let valid = token_in(Some(&file), earlier);
        assert_eq!(
            corp().explain_state(valid),
            None,
            "a valid token: something else failed"
        );
        std::fs::remove_file(&file).unwrap();
        let missing = corp().explain_state(token_in(Some(&file), now)).unwrap();
        assert!(missing.message().contains("has no cached login"));
    }
}
