//! The client subcommands `roles`, `use`, `current`, `creds`, `reload`, `mfa`, `env`, `exec` and
//! `status` (`console` and `login` have files of their own): each asks the daemon over HTTP
//! ([`super::daemon`]) and turns the answer into what a person or a script wants to read. They return their
//! output instead of printing it, so tests can check it and `main` decides where it goes.

use chrono::{DateTime, TimeDelta, Utc};
use hyper::{Method, StatusCode};

use super::args::{ClientArgs, CredsFormat, EnvFormat};
use super::client::Endpoint;
use super::daemon::{
    CommandError, Output, active_alias, error_text, parse, post_ok, report, role_or_active,
    unknown_role,
};
use super::keys;
use super::pin::{self, Assignment, Pin, Place};
use crate::api::{
    MfaRequest, MfaStarted, ReloadReport, SSO_LOGIN_REQUIRED, ServedReport, SsoReport,
    SwitchRequest, paths,
};
use crate::config::aws_profiles;
use crate::ec2::container_tokens::Scope;
use crate::ec2::document::CredentialsDocument;
use crate::model::shell;

/// `fintors roles`
pub async fn roles(args: &ClientArgs, as_json: bool) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let report = report(&endpoint).await?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&report).expect("serializes") + "\n");
    }
    let now = Utc::now();
    let width = report
        .roles
        .iter()
        .map(|r| r.alias.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let uses: Vec<String> = report.roles.iter().map(|r| served(&r.served)).collect();
    let used_width = uses.iter().map(String::len).max().unwrap_or(0).max(13);
    let mut out = format!(
        "  {:width$}  {:10}  {:used_width$}  ARN\n",
        "ROLE", "EXPIRES IN", "USED (15 MIN)"
    );
    for (role, used) in report.roles.iter().zip(&uses) {
        let expires = role
            .credentials
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| human(c.expiration - now));
        out.push_str(&format!(
            "{} {:width$}  {:10}  {used:used_width$}  {}\n",
            if role.active { '*' } else { ' ' },
            role.alias,
            expires,
            role.arn
        ));
    }
    Ok(out)
}

/// `fintors use ALIAS`
pub async fn use_role(args: &ClientArgs, alias: &str) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let body = to_json(&SwitchRequest {
        alias: alias.to_owned(),
    });
    let (status, reply) = endpoint
        .request(Method::PUT, paths::ROLES, Some(body))
        .await?;
    match status {
        StatusCode::OK => Ok(format!("active role: {alias}\n")),
        StatusCode::NOT_FOUND => Err(unknown_role(alias, &report(&endpoint).await?)),
        _ => Err(CommandError::Refused(error_text(&reply))),
    }
}

/// `fintors current`
pub async fn current(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    Ok(active_alias(&endpoint)
        .await?
        .map(|a| a + "\n")
        .unwrap_or_default())
}

/// `fintors creds [ALIAS] [--format ...]`
pub async fn creds(args: &ClientArgs, alias: Option<&str>, format: CredsFormat) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let alias = role_or_active(&endpoint, alias, "creds").await?;
    let (status, body) = endpoint
        .request_in_session(Method::GET, &paths::role_credentials(&alias), None)
        .await?;
    if status == StatusCode::NOT_FOUND {
        return Err(unknown_role(&alias, &report(&endpoint).await?));
    }
    let doc: CredentialsDocument = parse(&endpoint, &body)?;
    let Some(c) = doc.credentials() else {
        return Err(CommandError::NoCredentials {
            why: format!("{}: {}", doc.code, doc.message.unwrap_or_default()),
            role: alias,
        });
    };
    let expiration = stamp(c.expiration);
    Ok(match format {
        CredsFormat::Env => format!(
            "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\n\
             export AWS_SESSION_TOKEN={}\nexport AWS_CREDENTIAL_EXPIRATION={}\n",
            shell::quote(&c.access_key_id),
            shell::quote(c.secret_access_key.expose()),
            shell::quote(c.session_token.expose()),
            shell::quote(&expiration)
        ),
        CredsFormat::Json => String::from_utf8_lossy(&body).into_owned() + "\n",
        CredsFormat::CredentialProcess => {
            to_json(&CredentialProcess {
                version: 1,
                access_key_id: &c.access_key_id,
                secret_access_key: c.secret_access_key.expose(),
                session_token: c.session_token.expose(),
                expiration: &expiration,
            }) + "\n"
        }
    })
}

