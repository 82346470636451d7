//! `fintors login`: logs in again, in this terminal, and has the daemon use the new login at
//! once. It runs `credentials.login_process` from the client's own configuration file (through
//! `sh -c`), else `aws sso login` for each IAM Identity Center session the daemon reports as
//! needing it (the base profile's, or an imported role's source profile's; all of them, to
//! extend them, when none has expired), as plain arguments. Nothing the daemon answers is ever
//! given to a shell: whoever listens on the daemon's port must not be able to run commands as
//! the user. After the login succeeds, `POST /fintors/retry` has every failing role asked for
//! again now rather than after its backoff, and the answer says whether that fixed them.

use chrono::{DateTime, Utc};

use super::args::ClientArgs;
use super::client::Endpoint;
use super::daemon::{CommandError, Output, post_ok, report};
use super::status::{sso_line, stamp};
use crate::api::{SsoReport, StatusReport, paths, sso_login_argv};
use crate::config::{Config, expand_tilde};
use crate::model::shell;

/// `fintors login`
pub async fn login(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let before = report(&endpoint).await?;
    let login_process = Config::load(&expand_tilde(&args.config))
        .ok()
        .and_then(|c| c.login_process);
    let commands: Vec<Vec<String>> = match login_process {
        Some(process) => vec![vec!["sh".into(), "-c".into(), process]],
        None => sso_logins(&before.sso, Utc::now())?,
    };
    if commands.is_empty() {
        return Err(CommandError::NothingToLogIn);
    }
    for argv in &commands {
        run(argv)?;
    }
    let after: StatusReport = post_ok(&endpoint, paths::RETRY).await?;
    outcome(&before, &after)
}

/// `aws sso login` for each session that needs it (expired, or no login cached here), else for
/// all of them.
fn sso_logins(
    sessions: &[SsoReport],
    now: DateTime<Utc>,
) -> Result<Vec<Vec<String>>, CommandError> {
    let needed: Vec<&SsoReport> = sessions
        .iter()
        .filter(|s| s.expires.is_none_or(|t| t <= now))
        .collect();
    let chosen = if needed.is_empty() {
        sessions.iter().collect()
    } else {
        needed
    };
    let mut commands = Vec::new();
    for s in chosen {
        let name = s.sso_session.as_deref().unwrap_or(&s.profile);
        // One argument each, so no name can smuggle in a command; none may pass for an option.
        if name.is_empty() || name.starts_with('-') {
            return Err(CommandError::BadSessionName(name.to_owned()));
        }
        let argv = sso_login_argv(s.sso_session.as_deref(), &s.profile);
        if !commands.contains(&argv) {
            commands.push(argv);
        }
    }
    Ok(commands)
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
        let argv = |name: &str| sso_login_argv(Some(name), "identity");
        assert_eq!(
            sso_logins(&[corp.clone(), other.clone()], now()).unwrap(),
            [argv("corp")],
            "only corp has no login"
        );
        let corp = session("corp", Some("2026-12-02T18:00:00Z"));
        assert_eq!(
            sso_logins(&[corp, other], now()).unwrap(),
            [argv("corp"), argv("other")],
            "all valid: extend them all"
        );
        assert!(sso_logins(&[], now()).unwrap().is_empty());
    }

    #[test]
    fn a_session_name_that_passes_for_an_option_is_refused() {
        let evil = session("--endpoint-url=http://evil", None);
        assert!(sso_logins(&[evil], now()).is_err());
    }
}
