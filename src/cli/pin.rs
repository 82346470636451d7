//! One role for one process tree, whatever the machine-wide active role is: what `fintors exec`
//! gives a command, and `fintors env --role` a shell or a container.
//!
//! What they get is the container credentials endpoint's `/creds/ROLE` and its token, never the
//! keys themselves: the SDK's container provider fetches the role's credentials from the daemon
//! and fetches them again before they expire, so a job that runs all day keeps working, and every
//! process on a role shares the daemon's one cache for it. What would win over the container
//! provider in an SDK's default chain is taken out of the way: the key and profile variables,
//! and a `default` profile with keys in the credentials file. Before anything is handed over the
//! role is fetched once through that endpoint, so a mistake is one line before anything runs.

use super::args::{ClientArgs, EnvFormat};
use super::client::Endpoint;
use super::commands::{CommandError, report, unknown_role};
use crate::api::{StatusReport, paths};
use crate::config::aws_profiles::{self, DefaultCredentials};
use crate::ec2::CONTAINER_ADDR;
use crate::ec2::document::ContainerError;
use crate::model::shell;

/// The variables that win over `AWS_CONTAINER_CREDENTIALS_FULL_URI` in the SDKs' default
/// chains (environment keys, a selected profile, web identity, the relative container URI), or
/// would describe other credentials than the role's; removed for a pinned process.
pub const OVERRIDING: [&str; 11] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// Where the pinned process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On this machine: the endpoint on 127.0.0.1, the token by file and by value.
    Here,
    /// In a container on the bridge `network up --containers` serves: the endpoint at
    /// 169.254.170.2, the token by value (the host's file is not there).
    Container,
}

