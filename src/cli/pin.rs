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
use super::daemon::{CommandError, report, unknown_role};
use super::keys;
use crate::api::{StatusReport, paths};
use crate::config::aws_profiles::{self, DefaultCredentials};
use crate::ec2::CONTAINER_ADDR;
use crate::ec2::container_tokens::Scope;
use crate::ec2::document::ContainerError;
use crate::model::{Alias, Region, Secret, shell};

/// The variables that win over `AWS_CONTAINER_CREDENTIALS_FULL_URI` and its token in the SDKs'
/// default chains (environment keys, a selected profile, web identity, the relative container
/// URI, a token file), or would describe other credentials than the role's; removed for a
/// pinned process.
pub const OVERRIDING: [&str; 12] = [
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
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// What a process pinned to one role must not keep: the way to the active role (the IMDS
/// endpoint fintors printed) and the admin API's token.
pub const WITHHELD: [&str; 2] = ["AWS_EC2_METADATA_SERVICE_ENDPOINT", "FINTORS_ADMIN_TOKEN"];

/// Where the pinned process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On this machine: the endpoint on 127.0.0.1, the token by value.
    Here,
    /// In a container on the bridge `network up --containers` serves: the endpoint at
    /// 169.254.170.2, the token by value.
    Container,
}

/// A variable to set, or to remove.
pub type Assignment = (&'static str, Option<String>);

/// What pinning one role takes, checked with the daemon.
#[derive(Debug, Clone)]
pub struct Pin {
    role: Alias,
    /// The container endpoint on this machine's loopback.
    endpoint: Endpoint,
    /// The role's own token: it opens `/creds/ROLE` and nothing else.
    token: Secret,
    region: Option<Region>,
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
        let alias = Alias::parse(role).map_err(|e| CommandError::BadReport {
            daemon: daemon.clone(),
            what: format!("a role {role:?}: {e}"),
        })?;
        let region = described
            .region
            .as_deref()
            .map(Region::parse)
            .transpose()
            .map_err(|e| CommandError::BadReport {
                daemon: daemon.clone(),
                what: format!("an invalid region for {role}: {e}"),
            })?;
        let endpoint = container_endpoint(&daemon, &report)?;
        let token = keys::container_key(args)?.token(Scope::Role(role));
        check_obtainable(&endpoint, role, &token).await?;
        let hide_credentials_file = match place {
            Place::Container => false,
            Place::Here => match aws_profiles::default_credentials().await {
                DefaultCredentials::Neither => false,
                DefaultCredentials::CredentialsFile => true,
                shadowing @ DefaultCredentials::ConfigFile => {
                    return Err(CommandError::Shadowed(
                        shadowing
                            .shadowing_fintors()
                            .expect("the config file shadows"),
                    ));
                }
            },
        };
        Ok(Pin {
            role: alias,
            endpoint,
            token,
            region,
            hide_credentials_file,
        })
    }

    /// The role pinned.
    pub fn role(&self) -> &Alias {
        &self.role
    }

    /// The environment of a process pinned to the role, in the order to apply it.
    pub fn assignments(&self, place: Place) -> Vec<Assignment> {
        let mut vars: Vec<Assignment> = OVERRIDING
            .iter()
            .chain(&WITHHELD)
            .map(|name| (*name, None))
            .collect();
        let set = |name, value: &str| (name, Some(value.to_owned()));
        let base = match place {
            Place::Here => self.endpoint.to_string(),
            Place::Container => format!("http://{CONTAINER_ADDR}"),
        };
        vars.push(set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{base}{}/{}", paths::CONTAINER_ACTIVE, self.role),
        ));
        // The token by value only: every SDK reads the variable, and nothing on disk names it.
        vars.push(set(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            self.token.expose(),
        ));
        if let Some(region) = &self.region {
            vars.push(set("AWS_REGION", region.as_str()));
            vars.push(set("AWS_DEFAULT_REGION", region.as_str()));
        }
        if self.hide_credentials_file {
            vars.push(set("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"));
        }
        vars.push(set("FINTORS_ROLE", self.role.as_str()));
        vars
    }
}

/// The container endpoint the daemon reports, accepted only on loopback: a token is never sent
/// anywhere else, whatever answers on the daemon's port says.
pub fn container_endpoint(
    daemon: &Endpoint,
    report: &StatusReport,
) -> Result<Endpoint, CommandError> {
    let Some(url) = &report.container_endpoint else {
        return Err(CommandError::NoContainerEndpoint {
            daemon: daemon.clone(),
        });
    };
    let endpoint = url
        .strip_suffix(paths::CONTAINER_ACTIVE)
        .and_then(|base| Endpoint::parse(base).ok())
        .filter(Endpoint::is_loopback);
    endpoint.ok_or_else(|| CommandError::ForeignContainerEndpoint {
        daemon: daemon.clone(),
        url: url.clone(),
    })
}

