//! The sign-ins, the refresh and the logout, each ending in the token file the AWS CLI would
//! have written (see `cache.rs`).
//!
//! One sign-in at a time per session on this machine: a second `fintors login` waits on the
//! first (a lock file beside the token) and then uses the login it made instead of starting
//! its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use super::cache::{CachedToken, Registration, no_home, token_file};
use super::callback::Callback;
use super::oidc::{DeviceAuthorization, Grant, Issued, Oidc, Refusal};
use super::pkce::{self, Pkce};
use super::{Session, SsoError};
use crate::model::Secret;

/// How long a sign-in may take, as for the AWS CLI.
const SIGN_IN_LIMIT: Duration = Duration::from_secs(600);

/// What opens a link in the user's browser: `true` if it did.
pub type Browser<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// How the user signs in.
pub enum Login<'a> {
    /// The authorization code grant with PKCE, in this machine's browser.
    Browser(Browser<'a>),
    /// The device code: a URL and a code to enter on any device.
    Device,
}

/// Signs the user in to `session` and writes the token file; `say` tells the user what to do
/// (one line at a time, for the terminal). Waits for another sign-in of the same session under
/// way on this machine, and uses its login if it made one.
pub async fn sign_in(
    session: &Session,
    how: Login<'_>,
    say: &(dyn Fn(&str) + Sync),
) -> Result<CachedToken, SsoError> {
    let file = token_file(session.token_key()).ok_or_else(no_home)?;
    let before = modified(&file);
    let (_lock, waited) = one_at_a_time(&file, say).await?;
    if waited
        && modified(&file) != before
        && let Some(token) = CachedToken::read(&file).filter(|t| t.expires_at > Utc::now())
    {
        say(&format!(
            "another sign-in to the SSO session \"{}\" finished meanwhile: using it",
            session.name
        ));
        return Ok(token);
    }
    let oidc = Oidc::new(&session.region).await;
    let browser = matches!(how, Login::Browser(_));
    let registration = registration(&oidc, session, browser).await?;
    let issued = match how {
        Login::Browser(open) => by_browser(&oidc, session, &registration, open, say).await?,
        Login::Device => by_device(&oidc, session, &registration, say).await?,
    };
    let token = CachedToken {
        start_url: Some(session.start_url.clone()),
        region: Some(session.region.clone()),
        access_token: issued.access_token,
        expires_at: issued.expires_at,
        client_id: Some(registration.client_id.clone()),
        client_secret: Some(registration.client_secret.clone()),
        registration_expires_at: Some(registration.expires_at),
        refresh_token: issued.refresh_token,
    };
    token.write(&file)?;
    Ok(token)
}

/// The cached registration if it serves this sign-in, else a new one, cached.
async fn registration(
    oidc: &Oidc,
    session: &Session,
    browser: bool,
) -> Result<Registration, SsoError> {
    let now = Utc::now();
    if let Some(cached) =
        Registration::read(session).filter(|r| r.serves(&session.scopes(), now, browser))
    {
        return Ok(cached);
    }
    let registration = oidc.register(session, browser, now).await?;
    registration.write(session)?;
    Ok(registration)
}

async fn by_browser(
    oidc: &Oidc,
    session: &Session,
    registration: &Registration,
    open: Browser<'_>,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Issued, SsoError> {
    // Listening before the browser opens: its return cannot find the port closed.
    let callback = Callback::bind().await?;
    let pkce = Pkce::new();
    let redirect_uri = callback.redirect_uri();
    let authorize = pkce::authorize_url(
        oidc.base_url(),
        &registration.client_id,
        &redirect_uri,
        &pkce,
        &session.scopes(),
    );
    let link = callback.start_link();
    if open(&link) {
        say(&format!(
            "signing in to the SSO session \"{}\" in the browser (waiting up to {} minutes)",
            session.name,
            SIGN_IN_LIMIT.as_secs() / 60
        ));
    } else {
        say(&format!(
            "open {link} in a browser on this machine to sign in to the SSO session \"{}\"",
            session.name
        ));
        say("(or run `fintors login --device` to sign in on any other device)");
    }
    let code = callback.wait(authorize, &pkce.state, SIGN_IN_LIMIT).await?;
    let grant = Grant::Code {
        code: code.expose(),
        verifier: &pkce.verifier,
        redirect_uri: &redirect_uri,
    };
    oidc.create_token(registration, grant, Utc::now())
        .await
        .map_err(|refusal| signing_in_failed(refusal, "CreateToken"))
}