/// A variable to set, or to remove.
pub type Assignment = (&'static str, Option<String>);

/// What pinning one role takes, checked with the daemon.
#[derive(Debug, Clone)]
pub struct Pin {
    role: String,
    /// The container endpoint on this machine, `http://127.0.0.1:PORT`.
    endpoint: String,
    token: String,
    token_file: String,
    region: Option<String>,
    /// The credentials file's `default` profile has keys, which the SDKs would use first.
    hide_credentials_file: bool,
}

impl Pin {
    /// Checks that the daemon is up, serves the container endpoint and knows `role`, and that
    /// the role's credentials can be had through that endpoint right now.
    pub async fn obtain(args: &ClientArgs, role: &str, place: Place) -> Result<Pin, CommandError> {
        let daemon = Endpoint::discover(args)?;
        let report = report(&daemon).await?;
        let Some(described) = report.roles.iter().find(|r| r.alias == role) else {
            return Err(unknown_role(role, &report));
        };
        let (url, token_file) = container_endpoint(&daemon, &report)?;
        let token = read_token(&token_file)?;
        let endpoint = url
            .strip_suffix(paths::CONTAINER_ACTIVE)
            .unwrap_or(&url)
            .to_owned();
        check_obtainable(&Endpoint::parse(&endpoint)?, role, &token).await?;
        let hide_credentials_file = match place {
            Place::Container => false,
            Place::Here => match aws_profiles::default_credentials().await {
                DefaultCredentials::Neither => false,
                DefaultCredentials::CredentialsFile => true,
                shadowing @ DefaultCredentials::ConfigFile => {
                    return Err(CommandError::Failed(
                        shadowing
                            .shadowing_fintors()
                            .expect("the config file shadows"),
                    ));
                }
            },
        };
        Ok(Pin {
            role: role.to_owned(),
            endpoint,
            token,
            token_file,
            region: described.region.clone(),
            hide_credentials_file,
        })
    }

    /// The environment of a process pinned to the role, in the order to apply it.
    pub fn assignments(&self, place: Place) -> Vec<Assignment> {
        let mut vars: Vec<Assignment> = OVERRIDING.iter().map(|name| (*name, None)).collect();
        let set = |name, value: &str| (name, Some(value.to_owned()));
        match place {
            Place::Here => {
                vars.push(set(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    &format!("{}/creds/{}", self.endpoint, self.role),
                ));
                // Both forms, since SDKs disagree on which wins (Java v2 reads the variable
                // first, botocore, Go and Rust the file) and Go v2 1.17 reads the variable only.
                vars.push(set(
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                    &self.token_file,
                ));
            }
            Place::Container => {
                vars.push(set(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    &format!("http://{CONTAINER_ADDR}/creds/{}", self.role),
                ));
                // A file named from elsewhere would win over the variable; the host's is not here.
                vars.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", None));
            }
        }
        vars.push(set("AWS_CONTAINER_AUTHORIZATION_TOKEN", &self.token));
        if let Some(region) = &self.region {
            vars.push(set("AWS_REGION", region));
            vars.push(set("AWS_DEFAULT_REGION", region));
        }
        if self.hide_credentials_file {
            vars.push(set("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"));
        }
        vars.push(set("FINTORS_ROLE", &self.role));
        vars
    }
}

/// The container endpoint's URL and token file, as the daemon reports them.
pub fn container_endpoint(
    daemon: &Endpoint,
    report: &StatusReport,
) -> Result<(String, String), CommandError> {
    match (&report.container_endpoint, &report.container_token_file) {
        (Some(url), Some(token_file)) => Ok((url.clone(), token_file.clone())),
        _ => Err(CommandError::Failed(format!(
            "fintors at {daemon} serves no container endpoint (it runs with --ecs-port off or \
             \"ecs_port\": false): restart it without that, or with --ecs-port PORT"
        ))),
    }
}

/// The container endpoint's token, from the file only the daemon's user can read.
pub fn read_token(token_file: &str) -> Result<String, CommandError> {
    std::fs::read_to_string(token_file)
        .map(|token| token.trim_end().to_owned())
        .map_err(|e| {
            CommandError::Failed(format!(
                "cannot read the container token {token_file}: {e} (it belongs to the user the \
                 daemon runs as)"
            ))
        })
}

/// Fetches the role's credentials once through the container endpoint, as the pinned process
/// will, and says why not if that fails.
async fn check_obtainable(
    endpoint: &Endpoint,
    role: &str,
    token: &str,
) -> Result<(), CommandError> {
    let path = format!("{}/{role}", paths::CONTAINER_ACTIVE);
    let (status, body) = endpoint.get_authorized(&path, token).await?;
    if status.is_success() {
        return Ok(());
    }
    Err(CommandError::Failed(
        match serde_json::from_slice::<ContainerError>(&body) {
            Ok(e) => format!("no credentials for {role}: {}: {}", e.code, e.message),
            Err(_) => format!("no credentials for {role}: {endpoint}{path} answered {status}"),
        },
    ))
}

/// `assignments` as lines for `eval` in sh or fish, or for `docker run --env-file` (which
/// cannot remove a variable, and needs none removed in a fresh container).
pub fn render(assignments: &[Assignment], format: EnvFormat) -> String {
    let mut out = String::new();
    for (name, value) in assignments {
        let line = match (format, value) {
            (EnvFormat::Sh, Some(v)) => format!("export {name}={}", shell::quote(v)),
            (EnvFormat::Sh, None) => format!("unset {name}"),
            (EnvFormat::Fish, Some(v)) => format!("set -gx {name} {}", shell::quote(v)),
            (EnvFormat::Fish, None) => format!("set -e {name}"),
            (EnvFormat::EnvFile, Some(v)) => format!("{name}={v}"),
            (EnvFormat::EnvFile, None) => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Quotes `s` for POSIX shells (and fish): single quotes, with embedded ones escaped.
#[cfg(test)]
mod tests {
    use super::*;

    fn pin(region: Option<&str>, hide: bool) -> Pin {
        Pin {
            role: "ops".into(),
            endpoint: "http://127.0.0.1:16926".into(),
            token: "tok".into(),
            token_file: "/state/container-token".into(),
            region: region.map(str::to_owned),
            hide_credentials_file: hide,
        }
    }

    fn value<'a>(vars: &'a [Assignment], name: &str) -> Option<&'a str> {
        vars.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    #[test]
    fn a_pinned_process_gets_the_roles_endpoint_and_token_and_no_keys() {
        let vars = pin(Some("eu-west-1"), false).assignments(Place::Here);
        assert_eq!(
            value(&vars, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            Some("http://127.0.0.1:16926/creds/ops")
        );
        assert_eq!(
            value(&vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            Some("tok")
        );
        assert_eq!(
            value(&vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            Some("/state/container-token")
        );
        assert_eq!(value(&vars, "AWS_REGION"), Some("eu-west-1"));
        assert_eq!(value(&vars, "AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(value(&vars, "FINTORS_ROLE"), Some("ops"));
        for name in ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"] {
            assert!(vars.contains(&(name, None)), "{name} removed");
        }
        assert_eq!(value(&vars, "AWS_SHARED_CREDENTIALS_FILE"), None);
    }

    #[test]
    fn a_role_without_a_region_leaves_the_region_alone() {
        let vars = pin(None, false).assignments(Place::Here);
        assert!(!vars.iter().any(|(n, _)| n.contains("REGION")));
    }

    #[test]
    fn a_default_profile_with_keys_is_hidden_from_the_pinned_process() {
        let vars = pin(None, true).assignments(Place::Here);
        assert_eq!(
            value(&vars, "AWS_SHARED_CREDENTIALS_FILE"),
            Some("/dev/null")
        );
    }

    #[test]
    fn inside_a_container_the_endpoint_is_the_ecs_address_and_the_token_a_value() {
        let vars = pin(None, false).assignments(Place::Container);
        assert_eq!(
            value(&vars, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            Some("http://169.254.170.2/creds/ops")
        );
        assert_eq!(value(&vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), None);
        assert_eq!(
            value(&vars, "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            Some("tok")
        );
    }

    #[test]
    fn each_format_sets_and_removes_in_its_own_syntax() {
        let vars: Vec<Assignment> = vec![("A", None), ("B", Some("it's".into()))];
        assert_eq!(
            render(&vars, EnvFormat::Sh),
            "unset A\nexport B='it'\\''s'\n"
        );
        assert_eq!(
            render(&vars, EnvFormat::Fish),
            "set -e A\nset -gx B 'it'\\''s'\n"
        );
        assert_eq!(render(&vars, EnvFormat::EnvFile), "B=it's\n");
    }
}