/// What `credential_process` in ~/.aws/config must print (version 1 of the AWS CLI's format).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialProcess<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: &'a str,
}

fn to_json<T: serde::Serialize>(message: &T) -> String {
    serde_json::to_string(message).expect("API messages serialize")
}

/// `fintors reload`
pub async fn reload(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let r: ReloadReport = post_ok(&endpoint, paths::RELOAD).await?;
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let mut out = format!(
        "reloaded {}: added {}; removed {}; changed {}; active role: {}\n",
        r.config,
        list(&r.added),
        list(&r.removed),
        list(&r.changed),
        r.active_role.as_deref().unwrap_or("none")
    );
    if !r.need_restart.is_empty() {
        out.push_str(&format!(
            "restart fintors to apply: {}\n",
            r.need_restart.join(", ")
        ));
    }
    Ok(out)
}

/// `fintors mfa CODE [--serial S]`
pub async fn mfa(args: &ClientArgs, code: &str, serial: Option<&str>) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let body = to_json(&MfaRequest {
        code: code.to_owned(),
        serial: serial.map(str::to_owned),
    });
    let (status, reply) = endpoint
        .request(Method::PUT, paths::MFA, Some(body))
        .await?;
    if status != StatusCode::OK {
        return Err(CommandError::Refused(error_text(&reply)));
    }
    let started: MfaStarted = parse(&endpoint, &reply)?;
    Ok(format!(
        "MFA session for {} until {}\n",
        started.serial,
        stamp(started.expires)
    ))
}

/// `fintors env [--ecs | --role ROLE [--container]] [--format ...]`
pub async fn env(args: &ClientArgs, choice: EnvChoice<'_>, format: EnvFormat) -> Output {
    let assignments: Vec<Assignment> = match choice {
        EnvChoice::Imds => {
            let endpoint = Endpoint::discover(args)?;
            report(&endpoint).await?;
            vec![(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                Some(endpoint.imds_url()),
            )]
        }
        EnvChoice::ActiveRole => {
            let endpoint = Endpoint::discover(args)?;
            let container = pin::container_endpoint(&endpoint, &report(&endpoint).await?)?;
            let token = keys::container_key(args)?.token(Scope::Active);
            vec![
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    Some(format!("{container}{}", paths::CONTAINER_ACTIVE)),
                ),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", None),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                    Some(token.expose().to_owned()),
                ),
            ]
        }
        EnvChoice::Role(role, place) => Pin::obtain(args, role, place).await?.assignments(place),
    };
    pin::render(&assignments, format)
}

/// What `fintors env` points at.
#[derive(Debug, Clone, Copy)]
pub enum EnvChoice<'a> {
    Imds,
    /// `--ecs`: the container endpoint for the active role.
    ActiveRole,
    /// `--role ROLE [--container]`.
    Role(&'a str, Place),
}

/// `fintors exec ROLE CMD...`: checks the role, then becomes CMD pinned to it. Returns only if
/// that fails.
pub async fn exec(args: &ClientArgs, role: &str, command: &[std::ffi::OsString]) -> CommandError {
    use std::os::unix::process::CommandExt;
    let pin = match Pin::obtain(args, role, Place::Here).await {
        Ok(pin) => pin,
        Err(e) => return e,
    };
    let mut child = std::process::Command::new(&command[0]);
    child.args(&command[1..]);
    for (name, value) in pin.assignments(Place::Here) {
        match value {
            Some(v) => child.env(name, v),
            None => child.env_remove(name),
        };
    }
    let program = command[0].to_string_lossy().into_owned();
    CommandError::Exec {
        program,
        why: child.exec(),
    }
}

