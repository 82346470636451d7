//! Asking the daemon, for every client subcommand: the requests they share (the status report,
//! the active role, a `POST`), reading its answers and refusals, and the one error type
//! of the client subcommands with its exit codes. The subcommands (`commands`, `pin`, `console`,
//! `login`) build on this and render; none of them imports another's requests.

use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::client::{ClientError, Endpoint};
use super::keys::KeyError;
use crate::api::{ApiError, RoleList, StatusReport, paths};
use crate::model::suggest::closest;

/// A daemon's words (or another process's name) on the user's terminal: no control characters,
/// so no escape sequences.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Why a client subcommand failed, one variant per cause; each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Sso(#[from] crate::sso::SsoError),
    /// The daemon said no; its one-line reason.
    #[error("{0}")]
    Refused(String),
    /// A request the daemon answered with an error status.
    #[error("{endpoint}{path}: {status}: {why}")]
    Answered {
        endpoint: Endpoint,
        path: String,
        status: StatusCode,
        why: String,
    },
    #[error("unknown role: {alias}{}", roles_hint(.known, Some(alias)))]
    UnknownRole { alias: String, known: Vec<String> },
    /// No role named, and no terminal to pick one on.
    #[error("name a role: `{usage}`{}", roles_hint(.known, None))]
    NoRoleNamed {
        usage: &'static str,
        known: Vec<String>,
    },
    /// `fintors exec ROLE` with no command, and no terminal for the shell it would start;
    /// `role` as written in a shell.
    #[error(
        "name a command: `fintors exec {role} COMMAND...` (a shell of its own needs a terminal)"
    )]
    NoCommand { role: String },
    /// Esc in the picker.
    #[error("no role picked")]
    NothingPicked,
    /// Ctrl-C in the picker.
    #[error("no role picked (interrupted)")]
    PickInterrupted,
    #[error("cannot draw the role picker on this terminal: {0}")]
    NoPicker(String),
    #[error(
        "no role is active: name one (`fintors {command} ROLE`) or switch with `fintors use ROLE`"
    )]
    NoActiveRole { command: &'static str },
    #[error("no credentials for {role}: {why}")]
    NoCredentials { role: String, why: String },
    /// An answer fintors never gives: something else answers there.
    #[error("unexpected answer from {endpoint} ({why}); is that really fintors?")]
    NotFintors { endpoint: Endpoint, why: String },
    /// A value in the daemon's report that fintors never reports.
    #[error("fintors at {daemon} reports {what}")]
    BadReport { daemon: Endpoint, what: String },
    #[error(
        "fintors at {daemon} serves no container endpoint (it runs with --ecs-port off or \
         \"ecs_port\": false): restart it without that, or with --ecs-port PORT"
    )]
    NoContainerEndpoint { daemon: Endpoint },
    #[error(
        "fintors at {daemon} names {url:?} as its container endpoint, which is not \
         http://LOOPBACK-IP:PORT/creds: no token is sent there"
    )]
    ForeignContainerEndpoint { daemon: Endpoint, url: String },
    #[error("refusing to print {name}: its value {value:?} has a control character")]
    ControlCharacter { name: &'static str, value: String },
    /// A `default` profile with keys in the config file, which SDKs would use first: the fix.
    #[error("{0}")]
    Shadowed(String),
    #[error("{opener} could not open {link} ({status}); use `fintors console {alias} --print`")]
    BrowserFailed {
        opener: String,
        link: String,
        status: std::process::ExitStatus,
        alias: String,
    },
    #[error("the daemon reported an SSO session named {0:?}, which is no name to log in with")]
    BadSessionName(String),
    #[error(
        "nothing to log in to: no credentials fintors uses come from IAM Identity Center; set \
         credentials.login_process (e.g. \"saml2aws login\") for another login"
    )]
    NothingToLogIn,
    #[error("`{command}` failed ({status}); the daemon was not asked to retry")]
    LoginFailed {
        command: String,
        status: std::process::ExitStatus,
    },
    #[error("logged in, but {}", .0.join("; "))]
    StillFailing(Vec<String>),
    #[error(
        "nothing to sync: the configuration lists no Identity Center session; add \
         \"identity_center\": {{\"SESSION\": {{}}}} (an [sso-session SESSION] of ~/.aws/config)"
    )]
    NothingToSync,
    /// Sessions whose listing failed, one line each.
    #[error("{}", .0.join("\n"))]
    NotListed(Vec<String>),
    /// `fintors doctor` found this many problems (each on its own line above).
    #[error("{failed} {} failed: see the FAIL lines", if *.failed == 1 { "check" } else { "checks" })]
    Unhealthy { failed: usize },
    #[error("cannot stop fintors (pid {pid}) at {endpoint}: {why}")]
    Stop {
        pid: u32,
        endpoint: Endpoint,
        why: String,
    },
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
            // A shell's status after Ctrl-C (128 + SIGINT).
            CommandError::PickInterrupted => 130,
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
    serde_json::from_slice(body).map_err(|e| CommandError::NotFintors {
        endpoint: endpoint.clone(),
        why: e.to_string(),
    })
}

