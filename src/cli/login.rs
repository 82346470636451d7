//! `fintors login`: logs the base identity in again, in this terminal, and has the daemon use
//! the new login at once. The command is the daemon's to say (its status report's
//! `login_command`: `credentials.login_process`, else `aws sso login` for each IAM Identity
//! Center session that needs it, the base profile's or an imported role's source profile's),
//! since the daemon knows which profiles it actually reads. After the
//! command succeeds, `POST /fintors/retry` has every failing role asked for again now rather
//! than after its backoff, and the answer says whether that fixed them.

use super::args::ClientArgs;
use super::client::Endpoint;
use super::commands::{CommandError, Output, post_ok, report, sso_line, stamp};
use crate::api::{StatusReport, paths};
use chrono::Utc;

/// `fintors login`
pub async fn login(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let before = report(&endpoint).await?;
    let Some(command) = before.login_command.clone() else {
        return Err(CommandError::Failed(
            "nothing to log in to: no credentials fintors uses come from IAM Identity Center; \
             set credentials.login_process (e.g. \"saml2aws login\") for another login"
                .into(),
        ));
    };
    eprintln!("fintors: running `{command}`");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .status()
        .map_err(|why| CommandError::Exec {
            program: "sh".into(),
            why,
        })?;
    if !status.success() {
        return Err(CommandError::Failed(format!(
            "`{command}` failed ({status}); the daemon was not asked to retry"
        )));
    }
    let after: StatusReport = post_ok(&endpoint, paths::RETRY).await?;
    outcome(&before, &after)
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
    Err(CommandError::Failed(format!(
        "logged in, but {}",
        failing.join("; ")
    )))
}
