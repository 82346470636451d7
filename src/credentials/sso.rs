//! Base credentials from IAM Identity Center (SSO): knowing when the user has to log in again,
//! and noticing at once when they have.
//!
//! The login's token is cached in `~/.aws/sso/cache/<sha1>.json` (the SHA-1 of the
//! `sso_session` name, or of the start URL for a legacy profile), by `fintors login` or `aws
//! sso login` alike. aws-config reads it for base credentials; when it cannot, it says only
//! that the provider failed, in a private error type, so fintors reads the profile and the
//! cache itself: a base that fails to load while its cached token is missing or past its
//! `expiresAt` is an expired session, reported as [`StsError::SsoLoginRequired`] with the
//! command that fixes it. [`watch`] looks at the cache file every couple of seconds: it renews
//! the token ahead of its expiry, and when the file changes (a login, a logout), has every
//! failing role retried at once rather than after its backoff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::profile::ProfileSet;
use chrono::{DateTime, Utc};

use super::{Registry, StsError};
use crate::config::aws_profiles;

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

impl SsoLogin {
    /// The SSO login `profile` uses, if any, from the AWS config file: its own, or that of the
    /// profile it assumes its role from (`source_profile`, followed a few links deep).
    pub async fn of_profile(profile: &str) -> Option<SsoLogin> {
        Self::in_profiles(&aws_profiles::load().await.ok()?, profile)
    }

    /// [`SsoLogin::of_profile`] in profiles already read.
    pub fn in_profiles(profiles: &ProfileSet, profile: &str) -> Option<SsoLogin> {
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

    /// The command that logs in again: `fintors login`, which signs in to an `[sso-session]`
    /// and to a legacy profile's start URL itself.
    pub fn command(&self) -> String {
        "fintors login".to_owned()
    }

    /// The login as the sign-in and the renewal need it, from the AWS config file as it is now.
    pub async fn sso_session(&self) -> Result<crate::sso::Session, crate::sso::SsoError> {
        let files = aws_profiles::load()
            .await
            .map_err(crate::sso::SsoError::Config)?;
        self.sso_session_in(&files)
    }

    /// [`SsoLogin::sso_session`] in profiles already read.
    pub fn sso_session_in(
        &self,
        files: &ProfileSet,
    ) -> Result<crate::sso::Session, crate::sso::SsoError> {
        match &self.session {
            Some(name) => crate::sso::Session::of(files, name),
            None => crate::sso::Session::of_legacy(files, &self.profile),
        }
    }

    /// Whether the login is gone: its token file is not there (logged out, or never logged in).
    /// A file that cannot be read whole may be one another tool is rewriting: not gone.
    pub fn logged_out(&self) -> bool {
        self.cache_file().is_some_and(|file| {
            std::fs::symlink_metadata(file).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        })
    }

    /// How a user knows the session: `SSO session "corp"`, or by its start URL.
    pub fn name(&self) -> String {
        match &self.session {
            Some(session) => format!("SSO session \"{session}\""),
            None => format!("SSO session {}", self.start_url),
        }
    }

    /// Where the login's token is cached, as aws-config looks for it.
    pub fn cache_file(&self) -> Option<PathBuf> {
        crate::sso::token_file(self.session.as_deref().unwrap_or(&self.start_url))
    }

    /// The cached token's state at `now`.
    pub fn token(&self, now: DateTime<Utc>) -> TokenState {
        token_in(self.cache_file().as_deref(), now)
    }

    /// Until when the daemon can renew the login's access token by itself (the client
    /// registration's end), if its token carries a refresh token that still works at `now`.
    pub fn renews_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let token = crate::sso::CachedToken::read(&self.cache_file()?)?;
        token
            .refreshable(now)
            .then_some(token.registration_expires_at)
            .flatten()
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
            "the {} {why}: run `{}`",
            self.name(),
            self.command()
        ))
    }
}

/// The state of the token cached in `file` at `now`; a file that cannot be read or parsed
/// counts as none, as it does for aws-config.
fn token_in(file: Option<&Path>, now: DateTime<Utc>) -> TokenState {
    let expires = file
        .and_then(crate::sso::CachedToken::read)
        .map(|token| token.expires_at);
    match expires {
        None => TokenState::Missing,
        Some(expires) if expires > now => TokenState::Valid { expires },
        Some(since) => TokenState::Expired { since },
    }
}

