//! A role as written, in the fintors config (finto's bare ARN string, or an object with options)
//! or in an `~/.aws/config` profile, and its one validation into a [`Role`].

use serde_json::Value;

use super::source::Checker;
use crate::model::{
    Alias, DEFAULT_DURATION_SECONDS, ExternalId, Invalid, MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS, MfaSerial, Region, Role, RoleArn, SessionName,
};

/// The options a role object may carry.
pub const ROLE_FIELDS: [&str; 6] = [
    "arn",
    "session_name",
    "duration_seconds",
    "external_id",
    "region",
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
}

impl RawRole {
    /// Reads `roles.<alias>` from the config: an ARN string, or an object of [`ROLE_FIELDS`].
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
        let arn = checker.field::<String>(&at, object, "arn");
        if !object.contains_key("arn") {
            checker.report(&at, "missing field `arn`: the role's ARN");
        }
        Some(RawRole {
            arn: arn?,
            session_name: checker.field(&at, object, "session_name"),
            duration_seconds: checker.field(&at, object, "duration_seconds"),
            external_id: checker.field(&at, object, "external_id"),
            region: checker.field(&at, object, "region"),
            mfa_serial: checker.field(&at, object, "mfa_serial"),
        })
    }

    /// The role, or every field that is wrong, each with why.
    pub fn validate(self, alias: &str) -> Result<Role, Vec<(&'static str, Invalid)>> {
        let mut wrong = Vec::new();
        let mut check = Wrong(&mut wrong);
        let alias = check.of("alias", Alias::parse(alias));
        let arn = check.of("arn", RoleArn::parse(&self.arn));
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
                arn: arn?,
                session_name: session_name?,
                duration_seconds: duration_seconds?,
                external_id: external_id?,
                region: region?,
                source_profile: None,
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
}