/// `fintors status`
pub async fn status(args: &ClientArgs, as_json: bool) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let report = report(&endpoint).await?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&report).expect("serializes") + "\n");
    }
    let now = Utc::now();
    let mut out = format!(
        "fintors {} is running at {} ({})\nactive role: {}\n",
        report.version,
        endpoint.imds_url(),
        if report.imdsv2_required {
            "IMDSv2 tokens required"
        } else {
            "IMDSv1 and IMDSv2"
        },
        report.active_role.as_deref().unwrap_or("none")
    );
    if let Some(warning) = aws_profiles::default_credentials()
        .await
        .shadowing_fintors()
    {
        out.push_str(&format!("warning: {warning}\n"));
    }
    match &report.container_endpoint {
        Some(url) => out.push_str(&format!(
            "container endpoint: {url} (`fintors exec ROLE -- CMD`, `fintors env --role ROLE`)\n"
        )),
        None => out.push_str("container endpoint: off\n"),
    }
    for sso in &report.sso {
        out.push_str(&sso_line(sso, now));
    }
    for device in &report.mfa {
        match device.session_expires {
            Some(t) => out.push_str(&format!(
                "MFA {}: session valid for {} (until {})\n",
                device.serial,
                human(t - now),
                stamp(t)
            )),
            None => out.push_str(&format!(
                "MFA {}: no session; run `fintors mfa CODE`\n",
                device.serial
            )),
        }
    }
    let width = report
        .roles
        .iter()
        .map(|r| r.alias.len())
        .max()
        .unwrap_or(0);
    for role in &report.roles {
        let state = match &role.credentials {
            Some(c) => format!(
                "credentials valid for {} (until {}), refresh {}",
                human(c.expiration - now),
                stamp(c.expiration),
                if c.refresh_at <= now {
                    "due now".to_owned()
                } else {
                    format!("in {}", human(c.refresh_at - now))
                }
            ),
            None => "no credentials cached".to_owned(),
        };
        out.push_str(&format!(
            "{} {:width$}  {state}; {} STS call{}; requests in the last 15 min: {}\n",
            if role.active { '*' } else { ' ' },
            role.alias,
            role.sts_calls,
            if role.sts_calls == 1 { "" } else { "s" },
            served(&role.served)
        ));
        match &role.last_error {
            // The session's own line above says when it expired and what to run.
            Some(e) if e.code == SSO_LOGIN_REQUIRED && !report.sso.is_empty() => {
                out.push_str(&format!(
                    "  {:width$}  waiting for an SSO login (see above) since {}\n",
                    "",
                    stamp(e.at)
                ));
            }
            Some(e) => out.push_str(&format!(
                "  {:width$}  last STS error at {}: {}: {}\n",
                "",
                stamp(e.at),
                e.code,
                e.message
            )),
            None => {}
        }
    }
    Ok(out)
}

/// `SSO session "corp": expires in 7h58m`, or since when it has expired and what to run.
pub(super) fn sso_line(sso: &SsoReport, now: DateTime<Utc>) -> String {
    match sso.expires {
        Some(t) if t > now => format!("{}: expires in {}\n", sso.session, human(t - now)),
        Some(t) => format!(
            "{}: expired at {}; run `{}`\n",
            sso.session,
            stamp(t),
            sso.login_command
        ),
        None => format!(
            "{}: not logged in on this machine; run `{}`\n",
            sso.session, sso.login_command
        ),
    }
}

/// A role's credential requests in the last 15 minutes per door: `imds 12, container 3`, or `-`.
fn served(report: &ServedReport) -> String {
    let doors = [
        ("imds", report.imds.last_15_minutes),
        ("container", report.container.last_15_minutes),
    ];
    let used: Vec<String> = doors
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(door, n)| format!("{door} {n}"))
        .collect();
    if used.is_empty() {
        "-".to_owned()
    } else {
        used.join(", ")
    }
}

pub(super) fn stamp(t: DateTime<Utc>) -> String {
    crate::model::time::format(t)
}

/// A short human duration: `45s`, `59m`, `11h05m`.
pub fn human(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_are_short() {
        assert_eq!(human(TimeDelta::seconds(45)), "45s");
        assert_eq!(human(TimeDelta::seconds(59 * 60 + 59)), "59m");
        assert_eq!(human(TimeDelta::seconds(11 * 3600 + 5 * 60)), "11h05m");
        assert_eq!(human(TimeDelta::seconds(-3)), "expired");
    }
}
