//! The client subcommands `roles`, `use`, `current`, `creds`, `reload`, `mfa`, `env` and `exec`
//! (`status`, `console` and `login` have files of their own): each asks the daemon over HTTP
//! ([`super::daemon`]) and turns the answer into what a person or a script wants to read. They
//! return their output instead of printing it, so tests can check it and `main` decides where it
//! goes.

use std::io::IsTerminal;

use chrono::Utc;
use hyper::{Method, StatusCode};

use super::args::{ClientArgs, CredsFormat, EnvFormat};
use super::client::{ClientError, Endpoint};
use super::daemon::{
    CommandError, Output, active_alias, error_text, parse, post_ok, printable, report,
    role_or_active, unknown_role,
};
use super::keys;
use super::picker::{self, Purpose, named_or_picked};
use super::pin::{self, Assignment, Pin, Place};
use super::status::{human, served, stamp};
use super::subshell;
use crate::api::{
    MfaRequest, MfaStarted, ReloadReport, RoleReport, SwitchRequest, SyncReport, paths,
};
use crate::ec2::container_tokens::Scope;
use crate::ec2::document::CredentialsDocument;
use crate::model::shell;

/// `fintors roles [WORD...]`
pub async fn roles(args: &ClientArgs, filter: &[String], as_json: bool) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let mut report = report(&endpoint).await?;
    report.roles.retain(|role| matches(role, filter));
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
        "  {:width$}  {:10}  {:used_width$}  SOURCE\n",
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
            source(role)
        ));
    }
    Ok(out)
}

/// Whether `role` matches every word of `filter`, as the picker matches what is typed.
fn matches(role: &RoleReport, filter: &[String]) -> bool {
    let haystack = picker::haystack(role);
    let words: Vec<String> = filter.iter().map(|w| w.to_lowercase()).collect();
    picker::every_word_in(&haystack, words.iter().map(String::as_str))
}

/// Where a role's credentials come from, in the table: its ARN (and the role it is assumed
/// with, if chained), its permission set, or its credential command.
fn source(role: &RoleReport) -> String {
    match (&role.sso_session, &role.via, &role.program) {
        (Some(session), _, _) => {
            let account = match &role.account_name {
                Some(name) => format!("{name} ({}, ", role.account_id),
                None => format!("{} (", role.account_id),
            };
            format!(
                "permission set {} in {account}SSO session {session})",
                role.role_name
            )
        }
        (None, _, Some(program)) => format!("credential command {program}"),
        (None, Some(via), None) => format!("{} via {via}", role.arn),
        (None, None, None) => role.arn.clone(),
    }
}

/// `fintors use [ALIAS]`
pub async fn use_role(args: &ClientArgs, alias: Option<&str>) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let alias = named_or_picked(args, &endpoint, alias, Purpose::Use).await?;
    let followed = followed_region(&endpoint).await;
    let body = to_json(&SwitchRequest {
        alias: alias.clone(),
    });
    let (status, reply) = endpoint
        .request(Method::PUT, paths::ROLES, Some(body))
        .await?;
    match status {
        StatusCode::OK => {
            picker::remember(args, &alias);
            if let Some(note) = stale_region(&endpoint, followed).await {
                eprintln!("fintors: {note}");
            }
            Ok(format!("active role: {alias}\n"))
        }
        StatusCode::NOT_FOUND => Err(unknown_role(&alias, &report(&endpoint).await?)),
        _ => Err(CommandError::Refused(error_text(&reply))),
    }
}

/// The region this shell exports in `AWS_DEFAULT_REGION` (as `fintors env` may have), if it is
/// the instance's before a switch. Not in a pinned shell: a switch does not change its role.
async fn followed_region(endpoint: &Endpoint) -> Option<String> {
    use super::environment::variable;
    if variable("FINTORS_ROLE").is_some() {
        return None;
    }
    let exported = variable("AWS_DEFAULT_REGION")?;
    (instance_region(endpoint).await? == exported).then_some(exported)
}

/// After a switch: whether it moved the instance's region away from the one this shell exports
/// and followed until now. Every SDK but JS reads `AWS_DEFAULT_REGION` before the instance
/// metadata, so they would stay behind; a region the shell chose apart from the instance is
/// left alone.
async fn stale_region(endpoint: &Endpoint, followed: Option<String>) -> Option<String> {
    let exported = followed?;
    let region = instance_region(endpoint).await?;
    (region != exported).then(|| {
        format!(
            "note: this shell's AWS_DEFAULT_REGION is {exported}, the instance's is now {region}: \
             export AWS_DEFAULT_REGION={region}"
        )
    })
}