/// Fetches the role's credentials once through the container endpoint, as the pinned process
/// will, and says why not if that fails.
async fn check_obtainable(
    endpoint: &Endpoint,
    role: &str,
    token: &Secret,
) -> Result<(), CommandError> {
    let path = format!("{}/{role}", paths::CONTAINER_ACTIVE);
    let (status, body) = endpoint.get_authorized(&path, token.expose()).await?;
    if status.is_success() {
        return Ok(());
    }
    Err(CommandError::NoCredentials {
        role: role.to_owned(),
        why: match serde_json::from_slice::<ContainerError>(&body) {
            Ok(e) => format!("{}: {}", e.code, e.message),
            Err(_) => format!("{endpoint}{path} answered {status}"),
        },
    })
}

/// `assignments` as lines for `eval` in sh or fish, or for `docker run --env-file` (which
/// cannot remove a variable, and needs none removed in a fresh container). A value with a
/// control character is refused: in an env-file a newline would start another variable.
pub fn render(assignments: &[Assignment], format: EnvFormat) -> Result<String, CommandError> {
    let mut out = String::new();
    for (name, value) in assignments {
        if let Some(v) = value
            && v.chars().any(char::is_control)
        {
            return Err(CommandError::ControlCharacter {
                name,
                value: v.clone(),
            });
        }
        let line = match (format, value) {
            (EnvFormat::Sh, Some(v)) => format!("export {name}={}", shell::quote(v)),
            (EnvFormat::Sh, None) => format!("unset {name}"),
            (EnvFormat::Fish, Some(v)) => format!("set -gx {name} {}", shell::quote_fish(v)),
            (EnvFormat::Fish, None) => format!("set -e {name}"),
            (EnvFormat::EnvFile, Some(v)) => format!("{name}={v}"),
            (EnvFormat::EnvFile, None) => continue,
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(region: Option<&str>, hide: bool) -> Pin {
        Pin {
            role: Alias::parse("ops").unwrap(),
            endpoint: Endpoint::parse("http://127.0.0.1:16926").unwrap(),
            token: Secret::new("tok"),
            region: region.map(|r| Region::parse(r).unwrap()),
            hide_credentials_file: hide,
        }
    }

    fn value<'a>(vars: &'a [Assignment], name: &str) -> Option<&'a str> {
        vars.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn report(container_endpoint: Option<&str>) -> StatusReport {
        serde_json::from_value(serde_json::json!({
            "version": "0", "active_role": null, "imdsv2_required": false,
            "container_endpoint": container_endpoint, "roles": []
        }))
        .unwrap()
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
        assert_eq!(value(&vars, "AWS_REGION"), Some("eu-west-1"));
        assert_eq!(value(&vars, "AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(value(&vars, "FINTORS_ROLE"), Some("ops"));
        for name in ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"] {
            assert!(vars.contains(&(name, None)), "{name} removed");
        }
        assert_eq!(value(&vars, "AWS_SHARED_CREDENTIALS_FILE"), None);
    }

    #[test]
    fn a_pinned_process_keeps_no_token_file_no_imds_endpoint_and_no_admin_token() {
        let vars = pin(None, false).assignments(Place::Here);
        for name in [
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            "FINTORS_ADMIN_TOKEN",
        ] {
            assert!(vars.contains(&(name, None)), "{name} removed");
            assert_eq!(value(&vars, name), None, "{name} not set again");
        }
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
            render(&vars, EnvFormat::Sh).unwrap(),
            "unset A\nexport B='it'\\''s'\n"
        );
        assert_eq!(
            render(&vars, EnvFormat::Fish).unwrap(),
            "set -e A\nset -gx B 'it\\'s'\n"
        );
        assert_eq!(render(&vars, EnvFormat::EnvFile).unwrap(), "B=it's\n");
    }

    #[test]
    fn a_value_with_a_newline_is_never_printed() {
        let vars: Vec<Assignment> = vec![("AWS_REGION", Some("x\nAWS_PROFILE=evil".into()))];
        for format in [EnvFormat::Sh, EnvFormat::Fish, EnvFormat::EnvFile] {
            assert!(render(&vars, format).is_err());
        }
    }

    #[test]
    fn only_a_loopback_container_endpoint_is_accepted() {
        let daemon = Endpoint::parse("http://127.0.0.1:16925").unwrap();
        let ok = container_endpoint(&daemon, &report(Some("http://127.0.0.1:16926/creds")));
        assert_eq!(ok.unwrap().to_string(), "http://127.0.0.1:16926");
        for foreign in [
            "http://evil.example:80/creds",
            "http://10.0.0.1:16926/creds",
            "http://localhost.evil.example/creds",
            "http://127.0.0.1:16926/elsewhere",
            "https://127.0.0.1:16926/creds",
        ] {
            let e = container_endpoint(&daemon, &report(Some(foreign)));
            assert!(e.is_err(), "{foreign}");
        }
        assert!(container_endpoint(&daemon, &report(None)).is_err());
    }
}
