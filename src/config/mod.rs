//! The configuration file: finto's JSON format, read once and validated whole.
//!
//! What the rest of fintors sees comes out of here typed and already valid (the types of
//! [`crate::model`]), so a typo is caught at start-up, not at the moment a user switches roles.
//! Every mistake in the file is reported at once, each with its line and column and what to
//! write instead. Unknown keys are mistakes too: a misspelt `"sesion_name"` must not silently
//! become the default.

pub mod aws_profiles;
mod file;
pub mod identity_center;
mod instance;
mod roles;
mod source;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use instance::InstanceConfig;
pub use roles::{ROLE_FIELDS, RawRole};
use source::Source;
pub use source::{Position, Problem};

use crate::model::{Alias, MfaSerial, Role};

/// The size past which the access log (`--log`) is rotated to `FILE.1`, unless
/// `--log-max-bytes` says otherwise.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Where the daemon listens and the clients look, with no flags and no configuration: loopback
/// needs no root, and `fintors network up` forwards 169.254.169.254:80 here for every SDK.
pub const DEFAULT_ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
pub const DEFAULT_PORT: u16 = 16925;
/// The container credentials endpoint's port, next to IMDS's: on by default, because it is how
/// a command, a shell or a container gets a role of its own (`fintors exec`, `fintors env
/// --role`) while the machine-wide role stays as it is.
pub const DEFAULT_ECS_PORT: u16 = 16926;
pub const DEFAULT_CONFIG: &str = "~/.fintorc";

/// A minimal configuration, shown when the file is missing so the fix is one copy-paste away.
/// Its base profile is a named one: keys under `[default]` are what every SDK uses before it
/// asks IMDS, so fintors would never be asked.
pub const EXAMPLE: &str = r#"{
  "credentials": { "profile": "identity" },
  "roles": {
    "example": "arn:aws:iam::123456789012:role/example"
  },
  "default_role": "example"
}"#;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the configuration came from, for messages.
    pub path: PathBuf,
    pub base_credentials: BaseCredentials,
    pub mfa: MfaConfig,
    pub roles: BTreeMap<Alias, Role>,
    pub default_role: Option<Alias>,
    /// With `aws_profiles`, the default role is checked only once the profiles are imported.
    pending_default_role: Option<(String, Option<Position>)>,
    /// Where the daemon listens, unless the command line says otherwise; the client subcommands
    /// use it to find the daemon.
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    /// Where the container credentials endpoint listens on 127.0.0.1, or that it is off.
    pub ecs_port: Option<ContainerPort>,
    /// Serve the admin API on 127.0.0.1 at this port.
    pub admin_port: Option<u16>,
    /// Also import every profile with a `role_arn` from the AWS config file as a role.
    pub aws_profiles: bool,
    /// What the metadata tree says about "this instance".
    pub instance: InstanceConfig,
    /// Local users (names or uids) whose processes are answered besides the daemon's own user
    /// and root.
    pub allow_users: Vec<String>,
    /// `credentials.login_process`: the command `fintors login` runs (through `sh -c`, in the
    /// user's terminal) to log the base identity in again, e.g. `saml2aws login`; without it,
    /// `fintors login` signs in to the IAM Identity Center sessions in use.
    pub login_process: Option<String>,
    /// `credentials.notify` (default true): a desktop notification when a login is needed, as
    /// well as the log line and `fintors status`.
    pub notify: bool,
    /// The IAM Identity Center sessions whose every account and role are roles too, by the
    /// `[sso-session NAME]` of the AWS config file.
    pub identity_center: BTreeMap<String, identity_center::Discovery>,
}

/// Where the daemon listens, as far as the configuration or the command line says: each
/// setting from the command line if given there, else from the file. A change of the file that
/// the command line overrides changes nothing, not even after a restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listening {
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    pub ecs_port: Option<ContainerPort>,
    pub admin_port: Option<u16>,
}

impl Listening {
    /// `config`'s settings, each overridden by the command line's (`self`) where given.
    pub fn over(&self, config: &Config) -> Listening {
        Listening {
            addr: self.addr.or(config.addr),
            port: self.port.or(config.port),
            ecs_port: self.ecs_port.or(config.ecs_port),
            admin_port: self.admin_port.or(config.admin_port),
        }
    }
}

/// `ecs_port` / `--ecs-port`: the container credentials endpoint's port on 127.0.0.1, or `off`
/// (`false` in the file) for a daemon that serves IMDS alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerPort {
    Port(u16),
    Off,
}

impl ContainerPort {
    /// The port to bind, if the endpoint is served; the default when nothing says otherwise.
    pub fn resolve(setting: Option<ContainerPort>) -> Option<u16> {
        match setting.unwrap_or(ContainerPort::Port(DEFAULT_ECS_PORT)) {
            ContainerPort::Port(port) => Some(port),
            ContainerPort::Off => None,
        }
    }
}

