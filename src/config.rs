//! The configuration file: finto's JSON format, parsed and validated once at start-up.
//!
//! Everything the rest of the daemon sees comes out of here as typed, already-valid values: an
//! [`Alias`] is a legal IMDS role name, a [`RoleArn`] is a well-formed IAM role ARN, a
//! [`SessionName`] and an [`ExternalId`] satisfy STS's character and length rules, a duration is in
//! STS's range. STS emulators accept anything, and real STS would only complain at the moment a
//! user switches roles, so a typo is caught here, at start-up, with the file, the line or the role
//! alias named. Unknown keys are errors too: a misspelt `"sesion_name"` must not silently become the
//! default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::metadata::InstanceConfig;

/// The shortest and longest session STS grants (seconds).
pub const MIN_DURATION_SECONDS: u32 = 900;
pub const MAX_DURATION_SECONDS: u32 = 43_200;
/// finto's default, and STS's.
pub const DEFAULT_DURATION_SECONDS: u32 = 3_600;

/// A minimal configuration, shown when the file is missing so the fix is one copy-paste away.
pub const EXAMPLE: &str = r#"{
  "credentials": { "file": "~/.aws/credentials", "profile": "default" },
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
    pending_default_role: Option<String>,
    /// Where the daemon listens, unless the command line says otherwise; the client subcommands
    /// use it to find the daemon.
    pub addr: Option<IpAddr>,
    pub port: Option<u16>,
    /// Serve the container credentials endpoint on 127.0.0.1 at this port.
    pub ecs_port: Option<u16>,
    /// Serve the admin API on 127.0.0.1 at this port.
    pub admin_port: Option<u16>,
    /// Also import every profile with a `role_arn` from the AWS config file as a role.
    pub aws_profiles: bool,
    /// What the metadata tree says about "this instance"; checked against the host at start-up
    /// (see [`crate::metadata::Instance`]).
    pub instance: InstanceConfig,
}

/// Where fintors's own (long-lived) credentials come from: the ones it calls AssumeRole with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseCredentials {
    /// No `credentials` section: the standard chain (environment, shared files, SSO, process),
    /// without the IMDS and container providers. fintors must never ask itself.
    DefaultChain,
    /// A named profile from a credentials file, read with the SDK's own profile machinery, so a
    /// profile using `credential_process`, SSO or `role_arn` works as it does for the AWS CLI.
    Profile { file: PathBuf, profile: String },
}

/// One role the user can switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub alias: Alias,
    pub arn: RoleArn,
    pub session_name: SessionName,
    pub duration_seconds: u32,
    pub external_id: Option<ExternalId>,
    /// STS region for this role; `None` means the standard AWS region settings.
    pub region: Option<Region>,
    /// For roles imported from ~/.aws/config: the profile whose credentials assume this role
    /// (`source_profile`); `None` means fintors's base credentials.
    pub source_profile: Option<String>,
    /// The MFA device whose session assumes this role (the role's own, else the credentials').
    pub mfa_serial: Option<MfaSerial>,
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

/// GetSessionToken's range and fintors's default (12 hours).
pub const MFA_SESSION_SECONDS: std::ops::RangeInclusive<u32> = 900..=129_600;
pub const DEFAULT_MFA_SESSION_SECONDS: u32 = 43_200;

/// An MFA device's serial number or ARN: 9..=256 of `[\w+=/:,.@-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MfaSerial(String);

