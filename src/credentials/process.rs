//! Credential-command roles: any tool that prints `credential_process` JSON (saml2aws,
//! okta-aws-cli, gimme-aws-creds, 1Password, a corporate script) is a role of its own, cached
//! and refreshed ahead like the others, so the command runs once per refresh however many
//! clients ask.
//!
//! The command runs as the SDKs run it, through `sh -c` (aws-config's `credential_process.rs`,
//! botocore's `ProcessProvider` splits it without a shell, which a one-word command cannot tell
//! apart), and prints the format of the AWS CLI's "Sourcing credentials with an external
//! process": `Version` 1, `AccessKeyId`, `SecretAccessKey`, `SessionToken`, and an optional
//! RFC 3339 `Expiration`. Unlike an SDK, fintors is a daemon: the command gets no stdin (nobody
//! would answer a prompt), a time limit, and is killed if it overstays.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::{StsError, one_line};
use crate::model::{Clock, Credentials, Secret};

/// How long a command may take: a tool that logs in through an IdP takes seconds, one that
/// waits for a prompt never ends.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// How long credentials printed without `Expiration` are served: they are fetched again after
/// half of it (the cache's rule), so such a command runs every 30 minutes while in use.
pub const UNDATED_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// The most of a failing command's stderr that a message keeps.
const MAX_STDERR: usize = 100;

/// The most of a command's output that is read: credentials are a few hundred bytes.
const MAX_OUTPUT: u64 = 64 * 1024;

/// What the command prints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Printed {
    version: u32,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    expiration: Option<String>,
}

/// Runs `command` and reads the credentials it prints.
pub async fn credentials(command: &str, clock: Clock) -> Result<Credentials, StsError> {
    run(command, clock, PROCESS_TIMEOUT).await
}

async fn run(command: &str, clock: Clock, timeout: Duration) -> Result<Credentials, StsError> {
    let failed = |why: String| StsError::ProcessFailed(why);
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", command])
        // What a pinned process is not given, a command is not either.
        .env_remove("FINTORS_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("cannot run the credential command: {e}")))?;
    let stdout = Output::reading(child.stdout.take());
    let stderr = Output::reading(child.stderr.take());
    let status = tokio::select! {
        status = child.wait() => {
            status.map_err(|e| failed(format!("the credential command failed: {e}")))?
        }
        () = tokio::time::sleep(timeout) => {
            // The leader is not reaped yet, so its group is still its own to kill.
            if let Some(leader) = child.id() {
                crate::platform::processes::kill_group(leader);
            }
            let _ = child.wait().await;
            return Err(failed(format!(
                "the credential command did not finish within {} s (it has no terminal: it \
                 must not ask anything)",
                timeout.as_secs()
            )));
        }
    };
    let (stdout, stderr) = (stdout.printed().await, stderr.printed().await);
    if !status.success() {
        let said = String::from_utf8_lossy(&stderr);
        let said = said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(failed(format!(
            "the credential command {}: {}",
            exited(status),
            if said.is_empty() {
                "(nothing on stderr)".to_owned()
            } else {
                one_line(said, MAX_STDERR)
            }
        )));
    }
    read(&stdout, clock.now())
}

/// What a command prints on one pipe, read as it comes, up to [`MAX_OUTPUT`] bytes.
struct Output {
    read: Arc<Mutex<Vec<u8>>>,
    reading: tokio::task::JoinHandle<()>,
}

impl Output {
    fn reading(pipe: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>) -> Output {
        let read = Arc::new(Mutex::new(Vec::new()));
        let into = read.clone();
        let reading = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let Some(pipe) = pipe else { return };
            let mut pipe = pipe.take(MAX_OUTPUT);
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                into.lock()
                    .expect("poisoned")
                    .extend_from_slice(&chunk[..n]);
            }
        });
        Output { read, reading }
    }

    /// What was printed, once the command has ended: until the pipe closes, or for a second
    /// more if something the command left running (a browser it opened) keeps it open.
    async fn printed(self) -> Vec<u8> {
        let mut reading = self.reading;
        if tokio::time::timeout(Duration::from_secs(1), &mut reading)
            .await
            .is_err()
        {
            reading.abort();
        }
        std::mem::take(&mut *self.read.lock().expect("poisoned"))
    }
}

/// How a command ended, in words.
fn exited(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_owned(),
    }
}