impl std::str::FromStr for ContainerPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(ContainerPort::Off),
            _ => s
                .parse()
                .map(ContainerPort::Port)
                .map_err(|_| format!("{s:?} is neither a port number nor `off`")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ContainerPort {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ContainerPort;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number, or false to serve no container endpoint")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ContainerPort, E> {
                u16::try_from(v)
                    .map(ContainerPort::Port)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ContainerPort, E> {
                match v {
                    false => Ok(ContainerPort::Off),
                    true => Err(E::invalid_value(serde::de::Unexpected::Bool(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Where fintors's own (long-lived) credentials come from: the ones it calls AssumeRole with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseCredentials {
    /// No `credentials` section: the standard chain (environment, shared files, SSO, process),
    /// without the IMDS and container providers. fintors must never ask itself.
    DefaultChain,
    /// A named profile, read with the SDK's own profile machinery from the AWS config file and
    /// the credentials file, so a profile using `credential_process`, SSO or `role_arn` works as
    /// it does for the AWS CLI, and one kept in `~/.aws/config` alone needs no credentials file.
    Profile {
        /// `credentials.file`; `None`: the standard place (`AWS_SHARED_CREDENTIALS_FILE`, else
        /// `~/.aws/credentials`).
        file: Option<PathBuf>,
        profile: String,
    },
}

impl BaseCredentials {
    /// The profile the base credentials are read from: the configured one, else the one the
    /// default chain would use (`AWS_PROFILE`, else `default`).
    pub fn profile_name(&self) -> String {
        match self {
            BaseCredentials::Profile { profile, .. } => profile.clone(),
            BaseCredentials::DefaultChain => std::env::var("AWS_PROFILE")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
        }
    }

    /// The credentials file a profile is read from, whether or not it exists.
    pub fn credentials_file(&self) -> Option<PathBuf> {
        match self {
            BaseCredentials::DefaultChain => None,
            BaseCredentials::Profile { file: Some(f), .. } => Some(f.clone()),
            BaseCredentials::Profile { file: None, .. } => Some(aws_file(
                "AWS_SHARED_CREDENTIALS_FILE",
                "~/.aws/credentials",
            )),
        }
    }
}

/// Where aws-config reads one of its files: the path in `variable` if set, else `default`
/// (`~` expanded in either).
pub fn aws_file(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .filter(|f| !f.is_empty())
        .map_or_else(
            || expand_tilde(default),
            |f| expand_tilde(&f.to_string_lossy()),
        )
}

/// MFA for the base credentials: one GetSessionToken per device, reused for every role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaConfig {
    /// Serial for roles that name none of their own.
    pub serial: Option<MfaSerial>,
    /// A command that prints a current code (e.g. a YubiKey OATH tool).
    pub process: Option<String>,
    /// GetSessionToken duration.
    pub session_seconds: u32,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            serial: None,
            process: None,
            session_seconds: DEFAULT_MFA_SESSION_SECONDS,
        }
    }
}

/// GetSessionToken's range and fintors's default (12 hours).
pub const MFA_SESSION_SECONDS: std::ops::RangeInclusive<u32> = 900..=129_600;
pub const DEFAULT_MFA_SESSION_SECONDS: u32 = 43_200;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {path} does not exist.\n\
         Create it (or point --config / FINTORS_CONFIG at one); a minimal example, your keys in \
         [identity] of ~/.aws/credentials (not [default], which SDKs use before fintors):\n{EXAMPLE}"
    )]
    Missing { path: PathBuf },
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: \"aws_profiles\" is on, but {reason}")]
    AwsProfiles { path: PathBuf, reason: String },
    /// Everything wrong with a well-formed file, one line each, in file order.
    #[error("{}", render(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// `path:line:column: place: message`, one line a problem, as compilers write them (and editors
/// jump to them).
fn render(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match p.position {
            Some(_) => format!("{}:{p}", path.display()),
            None => format!("{}: {p}", path.display()),
        })
        .collect();
    lines.join("\n")
}

impl ConfigError {
    fn invalid(path: &Path, problems: Vec<Problem>) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        }
    }
}

/// Files others on this machine can read that hold (or lead to) secrets: the config (external
/// ids, MFA settings) and the base credentials file. Each entry names the file and the fix.
pub fn exposed_files(config: &Config) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![config.path.clone()];
    files.extend(config.base_credentials.credentials_file());
    files
        .into_iter()
        .filter_map(|path| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode();
            (mode & 0o077 != 0).then(|| {
                format!(
                    "{} is readable by other users (mode {:o}): run `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )
            })
        })
        .collect()
}