impl MfaSerial {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        check_charset(
            s,
            9,
            256,
            |c| is_role_name_char(c) || c == ':' || c == '/',
            "letters, digits and + = / : , . @ _ -",
        )?;
        Ok(MfaSerial(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {path} does not exist.\n\
         Create it (or point --config / FINTORS_CONFIG at one); a minimal example:\n{EXAMPLE}"
    )]
    Missing { path: PathBuf },
    #[error("cannot read config file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: role \"{alias}\", field \"{field}\": {problem}")]
    Role {
        path: PathBuf,
        alias: String,
        field: &'static str,
        problem: String,
    },
    #[error("{path}: field \"instance.{field}\": {problem}")]
    Instance {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
    #[error("{path}: field \"{field}\": {problem}")]
    Field {
        path: PathBuf,
        field: &'static str,
        problem: String,
    },
}

/// Why a single value is not acceptable; the caller adds which file, role and field it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A role alias: what the user types and what IMDS lists as the instance profile's role name, so it
/// must be a legal IAM role name (1..=64 of `[\w+=,.@-]`), which also keeps it safe in URL paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Alias(String);

impl Alias {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        check_charset(
            s,
            1,
            64,
            is_role_name_char,
            "letters, digits and + = , . @ _ -",
        )?;
        Ok(Alias(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path/>name`, split into the parts fintors needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    partition_len: usize,
    account_id: String,
    name: String,
}

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        const SHAPE: &str = "expected arn:<partition>:iam::<12-digit account>:role/[path/]name";
        let bad = |why: &str| Invalid(format!("{s:?} is not an IAM role ARN: {why} ({SHAPE})"));
        if !(20..=2048).contains(&s.len()) {
            return Err(bad("length must be 20..=2048"));
        }
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("wrong prefix"));
        };
        if partition.is_empty()
            || !partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            return Err(bad("bad partition"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account id must be 12 digits"));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(bad("the resource must start with role/"));
        };
        let (path, name) = match path_and_name.rfind('/') {
            Some(i) => (&path_and_name[..=i], &path_and_name[i + 1..]),
            None => ("", path_and_name),
        };
        if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) || path.contains("//") {
            return Err(bad("bad role path"));
        }
        check_charset(
            name,
            1,
            64,
            is_role_name_char,
            "letters, digits and + = , . @ _ -",
        )
        .map_err(|e| bad(&format!("role name: {e}")))?;
        Ok(RoleArn {
            arn: s.to_owned(),
            partition_len: partition.len(),
            account_id: account.to_owned(),
            name: name.to_owned(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    pub fn partition(&self) -> &str {
        &self.arn[4..4 + self.partition_len]
    }
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
    /// The role's name without its path.
    pub fn role_name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// STS RoleSessionName: 2..=64 of `[\w+=,.@-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionName(String);

impl SessionName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        check_charset(
            s,
            2,
            64,
            is_role_name_char,
            "letters, digits and + = , . @ _ -",
        )?;
        Ok(SessionName(s.to_owned()))
    }
    /// finto's default, `finto-<alias>`, cut to STS's limit.
    pub fn default_for(alias: &Alias) -> Self {
        let mut name = format!("finto-{alias}");
        name.truncate(64);
        SessionName(name)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// STS ExternalId: 2..=1224 of `[\w+=,.@:/-]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        check_charset(
            s,
            2,
            1224,
            |c| is_role_name_char(c) || c == ':' || c == '/',
            "letters, digits and + = , . @ : / _ -",
        )?;
        Ok(ExternalId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// External ids are shared secrets between accounts: never in a log.
impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

/// An AWS region name such as `eu-west-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(Invalid(format!(
                "{s:?} is not a region name (expected something like \"us-east-1\")"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn check_charset(
    s: &str,
    min: usize,
    max: usize,
    allowed: impl Fn(char) -> bool,
    allowed_text: &str,
) -> Result<(), Invalid> {
    let len = s.chars().count();
    if !(min..=max).contains(&len) {
        return Err(Invalid(format!(
            "{s:?} has {len} characters; it must have {min} to {max}"
        )));
    }
    if let Some(c) = s.chars().find(|&c| !allowed(c)) {
        return Err(Invalid(format!(
            "{s:?} contains {c:?}; only {allowed_text} are allowed"
        )));
    }
    Ok(())
}

/// Files others on this machine can read that hold (or lead to) secrets: the config (external
/// ids, MFA settings) and the base credentials file. Each entry names the file and the fix.
pub fn exposed_files(config: &Config) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![config.path.clone()];
    if let BaseCredentials::Profile { file, .. } = &config.base_credentials {
        files.push(file.clone());
    }
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
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::Unreadable {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates configuration text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| {
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
        raw.validate(path)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    credentials: Option<RawCredentials>,
    #[serde(default)]
    roles: Option<DistinctMap<RawRole>>,
    default_role: Option<String>,
    addr: Option<IpAddr>,
    port: Option<u16>,
    ecs_port: Option<u16>,
    admin_port: Option<u16>,
    #[serde(default)]
    aws_profiles: bool,
    #[serde(default)]
    instance: InstanceConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    file: Option<String>,
    profile: Option<String>,
    mfa_serial: Option<String>,
    mfa_process: Option<String>,
    mfa_session_seconds: Option<i64>,
}

/// A role as written: finto's bare ARN string, or an object with options.
pub(crate) enum RawRole {
    Arn(String),
    Object(RawRoleObject),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoleObject {
    pub(crate) arn: String,
    pub(crate) session_name: Option<String>,
    pub(crate) duration_seconds: Option<i64>,
    pub(crate) external_id: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) mfa_serial: Option<String>,
}

impl<'de> Deserialize<'de> for RawRole {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RoleVisitor;
        impl<'de> Visitor<'de> for RoleVisitor {
            type Value = RawRole;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a role ARN string or an object with \"arn\" and options")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawRole, E> {
                Ok(RawRole::Arn(s.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRole, A::Error> {
                // Deserializing through the map keeps serde_json's line/column on errors inside.
                RawRoleObject::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawRole::Object)
            }
        }
        d.deserialize_any(RoleVisitor)
    }
}

/// A JSON object whose keys must be distinct: JSON parsers normally keep the last of two equal
/// keys, which would hide a copy-paste mistake in the roles.
struct DistinctMap<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for DistinctMap<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = DistinctMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping role aliases to roles")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!(
                            "role \"{key}\" is defined twice"
                        )));
                    }
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(DistinctMap(entries))
            }
        }
        d.deserialize_map(MapVisitor(std::marker::PhantomData))
    }
}