/// The SSO login `role`'s credentials come from directly: its permission set's session, or the
/// login of `signing_profile`, the profile whose credentials assume it (see
/// `RoleAssumer::signing_profile`). `None` for a credential command, a chained role (its `via`
/// role's credentials sign it) and a profile without a login.
pub fn login_of_role(
    files: &ProfileSet,
    role: &crate::model::Role,
    signing_profile: Option<&str>,
) -> Option<SsoLogin> {
    match &role.source {
        _ if role.via.is_some() => None,
        crate::model::RoleSource::PermissionSet(set) => {
            SsoLogin::of_session(files, &set.sso_session)
        }
        crate::model::RoleSource::Process(_) => None,
        crate::model::RoleSource::Assume => SsoLogin::in_profiles(files, signing_profile?),
    }
}

/// Every SSO login the daemon's credentials depend on: the base profile's, those of `roles`
/// (see [`login_of_role`]; roles are imported with `aws_profiles`) and those of `listed` (the
/// sessions whose roles are discovered), one per token cache file, the base profile's first.
pub async fn logins<'a>(
    base_profile: &str,
    roles: impl Iterator<Item = &'a crate::model::Role>,
    listed: impl Iterator<Item = &'a str>,
) -> Vec<SsoLogin> {
    // One read of the AWS config file for all of them.
    let Ok(files) = aws_profiles::load().await else {
        return Vec::new();
    };
    let base = SsoLogin::in_profiles(&files, base_profile);
    let of_roles = roles.filter_map(|role| {
        let profile = role.source_profile.as_deref().unwrap_or(base_profile);
        login_of_role(&files, role, Some(profile))
    });
    let of_listed = listed.filter_map(|session| SsoLogin::of_session(&files, session));
    let mut logins: Vec<SsoLogin> = Vec::new();
    for login in base.into_iter().chain(of_roles).chain(of_listed) {
        if !logins.iter().any(|l| l.cache_file() == login.cache_file()) {
            logins.push(login);
        }
    }
    logins
}

/// How long before the access token expires the daemon renews it: before aws-config (5
/// minutes) and botocore (15) would, so that no SDK has to and the refresh token is spent
/// once.
const REFRESH_AHEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(20);

/// How long a refresh that failed for a passing reason (the network) waits to be tried again.
const REFRESH_RETRY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Looks after `login`'s token cache, every `POLL` (one `stat` each time):
/// - when the file changes (a login, a refresh, a logout), retries every role that is failing,
///   so a fresh login is served within seconds, and tells `changed` (which lists the session's
///   roles again if it needs to);
/// - renews a refreshable token 20 minutes ahead of its expiry and writes it back, so the
///   login lasts as long as Identity Center's session, with no user action;
/// - when a login is needed (the refresh token no longer works, or a token that cannot be
///   renewed expired), says so once through `tell`; and warns once 15 minutes before a session
///   that cannot be renewed ends.
///
/// Time is the registry's clock.
pub async fn watch(
    login: SsoLogin,
    registry: Arc<Registry>,
    changed: Arc<dyn Fn(&SsoLogin) + Send + Sync>,
    tell: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let Some(file) = login.cache_file() else {
        return;
    };
    let clock = registry.clock();
    let mut cache = CacheWatch::new(file);
    loop {
        tokio::time::sleep(POLL).await;
        let now = clock.now();
        let seen = cache.look(now);
        if seen.changed {
            tracing::info!("{} changed: retrying what failed", cache.file.display());
            registry.forget_login_warnings();
            registry.retry_pending().await;
            changed(&login);
        }
        if let Some(expires) = seen.expiring {
            tracing::warn!(
                "the {} ends at {}: run `{}` to extend it",
                login.name(),
                crate::model::time::format(expires),
                login.command()
            );
        }
        if seen.lapsed {
            tell(login.login_required("has expired").message());
        }
        if seen.refresh_due {
            // A task of its own: a watch stopped by a reload must not cut a renewal short
            // between Identity Center's answer and the file, losing the new refresh token.
            let renewal = tokio::spawn(renew(login.clone(), now));
            match renewal.await.expect("a renewal does not panic") {
                Ok(expires) => tracing::info!(
                    "renewed the access token of the {} until {}",
                    login.name(),
                    crate::model::time::format(expires)
                ),
                Err(crate::sso::SsoError::Ended(_)) => {
                    cache.ended();
                    tell(login.login_required("has ended").message());
                }
                Err(e) => {
                    tracing::warn!("cannot renew the {} now ({e}); trying again", login.name());
                    cache.retry_at(now + REFRESH_RETRY);
                }
            }
        }
    }
}

