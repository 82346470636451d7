//! Asking the daemon, for every client subcommand: the requests they share (the status report,
//! the active role, a bodiless `POST`), reading its answers and refusals, and the one error type
//! of the client subcommands with its exit codes. The subcommands (`commands`, `pin`, `console`,
//! `login`) build on this and render; none of them imports another's requests.

use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::client::{ClientError, Endpoint};
use super::keys::KeyError;
use crate::api::{ApiError, RoleList, StatusReport, paths};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{0}")]
    Failed(String),
    #[error("cannot run {program}: {why}")]
    Exec {
        program: String,
        why: std::io::Error,
    },
}

impl CommandError {
    /// 2 when the daemon is not there at all, 1 when it said no; for `exec`, a shell's 127
    /// and 126 when the command is not found or cannot be run.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Client(ClientError::NotRunning { .. }) => 2,
            CommandError::Exec { why, .. } if why.kind() == std::io::ErrorKind::NotFound => 127,
            CommandError::Exec { .. } => 126,
            _ => 1,
        }
    }
}

pub type Output = Result<String, CommandError>;

/// The `{"error": "..."}` body of a refused role API request, or the raw body.
pub fn error_text(body: &[u8]) -> String {
    serde_json::from_slice::<ApiError>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().to_owned())
}

pub fn parse<T: DeserializeOwned>(endpoint: &Endpoint, body: &[u8]) -> Result<T, CommandError> {
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

/// A bodiless `POST` (`{}`, with the JSON content type state-changing routes require) and its
/// answer; a refusal is its one-line `error`.
pub async fn post_ok<T: DeserializeOwned>(
    endpoint: &Endpoint,
    path: &str,
) -> Result<T, CommandError> {
    let (status, reply) = endpoint
        .request(Method::POST, path, Some("{}".into()))
        .await?;
    if status != StatusCode::OK {
        return Err(CommandError::Failed(error_text(&reply)));
    }
    parse(endpoint, &reply)
}

pub async fn report(endpoint: &Endpoint) -> Result<StatusReport, CommandError> {
    let body = get_ok(endpoint, paths::STATUS).await?;
    parse(endpoint, &body)
}

pub async fn active_alias(endpoint: &Endpoint) -> Result<Option<String>, CommandError> {
    let body = get_ok(endpoint, &paths::active_role()).await?;
    Ok(parse::<RoleList>(endpoint, &body)?.roles.into_iter().next())
}

/// "unknown role: X (configured: a, b)".
pub fn unknown_role(alias: &str, report: &StatusReport) -> CommandError {
    let known: Vec<&str> = report.roles.iter().map(|r| r.alias.as_str()).collect();
    CommandError::Failed(format!(
        "unknown role: {alias} (configured: {})",
        known.join(", ")
    ))
}

/// The role a subcommand acts on: the one named, else the active one.
pub async fn role_or_active(
    endpoint: &Endpoint,
    alias: Option<&str>,
    command: &str,
) -> Result<String, CommandError> {
    match alias {
        Some(a) => Ok(a.to_owned()),
        None => active_alias(endpoint).await?.ok_or_else(|| {
            CommandError::Failed(format!(
                "no role is active: name one (`fintors {command} ROLE`) or switch with \
                 `fintors use ROLE`"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
