//! `fintors login`: logs in again, in this terminal, and has the daemon use the new login at
//! once. It runs `credentials.login_process` from the client's own configuration file (through
//! `sh -c`), else signs in to each IAM Identity Center session the daemon reports as needing it
//! (the base profile's, a role's source profile's, a permission set's; all of them, to extend
//! them, when none has expired). An `[sso-session]`, and a legacy profile's start URL
//! (`sso_start_url` in the profile), are signed in to by fintors itself ([`sso`]: the browser
//! with PKCE, or the device code with `--device` or where no browser can open), with the
//! settings of the user's own `~/.aws/config`; only the session's or the profile's name comes
//! from the daemon, and no AWS CLI is needed. Nothing the daemon answers is ever given to a
//! shell or run: whoever
//! listens on the daemon's port must not be able to run commands as the user. After the login
//! succeeds, `POST /fintors/retry` has every failing role asked for again now rather than after
//! its backoff, and the answer says whether that fixed them.
//!
//! [`sso`]: crate::sso

use chrono::{DateTime, Utc};

use super::args::ClientArgs;
use super::browser::{opener, start};
use super::client::Endpoint;
use super::daemon::{CommandError, Output, post_ok, report};
use super::status::{sso_line, stamp};
use crate::api::{SsoReport, StatusReport, paths};
use crate::config::{Config, expand_tilde};
use crate::model::shell;
use crate::sso;

/// How a login is made.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Signing in, by fintors: to the `[sso-session NAME]`, or (`None`) to the start URL of
    /// the legacy profile `profile`.
    SignIn {
        sso_session: Option<String>,
        profile: String,
    },
    /// Running `credentials.login_process`.
    Run(Vec<String>),
}

/// `fintors login [--device]`
pub async fn login(args: &ClientArgs, device: bool) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let before = report(&endpoint).await?;
    let login_process = Config::load(&expand_tilde(&args.config))
        .ok()
        .and_then(|c| c.login_process);
    let steps: Vec<Step> = match login_process {
        Some(process) => vec![Step::Run(vec!["sh".into(), "-c".into(), process])],
        None => sso_logins(&before.sso, Utc::now())?,
    };
    if steps.is_empty() {
        return Err(CommandError::NothingToLogIn);
    }
    for step in &steps {
        match step {
            Step::SignIn {
                sso_session,
                profile,
            } => sign_in(sso_session.as_deref(), profile, device).await?,
            Step::Run(argv) => run(argv)?,
        }
    }
    let after: StatusReport = post_ok(&endpoint, paths::RETRY).await?;
    outcome(&before, &after)
}

/// The login of the `[sso-session NAME]`, else of the legacy `profile`, read from this user's
/// own AWS config file, and how the user knows it.
async fn load(
    sso_session: Option<&str>,
    profile: &str,
) -> Result<(sso::Session, String), CommandError> {
    Ok(match sso_session {
        Some(name) => (
            sso::Session::load(name).await?,
            format!("SSO session \"{name}\""),
        ),
        None => (
            sso::Session::load_legacy(profile).await?,
            format!("SSO login of profile {profile}"),
        ),
    })
}

/// Signs in to the `[sso-session NAME]` (or the legacy `profile`'s start URL) of this user's
/// AWS config file: in the browser where one can open (and `device` is not asked for), else
/// with the device code.
async fn sign_in(
    sso_session: Option<&str>,
    profile: &str,
    device: bool,
) -> Result<(), CommandError> {
    let (session, name) = load(sso_session, profile).await?;
    let opener = opener().filter(|_| !device);
    // Not waited for: the page it loads is served by this process.
    let open = |link: &str| opener.as_deref().is_some_and(|o| start(o, link));
    let say = |text: &str| eprintln!("fintors: {text}");
    let how = match opener {
        Some(_) => sso::Login::Browser(&open),
        None => sso::Login::Device,
    };
    let token = sso::sign_in(&session, how, &say).await?;
    let lasts = if token.refresh_token.is_some() {
        "it renews itself until Identity Center ends the session".to_owned()
    } else {
        format!(
            "it expires at {} (not renewable: add sso:account:access to its \
             sso_registration_scopes)",
            stamp(token.expires_at)
        )
    };
    eprintln!("fintors: signed in to the {name}; {lasts}");
    Ok(())
}