async fn by_device(
    oidc: &Oidc,
    session: &Session,
    registration: &Registration,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Issued, SsoError> {
    let device = oidc
        .start_device(registration, &session.start_url, Utc::now())
        .await?;
    say(&device_prompt(session, &device));
    let started = Utc::now();
    let mut interval = device.interval;
    loop {
        tokio::time::sleep(interval).await;
        let now = Utc::now();
        match oidc
            .create_token(registration, Grant::Device(&device.device_code), now)
            .await
        {
            Ok(issued) => return Ok(issued),
            Err(Refusal::Pending) => {}
            Err(Refusal::SlowDown) => interval += Duration::from_secs(5),
            Err(refusal) => return Err(signing_in_failed(refusal, "CreateToken")),
        }
        if now >= device.expires_at {
            return Err(SsoError::TimedOut(
                (device.expires_at - started).num_minutes().max(1) as u64,
            ));
        }
    }
}

/// What the user is told to do for a device sign-in.
fn device_prompt(session: &Session, device: &DeviceAuthorization) -> String {
    let mut text = format!(
        "to sign in to the SSO session \"{}\", open {} on any device and enter the code {}",
        session.name, device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        text.push_str(&format!("\n(or open {complete}, which fills the code in)"));
    }
    text
}

/// A sign-in's CreateToken that gave no token.
fn signing_in_failed(refusal: Refusal, operation: &'static str) -> SsoError {
    match refusal {
        Refusal::Denied(why) => SsoError::Denied(why),
        Refusal::Expired => SsoError::TimedOut(SIGN_IN_LIMIT.as_secs() / 60),
        Refusal::InvalidGrant(message) => SsoError::Refused {
            operation,
            code: "InvalidGrantException".into(),
            message,
        },
        Refusal::Pending | Refusal::SlowDown => SsoError::Refused {
            operation,
            code: "AuthorizationPendingException".into(),
            message: "the sign-in was not approved".into(),
        },
        Refusal::ClientRefused { code, said } => SsoError::Refused {
            operation,
            code: code.into(),
            message: said,
        },
        Refusal::Failed(e) => e,
    }
}

/// Renews the token of `session` with its refresh token, if `due` says the token cached now
/// needs it, and writes it back: the token then cached, or [`SsoError::Ended`] when the refresh
/// token no longer works (only a sign-in helps then). One refresh at a time per login, in this
/// process (a mutex per token file) and on this machine (the sign-in lock file), and the cache is
/// read again under both, so a refresh someone else just made is used, not repeated with a
/// refresh token already spent. A refresh token Identity Center refused is not sent again: the
/// answer stays [`SsoError::Ended`] at no cost until the login changes. While another process
/// holds the lock file (a `fintors login` holds it for minutes) the answer is
/// [`SsoError::Busy`] at once: every caller behind this process's lock would wait otherwise.
pub async fn refresh(
    session: &Session,
    due: impl Fn(&CachedToken) -> bool,
) -> Result<CachedToken, SsoError> {
    let file = token_file(session.token_key()).ok_or_else(no_home)?;
    let writer = one_writer(&file);
    let _one = writer.lock().await;
    let token = read_for_refresh(session, &file)?;
    if !due(&token) {
        return Ok(token);
    }
    let ended = || SsoError::Ended(session.name.clone());
    renewal(&token, Utc::now()).ok_or_else(ended)?;
    let Some(_machine_wide) = hold_lock(&file, Duration::ZERO).await? else {
        return Err(SsoError::Busy(session.name.clone()));
    };
    let token = read_for_refresh(session, &file)?;
    if !due(&token) {
        return Ok(token);
    }
    let now = Utc::now();
    let (registration, refresh_token) = renewal(&token, now).ok_or_else(ended)?;
    let oidc = Oidc::new(&session.region).await;
    let issued = oidc
        .create_token(&registration, Grant::Refresh(refresh_token), now)
        .await
        .map_err(|refusal| match refusal {
            Refusal::InvalidGrant(_)
            | Refusal::Expired
            | Refusal::Denied(_)
            | Refusal::ClientRefused { .. } => ended(),
            refusal => signing_in_failed(refusal, "CreateToken"),
        });
    let issued = match issued {
        // Another tool (an SDK, the AWS CLI) may have spent this refresh token a moment ago
        // and written what it got: that login is good.
        Err(SsoError::Ended(_)) => match CachedToken::read(&file) {
            Some(now_cached) if now_cached.refresh_token != token.refresh_token => {
                return Ok(now_cached);
            }
            _ => {
                refused::add(refresh_token);
                return Err(ended());
            }
        },
        other => other?,
    };
    let renewed = CachedToken {
        access_token: issued.access_token,
        expires_at: issued.expires_at,
        refresh_token: issued.refresh_token.or_else(|| token.refresh_token.clone()),
        start_url: token.start_url.clone().or(Some(session.start_url.clone())),
        region: token.region.clone().or(Some(session.region.clone())),
        ..token.clone()
    };
    renewed.write(&file)?;
    Ok(renewed)
}

/// What renews `token` at `now`: its client registration and refresh token, unless one is
/// missing, the registration has expired or Identity Center refused the refresh token before.
fn renewal(token: &CachedToken, now: chrono::DateTime<Utc>) -> Option<(Registration, &Secret)> {
    let refresh_token = token.refresh_token.as_ref()?;
    let registration = Registration {
        client_id: token.client_id.clone()?,
        client_secret: token.client_secret.clone()?,
        expires_at: token.registration_expires_at.filter(|&t| t > now)?,
        scopes: None,
        grant_types: None,
    };
    (!refused::holds(refresh_token)).then_some((registration, refresh_token))
}

/// The token in `file` for a refresh: [`SsoError::NoLogin`] if there is none; a file that is
/// there but cannot be read whole is "try again" (another tool may be rewriting it in place),
/// not a session's end.
fn read_for_refresh(session: &Session, file: &Path) -> Result<CachedToken, SsoError> {
    if let Some(token) = CachedToken::read(file) {
        return Ok(token);
    }
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(SsoError::NoLogin(session.name.clone()))
        }
        _ => Err(SsoError::File {
            action: "read",
            path: file.to_owned(),
            source: std::io::Error::other("no whole token in it"),
        }),
    }
}