async fn get_ok(endpoint: &Endpoint, path: &str) -> Result<bytes::Bytes, CommandError> {
    let (status, body) = endpoint.request(Method::GET, path, None).await?;
    if status != StatusCode::OK {
        return Err(CommandError::Answered {
            endpoint: endpoint.clone(),
            path: path.to_owned(),
            status,
            why: error_text(&body),
        });
    }
    Ok(body)
}

/// A bodiless `POST` (`{}`, with the JSON content type state-changing routes require) and its
/// answer; a refusal is its one-line `error`.
pub async fn post_ok<T: DeserializeOwned>(
    endpoint: &Endpoint,
    path: &str,
) -> Result<T, CommandError> {
    post_message(endpoint, path, &serde_json::Map::new()).await
}

/// A `POST` of `message` and its answer; a refusal is its one-line `error`.
pub async fn post_message<T: DeserializeOwned>(
    endpoint: &Endpoint,
    path: &str,
    message: &impl serde::Serialize,
) -> Result<T, CommandError> {
    let body = serde_json::to_string(message).expect("API messages serialize");
    let (status, reply) = endpoint.request(Method::POST, path, Some(body)).await?;
    if status != StatusCode::OK {
        return Err(CommandError::Refused(error_text(&reply)));
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

/// "unknown role: X (did you mean Y?)", or with the roles when there are few.
pub fn unknown_role(alias: &str, report: &StatusReport) -> CommandError {
    CommandError::UnknownRole {
        alias: alias.to_owned(),
        known: report.roles.iter().map(|r| r.alias.clone()).collect(),
    }
}

/// At most this many roles are listed in an error line; more are for `fintors roles`.
const LISTED_IN_AN_ERROR: usize = 6;

/// What follows an unknown (or missing) role in its one-line error: the role probably meant,
/// and the roles themselves when they fit, else where to find them.
fn roles_hint(known: &[String], typed: Option<&str>) -> String {
    let meant = typed.and_then(|t| closest(t, known.iter().map(String::as_str)));
    let roles = match known.len() {
        0 => "no roles are configured".to_owned(),
        n if n <= LISTED_IN_AN_ERROR => format!("configured: {}", known.join(", ")),
        n => format!("`fintors roles WORD` finds one of the {n}"),
    };
    match meant {
        Some(meant) => format!(" (did you mean {meant}? {roles})"),
        None => format!(" ({roles})"),
    }
}

/// The role a subcommand acts on: the one named, else the active one.
pub async fn role_or_active(
    endpoint: &Endpoint,
    alias: Option<&str>,
    command: &'static str,
) -> Result<String, CommandError> {
    match alias {
        Some(a) => Ok(a.to_owned()),
        None => active_alias(endpoint)
            .await?
            .ok_or(CommandError::NoActiveRole { command }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("account{i}.Developer")).collect()
    }

    #[test]
    fn an_unknown_role_among_few_lists_them() {
        let e = CommandError::UnknownRole {
            alias: "nope".into(),
            known: vec!["dev".into(), "prod".into()],
        };
        assert_eq!(e.to_string(), "unknown role: nope (configured: dev, prod)");
    }

    #[test]
    fn a_mistyped_role_names_the_one_meant() {
        let e = CommandError::UnknownRole {
            alias: "prdo".into(),
            known: vec!["dev".into(), "prod".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown role: prdo (did you mean prod? configured: dev, prod)"
        );
    }

    #[test]
    fn an_unknown_role_among_hundreds_is_one_short_line() {
        let e = CommandError::UnknownRole {
            alias: "account7.Developr".into(),
            known: roles(1500),
        };
        assert_eq!(
            e.to_string(),
            "unknown role: account7.Developr (did you mean account7.Developer? \
             `fintors roles WORD` finds one of the 1500)"
        );
    }

    #[test]
    fn use_without_a_role_says_how_to_name_one_and_is_not_the_not_running_exit() {
        let e = CommandError::NoRoleNamed {
            usage: "fintors use ROLE",
            known: vec!["dev".into(), "prod".into()],
        };
        assert_eq!(
            e.to_string(),
            "name a role: `fintors use ROLE` (configured: dev, prod)"
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn not_running_exits_2_and_refusals_exit_1() {
        let endpoint = Endpoint::parse("http://127.0.0.1:1").unwrap();
        assert_eq!(
            CommandError::Client(ClientError::NotRunning { endpoint }).exit_code(),
            2
        );
        assert_eq!(CommandError::Refused("no".into()).exit_code(), 1);
    }
}