/// The credentials in what the command printed, at `now`.
fn read(stdout: &[u8], now: DateTime<Utc>) -> Result<Credentials, StsError> {
    let printed: Printed = serde_json::from_slice(stdout).map_err(|e| {
        StsError::ProcessFailed(format!(
            "the credential command printed no credential_process JSON ({}): it must print \
             {{\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ..., \"SessionToken\": \
             ...}}",
            one_line(&e.to_string(), 80)
        ))
    })?;
    if printed.version != 1 {
        return Err(StsError::ProcessFailed(format!(
            "the credential command printed Version {}; fintors reads Version 1",
            printed.version
        )));
    }
    let Some(session_token) = printed.session_token.filter(|t| !t.expose().is_empty()) else {
        return Err(StsError::ProcessFailed(
            "the credential command printed long-term keys (no SessionToken): serve it as the \
             base credentials' profile instead"
                .into(),
        ));
    };
    let expiration = match &printed.expiration {
        None => now + UNDATED_LIFETIME,
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                StsError::ProcessFailed(format!(
                    "the credential command printed Expiration {:?}, which is not an RFC 3339 time",
                    one_line(text, 40)
                ))
            })?,
    };
    Ok(Credentials {
        access_key_id: printed.access_key_id,
        secret_access_key: printed.secret_access_key,
        session_token,
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = r#"{"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": "s3cret",
        "SessionToken": "t0ken", "Expiration": "2031-01-01T00:00:00Z", "AccountId": "111122223333"}"#;

    fn now() -> DateTime<Utc> {
        "2030-12-31T23:00:00Z".parse().unwrap()
    }

    fn printing(json: &str) -> String {
        format!("printf '%s' '{json}'")
    }

    #[tokio::test]
    async fn a_command_that_prints_a_session_is_served_until_its_expiration() {
        let c = credentials(&printing(SESSION), Clock::system())
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "ASIAPROCESS");
        assert_eq!(c.secret_access_key.expose(), "s3cret");
        assert_eq!(c.session_token.expose(), "t0ken");
        assert_eq!(
            c.expiration,
            "2031-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_session_without_expiration_is_served_for_an_hour() {
        let undated =
            r#"{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "s", "SessionToken": "t"}"#;
        let c = read(undated.as_bytes(), now()).unwrap();
        assert_eq!(c.expiration, now() + UNDATED_LIFETIME);
    }

    #[test]
    fn long_term_keys_are_refused_with_where_they_belong() {
        let keys = r#"{"Version": 1, "AccessKeyId": "AKIA", "SecretAccessKey": "s"}"#;
        let e = read(keys.as_bytes(), now()).unwrap_err();
        assert_eq!(e.code(), "CredentialProcessFailed");
        assert!(
            e.message().contains("long-term keys (no SessionToken)"),
            "{e}"
        );
    }

    #[test]
    fn another_version_or_no_json_is_refused_saying_what_is_expected() {
        let v2 =
            r#"{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "s", "SessionToken": "t"}"#;
        let e = read(v2.as_bytes(), now()).unwrap_err();
        assert!(
            e.message()
                .contains("printed Version 2; fintors reads Version 1"),
            "{e}"
        );
        let e = read(b"Password: ", now()).unwrap_err();
        assert!(
            e.message().contains("printed no credential_process JSON"),
            "{e}"
        );
        assert!(e.message().contains("\"Version\": 1"), "{e}");
    }

    #[tokio::test]
    async fn a_failing_command_is_its_exit_code_and_last_line_of_stderr() {
        let failing =
            "echo 'starting' >&2; echo 'error: session expired, run okta login' >&2; exit 3";
        let e = credentials(failing, Clock::system()).await.unwrap_err();
        assert_eq!(
            e.message(),
            "the credential command exited with 3: error: session expired, run okta login"
        );
    }

    /// A daemon has no terminal: a command that reads its stdin reads nothing at once rather
    /// than waiting for a user who is not there.
    #[tokio::test]
    async fn a_command_gets_no_stdin() {
        let prompting = format!("read answer; test -z \"$answer\" && {}", printing(SESSION));
        let c = credentials(&prompting, Clock::system()).await.unwrap();
        assert_eq!(c.access_key_id, "ASIAPROCESS");
    }

    /// A command that leaves something running with its output open (it opened a browser) is
    /// done when it exits, with what it printed.
    #[tokio::test]
    async fn a_command_that_leaves_a_child_holding_its_output_is_done_when_it_exits() {
        let leaves = format!("(sleep 10) & {}", printing(SESSION));
        let started = std::time::Instant::now();
        let c = credentials(&leaves, Clock::system()).await.unwrap();
        assert_eq!(c.access_key_id, "ASIAPROCESS");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_command_that_overstays_is_stopped_and_said_to() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("finished");
        // The shell's child too: `sh -c 'sleep 1; ...' &` runs on after the shell.
        let slow = format!("(sleep 1; touch {}) & wait", marker.display());
        let e = run(&slow, Clock::system(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(e.message().contains("did not finish within 0 s"), "{e}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the command was killed, not left running");
    }
}