/// Renews the token of `login` unless, read again, it is no longer due (an SDK refreshed it
/// meanwhile): when it now expires.
async fn renew(login: SsoLogin, now: DateTime<Utc>) -> Result<DateTime<Utc>, crate::sso::SsoError> {
    let session = login.sso_session().await?;
    let due = |t: &crate::sso::CachedToken| t.expires_at - now <= REFRESH_AHEAD;
    Ok(crate::sso::refresh(&session, due).await?.expires_at)
}

/// How long before the session ends the log warns.
const EXPIRY_WARNING: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// What [`watch`] knows of a token cache file between looks: when it last changed, and the
/// token as of then (read again only when the file changes: a look is one `stat`).
struct CacheWatch {
    file: PathBuf,
    modified: Option<SystemTime>,
    token: Option<crate::sso::CachedToken>,
    warned_for: Option<DateTime<Utc>>,
    /// The expiry of the token whose lapse was told.
    told_for: Option<DateTime<Utc>>,
    /// No refresh before this time (a failed one waits; an ended session waits for a login).
    no_refresh_before: Option<DateTime<Utc>>,
    /// The refresh token of this file no longer works.
    ended: bool,
}

/// What one look saw.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// The file changed since the last look (a login, a logout, a refresh).
    changed: bool,
    /// The session ends within [`EXPIRY_WARNING`] at this time, not said before: the access
    /// token's expiry when it cannot be renewed, else the client registration's.
    expiring: Option<DateTime<Utc>>,
    /// The access token is due for renewal, and can be renewed.
    refresh_due: bool,
    /// A login is needed now (a token that cannot be renewed has expired), not said before.
    lapsed: bool,
}

impl CacheWatch {
    /// A watch of `file`; a login that had lapsed before is told at the first look.
    fn new(file: PathBuf) -> CacheWatch {
        CacheWatch {
            modified: modified(&file),
            token: crate::sso::CachedToken::read(&file),
            file,
            warned_for: None,
            told_for: None,
            no_refresh_before: None,
            ended: false,
        }
    }

    fn look(&mut self, now: DateTime<Utc>) -> Seen {
        let modified = modified(&self.file);
        let changed = modified != self.modified;
        if changed {
            self.modified = modified;
            self.token = crate::sso::CachedToken::read(&self.file);
            self.no_refresh_before = None;
            self.ended = false;
        }
        let renewable = self
            .token
            .as_ref()
            .is_some_and(|t| t.refreshable(now) && !self.ended);
        let ends = self.token.as_ref().and_then(|t| match renewable {
            true => t.registration_expires_at,
            false => Some(t.expires_at),
        });
        let expiring = ends.filter(|&ends| {
            let left = ends - now;
            left > chrono::TimeDelta::zero()
                && left <= EXPIRY_WARNING
                && self.warned_for != Some(ends)
        });
        if expiring.is_some() {
            self.warned_for = expiring;
        }
        let refresh_due = renewable
            && self.no_refresh_before.is_none_or(|t| now >= t)
            && self
                .token
                .as_ref()
                .is_some_and(|t| t.expires_at - now <= REFRESH_AHEAD);
        let lapsed_at = self
            .token
            .as_ref()
            .map(|t| t.expires_at)
            .filter(|&t| t <= now && !renewable && !self.ended);
        let lapsed = lapsed_at.is_some() && self.told_for != lapsed_at;
        if lapsed {
            self.told_for = lapsed_at;
        }
        Seen {
            changed,
            expiring,
            refresh_due,
            lapsed,
        }
    }

    /// The refresh token no longer works: no more refreshes until the file changes, and the
    /// lapse is told (by the caller) now, once.
    fn ended(&mut self) {
        self.ended = true;
        self.told_for = self.token.as_ref().map(|t| t.expires_at);
    }