/// How long `fintors stop` waits for the daemon to let go of its port: a graceful stop
/// finishes the requests in flight first.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `fintors stop`: SIGTERM to the daemon that answers at the endpoint (the client has checked
/// that it is this user's), then waits until nothing answers there.
pub async fn stop(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let daemon = report(&endpoint).await?;
    let failed = |why: String| CommandError::Stop {
        pid: daemon.pid,
        endpoint: endpoint.clone(),
        why,
    };
    if daemon.pid == 0 {
        return Err(failed(format!(
            "fintors {} does not say its process id; stop it with kill or systemctl",
            printable(&daemon.version.chars().take(24).collect::<String>())
        )));
    }
    if !endpoint.is_loopback() {
        return Err(failed(
            "it is not on this machine's loopback: stop it where it runs".into(),
        ));
    }
    // The socket outlives the process: systemd would start fintors again at the next
    // connection, the wait below's own included, and the stop would seem to fail.
    if daemon.socket_activated {
        return Err(failed(
            "systemd's socket would start it again: stop the socket unit with systemctl".into(),
        ));
    }
    // The pid is the daemon's word: signal it only if it names a fintors of this user (a
    // daemon of root's, or of FINTORS_DAEMON_UID, passes the client's check too), never init,
    // never this command, and (where the daemon says when it started) only the process that
    // started then. Held before it is looked at, so that the signal reaches what was looked at
    // or, if that has exited and its pid is another process's by now, nothing.
    if daemon.pid <= 1 || daemon.pid == std::process::id() {
        return Err(failed("that is not a daemon's process id".into()));
    }
    let held = crate::platform::processes::Held::open(daemon.pid).map_err(|e| failed(gone(&e)))?;
    let me = crate::platform::users::effective_uid();
    match crate::platform::processes::describe(daemon.pid) {
        Some(p) if p.uid != me || p.name != "fintors" => {
            // The name is the process's own choice (15 bytes at most, the kernel's limit).
            return Err(failed(format!(
                "process {} is {:?} of uid {}, not a fintors of yours",
                daemon.pid,
                printable(&p.name),
                p.uid
            )));
        }
        Some(p) if daemon.process_started.is_some_and(|s| s != p.started) => {
            return Err(failed(format!(
                "process {} is not the fintors that answered (it started at another time)",
                daemon.pid
            )));
        }
        Some(_) => {}
        None => {
            return Err(failed(
                "cannot tell what that process is here: stop it with kill or the service manager"
                    .into(),
            ));
        }
    }
    held.terminate().map_err(|e| failed(gone(&e)))?;
    let asked = std::time::Instant::now();
    loop {
        match report(&endpoint).await {
            Err(CommandError::Client(ClientError::NotRunning { .. })) => break,
            _ if asked.elapsed() > STOP_WAIT => {
                return Err(failed(format!(
                    "still answering {} s after SIGTERM",
                    STOP_WAIT.as_secs()
                )));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    Ok(format!(
        "stopped fintors (pid {}) at {endpoint}\n",
        daemon.pid
    ))
}

/// Why a process could not be held or signalled, in `stop`'s words.
fn gone(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "it runs as another user (root?): stop it as that user".into(),
        Some(libc::ESRCH) => "that process has exited (is another daemon answering?)".into(),
        _ => e.to_string(),
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
    // Only a person reads `--format env`. The other formats are read by programs, and the AWS
    // CLI runs a `credential_process` with the user's terminal as its stdin and stderr: a
    // picker there would hang the CLI on a question nobody sees.
    let asks = format == CredsFormat::Env;
    let alias = if asks {
        named_or_picked(args, &endpoint, alias, Purpose::Creds).await?
    } else {
        role_or_active(&endpoint, alias, "creds").await?
    };
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
    if asks {
        picker::remember(args, &alias);
    }
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

/// `fintors sync`: each session's listing, then what changed; exit 1 if a session could not be
/// listed (its last listing is still served).
pub async fn sync(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let r: SyncReport = post_ok(&endpoint, paths::SYNC).await?;
    if r.identity_center.is_empty() {
        return Err(CommandError::NothingToSync);
    }
    if r.still_listing {
        return Ok(
            "still listing (a large organisation, at the portal's pace of about 20 calls a \
                   second): the roles follow when it is done; `fintors status` says when\n"
                .to_owned(),
        );
    }
    let mut out = String::new();
    let mut failed = Vec::new();
    for session in &r.identity_center {
        match &session.last_error {
            None => out.push_str(&format!(
                "SSO session \"{}\": {} roles listed\n",
                session.sso_session, session.listed
            )),
            Some(error) => failed.push(super::status::listing_failure(session, error)),
        }
    }
    out.push_str(&format!(
        "roles: {} new, {} gone; active role: {}\n",
        r.added.len(),
        r.removed.len(),
        r.active_role.as_deref().unwrap_or("none")
    ));
    if failed.is_empty() {
        Ok(out)
    } else {
        print!("{out}");
        Err(CommandError::NotListed(failed))
    }
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
            // What is printed does not depend on the daemon: a shell's start-up file may run
            // this before fintors starts. Something else on its port is another matter.
            match report(&endpoint).await {
                Ok(_) => {}
                Err(CommandError::Client(e @ ClientError::NotRunning { .. })) => {
                    eprintln!("fintors: warning: {e}")
                }
                Err(e) => return Err(e),
            }
            for warning in super::environment::warnings() {
                eprintln!("fintors: warning: {warning}");
            }
            let mut lines = vec![(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                Some(endpoint.imds_url()),
            )];
            if let Some(region) = region_for_botocore(&endpoint).await {
                lines.push(("AWS_DEFAULT_REGION", Some(region)));
            }
            lines
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
        EnvChoice::Role(role, place) => {
            let endpoint = Endpoint::discover(args)?;
            let role = named_or_picked(args, &endpoint, role, Purpose::EnvRole).await?;
            let pin = Pin::obtain(args, &role, place).await?;
            picker::remember(args, &role);
            pin.assignments(place)
        }
    };
    pin::render(&assignments, format)
}

/// Where the instance metadata gives the region, as the SDKs that read it there ask.
const IMDS_REGION: &str = "/latest/meta-data/placement/region";

/// The region `fintors env` exports for botocore and the AWS CLI v1, which read none from IMDS:
/// none when this shell gives them one already; else `AWS_REGION` if set (so both agree), else
/// the instance's region. The variable is read by the other SDKs too (JS v3 aside), before the
/// instance metadata: `fintors use` says when a switch leaves it behind.
async fn region_for_botocore(endpoint: &Endpoint) -> Option<String> {
    use super::environment::{botocore_region, variable};
    if botocore_region(&variable).await.is_some() {
        return None;
    }
    if let Some(region) = variable("AWS_REGION") {
        return Some(region);
    }
    instance_region(endpoint).await
}

/// The instance's region as IMDS serves it: the active role's own, if it names one.
async fn instance_region(endpoint: &Endpoint) -> Option<String> {
    let (status, body) = endpoint
        .request_in_session(Method::GET, IMDS_REGION, None)
        .await
        .ok()?;
    let region = std::str::from_utf8(&body).ok()?;
    (status == StatusCode::OK && crate::model::Region::parse(region).is_ok())
        .then(|| region.to_owned())
}

/// What `fintors env` points at.
#[derive(Debug, Clone, Copy)]
pub enum EnvChoice<'a> {
    Imds,
    /// `--ecs`: the container endpoint for the active role.
    ActiveRole,
    /// `--role [ROLE] [--container]`: the role named, or picked.
    Role(Option<&'a str>, Place),
}

/// `fintors exec [ROLE] [CMD...]`: checks the role (named or picked), then becomes CMD pinned
/// to it, or with no CMD the user's shell with the role in its prompt. Returns only if that
/// fails.
pub async fn exec(
    args: &ClientArgs,
    role: Option<&str>,
    command: &[std::ffi::OsString],
) -> CommandError {
    use std::os::unix::process::CommandExt;
    let pinned = async {
        let endpoint = Endpoint::discover(args)?;
        let role = named_or_picked(args, &endpoint, role, Purpose::Exec).await?;
        // An interactive shell reading a pipe or /dev/null would run what it reads, or exit at
        // once: a script that forgot its command gets told.
        if command.is_empty() && !std::io::stdin().is_terminal() {
            return Err(CommandError::NoCommand {
                role: shell::word(&role),
            });
        }
        Pin::obtain(args, &role, Place::Here).await
    };
    let pin = match pinned.await {
        Ok(pin) => pin,
        Err(e) => return e,
    };
    picker::remember(args, pin.role().as_str());
    let (program, mut child, files) = match command.split_first() {
        Some((program, arguments)) => {
            let mut child = std::process::Command::new(program);
            child.args(arguments);
            (program.clone(), child, None)
        }
        None => {
            let program = subshell::users_shell();
            match subshell::command(&program, pin.role()) {
                Ok(shell) => {
                    eprintln!(
                        "fintors: {} pinned to {} (exit to leave it)",
                        program.to_string_lossy(),
                        pin.role()
                    );
                    (program, shell.command, shell.files)
                }
                Err(why) => {
                    return CommandError::Exec {
                        program: program.to_string_lossy().into_owned(),
                        why,
                    };
                }
            }
        }
    };
    for (name, value) in pin.assignments(Place::Here) {
        match value {
            Some(v) => child.env(name, v),
            None => child.env_remove(name),
        };
    }
    let why = child.exec();
    if let Some(files) = files {
        let _ = std::fs::remove_dir_all(files);
    }
    CommandError::Exec {
        program: program.to_string_lossy().into_owned(),
        why,
    }
}
