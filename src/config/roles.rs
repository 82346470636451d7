//! A role as written, in the fintors config (finto's bare ARN string, or an object with options)
//! or in an `~/.aws/config` profile, and its one validation into a [`Role`].

use serde_json::Value;

use super::source::Checker;
use crate::model::{
    Alias, CHAINED_MAX_SECONDS, CredentialProcess, DEFAULT_DURATION_SECONDS, ExternalId, Invalid,
    MAX_DURATION_SECONDS, MIN_DURATION_SECONDS, MfaSerial, PermissionSet, Region, Role, RoleArn,
    RoleSource, SessionName,
};

/// The options a role object may carry.
pub const ROLE_FIELDS: [&str; 11] = [
    "arn",
    "session_name",
    "duration_seconds",
    "external_id",
    "region",
    "mfa_serial",
    "sso_session",
    "account_id",
    "role_name",
    "via",
    "credential_process",
];

/// The fields of an assumed role that a permission set has no use for: the portal sets the
/// session, and no MFA or external id is asked.
const ASSUME_ONLY: [&str; 4] = [
    "session_name",
    "duration_seconds",
    "external_id",
    "mfa_serial",
];

/// A role's options as written, before validation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawRole {
    pub arn: String,
    pub session_name: Option<String>,
    pub duration_seconds: Option<i64>,
    pub external_id: Option<String>,
    pub region: Option<String>,
    pub mfa_serial: Option<String>,
    /// A permission set: the sso-session, the account and the role name, instead of an ARN.
    pub sso_session: Option<String>,
    pub account_id: Option<String>,
    pub role_name: Option<String>,
    /// The alias of the role whose credentials assume this one (role chaining).
    pub via: Option<String>,
    /// A credential command, instead of an ARN.
    pub credential_process: Option<String>,
}

impl RawRole {
    /// Reads `roles.<alias>` from the config: an ARN string, or an object of [`ROLE_FIELDS`]
    /// with an `arn`, or with `sso_session`, `account_id` and `role_name` for a permission set,
    /// or with `credential_process` for a credential command.
    pub(super) fn read(checker: &mut Checker, alias: &str, value: &Value) -> Option<RawRole> {
        let at = ["roles", alias];
        if let Value::String(arn) = value {
            return Some(RawRole {
                arn: arn.clone(),
                ..RawRole::default()
            });
        }
        if !value.is_object() {
            checker.report(
                &at,
                "expected a role ARN string or an object with \"arn\" and options",
            );
            return None;
        }
        let object = checker.object(&at, value, &ROLE_FIELDS)?;
        let has = |field: &str| object.contains_key(field);
        // Each mistake once: a role that is neither kind, or both, or a permission set missing
        // a part, is reported here and not validated further (that would add errors about
        // fields the user never wrote).
        let kinds: Vec<&str> = ["arn", "sso_session", "credential_process"]
            .into_iter()
            .filter(|f| has(f))
            .collect();
        let complete = match kinds.as_slice() {
            [] => {
                checker.report(
                    &at,
                    "missing field `arn`, or `sso_session` + `account_id` + `role_name` (a \
                     permission set), or `credential_process` (a command)",
                );
                false
            }
            [first, second, ..] => {
                checker.report(
                    &at,
                    format!(
                        "`{first}` and `{second}` both given: a role is assumed by ARN, is a \
                         permission set, or runs a credential command, one of them"
                    ),
                );
                false
            }
            ["arn"] => {
                let stray: Vec<&str> = ["account_id", "role_name"]
                    .into_iter()
                    .filter(|f| has(f))
                    .collect();
                for field in &stray {
                    checker.report(
                        &at,
                        format!(
                            "`{field}` is for a permission set (with `sso_session`); a role \
                             with an `arn` has its account and name in it"
                        ),
                    );
                }
                let chained_mfa = has("via") && has("mfa_serial");
                if chained_mfa {
                    checker.report(
                        &at,
                        "`mfa_serial` and `via` both given: the `via` role's credentials sign \
                         this role's AssumeRole; put the MFA device on the first role of the chain",
                    );
                }
                stray.is_empty() && !chained_mfa
            }
            ["sso_session"] => {
                let mut complete = true;
                for field in ["account_id", "role_name"] {
                    if !has(field) {
                        checker.report(
                            &at,
                            format!("missing field `{field}` of the permission set"),
                        );
                        complete = false;
                    }
                }
                for field in ASSUME_ONLY.into_iter().chain(["via"]).filter(|f| has(f)) {
                    checker.report(
                        &at,
                        format!(
                            "`{field}` does not apply to a permission set (the portal sets the \
                             session): remove it"
                        ),
                    );
                    complete = false;
                }
                complete
            }
            _ => {
                let mut complete = true;
                for field in ROLE_FIELDS
                    .into_iter()
                    .filter(|f| !["credential_process", "region"].contains(f) && has(f))
                {
                    checker.report(
                        &at,
                        format!(
                            "`{field}` does not apply to a credential command (it prints its \
                             credentials): remove it"
                        ),
                    );
                    complete = false;
                }
                complete
            }
        };
        let arn = checker.field::<String>(&at, object, "arn");
        let raw = RawRole {
            arn: arn.clone().unwrap_or_default(),
            sso_session: checker.field(&at, object, "sso_session"),
            account_id: checker.field(&at, object, "account_id"),
            role_name: checker.field(&at, object, "role_name"),
            session_name: checker.field(&at, object, "session_name"),
            duration_seconds: checker.field(&at, object, "duration_seconds"),
            external_id: checker.field(&at, object, "external_id"),
            region: checker.field(&at, object, "region"),
            mfa_serial: checker.field(&at, object, "mfa_serial"),
            via: checker.field(&at, object, "via"),
            credential_process: checker.field(&at, object, "credential_process"),
        };
        // A field of the wrong type was reported by `field` and left out.
        let typed = |given: bool, read: bool| !given || read;
        let well_typed = typed(has("arn"), arn.is_some())
            && typed(has("sso_session"), raw.sso_session.is_some())
            && typed(has("account_id"), raw.account_id.is_some())
            && typed(has("role_name"), raw.role_name.is_some())
            && typed(has("via"), raw.via.is_some())
            && typed(has("credential_process"), raw.credential_process.is_some());
        (complete && well_typed).then_some(raw)
    }

