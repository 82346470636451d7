//! A role the user can switch to, as every layer sees it: validated, with STS's parameters.

use super::arn::RoleArn;
use super::names::{Alias, ExternalId, MfaSerial, Region, SessionName};

/// The shortest and longest session STS grants (seconds).
pub const MIN_DURATION_SECONDS: u32 = 900;
pub const MAX_DURATION_SECONDS: u32 = 43_200;
/// finto's default, and STS's.
pub const DEFAULT_DURATION_SECONDS: u32 = 3_600;
/// The longest session STS grants a role assumed with another role's credentials ("role
/// chaining", IAM User Guide, "Methods to assume a role").
pub const CHAINED_MAX_SECONDS: u32 = 3_600;

/// One role the user can switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub alias: Alias,
    /// Where its credentials come from.
    pub source: RoleSource,
    /// The role's ARN. For a permission set, the role as the portal names it
    /// (`arn:aws:iam::ACCOUNT:role/ROLE_NAME`): IAM's own name for it (`AWSReservedSSO_...`) is
    /// something the portal does not tell. `None` for a credential command, whose output does
    /// not say whose credentials it prints.
    pub arn: Option<RoleArn>,
    pub session_name: SessionName,
    pub duration_seconds: u32,
    pub external_id: Option<ExternalId>,
    /// STS region for this role; `None` means the standard AWS region settings.
    pub region: Option<Region>,
    /// For roles imported from ~/.aws/config: the profile whose credentials assume this role
    /// (`source_profile`); `None` means fintors's base credentials.
    pub source_profile: Option<String>,
    /// The role whose credentials sign this role's AssumeRole (`"via"`), instead of the base
    /// credentials: role chaining. Its session lasts at most [`CHAINED_MAX_SECONDS`].
    pub via: Option<Alias>,
    /// The MFA device whose session assumes this role (the role's own, else the credentials').
    pub mfa_serial: Option<MfaSerial>,
}

/// Where a role's credentials come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoleSource {
    /// STS `AssumeRole` of the role's ARN, signed with the base credentials (or those of its
    /// `source_profile`).
    #[default]
    Assume,
    /// An IAM Identity Center permission set: the access portal's `GetRoleCredentials`, with
    /// the access token of an sso-session's login. No STS call and no base credentials; the
    /// portal sets the session's name and length.
    PermissionSet(PermissionSet),
    /// A credential command (`credential_process`): whatever it prints, run through `sh -c`.
    Process(CredentialProcess),
}

/// A command that prints `credential_process` JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialProcess {
    /// As written. Its arguments may hold secrets (a password manager's item, a token), so it
    /// is never logged or reported whole: see [`CredentialProcess::program`].
    pub command: String,
}

impl CredentialProcess {
    /// The program the command runs, which is all that messages and reports show of it: its
    /// first word that is not a `NAME=value` assignment (which may be a secret), without its
    /// directory.
    pub fn program(&self) -> &str {
        let word = self
            .command
            .split_whitespace()
            .find(|w| !w.contains('='))
            .unwrap_or("");
        word.rsplit('/').next().unwrap_or(word)
    }
}

impl std::fmt::Debug for CredentialProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialProcess({} ...)", self.program())
    }
}

/// A permission set in one account, as the access portal names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSet {
    /// The `[sso-session NAME]` of the AWS config file whose login the portal is asked with.
    pub sso_session: String,
    /// Twelve digits (checked with the role's ARN).
    pub account_id: String,
    pub role_name: String,
    /// The account's name, as the portal lists it (for a discovered role; for display and
    /// search only).
    pub account_name: Option<String>,
}

/// An account and a role in it that the access portal lists for a login (`ListAccounts`,
/// `ListAccountRoles`): what discovery makes a role of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    pub account_id: String,
    pub account_name: String,
    pub role_name: String,
}

impl Role {
    /// The kind of source, as `fintors roles --json` names it.
    pub fn kind(&self) -> &'static str {
        match self.source {
            RoleSource::Assume => "assume",
            RoleSource::PermissionSet(_) => "sso",
            RoleSource::Process(_) => "process",
        }
    }

    /// The permission set this role is, if it is one.
    pub fn permission_set(&self) -> Option<&PermissionSet> {
        match &self.source {
            RoleSource::PermissionSet(set) => Some(set),
            RoleSource::Assume | RoleSource::Process(_) => None,
        }
    }

    /// The ARN as reports give it: empty when it is not known.
    pub fn arn_text(&self) -> String {
        self.arn
            .as_ref()
            .map_or_else(String::new, RoleArn::to_string)
    }

    /// The call that obtains its credentials, for messages.
    pub fn operation(&self) -> &'static str {
        match self.source {
            RoleSource::Assume => "AssumeRole",
            RoleSource::PermissionSet(_) => "GetRoleCredentials",
            RoleSource::Process(_) => "credential_process",
        }
    }

    /// What the role is, for a log line: its ARN, or the permission set and its account.
    pub fn describe(&self) -> String {
        match &self.source {
            RoleSource::Assume => self.arn_text(),
            RoleSource::PermissionSet(set) => format!(
                "permission set {} in account {} (SSO session \"{}\")",
                set.role_name, set.account_id, set.sso_session
            ),
            RoleSource::Process(process) => {
                format!("credential command {}", process.program())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_command_is_shown_by_its_program_alone() {
        let shown = |command: &str| {
            CredentialProcess {
                command: command.into(),
            }
            .program()
            .to_owned()
        };
        assert_eq!(
            shown("okta-aws-cli web --format credential-process"),
            "okta-aws-cli"
        );
        assert_eq!(
            shown("OP_SERVICE_ACCOUNT_TOKEN=ops_secret /usr/bin/op read x"),
            "op"
        );
        assert_eq!(shown("  "), "");
    }
}
