//! Names STS and IAM give meaning to, each checked once where it enters fintors: an [`Alias`] is
//! a legal IAM role name (and so safe in a URL path), a [`SessionName`], an [`ExternalId`] and an
//! [`MfaSerial`] satisfy STS's character and length rules, a [`Region`] looks like one. STS
//! emulators accept anything and real STS would only complain at the moment a user switches
//! roles, so whatever holds one of these types is known to be valid.

use std::fmt;

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

pub(crate) fn is_role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

pub(crate) fn check_charset(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