impl RawConfig {
    fn validate(self, path: &Path) -> Result<Config, ConfigError> {
        let field_err = |field: &'static str, problem: String| ConfigError::Field {
            path: path.to_owned(),
            field,
            problem,
        };

        let mut mfa = MfaConfig {
            serial: None,
            process: None,
            session_seconds: DEFAULT_MFA_SESSION_SECONDS,
        };
        let base_credentials = match self.credentials {
            None => BaseCredentials::DefaultChain,
            Some(c) => {
                mfa.serial = c
                    .mfa_serial
                    .as_deref()
                    .map(MfaSerial::parse)
                    .transpose()
                    .map_err(|e| field_err("credentials.mfa_serial", e.0))?;
                mfa.process = c.mfa_process.filter(|p| !p.trim().is_empty());
                if let Some(d) = c.mfa_session_seconds {
                    mfa.session_seconds = u32::try_from(d)
                        .ok()
                        .filter(|d| MFA_SESSION_SECONDS.contains(d))
                        .ok_or_else(|| {
                            field_err(
                                "credentials.mfa_session_seconds",
                                format!("{d} is outside GetSessionToken's range 900..=129600"),
                            )
                        })?;
                }
                let file = c.file.unwrap_or_else(|| "~/.aws/credentials".to_owned());
                let profile = c.profile.unwrap_or_else(|| "default".to_owned());
                if file.trim().is_empty() {
                    return Err(field_err(
                        "credentials.file",
                        "must not be empty; leave it out for ~/.aws/credentials".into(),
                    ));
                }
                if profile.trim().is_empty() {
                    return Err(field_err(
                        "credentials.profile",
                        "must not be empty; leave it out for \"default\"".into(),
                    ));
                }
                BaseCredentials::Profile {
                    file: expand_tilde(&file),
                    profile,
                }
            }
        };