    /// The role, or every field that is wrong, each with why.
    pub fn validate(self, alias: &str) -> Result<Role, Vec<(&'static str, Invalid)>> {
        let alias_text = alias;
        let mut wrong = Vec::new();
        let mut check = Wrong(&mut wrong);
        let alias = check.of("alias", Alias::parse(alias));
        let (source, arn) = match (&self.sso_session, &self.account_id, &self.role_name) {
            _ if self.credential_process.is_some() => (
                RoleSource::Process(CredentialProcess {
                    command: self.credential_process.clone().unwrap_or_default(),
                }),
                check
                    .of(
                        "credential_process",
                        match self.credential_process.as_deref().map(str::trim) {
                            Some("") => Err(Invalid("is empty: name the command to run".into())),
                            _ => Ok(()),
                        },
                    )
                    .map(|()| None),
            ),
            (Some(session), Some(account), Some(role_name)) => (
                RoleSource::PermissionSet(PermissionSet {
                    sso_session: session.clone(),
                    account_id: account.clone(),
                    role_name: role_name.clone(),
                    account_name: None,
                }),
                check
                    .of(
                        "account_id/role_name",
                        RoleArn::parse(&format!("arn:aws:iam::{account}:role/{role_name}")),
                    )
                    .map(Some),
            ),
            _ => (
                RoleSource::Assume,
                check.of("arn", RoleArn::parse(&self.arn)).map(Some),
            ),
        };
        let session_name = match &self.session_name {
            Some(s) => check.of("session_name", SessionName::parse(s)),
            None => alias.as_ref().map(SessionName::default_for),
        };
        let duration_seconds = check.of(
            "duration_seconds",
            match self.duration_seconds {
                None => Ok(DEFAULT_DURATION_SECONDS),
                Some(d) => u32::try_from(d)
                    .ok()
                    .filter(|d| (MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(d))
                    .ok_or_else(|| {
                        Invalid(format!(
                            "{d} is outside STS's range \
                             {MIN_DURATION_SECONDS}..={MAX_DURATION_SECONDS}"
                        ))
                    }),
            },
        );
        let via = check.of("via", self.via.as_deref().map(Alias::parse).transpose());
        let duration_seconds = match (&via, duration_seconds) {
            (Some(Some(_)), Some(asked)) if asked > CHAINED_MAX_SECONDS => {
                tracing::warn!(
                    "role {alias_text}: a chained session lasts at most {CHAINED_MAX_SECONDS} s \
                     (STS's role-chaining limit): asking for that, not {asked} s"
                );
                Some(CHAINED_MAX_SECONDS)
            }
            (_, duration) => duration,
        };
        let external_id = check.of(
            "external_id",
            self.external_id
                .as_deref()
                .map(ExternalId::parse)
                .transpose(),
        );
        let region = check.of(
            "region",
            self.region.as_deref().map(Region::parse).transpose(),
        );
        let mfa_serial = check.of(
            "mfa_serial",
            self.mfa_serial.as_deref().map(MfaSerial::parse).transpose(),
        );
        let role = || {
            Some(Role {
                alias: alias?,
                source,
                arn: arn?,
                session_name: session_name?,
                duration_seconds: duration_seconds?,
                external_id: external_id?,
                region: region?,
                source_profile: None,
                via: via?,
                mfa_serial: mfa_serial?,
            })
        };
        role().ok_or(wrong)
    }
}

/// Collects what is wrong with each field while the valid ones are kept.
struct Wrong<'a>(&'a mut Vec<(&'static str, Invalid)>);

impl Wrong<'_> {
    fn of<T>(&mut self, field: &'static str, result: Result<T, Invalid>) -> Option<T> {
        result.map_err(|e| self.0.push((field, e))).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(arn: &str) -> RawRole {
        RawRole {
            arn: arn.into(),
            ..RawRole::default()
        }
    }

    #[test]
    fn defaults_follow_finto() {
        let role = raw("arn:aws:iam::123456789012:role/dev")
            .validate("dev")
            .unwrap();
        assert_eq!(role.session_name.as_str(), "finto-dev");
        assert_eq!(role.duration_seconds, 3600);
        assert_eq!(role.external_id, None);
    }

    #[test]
    fn every_wrong_field_is_named() {
        let wrong = RawRole {
            session_name: Some("x".into()),
            duration_seconds: Some(60),
            region: Some("Nowhere".into()),
            ..raw("arn:aws:iam::1:role/a")
        }
        .validate("a/b")
        .unwrap_err();
        let fields: Vec<&str> = wrong.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            ["alias", "arn", "session_name", "duration_seconds", "region"]
        );
    }

    #[test]
    fn durations_beyond_u32_are_out_of_range_not_wrapped() {
        let wrong = RawRole {
            duration_seconds: Some(i64::from(u32::MAX) + 3600),
            ..raw("arn:aws:iam::123456789012:role/a")
        }
        .validate("a")
        .unwrap_err();
        assert_eq!(wrong[0].0, "duration_seconds");
    }

    fn permission_set(session: &str, account: &str, role_name: &str) -> RawRole {
        RawRole {
            sso_session: Some(session.into()),
            account_id: Some(account.into()),
            role_name: Some(role_name.into()),
            ..RawRole::default()
        }
    }

    #[test]
    fn a_permission_set_is_a_role_of_its_own_kind_named_by_account_and_role_name() {
        let role = permission_set("corp", "111122223333", "Developer")
            .validate("dev")
            .unwrap();
        assert_eq!(
            role.source,
            RoleSource::PermissionSet(PermissionSet {
                sso_session: "corp".into(),
                account_id: "111122223333".into(),
                role_name: "Developer".into(),
                account_name: None,
            })
        );
        assert_eq!(role.kind(), "sso");
        assert_eq!(role.arn_text(), "arn:aws:iam::111122223333:role/Developer");
    }

    #[test]
    fn a_permission_set_with_a_bad_account_id_is_refused() {
        let wrong = permission_set("corp", "1111", "Developer")
            .validate("dev")
            .unwrap_err();
        assert_eq!(wrong[0].0, "account_id/role_name");
        assert!(wrong[0].1.0.contains("12 digits"), "{}", wrong[0].1.0);
    }
}
