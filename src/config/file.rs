//! The walk over the file's JSON: every member of the top level, of `credentials` and of each
//! role checked, each problem reported where it stands, into a [`Config`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::identity_center::Discovery;
use super::source::{Checker, Problem};
use super::{
    BaseCredentials, Config, InstanceConfig, MFA_SESSION_SECONDS, MfaConfig, RawRole, expand_tilde,
};
use crate::model::{Alias, MfaSerial, Role, RoleSource};

/// The keys of the file's top level and of its `credentials` section.
pub const TOP_FIELDS: [&str; 11] = [
    "credentials",
    "roles",
    "default_role",
    "addr",
    "port",
    "ecs_port",
    "admin_port",
    "aws_profiles",
    "instance",
    "allow_users",
    "identity_center",
];
pub const CREDENTIALS_FIELDS: [&str; 7] = [
    "file",
    "profile",
    "mfa_serial",
    "mfa_process",
    "mfa_session_seconds",
    "login_process",
    "notify",
];

/// The whole file, every member checked; `None` when something is too wrong to go on.
pub(super) fn read(checker: &mut Checker, value: &Value, path: &Path) -> Option<Config> {
    let top = checker.object(&[], value, &TOP_FIELDS)?;
    let Credentials {
        base: base_credentials,
        mfa,
        login_process,
        notify,
    } = match top.get("credentials") {
        None => Credentials::default(),
        Some(section) => read_credentials(checker, section),
    };
    let aws_profiles = checker
        .field::<bool>(&[], top, "aws_profiles")
        .unwrap_or(false);
    let mut identity_center = BTreeMap::new();
    if let Some(section) = top.get("identity_center") {
        for (session, value) in checker
            .members(&["identity_center"], section)
            .into_iter()
            .flatten()
        {
            if let Some(discovery) = Discovery::read(checker, session, value) {
                identity_center.insert(session.clone(), discovery);
            }
        }
    }
    // Roles, a chain's end or the default may be discovered later, or imported.
    let later = aws_profiles || top.contains_key("identity_center");
    let mut roles = BTreeMap::new();
    let mut written: Vec<&str> = Vec::new();
    if let Some(section) = top.get("roles") {
        for (alias, raw) in checker.members(&["roles"], section).into_iter().flatten() {
            written.push(alias);
            let Some(raw) = RawRole::read(checker, alias, raw) else {
                continue;
            };
            match raw.validate(alias) {
                Ok(mut role) => {
                    // The device signs AssumeRole calls with the base credentials: a permission
                    // set has none, and a chained role is signed by its `via` role.
                    if role.source == RoleSource::Assume && role.via.is_none() {
                        role.mfa_serial = role.mfa_serial.or_else(|| mfa.serial.clone());
                    }
                    roles.insert(role.alias.clone(), role);
                }
                Err(wrong) => {
                    for (field, why) in wrong {
                        checker.report(&["roles", alias, field], why.0);
                    }
                }
            }
        }
    }
    // A chain may lead to a role imported or discovered later (a loop is found now). A `via`
    // naming a role that was written but is invalid has its own problem already.
    for role in roles.values() {
        let invalid_hop = role
            .via
            .as_ref()
            .is_some_and(|via| written.contains(&via.as_str()) && !roles.contains_key(via));
        if let Some(problem) = chain_problem(&roles, role, later).filter(|_| !invalid_hop) {
            checker.report(&["roles", role.alias.as_str(), "via"], problem);
        }
    }
    // With aws_profiles the roles may all come from ~/.aws/config; checked after the import.
    if written.is_empty() && !later {
        checker.report(
            &["roles"],
            "no roles are configured; add at least one, e.g. \
             \"roles\": {\"example\": \"arn:aws:iam::123456789012:role/example\"}",
        );
    }
    let default_name = checker.field::<String>(&[], top, "default_role");
    let mut default_role = None;
    let mut pending_default_role = None;
    match default_name {
        // With aws_profiles the default role may be an imported one: resolved after the import;
        // with Identity Center, a discovered one.
        Some(name) if later && !written.contains(&name.as_str()) => {
            let mut problem = Problem::new(&["default_role"], "");
            checker.locate(&mut problem);
            pending_default_role = Some((name, problem.position));
        }
        // A role that is written but invalid has its own problem already.
        Some(name) if written.contains(&name.as_str()) => {
            default_role = roles.keys().find(|a| a.as_str() == name).cloned();
        }
        Some(name) => match resolve_default_role(&roles, &name) {
            Ok(alias) => default_role = Some(alias),
            Err(message) => checker.report(&["default_role"], message),
        },
        None => {}
    }
    let instance = top
        .get("instance")
        .map(|section| InstanceConfig::read(checker, section))
        .unwrap_or_default();
    Some(Config {
        path: path.to_owned(),
        base_credentials,
        mfa,
        roles,
        default_role,
        pending_default_role,
        addr: checker.field(&[], top, "addr"),
        port: checker.field(&[], top, "port"),
        ecs_port: checker.field(&[], top, "ecs_port"),
        admin_port: checker.field(&[], top, "admin_port"),
        aws_profiles,
        instance,
        allow_users: read_allow_users(checker, top),
        login_process,
        notify,
        identity_center,
    })
}