        let raw_roles = self.roles.map(|m| m.0).unwrap_or_default();
        // With aws_profiles the roles may all come from ~/.aws/config; checked after the import.
        if raw_roles.is_empty() && !self.aws_profiles {
            return Err(field_err(
                "roles",
                "no roles are configured; add at least one, e.g. \
                 \"roles\": {\"example\": \"arn:aws:iam::123456789012:role/example\"}"
                    .into(),
            ));
        }
        let mut roles = BTreeMap::new();
        for (alias, raw) in raw_roles {
            let mut role = validate_role(&alias, raw).map_err(|(field, e)| ConfigError::Role {
                path: path.to_owned(),
                alias: alias.clone(),
                field,
                problem: e.0,
            })?;
            role.mfa_serial = role.mfa_serial.or_else(|| mfa.serial.clone());
            roles.insert(role.alias.clone(), role);
        }

        // With aws_profiles the default role may be an imported one: resolved after the import.
        let (default_role, pending_default_role) = if self.aws_profiles {
            (None, self.default_role)
        } else {
            (resolve_default_role(path, &roles, self.default_role)?, None)
        };

        Ok(Config {
            path: path.to_owned(),
            base_credentials,
            mfa,
            roles,
            default_role,
            pending_default_role,
            addr: self.addr,
            port: self.port,
            ecs_port: self.ecs_port,
            admin_port: self.admin_port,
            aws_profiles: self.aws_profiles,
            instance: self.instance,
        })
    }
}

fn resolve_default_role(
    path: &Path,
    roles: &BTreeMap<Alias, Role>,
    name: Option<String>,
) -> Result<Option<Alias>, ConfigError> {
    let Some(name) = name else { return Ok(None) };
    match roles.keys().find(|a| a.as_str() == name) {
        Some(alias) => Ok(Some(alias.clone())),
        None => {
            let names: Vec<&str> = roles.keys().map(Alias::as_str).collect();
            Err(ConfigError::Field {
                path: path.to_owned(),
                field: "default_role",
                problem: format!(
                    "\"{name}\" is not one of the configured roles ({}); fix the name or add the role",
                    names.join(", ")
                ),
            })
        }
    }
}

impl Config {
    /// Adds roles imported from the AWS config file (`aws_profiles`): explicit roles win on a
    /// clash. Then the checks the import had to wait for: at least one role, a known default.
    pub fn finish_import(&mut self, imported: Vec<Role>) -> Result<(), ConfigError> {
        for role in imported {
            self.roles.entry(role.alias.clone()).or_insert(role);
        }
        if self.roles.is_empty() {
            return Err(ConfigError::Field {
                path: self.path.clone(),
                field: "roles",
                problem: "no roles are configured and no profile in the AWS config file has a \
                          role_arn; add a role"
                    .into(),
            });
        }
        if let Some(name) = self.pending_default_role.take() {
            self.default_role = resolve_default_role(&self.path, &self.roles, Some(name))?;
        }
        Ok(())
    }
}

