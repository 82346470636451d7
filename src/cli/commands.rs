//! The client subcommands (`roles`, `use`, `current`, `creds`, `status`): each asks the daemon
//! over HTTP and turns the answer into what a person or a script wants to read. They return their
//! output instead of printing it, so tests can check it and `main` decides where it goes.

use chrono::{DateTime, TimeDelta, Utc};
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::args::{ClientArgs, CredsFormat};
use super::client::{ClientError, Endpoint};
use crate::api::{
    ApiError, MfaRequest, MfaStarted, ReloadReport, RoleList, StatusReport, SwitchRequest, paths,
};
use crate::ec2::document::CredentialsDocument;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// 2 when the daemon is not there at all, 1 when it said no.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Client(ClientError::NotRunning { .. }) => 2,
            _ => 1,
        }
    }
}

type Output = Result<String, CommandError>;

/// The `{"error": "..."}` body of a refused role API request, or the raw body.
fn error_text(body: &[u8]) -> String {
    serde_json::from_slice::<ApiError>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_owned())
}

fn parse<T: DeserializeOwned>(endpoint: &Endpoint, body: &[u8]) -> Result<T, CommandError> {
    serde_json::from_slice(body).map_err(|e| {
        CommandError::Failed(format!(
            "unexpected answer from {endpoint} ({e}); is that really fintors?"
        ))
    })
}

async fn get_ok(endpoint: &Endpoint, path: &str) -> Result<bytes::Bytes, CommandError> {
    let (status, body) = endpoint.request(Method::GET, path, None).await?;
    if status != StatusCode::OK {
        return Err(CommandError::Failed(format!(
            "{endpoint}{path}: {status}: {}",
            error_text(&body)
        )));
    }
    Ok(body)
}

async fn report(endpoint: &Endpoint) -> Result<StatusReport, CommandError> {
    let body = get_ok(endpoint, paths::STATUS).await?;
    parse(endpoint, &body)
}

async fn active_alias(endpoint: &Endpoint) -> Result<Option<String>, CommandError> {
    let body = get_ok(endpoint, &paths::active_role()).await?;
    Ok(parse::<RoleList>(endpoint, &body)?.roles.into_iter().next())
}

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
    let mut out = format!("  {:width$}  {:10}  ARN\n", "ROLE", "EXPIRES IN");
    for role in &report.roles {
        let expires = role
            .credentials
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| human(c.expiration - now));
        out.push_str(&format!(
            "{} {:width$}  {:10}  {}\n",
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
        StatusCode::NOT_FOUND => {
            let known = report(&endpoint)
                .await
                .map(|r| {
                    r.roles
                        .into_iter()
                        .map(|r| r.alias)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            Err(CommandError::Failed(format!(
                "unknown role: {alias} (configured: {known})"
            )))
        }
        _ => Err(CommandError::Failed(error_text(&reply))),
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
    let alias = match alias {
        Some(a) => a.to_owned(),
        None => active_alias(&endpoint).await?.ok_or_else(|| {
            CommandError::Failed(
                "no role is active: name one (`fintors creds ROLE`) or switch with `fintors use ROLE`"
                    .into(),
            )
        })?,
    };
    let (status, body) = endpoint
        .get_in_session(&paths::role_credentials(&alias))
        .await?;
    if status == StatusCode::NOT_FOUND {
        return Err(CommandError::Failed(format!("unknown role: {alias}")));
    }
    let doc: CredentialsDocument = parse(&endpoint, &body)?;
    let Some(c) = doc.credentials() else {
        return Err(CommandError::Failed(format!(
            "no credentials for {alias}: {}: {}",
            doc.code,
            doc.message.unwrap_or_default()
        )));
    };
    let expiration = stamp(c.expiration);
    Ok(match format {
        CredsFormat::Env => format!(
            "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\n\
             export AWS_SESSION_TOKEN={}\nexport AWS_CREDENTIAL_EXPIRATION={}\n",
            shell_quote(&c.access_key_id),
            shell_quote(c.secret_access_key.expose()),
            shell_quote(c.session_token.expose()),
            shell_quote(&expiration)
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
    let (status, reply) = endpoint
        .request(Method::POST, paths::RELOAD, Some("{}".into()))
        .await?;
    if status != StatusCode::OK {
        return Err(CommandError::Failed(error_text(&reply)));
    }
    let r: ReloadReport = parse(&endpoint, &reply)?;
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
        return Err(CommandError::Failed(error_text(&reply)));
    }
    let started: MfaStarted = parse(&endpoint, &reply)?;
    Ok(format!(
        "MFA session for {} until {}\n",
        started.serial,
        stamp(started.expires)
    ))
}

/// `fintors env [--ecs]`
pub async fn env(args: &ClientArgs, ecs: bool) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let report = report(&endpoint).await?;
    if !ecs {
        return Ok(format!(
            "export AWS_EC2_METADATA_SERVICE_ENDPOINT={}\n",
            shell_quote(&endpoint.imds_url())
        ));
    }
    match (report.container_endpoint, report.container_token_file) {
        (Some(url), Some(token_file)) => {
            // Both forms, since SDKs disagree on which wins (Java v2 reads the variable first,
            // botocore, Go and Rust the file); both hold the same token.
            let token = std::fs::read_to_string(&token_file).map_err(|e| {
                CommandError::Failed(format!(
                    "cannot read the container token {token_file}: {e} (it belongs to the user \
                     the daemon runs as)"
                ))
            })?;
            Ok(format!(
                "export AWS_CONTAINER_CREDENTIALS_FULL_URI={}\n\
                 export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}\n\
                 export AWS_CONTAINER_AUTHORIZATION_TOKEN={}\n",
                shell_quote(&url),
                shell_quote(&token_file),
                shell_quote(token.trim_end())
            ))
        }
        _ => Err(CommandError::Failed(format!(
            "fintors at {endpoint} serves no container endpoint: start it with --ecs-port PORT \
             (or set \"ecs_port\" in the config)"
        ))),
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
            "{} {:width$}  {state}; {} STS call{}\n",
            if role.active { '*' } else { ' ' },
            role.alias,
            role.sts_calls,
            if role.sts_calls == 1 { "" } else { "s" }
        ));
        if let Some(e) = &role.last_error {
            out.push_str(&format!(
                "  {:width$}  last STS error at {}: {}: {}\n",
                "",
                stamp(e.at),
                e.code,
                e.message
            ));
        }
    }
    Ok(out)
}

fn stamp(t: DateTime<Utc>) -> String {
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

/// Quotes `s` for POSIX shells (and fish): single quotes, with embedded ones escaped.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
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

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("a/b+c="), "'a/b+c='");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn not_running_exits_2_and_refusals_exit_1() {
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        assert_eq!(
            CommandError::Client(ClientError::NotRunning { endpoint }).exit_code(),
            2
        );
        assert_eq!(CommandError::Failed("no".into()).exit_code(), 1);
    }
}