/// How much life a token handed to a caller keeps: more than aws-config's 5 minutes, so that
/// the SDK reading the same file behind fintors (for a base profile) never refreshes it itself.
const USE_AHEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(6);

/// The least life a cached token must have to be used when it could not be renewed.
const STILL_USABLE: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// An access token of `session` to call the portal with now: the cached one, renewed first if
/// it has under 6 minutes left and can be. [`SsoError::NoLogin`] or [`SsoError::Ended`]
/// when only a sign-in helps. A renewal that cannot be made now (the network, a sign-in
/// under way) leaves the cached token in use while it has a minute left.
pub async fn usable_token(session: &Session) -> Result<CachedToken, SsoError> {
    let now = Utc::now();
    let due = |t: &CachedToken| t.expires_at - now <= USE_AHEAD && t.refreshable(now);
    match refresh(session, due).await {
        Ok(token) if token.expires_at > now => Ok(token),
        Ok(_) => Err(SsoError::Ended(session.name.clone())),
        Err(e @ (SsoError::NoLogin(_) | SsoError::Ended(_))) => Err(e),
        Err(e) => token_file(session.token_key())
            .and_then(|file| CachedToken::read(&file))
            .filter(|t| t.expires_at - now > STILL_USABLE)
            .ok_or(e),
    }
}

/// The refresh tokens Identity Center refused in this process. Every role of a session whose
/// login ended asks for a token at each of its retries; the answer is known without asking.
mod refused {
    use std::sync::Mutex;

    use crate::model::Secret;

    /// Enough for every session a user has; the oldest go first.
    const KEPT: usize = 32;

    static REFUSED: Mutex<Vec<Secret>> = Mutex::new(Vec::new());