/// `allow_users`: user names or numeric uids, each a non-empty string.
fn read_allow_users(checker: &mut Checker, top: &serde_json::Map<String, Value>) -> Vec<String> {
    let users = checker
        .field::<Vec<String>>(&[], top, "allow_users")
        .unwrap_or_default();
    if users.iter().any(|u| u.trim().is_empty()) {
        checker.report(
            &["allow_users"],
            "a user must be a name or a numeric uid, not empty",
        );
    }
    users
}

/// The `credentials` section.
struct Credentials {
    base: BaseCredentials,
    mfa: MfaConfig,
    login_process: Option<String>,
    notify: bool,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            base: BaseCredentials::DefaultChain,
            mfa: MfaConfig::default(),
            login_process: None,
            notify: true,
        }
    }
}

/// The `credentials` section: which profile, MFA, what logs the base identity in again, and
/// whether the desktop is told when a login is needed.
fn read_credentials(checker: &mut Checker, section: &Value) -> Credentials {
    const AT: [&str; 1] = ["credentials"];
    let mut mfa = MfaConfig::default();
    let Some(c) = checker.object(&AT, section, &CREDENTIALS_FIELDS) else {
        return Credentials::default();
    };
    let notify = checker.field::<bool>(&AT, c, "notify").unwrap_or(true);
    let login_process = checker.field::<String>(&AT, c, "login_process");
    if login_process.as_ref().is_some_and(|p| p.trim().is_empty()) {
        checker.report(
            &["credentials", "login_process"],
            "must not be empty; leave it out for `fintors login` to sign in to the SSO sessions",
        );
    }
    mfa.serial = checker.field::<String>(&AT, c, "mfa_serial").and_then(|s| {
        MfaSerial::parse(&s)
            .map_err(|e| checker.report(&["credentials", "mfa_serial"], e.0))
            .ok()
    });
    mfa.process = checker
        .field::<String>(&AT, c, "mfa_process")
        .filter(|p| !p.trim().is_empty());
    if let Some(d) = checker.field::<i64>(&AT, c, "mfa_session_seconds") {
        match u32::try_from(d)
            .ok()
            .filter(|d| MFA_SESSION_SECONDS.contains(d))
        {
            Some(d) => mfa.session_seconds = d,
            None => checker.report(
                &["credentials", "mfa_session_seconds"],
                format!("{d} is outside GetSessionToken's range 900..=129600"),
            ),
        }
    }
    let file = checker.field::<String>(&AT, c, "file");
    if file.as_ref().is_some_and(|f| f.trim().is_empty()) {
        checker.report(
            &["credentials", "file"],
            "must not be empty; leave it out for the standard credentials file",
        );
    }
    let profile = checker
        .field::<String>(&AT, c, "profile")
        .unwrap_or_else(|| "default".to_owned());
    if profile.trim().is_empty() {
        checker.report(
            &["credentials", "profile"],
            "must not be empty; leave it out for \"default\"",
        );
    }
    let base = BaseCredentials::Profile {
        file: file
            .filter(|f| !f.trim().is_empty())
            .map(|f| expand_tilde(&f)),
        profile,
    };
    Credentials {
        base,
        mfa,
        login_process: login_process.filter(|p| !p.trim().is_empty()),
        notify,
    }
}

pub(super) fn resolve_default_role(
    roles: &BTreeMap<Alias, Role>,
    name: &str,
) -> Result<Alias, String> {
    match roles.keys().find(|a| a.as_str() == name) {
        Some(alias) => Ok(alias.clone()),
        None => {
            let names: Vec<&str> = roles.keys().map(Alias::as_str).collect();
            Err(format!(
                "\"{name}\" is not one of the configured roles ({}); fix the name or add the role",
                names.join(", ")
            ))
        }
    }
}

/// What is wrong with the chain of `via` that starts at `start`, if anything: a chain that
/// comes back to a role already in it (which would never end), or a hop that names no role,
/// unless `later` (a role discovery may still list: only written roles have a `via`, so a
/// loop is found without it).
pub(super) fn chain_problem(
    roles: &BTreeMap<Alias, Role>,
    start: &Role,
    later: bool,
) -> Option<String> {
    let mut seen = vec![start.alias.as_str()];
    let mut hop = start;
    while let Some(via) = &hop.via {
        let Some(next) = roles.get(via) else {
            if later {
                return None;
            }
            let names: Vec<&str> = roles.keys().map(Alias::as_str).take(8).collect();
            let more = if roles.len() > names.len() {
                ", ..."
            } else {
                ""
            };
            return Some(format!(
                "\"{via}\" is not one of the roles ({}{more}); name the role whose \
                 credentials assume this one",
                names.join(", ")
            ));
        };
        if seen.contains(&next.alias.as_str()) {
            return Some(format!(
                "the chain comes back to itself ({} -> {via}): end it at a role without `via`",
                seen.join(" -> ")
            ));
        }
        seen.push(next.alias.as_str());
        hop = next;
    }
    None
}