/// `$XDG_STATE_HOME/fintors`, else `~/.local/state/fintors`.
pub fn default_state_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("fintors")),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| Path::new(&home).join(".local/state/fintors")),
    }
}

/// Expands a leading `~` to the home directory, as finto and the shell do.
pub fn expand_tilde(path: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    match path.strip_prefix('~') {
        Some("") => home().unwrap_or_else(|| PathBuf::from(path)),
        Some(rest) if rest.starts_with('/') => match home() {
            Some(h) => h.join(&rest[1..]),
            None => PathBuf::from(path),
        },
        _ => PathBuf::from(path),
    }
}

impl Config {
    /// Reads the file at `path` and, when it (or `--aws-profiles`) asks for them, the roles of
    /// the AWS config file; profiles that cannot be roles are logged with the reason.
    pub async fn read(path: &Path, aws_profiles: bool) -> Result<Config, ConfigError> {
        let mut config = Config::load(path)?;
        if aws_profiles || config.aws_profiles {
            let profiles =
                aws_profiles::load()
                    .await
                    .map_err(|reason| ConfigError::AwsProfiles {
                        path: path.to_owned(),
                        reason,
                    })?;
            let imported = aws_profiles::roles_from(&profiles);
            for reason in &imported.skipped {
                tracing::warn!("{reason}");
            }
            config.finish_import(imported.roles)?;
        }
        Ok(config)
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| {
            if reason.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::Unreadable {
                    path: path.to_owned(),
                    reason,
                }
            }
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates configuration text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let source = Source::parse(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; we put the position up front instead.
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            ConfigError::Syntax {
                path: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        let mut checker = source.checker();
        match file::read(&mut checker, &source.value, path) {
            Some(config) if checker.is_clean() => Ok(config),
            _ => Err(ConfigError::invalid(path, checker.into_problems())),
        }
    }

    /// This configuration with the roles its Identity Center sessions discovered: the roles
    /// written (or imported) win on a clash, and a default role that names a discovered one
    /// is resolved.
    pub fn with_discovered(&self, discovered: impl IntoIterator<Item = Role>) -> Config {
        let mut config = self.clone();
        for role in discovered {
            config.roles.entry(role.alias.clone()).or_insert(role);
        }
        config.resolve_pending_default();
        config
    }

    /// The default role's name when it names no role (yet): with Identity Center, until
    /// discovery lists it.
    pub fn unresolved_default(&self) -> Option<&str> {
        match (&self.default_role, &self.pending_default_role) {
            (None, Some((name, _))) => Some(name),
            _ => None,
        }
    }

    fn resolve_pending_default(&mut self) {
        if let Some((name, _)) = &self.pending_default_role {
            self.default_role = self.roles.keys().find(|a| a.as_str() == name).cloned();
        }
    }

    /// Adds roles imported from the AWS config file (`aws_profiles`): explicit roles win on a
    /// clash. Then the checks the import had to wait for: at least one role, a known default.
    pub fn finish_import(&mut self, imported: Vec<Role>) -> Result<(), ConfigError> {
        for role in imported {
            self.roles.entry(role.alias.clone()).or_insert(role);
        }
        if self.roles.is_empty() && self.identity_center.is_empty() {
            return Err(ConfigError::invalid(
                &self.path,
                vec![Problem::new(
                    &["roles"],
                    "no roles are configured and no profile in the AWS config file has a \
                     role_arn; add a role",
                )],
            ));
        }
        // With Identity Center, a chain may lead to a role discovered later.
        let later = !self.identity_center.is_empty();
        let chains: Vec<Problem> = self
            .roles
            .values()
            .filter_map(|role| {
                file::chain_problem(&self.roles, role, later)
                    .map(|p| Problem::new(&["roles", role.alias.as_str(), "via"], p))
            })
            .collect();
        if !chains.is_empty() {
            return Err(ConfigError::invalid(&self.path, chains));
        }
        if let Some((name, position)) = self.pending_default_role.take() {
            // With Identity Center, the default may be a role discovered later.
            if !self.identity_center.is_empty() {
                self.pending_default_role = Some((name, position));
                self.resolve_pending_default();
                return Ok(());
            }
            match file::resolve_default_role(&self.roles, &name) {
                Ok(alias) => self.default_role = Some(alias),
                Err(message) => {
                    let mut problem = Problem::new(&["default_role"], message);
                    problem.position = position;
                    return Err(ConfigError::invalid(&self.path, vec![problem]));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/home/u/.fintorc"), text)
    }

    fn error(text: &str) -> String {
        parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn accepts_finto_format_unchanged() {
        let c = parse(
            r#"{ "credentials": { "file": "/creds", "profile": "identity" },
                 "roles": { "example": "arn:aws:iam::123456789012:role/example",
                            "example2": "arn:aws:iam::123456789012:role/example2" },
                 "default_role": "example" }"#,
        )
        .unwrap();
        assert_eq!(
            c.base_credentials,
            BaseCredentials::Profile {
                file: Some("/creds".into()),
                profile: "identity".into()
            }
        );
        assert_eq!(c.roles.len(), 2);
        assert_eq!(c.default_role.unwrap().as_str(), "example");
        let r = &c.roles[&Alias::parse("example2").unwrap()];
        assert_eq!(r.session_name.as_str(), "finto-example2");
        assert_eq!(r.duration_seconds, 3600);
        assert_eq!(r.arn.as_ref().unwrap().account_id(), "123456789012");
        assert_eq!(r.arn.as_ref().unwrap().role_name(), "example2");
        assert_eq!(r.arn.as_ref().unwrap().partition(), "aws");
    }

    #[test]
    fn role_object_form_sets_every_option() {
        let c = parse(
            r#"{ "roles": { "ops": { "arn": "arn:aws-us-gov:iam::123456789012:role/team/ops",
                 "session_name": "me@corp", "duration_seconds": 7200,
                 "external_id": "abc:123/x", "region": "us-gov-west-1" } } }"#,
        )
        .unwrap();
        let r = c.roles.values().next().unwrap();
        assert_eq!(r.session_name.as_str(), "me@corp");
        assert_eq!(r.duration_seconds, 7200);
        assert_eq!(r.external_id.as_ref().unwrap().as_str(), "abc:123/x");
        assert_eq!(r.region.as_ref().unwrap().as_str(), "us-gov-west-1");
        assert_eq!(r.arn.as_ref().unwrap().role_name(), "ops");
        assert_eq!(r.arn.as_ref().unwrap().partition(), "aws-us-gov");
        assert_eq!(c.base_credentials, BaseCredentials::DefaultChain);
        assert_eq!(c.default_role, None);
    }

    #[test]
    fn a_permission_set_is_written_with_its_session_account_and_role_name() {
        let c = parse(
            r#"{ "roles": { "dev": { "sso_session": "corp", "account_id": "111122223333",
                                     "role_name": "Developer", "region": "eu-west-1" } } }"#,
        )
        .unwrap();
        let r = c.roles.values().next().unwrap();
        assert_eq!(r.kind(), "sso");
        assert_eq!(r.region.as_ref().unwrap().as_str(), "eu-west-1");
        assert_eq!(r.arn.as_ref().unwrap().account_id(), "111122223333");
    }

    #[test]
    fn a_permission_set_missing_a_part_or_mixed_with_assume_options_is_refused_naming_each() {
        let e = error(
            r#"{ "roles": {
                 "a": { "sso_session": "corp", "role_name": "Developer" },
                 "b": { "sso_session": "corp", "account_id": "111122223333",
                        "role_name": "Developer", "duration_seconds": 7200 },
                 "c": { "arn": "arn:aws:iam::123456789012:role/c", "sso_session": "corp" },
                 "d": { "session_name": "x" } } }"#,
        );
        let lines: Vec<&str> = e.lines().collect();
        let says = |role: &str, what: &str| {
            lines
                .iter()
                .any(|l| l.contains(&format!("role \"{role}\"")) && l.contains(what))
        };
        assert!(says("a", "missing field `account_id`"), "{e}");
        assert!(
            says("b", "`duration_seconds` does not apply to a permission set"),
            "{e}"
        );
        assert!(says("c", "`arn` and `sso_session` both given"), "{e}");
        assert!(
            says("d", "or `sso_session` + `account_id` + `role_name` (a"),
            "{e}"
        );
        assert_eq!(
            lines.len(),
            4,
            "one line per mistake, none about unwritten fields:\n{e}"
        );
    }

    #[test]
    fn a_role_with_an_arn_takes_no_permission_set_parts_and_a_permission_set_no_mfa() {
        let e = error(
            r#"{ "roles": { "a": { "arn": "arn:aws:iam::123456789012:role/a",
                                   "account_id": "123456789012" } } }"#,
        );
        assert!(e.contains("`account_id` is for a permission set"), "{e}");
        let c = parse(
            r#"{ "credentials": { "mfa_serial": "arn:aws:iam::123456789012:mfa/me" },
                 "roles": { "a": "arn:aws:iam::123456789012:role/a",
                            "p": { "sso_session": "corp", "account_id": "111122223333",
                                   "role_name": "Developer" } } }"#,
        )
        .unwrap();
        let role = |alias: &str| &c.roles[&Alias::parse(alias).unwrap()];
        assert!(role("a").mfa_serial.is_some());
        assert_eq!(
            role("p").mfa_serial,
            None,
            "the portal asks for no MFA code"
        );
    }

    #[test]
    fn a_role_assumed_via_another_keeps_its_source_and_asks_for_at_most_an_hour() {
        let c = parse(
            r#"{ "credentials": { "mfa_serial": "arn:aws:iam::123456789012:mfa/me" },
                 "roles": {
                   "dev": { "sso_session": "corp", "account_id": "111122223333",
                            "role_name": "Developer" },
                   "jump": { "arn": "arn:aws:iam::111122223333:role/jump", "via": "dev" },
                   "deploy": { "arn": "arn:aws:iam::444455556666:role/deploy", "via": "jump",
                               "duration_seconds": 43200 } } }"#,
        )
        .unwrap();
        let role = |alias: &str| &c.roles[&Alias::parse(alias).unwrap()];
        assert_eq!(role("deploy").via.as_ref().unwrap().as_str(), "jump");
        assert_eq!(role("jump").via.as_ref().unwrap().as_str(), "dev");
        assert_eq!(role("deploy").duration_seconds, 3600);
        assert_eq!(
            role("deploy").mfa_serial,
            None,
            "the via role signs, not the base credentials' device"
        );
    }

    #[test]
    fn a_via_naming_no_role_is_refused_with_the_roles_there_are() {
        let e = error(
            r#"{ "roles": { "a": { "arn": "arn:aws:iam::123456789012:role/a", "via": "b" } } }"#,
        );
        assert!(e.contains("role \"a\", field \"via\""), "{e}");
        assert!(e.contains("\"b\" is not one of the roles (a)"), "{e}");
    }

    #[test]
    fn a_chain_that_comes_back_to_itself_is_refused() {
        let e = error(
            r#"{ "roles": { "a": { "arn": "arn:aws:iam::123456789012:role/a", "via": "b" },
                            "b": { "arn": "arn:aws:iam::123456789012:role/b", "via": "a" },
                            "c": { "arn": "arn:aws:iam::123456789012:role/c", "via": "c" } } }"#,
        );
        assert!(e.contains("(a -> b -> a)"), "{e}");
        assert!(e.contains("(c -> c)"), "{e}");
        let with_discovery = error(
            r#"{ "identity_center": { "corp": {} },
                 "roles": { "a": { "arn": "arn:aws:iam::123456789012:role/a", "via": "a" },
                            "b": { "arn": "arn:aws:iam::123456789012:role/b",
                                   "via": "corp-account.admin" } } }"#,
        );
        assert!(with_discovery.contains("(a -> a)"), "{with_discovery}");
        assert_eq!(
            with_discovery.lines().count(),
            1,
            "a hop discovery may list later is no mistake:\n{with_discovery}"
        );
    }

    #[test]
    fn via_is_for_assumed_roles_without_their_own_mfa_device() {
        let e = error(
            r#"{ "roles": {
                   "a": "arn:aws:iam::123456789012:role/a",
                   "p": { "sso_session": "corp", "account_id": "111122223333",
                          "role_name": "Developer", "via": "a" },
                   "m": { "arn": "arn:aws:iam::123456789012:role/m", "via": "a",
                          "mfa_serial": "arn:aws:iam::123456789012:mfa/me" } } }"#,
        );
        assert!(
            e.contains("`via` does not apply to a permission set"),
            "{e}"
        );
        assert!(e.contains("`mfa_serial` and `via` both given"), "{e}");
    }

    #[test]
    fn a_credential_command_is_a_role_of_its_own_kind_with_no_arn() {
        let c = parse(
            r#"{ "credentials": { "mfa_serial": "arn:aws:iam::123456789012:mfa/me" },
                 "roles": { "okta": { "credential_process": "okta-aws-cli web",
                                      "region": "eu-west-1" },
                            "deploy": { "arn": "arn:aws:iam::444455556666:role/deploy",
                                        "via": "okta" } } }"#,
        )
        .unwrap();
        let okta = &c.roles[&Alias::parse("okta").unwrap()];
        assert_eq!(okta.kind(), "process");
        assert_eq!(okta.arn, None);
        assert_eq!(
            okta.mfa_serial, None,
            "a command asks for no MFA code of fintors's"
        );
        assert_eq!(
            format!("{:?}", okta.source),
            "Process(CredentialProcess(okta-aws-cli ...))"
        );
    }

    #[test]
    fn a_credential_command_takes_no_assume_options_and_no_second_kind() {
        let e = error(
            r#"{ "roles": {
                   "a": { "credential_process": "tool", "session_name": "me", "via": "b" },
                   "b": { "credential_process": "tool", "arn": "arn:aws:iam::123456789012:role/b" },
                   "c": { "credential_process": "  " } } }"#,
        );
        assert!(
            e.contains("`session_name` does not apply to a credential command"),
            "{e}"
        );
        assert!(
            e.contains("`via` does not apply to a credential command"),
            "{e}"
        );
        assert!(
            e.contains("`arn` and `credential_process` both given"),
            "{e}"
        );
        assert!(
            e.contains("role \"c\", field \"credential_process\": is empty"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 4, "one line per mistake:\n{e}");
    }

    fn discovered(alias: &str, account_id: &str) -> Role {
        let (mut roles, _) = identity_center::Discovery::default().roles(
            "corp",
            &[crate::model::Assignment {
                account_id: account_id.into(),
                account_name: alias.into(),
                role_name: "dev".into(),
            }],
        );
        roles.remove(0)
    }

    #[test]
    fn identity_center_alone_is_a_config_and_its_default_role_waits_for_discovery() {
        let c =
            parse(r#"{"identity_center": {"corp": {}}, "default_role": "payments.dev"}"#).unwrap();
        assert!(c.roles.is_empty());
        assert_eq!(
            c.identity_center["corp"],
            identity_center::Discovery::default()
        );
        assert_eq!(c.unresolved_default(), Some("payments.dev"));
        let found = c.with_discovered([discovered("payments", "111122223333")]);
        assert_eq!(
            found.default_role.as_ref().unwrap().as_str(),
            "payments.dev"
        );
        assert_eq!(found.unresolved_default(), None);
    }

    #[test]
    fn a_written_role_wins_over_a_discovered_one_of_the_same_alias() {
        let c = parse(
            r#"{"identity_center": {"corp": {}},
                "roles": {"payments.dev": "arn:aws:iam::444455556666:role/mine"}}"#,
        )
        .unwrap();
        let merged = c.with_discovered([
            discovered("payments", "111122223333"),
            discovered("other", "777788889999"),
        ]);
        let role = |alias: &str| &merged.roles[&Alias::parse(alias).unwrap()];
        assert_eq!(role("payments.dev").kind(), "assume");
        assert_eq!(role("other.dev").kind(), "sso");
    }

    #[test]
    fn an_identity_center_template_or_filter_that_is_wrong_is_reported_where_it_stands() {
        let e = error(
            r#"{"identity_center": {"corp": {"alias": "{account}", "include": "prod", "x": 1}}}"#,
        );
        assert!(
            e.contains("session \"corp\", field \"alias\"")
                || e.contains("identity_center.corp.alias"),
            "{e}"
        );
        assert!(
            e.contains("\"{account}\" is not something an alias can name"),
            "{e}"
        );
        assert!(e.contains("include"), "{e}");
        assert!(e.contains("unknown field `x`"), "{e}");
    }

    /// What the README shows is a configuration fintors accepts, as shown.
    #[test]
    fn every_config_in_the_readme_is_accepted() {
        let readme = include_str!("../../README.md");
        let blocks: Vec<&str> = readme
            .split("```json\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .collect();
        assert!(blocks.len() >= 2, "the README's configs were not found");
        for block in blocks {
            if let Err(e) = parse(block) {
                panic!("{e}\n{block}");
            }
        }
    }

    #[test]
    fn credentials_section_defaults_to_the_default_profile_in_the_standard_files() {
        let c = parse(r#"{"credentials": {}, "roles": {"a": "arn:aws:iam::123456789012:role/a"}}"#)
            .unwrap();
        assert_eq!(
            c.base_credentials,
            BaseCredentials::Profile {
                file: None,
                profile: "default".into()
            }
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once_each_with_its_line() {
        let e = error(
            "{\n  \"roles\": {\n    \"ops\": \"arn:aws:iam::123:role/ops\",\n    \
             \"dev\": {\"arn\": \"arn:aws:iam::123456789012:role/dev\", \"duration_seconds\": 5},\n    \
             \"qa\": {\"arn\": \"arn:aws:iam::123456789012:role/qa\", \"sesion_name\": \"x\"}\n  },\n  \
             \"port\": \"8080\",\n  \"default_role\": \"prod\"\n}",
        );
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 5, "{e}");
        assert!(
            lines[0].starts_with("/home/u/.fintorc:3:5: role \"ops\", field \"arn\": "),
            "{e}"
        );
        assert!(
            lines[1].starts_with(
                "/home/u/.fintorc:4:58: role \"dev\", field \"duration_seconds\": 5 is outside"
            ),
            "{e}"
        );
        assert!(
            lines[2].starts_with("/home/u/.fintorc:5:56: role \"qa\", field \"sesion_name\": unknown field `sesion_name`"),
            "{e}"
        );
        assert!(
            lines[3].starts_with("/home/u/.fintorc:7:3: field \"port\": invalid type"),
            "{e}"
        );
        assert!(
            lines[4].starts_with(
                "/home/u/.fintorc:8:3: field \"default_role\": \"prod\" is not one of"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_default_naming_an_invalid_role_is_not_reported_twice() {
        let e = error(r#"{"roles": {"ops": "arn:aws:iam::123:role/ops"}, "default_role": "ops"}"#);
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn the_top_level_must_be_an_object() {
        assert!(error("[]").contains("expected an object, found an array"));
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let e = error("{\n  \"roles\": {\n    \"a\": \"arn\",\n  }\n}");
        assert!(e.starts_with("/home/u/.fintorc:4:3: "), "{e}");
        assert!(!e.contains(" at line "), "{e}");
    }

    #[test]
    fn unknown_top_level_key_is_rejected_with_position() {
        let e = error(
            "{\"roles\": {\"a\": \"arn:aws:iam::123456789012:role/a\"},\n \"default_rol\": \"a\"}",
        );
        assert!(e.contains(":2:"), "{e}");
        assert!(e.contains("unknown field `default_rol`"), "{e}");
    }

    #[test]
    fn unknown_role_option_is_rejected_with_position() {
        let e = error(
            r#"{"roles": {"a": {"arn": "arn:aws:iam::123456789012:role/a", "sesion_name": "x"}}}"#,
        );
        assert!(e.contains("unknown field `sesion_name`"), "{e}");
        assert!(e.starts_with("/home/u/.fintorc:1:"), "{e}");
    }

    #[test]
    fn duplicate_alias_is_rejected() {
        let e = error(
            r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a", "a": "arn:aws:iam::123456789012:role/b"}}"#,
        );
        assert!(e.contains("role \"a\" is defined twice"), "{e}");
    }

    #[test]
    fn empty_roles_are_rejected() {
        assert!(error(r#"{"roles": {}}"#).contains("no roles are configured"));
        assert!(error(r#"{}"#).contains("no roles are configured"));
    }

    #[test]
    fn default_role_must_be_configured() {
        let e =
            error(r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a"}, "default_role": "b"}"#);
        assert!(e.contains("field \"default_role\""), "{e}");
        assert!(
            e.contains("\"b\" is not one of the configured roles (a)"),
            "{e}"
        );
    }

    #[test]
    fn malformed_arns_name_the_alias_and_field() {
        for arn in [
            "arn:aws:iam::12345678901:role/short-account",
            "arn:aws:iam::123456789012:user/not-a-role",
            "arn:aws:s3:::123456789012:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/regional",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/bad name",
            "arn:AWS:iam::123456789012:role/x",
            "not an arn at all, long enough",
        ] {
            let e = error(&format!(r#"{{"roles": {{"ops": "{arn}"}}}}"#));
            assert!(e.contains("role \"ops\", field \"arn\""), "{arn}: {e}");
            assert!(e.contains("is not an IAM role ARN"), "{arn}: {e}");
        }
    }

    #[test]
    fn duration_outside_sts_range_is_rejected() {
        for d in [0, 899, 43201, -5] {
            let e = error(&format!(
                r#"{{"roles": {{"a": {{"arn": "arn:aws:iam::123456789012:role/a", "duration_seconds": {d}}}}}}}"#
            ));
            assert!(e.contains("field \"duration_seconds\""), "{d}: {e}");
        }
        for d in [900, 43200] {
            let c = parse(&format!(
                r#"{{"roles": {{"a": {{"arn": "arn:aws:iam::123456789012:role/a", "duration_seconds": {d}}}}}}}"#
            ))
            .unwrap();
            assert_eq!(c.roles.values().next().unwrap().duration_seconds, d);
        }
    }

    #[test]
    fn session_name_must_follow_sts_rules() {
        for s in ["x", "has space", "slash/no", &"a".repeat(65)] {
            let e = error(&format!(
                r#"{{"roles": {{"a": {{"arn": "arn:aws:iam::123456789012:role/a", "session_name": "{s}"}}}}}}"#
            ));
            assert!(e.contains("field \"session_name\""), "{s}: {e}");
        }
        assert!(crate::model::SessionName::parse("a_b+c=d,e.f@g-h").is_ok());
    }

    #[test]
    fn external_id_must_follow_sts_rules() {
        for s in ["x", "white space", "semi;colon"] {
            let e = error(&format!(
                r#"{{"roles": {{"a": {{"arn": "arn:aws:iam::123456789012:role/a", "external_id": "{s}"}}}}}}"#
            ));
            assert!(e.contains("field \"external_id\""), "{s}: {e}");
            assert!(!e.contains("<redacted>"), "{e}");
        }
        assert!(crate::model::ExternalId::parse(&"a".repeat(1224)).is_ok());
        assert!(crate::model::ExternalId::parse(&"a".repeat(1225)).is_err());
    }

    #[test]
    fn alias_must_be_a_legal_role_name() {
        let e = error(r#"{"roles": {"a/b": "arn:aws:iam::123456789012:role/a"}}"#);
        assert!(e.contains("role \"a/b\", field \"alias\""), "{e}");
    }

    #[test]
    fn with_aws_profiles_roles_and_default_wait_for_the_import() {
        let mut c = parse(r#"{"aws_profiles": true, "default_role": "dev"}"#).unwrap();
        assert!(c.roles.is_empty());
        let imported = RawRole {
            arn: "arn:aws:iam::123456789012:role/dev".into(),
            ..RawRole::default()
        }
        .validate("dev")
        .unwrap();
        c.finish_import(vec![imported]).unwrap();
        assert_eq!(c.default_role.unwrap().as_str(), "dev");
        let mut empty = parse(r#"{"aws_profiles": true}"#).unwrap();
        let e = empty.finish_import(vec![]).unwrap_err().to_string();
        assert!(
            e.contains("no profile in the AWS config file has a role_arn"),
            "{e}"
        );
    }

    #[test]
    fn explicit_roles_win_over_imported_ones() {
        let mut c = parse(
            r#"{"aws_profiles": true, "roles": {"dev": "arn:aws:iam::123456789012:role/explicit"}}"#,
        )
        .unwrap();
        let imported = RawRole {
            arn: "arn:aws:iam::123456789012:role/imported".into(),
            ..RawRole::default()
        }
        .validate("dev")
        .unwrap();
        c.finish_import(vec![imported]).unwrap();
        assert_eq!(
            c.roles
                .values()
                .next()
                .unwrap()
                .arn
                .as_ref()
                .unwrap()
                .role_name(),
            "explicit"
        );
    }

    #[test]
    fn mfa_serial_applies_to_roles_that_name_none() {
        let c = parse(
            r#"{"credentials": {"mfa_serial": "arn:aws:iam::123456789012:mfa/me", "mfa_session_seconds": 3600},
                "roles": {"a": "arn:aws:iam::123456789012:role/a",
                          "b": {"arn": "arn:aws:iam::123456789012:role/b", "mfa_serial": "GAHT12345678"}}}"#,
        )
        .unwrap();
        let serial = |alias: &str| {
            c.roles[&Alias::parse(alias).unwrap()]
                .mfa_serial
                .as_ref()
                .unwrap()
                .as_str()
                .to_owned()
        };
        assert_eq!(serial("a"), "arn:aws:iam::123456789012:mfa/me");
        assert_eq!(serial("b"), "GAHT12345678");
        assert_eq!(c.mfa.session_seconds, 3600);
        let e = error(
            r#"{"credentials": {"mfa_serial": "short"}, "roles": {"a": "arn:aws:iam::123456789012:role/a"}}"#,
        );
        assert!(e.contains("credentials.mfa_serial"), "{e}");
        let e = error(
            r#"{"credentials": {"mfa_session_seconds": 60}, "roles": {"a": "arn:aws:iam::123456789012:role/a"}}"#,
        );
        assert!(e.contains("credentials.mfa_session_seconds"), "{e}");
    }

    #[test]
    fn listen_address_may_be_configured() {
        let c = parse(
            r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a"}, "addr": "127.0.0.1", "port": 8080}"#,
        )
        .unwrap();
        assert_eq!(c.addr, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(c.port, Some(8080));
        let e =
            error(r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a"}, "addr": "localhost"}"#);
        assert!(e.contains("invalid IP address"), "{e}");
    }

    #[test]
    fn files_readable_by_others_are_reported_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (config_path, creds) = (dir.path().join("fintorc"), dir.path().join("creds"));
        let text = format!(
            r#"{{"credentials": {{"file": "{}"}}, "roles": {{"a": "arn:aws:iam::123456789012:role/a"}}}}"#,
            creds.display()
        );
        std::fs::write(&config_path, &text).unwrap();
        std::fs::write(&creds, "[default]\n").unwrap();
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = Config::load(&config_path).unwrap();
        let exposed = exposed_files(&c);
        assert_eq!(exposed.len(), 1, "{exposed:?}");
        assert!(
            exposed[0].contains("creds is readable by other users (mode 644)"),
            "{exposed:?}"
        );
        assert!(exposed[0].contains("chmod 600"), "{exposed:?}");
    }

    #[test]
    fn tilde_expands_to_home() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_tilde("~/x"), PathBuf::from(&home).join("x"));
        assert_eq!(expand_tilde("/abs/~x"), PathBuf::from("/abs/~x"));
        assert_eq!(expand_tilde("~other/x"), PathBuf::from("~other/x"));
    }
}