/// A login for each session that needs it (expired, or no login cached here), else for all of
/// them.
fn sso_logins(sessions: &[SsoReport], now: DateTime<Utc>) -> Result<Vec<Step>, CommandError> {
    let needed: Vec<&SsoReport> = sessions
        .iter()
        .filter(|s| s.expires.is_none_or(|t| t <= now))
        .collect();
    let chosen = if needed.is_empty() {
        sessions.iter().collect()
    } else {
        needed
    };
    let mut steps = Vec::new();
    for s in chosen {
        let name = s.sso_session.as_deref().unwrap_or(&s.profile);
        // One argument each, so no name can smuggle in a command; none may pass for an option.
        if name.is_empty() || name.starts_with('-') {
            return Err(CommandError::BadSessionName(name.to_owned()));
        }
        let step = Step::SignIn {
            sso_session: s.sso_session.clone(),
            profile: s.profile.clone(),
        };
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    Ok(steps)
}

/// `fintors logout`: out of every IAM Identity Center login the daemon reports (the portal's
/// `Logout`, the cached login removed); then the daemon is told, and stops serving what they
/// gave, even if one of them could not be ended (the others were).
pub async fn logout(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let before = report(&endpoint).await?;
    let mut logins: Vec<(Option<&str>, &str)> = before
        .sso
        .iter()
        .map(|s| (s.sso_session.as_deref(), s.profile.as_str()))
        .collect();
    logins.dedup();
    if logins.is_empty() {
        return Err(CommandError::NothingToLogIn);
    }
    let mut out = String::new();
    let mut failed = None;
    for (sso_session, profile) in logins {
        match log_out(sso_session, profile).await {
            Ok(said) => out.push_str(&said),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    let _: StatusReport = post_ok(&endpoint, paths::RETRY).await?;
    match failed {
        Some(e) => {
            print!("{out}");
            Err(e)
        }
        None => Ok(out),
    }
}

/// Ends one login: the line that says how it went.
async fn log_out(sso_session: Option<&str>, profile: &str) -> Result<String, CommandError> {
    let (session, name) = load(sso_session, profile).await?;
    let said = if sso::logout(&session).await? {
        "logged out"
    } else {
        "was not logged in"
    };
    Ok(format!("{name}: {said}\n"))
}

/// Runs `argv` in this terminal; an error if it cannot be run or fails.
fn run(argv: &[String]) -> Result<(), CommandError> {
    let shown = match argv {
        [sh, c, process] if sh == "sh" && c == "-c" => process.clone(),
        _ => argv
            .iter()
            .map(|a| shell::word(a))
            .collect::<Vec<_>>()
            .join(" "),
    };
    eprintln!("fintors: running `{shown}`");
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .map_err(|why| CommandError::Exec {
            program: argv[0].clone(),
            why,
        })?;
    if !status.success() {
        return Err(CommandError::LoginFailed {
            command: shown,
            status,
        });
    }
    Ok(())
}

/// What the login changed: the SSO session's expiry, and each role that was failing or is
/// active, served now or still failing (then the exit status is 1).
fn outcome(before: &StatusReport, after: &StatusReport) -> Output {
    let mut out = String::new();
    for sso in &after.sso {
        out.push_str(&sso_line(sso, Utc::now()));
    }
    let mut failing = Vec::new();
    for role in &after.roles {
        let failed_before = before
            .roles
            .iter()
            .any(|r| r.alias == role.alias && r.last_error.is_some());
        if !(role.active || failed_before) {
            continue;
        }
        match (&role.credentials, &role.last_error) {
            (Some(c), _) => out.push_str(&format!(
                "{}: credentials until {}\n",
                role.alias,
                stamp(c.expiration)
            )),
            (None, Some(e)) => failing.push(format!("{}: {}: {}", role.alias, e.code, e.message)),
            (None, None) => failing.push(format!("{}: no credentials yet", role.alias)),
        }
    }
    if failing.is_empty() {
        return Ok(out);
    }
    print!("{out}");
    Err(CommandError::StillFailing(failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str, expires: Option<&str>) -> SsoReport {
        SsoReport {
            session: format!("SSO session \"{name}\""),
            sso_session: Some(name.into()),
            profile: "identity".into(),
            expires: expires.map(|t| t.parse().unwrap()),
            renews_until: None,
            login_command: String::new(),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-02T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_sessions_that_need_a_login_get_one_else_all_are_extended() {
        let corp = session("corp", None);
        let other = session("other", Some("2026-12-02T18:00:00Z"));
        let sign_in = |name: &str| Step::SignIn {
            sso_session: Some(name.into()),
            profile: "identity".into(),
        };
        assert_eq!(
            sso_logins(&[corp.clone(), other.clone()], now()).unwrap(),
            [sign_in("corp")],
            "only corp has no login"
        );
        let corp = session("corp", Some("2026-12-02T18:00:00Z"));
        assert_eq!(
            sso_logins(&[corp, other], now()).unwrap(),
            [sign_in("corp"), sign_in("other")],
            "all valid: extend them all"
        );
        assert!(sso_logins(&[], now()).unwrap().is_empty());
    }

    #[test]
    fn a_legacy_profile_is_signed_in_to_by_fintors_too() {
        let legacy = SsoReport {
            sso_session: None,
            ..session("ignored", None)
        };
        assert_eq!(
            sso_logins(&[legacy], now()).unwrap(),
            [Step::SignIn {
                sso_session: None,
                profile: "identity".into()
            }]
        );
    }

    #[test]
    fn a_session_name_that_passes_for_an_option_is_refused() {
        let evil = session("--endpoint-url=http://evil", None);
        assert!(sso_logins(&[evil], now()).is_err());
    }
}