    fn retry_at(&mut self, at: DateTime<Utc>) {
        self.no_refresh_before = Some(at);
    }
}

fn modified(file: &Path) -> Option<SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
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
        write_cache(file, expires_at, "", written);
    }

    /// [`write_token`] with the fields `more` (`"k":"v",...`) added.
    fn write_cache(file: &std::path::Path, expires_at: DateTime<Utc>, more: &str, written: u64) {
        std::fs::write(
            file,
            format!(
                r#"{{{more}"accessToken":"t","expiresAt":"{}"}}"#,
                crate::model::time::format(expires_at)
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
        let mut watch = CacheWatch::new(file.clone());
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
        let mut watch = CacheWatch::new(file.clone());
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
        let mut watch = CacheWatch::new(file.clone());
        assert!(watch.look(at("2026-12-02T17:50:00Z")).expiring.is_some());
        let later = at("2026-12-03T02:00:00Z");
        write_token(&file, later, 2);
        let seen = watch.look(at("2026-12-02T17:51:00Z"));
        assert_eq!(
            seen,
            Seen {
                changed: true,
                expiring: None,
                refresh_due: false,
                lapsed: false,
            }
        );
        assert_eq!(watch.look(at("2026-12-03T01:50:00Z")).expiring, Some(later));
    }

    /// A token cache file as fintors's own sign-in leaves it: renewable until 2027.
    fn write_renewable(file: &std::path::Path, expires_at: DateTime<Utc>, written: u64) {
        let more = r#""clientId":"c","clientSecret":"s","registrationExpiresAt":"2027-03-01T00:00:00Z","refreshToken":"r","#;
        write_cache(file, expires_at, more, written);
    }

    #[test]
    fn a_renewable_token_is_due_twenty_minutes_before_it_expires_and_never_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        write_renewable(&file, at("2026-12-02T18:00:00Z"), 1);
        let mut watch = CacheWatch::new(file.clone());
        assert!(!watch.look(at("2026-12-02T17:39:59Z")).refresh_due);
        let due = watch.look(at("2026-12-02T17:40:00Z"));
        assert!(due.refresh_due && due.expiring.is_none(), "{due:?}");
        let late = watch.look(at("2026-12-02T18:30:00Z"));
        assert!(
            late.refresh_due && !late.lapsed,
            "asleep past expiry: renew, not lapse"
        );
    }

    #[test]
    fn a_failed_renewal_waits_and_an_ended_session_is_told_once_until_a_new_login() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        write_renewable(&file, at("2026-12-02T18:00:00Z"), 1);
        let mut watch = CacheWatch::new(file.clone());
        let now = at("2026-12-02T17:50:00Z");
        assert!(watch.look(now).refresh_due);
        watch.retry_at(now + REFRESH_RETRY);
        assert!(!watch.look(now).refresh_due, "the network failed: wait");
        assert!(watch.look(now + REFRESH_RETRY).refresh_due);
        watch.ended();
        let after = watch.look(at("2026-12-02T18:10:00Z"));
        assert!(
            !after.refresh_due && !after.lapsed,
            "told by the caller already"
        );
        write_renewable(&file, at("2026-12-03T02:00:00Z"), 2);
        let relogged = watch.look(at("2026-12-02T18:11:00Z"));
        assert!(relogged.changed && !relogged.refresh_due && !relogged.lapsed);
    }

    #[test]
    fn a_token_that_cannot_be_renewed_lapses_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        write_token(&file, at("2026-12-02T18:00:00Z"), 1);
        let mut watch = CacheWatch::new(file.clone());
        assert!(!watch.look(at("2026-12-02T17:59:59Z")).lapsed);
        let lapsed = watch.look(at("2026-12-02T18:00:00Z"));
        assert!(lapsed.lapsed && !lapsed.refresh_due);
        assert!(!watch.look(at("2026-12-02T18:00:02Z")).lapsed, "once");
    }

    #[test]
    fn the_login_command_is_fintors_login_for_a_session_and_a_legacy_profile_alike() {
        assert_eq!(corp().command(), "fintors login");
        let legacy = SsoLogin {
            session: None,
            ..corp()
        };
        assert_eq!(legacy.command(), "fintors login");
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
            "the SSO session \"corp\" expired at 2026-12-02T09:00:00Z: run `fintors login`"
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