    pub fn holds(token: &Secret) -> bool {
        REFUSED.lock().expect("poisoned").contains(token)
    }

    pub fn add(token: &Secret) {
        let mut refused = REFUSED.lock().expect("poisoned");
        if refused.len() == KEPT {
            refused.remove(0);
        }
        refused.push(token.clone());
    }
}

/// The lock every refresh (and logout) of the token in `file` takes in this process: the
/// watch's renewal, and the portal's and the base credentials' `usable_token`. Two refreshes at
/// once would spend one refresh token twice.
fn one_writer(file: &Path) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static WRITERS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    WRITERS
        .get_or_init(Mutex::default)
        .lock()
        .expect("poisoned")
        .entry(file.to_owned())
        .or_default()
        .clone()
}

/// Signs `session` out: the portal's `Logout` for a token still valid (the session ends on
/// Identity Center's side too), then the token file removed. The client registration stays, as
/// `aws sso logout` leaves it. `false` if there was no login to end.
pub async fn logout(session: &Session) -> Result<bool, SsoError> {
    let file = token_file(session.token_key()).ok_or_else(no_home)?;
    // Under the refresh's locks: a renewal under way must not write the login back.
    let writer = one_writer(&file);
    let _one = writer.lock().await;
    let Some(_machine_wide) = hold_lock(&file, LOCK_PATIENCE).await? else {
        return Err(SsoError::Busy(session.name.clone()));
    };
    let Some(token) = CachedToken::read(&file) else {
        return Ok(false);
    };
    if token.expires_at > Utc::now() {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .no_credentials()
            .region(aws_config::Region::new(session.region.clone()))
            .load()
            .await;
        let said = aws_sdk_sso::Client::new(&sdk)
            .logout()
            .access_token(token.access_token.expose())
            .send()
            .await;
        if let Err(e) = said {
            tracing::debug!("the portal's Logout failed (the login is removed anyway): {e:?}");
        }
    }
    std::fs::remove_file(&file).map_err(|source| SsoError::File {
        action: "remove",
        path: file,
        source,
    })?;
    Ok(true)
}

fn modified(file: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

/// How long a logout waits for a renewal of the same session to finish.
const LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// How long a sign-in waits for the lock quietly (a renewal holds it for a moment) before it
/// says that another sign-in is under way.
const QUIET_WAIT: Duration = Duration::from_secs(2);

/// The session's lock file on this machine, `<token file>.lock` beside it: held by a sign-in
/// from start to end, and by a refresh or a logout while it rewrites the token.
fn lock_file(file: &Path) -> PathBuf {
    let mut lock = file.as_os_str().to_owned();
    lock.push(".lock");
    PathBuf::from(lock)
}

/// Takes the session's lock file: at once if it is free, else if it is within `patience`
/// (`Duration::MAX`: for as long as it takes), looking again every [`LOCK_POLL`] (no thread
/// is left blocked on it when the caller gives up). `None`: still held by another.
async fn hold_lock(file: &Path, patience: Duration) -> Result<Option<std::fs::File>, SsoError> {
    let lock = lock_file(file);
    let failed = |source| SsoError::File {
        action: "lock",
        path: lock.clone(),
        source,
    };
    if let Some(dir) = lock.parent() {
        crate::platform::files::create_private_dir(dir).map_err(failed)?;
    }
    let until = tokio::time::Instant::now().checked_add(patience);
    loop {
        if let Some(held) = crate::platform::files::lock_exclusive(&lock, false).map_err(failed)? {
            return Ok(Some(held));
        }
        if until.is_some_and(|until| tokio::time::Instant::now() + LOCK_POLL > until) {
            return Ok(None);
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// How often a lock that is held is tried again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Holds the session's sign-in lock until dropped, waiting for another holder first and
/// saying so: whether it waited for another sign-in (which may have logged in meanwhile).
async fn one_at_a_time(
    file: &Path,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(std::fs::File, bool), SsoError> {
    if let Some(held) = hold_lock(file, QUIET_WAIT).await? {
        return Ok((held, false));
    }
    say("another `fintors login` of this SSO session is under way: waiting for it");
    let held = hold_lock(file, Duration::MAX).await?;
    Ok((held.expect("waited for as long as it takes"), true))
}