pub(crate) fn validate_role(alias: &str, raw: RawRole) -> Result<Role, (&'static str, Invalid)> {
    let alias = Alias::parse(alias).map_err(|e| ("alias", e))?;
    let object = match raw {
        RawRole::Arn(arn) => RawRoleObject {
            arn,
            session_name: None,
            duration_seconds: None,
            external_id: None,
            region: None,
            mfa_serial: None,
        },
        RawRole::Object(o) => o,
    };
    let arn = RoleArn::parse(&object.arn).map_err(|e| ("arn", e))?;
    let session_name = match object.session_name {
        Some(s) => SessionName::parse(&s).map_err(|e| ("session_name", e))?,
        None => SessionName::default_for(&alias),
    };
    let duration_seconds = match object.duration_seconds {
        None => DEFAULT_DURATION_SECONDS,
        Some(d) if (MIN_DURATION_SECONDS as i64..=MAX_DURATION_SECONDS as i64).contains(&d) => {
            d as u32
        }
        Some(d) => {
            return Err((
                "duration_seconds",
                Invalid(format!(
                    "{d} is outside STS's range {MIN_DURATION_SECONDS}..={MAX_DURATION_SECONDS}"
                )),
            ));
        }
    };
    let external_id = object
        .external_id
        .as_deref()
        .map(ExternalId::parse)
        .transpose()
        .map_err(|e| ("external_id", e))?;
    let region = object
        .region
        .as_deref()
        .map(Region::parse)
        .transpose()
        .map_err(|e| ("region", e))?;
    let mfa_serial = object
        .mfa_serial
        .as_deref()
        .map(MfaSerial::parse)
        .transpose()
        .map_err(|e| ("mfa_serial", e))?;
    Ok(Role {
        alias,
        arn,
        session_name,
        duration_seconds,
        external_id,
        region,
        source_profile: None,
        mfa_serial,
    })
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
                file: "/creds".into(),
                profile: "identity".into()
            }
        );
        assert_eq!(c.roles.len(), 2);
        assert_eq!(c.default_role.unwrap().as_str(), "example");
        let r = &c.roles[&Alias::parse("example2").unwrap()];
        assert_eq!(r.session_name.as_str(), "finto-example2");
        assert_eq!(r.duration_seconds, 3600);
        assert_eq!(r.arn.account_id(), "123456789012");
        assert_eq!(r.arn.role_name(), "example2");
        assert_eq!(r.arn.partition(), "aws");
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
        assert_eq!(r.arn.role_name(), "ops");
        assert_eq!(r.arn.partition(), "aws-us-gov");
        assert_eq!(c.base_credentials, BaseCredentials::DefaultChain);
        assert_eq!(c.default_role, None);
    }

    #[test]
    fn credentials_section_defaults_to_default_profile_in_aws_credentials() {
        let c = parse(r#"{"credentials": {}, "roles": {"a": "arn:aws:iam::123456789012:role/a"}}"#)
            .unwrap();
        let BaseCredentials::Profile { file, profile } = c.base_credentials else {
            panic!("expected a profile")
        };
        assert!(file.ends_with(".aws/credentials"), "{file:?}");
        assert_eq!(profile, "default");
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
    fn role_arn_with_path_is_accepted() {
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/a/b/c-role").unwrap();
        assert_eq!(arn.role_name(), "c-role");
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
        assert!(SessionName::parse("a_b+c=d,e.f@g-h").is_ok());
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
        assert!(ExternalId::parse(&"a".repeat(1224)).is_ok());
        assert!(ExternalId::parse(&"a".repeat(1225)).is_err());
    }

    #[test]
    fn alias_must_be_a_legal_role_name() {
        let e = error(r#"{"roles": {"a/b": "arn:aws:iam::123456789012:role/a"}}"#);
        assert!(e.contains("role \"a/b\", field \"alias\""), "{e}");
    }

    #[test]
    fn long_alias_gets_a_truncated_default_session_name() {
        let alias = Alias::parse(&"a".repeat(64)).unwrap();
        assert_eq!(SessionName::default_for(&alias).as_str().len(), 64);
    }

    #[test]
    fn external_id_debug_is_redacted() {
        let id = ExternalId::parse("super-secret-id").unwrap();
        assert!(!format!("{id:?}").contains("super-secret-id"));
    }

    #[test]
    fn with_aws_profiles_roles_and_default_wait_for_the_import() {
        let mut c = parse(r#"{"aws_profiles": true, "default_role": "dev"}"#).unwrap();
        assert!(c.roles.is_empty());
        let imported = validate_role(
            "dev",
            RawRole::Arn("arn:aws:iam::123456789012:role/dev".into()),
        )
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
        let imported = validate_role(
            "dev",
            RawRole::Arn("arn:aws:iam::123456789012:role/imported".into()),
        )
        .unwrap();
        c.finish_import(vec![imported]).unwrap();
        assert_eq!(c.roles.values().next().unwrap().arn.role_name(), "explicit");
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
