//! Why credentials could not be had, one variant per class of failure, decided by type where the
//! failure arises (never by reading a message). Each variant has the `Code` IMDS clients see in
//! the error document and a one-line message that names the thing and the fix; the SDK's own
//! error chain goes to the debug log (`-vv`), never into a message.

/// An STS failure, or a failure to get as far as STS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// STS answered with an error: its own code and message (`AccessDenied`, `ExpiredToken`,
    /// `Throttling`, `RegionDisabledException`, ...).
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// The base credentials could not be loaded (no such profile, a broken credentials file,
    /// a credential_process that failed).
    #[error("NoBaseCredentials: {0}")]
    NoBaseCredentials(String),
    /// STS did not answer in time, or is still being waited for.
    #[error("StsTimeout: {0}")]
    Timeout(String),
    /// No connection to STS (offline, DNS, a refused connection).
    #[error("StsUnreachable: {0}")]
    Unreachable(String),
    /// Something answered that is not STS, or STS said something unusable.
    #[error("MalformedResponse: {0}")]
    Malformed(String),
    /// The role needs an MFA session and none is there yet.
    #[error("MfaRequired: {0}")]
    MfaRequired(String),
    /// The base credentials come from an IAM Identity Center session that has expired or was
    /// never logged in here: the message names it and the command that logs in.
    #[error("SsoLoginRequired: {0}")]
    SsoLoginRequired(String),
    /// A credential command (`credential_process`) could not be run, failed, or printed no
    /// usable credentials.
    #[error("CredentialProcessFailed: {0}")]
    ProcessFailed(String),
}

impl StsError {
    /// STS's refusal with its code and message.
    pub fn refused(code: impl Into<String>, message: impl Into<String>) -> Self {
        StsError::Refused {
            code: code.into(),
            message: message.into(),
        }
    }

    /// This failure of the role `via`, as the role chained to it reports it: the same class
    /// and code, the message saying which hop failed. A login or an MFA code that is needed is
    /// said as it is, so that it reads the same (and is warned about once) whichever role met it.
    pub fn via(self, via: &crate::model::Alias) -> Self {
        let hop = |m: String| format!("via role {via}: {m}");
        match self {
            StsError::SsoLoginRequired(_) | StsError::MfaRequired(_) => self,
            StsError::Refused { code, message } => StsError::Refused {
                code,
                message: hop(message),
            },
            StsError::NoBaseCredentials(m) => StsError::NoBaseCredentials(hop(m)),
            StsError::Timeout(m) => StsError::Timeout(hop(m)),
            StsError::Unreachable(m) => StsError::Unreachable(hop(m)),
            StsError::Malformed(m) => StsError::Malformed(hop(m)),
            StsError::ProcessFailed(m) => StsError::ProcessFailed(hop(m)),
        }
    }

    /// Whether nothing answered (offline, DNS, a refused or silent connection), as opposed to
    /// an answer that said no: such a failure says nothing about the next attempt, which may
    /// find the network back. A refusal (`Throttling`, `AccessDenied`) stands until its backoff.
    pub fn is_no_answer(&self) -> bool {
        matches!(self, StsError::Unreachable(_) | StsError::Timeout(_))
    }

    /// Whether the call got as far as the upstream (STS, the portal, the command): not when
    /// the credentials to sign it, a login or an MFA code were missing, or nothing answered.
    /// `status` counts only these as calls.
    pub fn reached_upstream(&self) -> bool {
        match self {
            StsError::Refused { .. }
            | StsError::Timeout(_)
            | StsError::Malformed(_)
            | StsError::ProcessFailed(_) => true,
            StsError::NoBaseCredentials(_)
            | StsError::Unreachable(_)
            | StsError::MfaRequired(_)
            | StsError::SsoLoginRequired(_) => false,
        }
    }

    /// The `Code` of the EC2 error document.
    pub fn code(&self) -> &str {
        match self {
            StsError::Refused { code, .. } => code,
            StsError::NoBaseCredentials(_) => "NoBaseCredentials",
            StsError::Timeout(_) => "StsTimeout",
            StsError::Unreachable(_) => "StsUnreachable",
            StsError::Malformed(_) => "MalformedResponse",
            StsError::MfaRequired(_) => "MfaRequired",
            StsError::SsoLoginRequired(_) => crate::api::SSO_LOGIN_REQUIRED,
            StsError::ProcessFailed(_) => "CredentialProcessFailed",
        }
    }

    /// The `Message` of the EC2 error document: one line.
    pub fn message(&self) -> &str {
        match self {
            StsError::Refused { message, .. } => message,
            StsError::NoBaseCredentials(m)
            | StsError::Timeout(m)
            | StsError::Unreachable(m)
            | StsError::Malformed(m)
            | StsError::MfaRequired(m)
            | StsError::SsoLoginRequired(m)
            | StsError::ProcessFailed(m) => m,
        }
    }
}

/// The failure behind an IAM Identity Center login's token (`sso::usable_token`), classed as a
/// role's failure: a login that is needed is `login_required` (the caller's one-line message
/// with the command); a renewal under way elsewhere is a wait; Identity Center's refusal keeps
/// its code (an answer: it keeps its backoff); only no answer at all is `Unreachable`; the rest
/// (the config file, the token cache) are base credentials that cannot be had.
pub fn token_failure(
    error: crate::sso::SsoError,
    login_required: impl FnOnce() -> StsError,
) -> StsError {
    use crate::sso::SsoError;
    let line = |e: &SsoError| one_line(&e.to_string(), crate::model::text::MAX_MESSAGE);
    match error {
        SsoError::NoLogin(_) | SsoError::Ended(_) => login_required(),
        e @ SsoError::Busy(_) => StsError::Timeout(e.to_string()),
        e @ SsoError::Unreachable { .. } => StsError::Unreachable(line(&e)),
        SsoError::Refused {
            operation,
            code,
            message,
        } => StsError::refused(
            code,
            one_line(
                &format!("IAM Identity Center refused {operation}: {message}"),
                crate::model::text::MAX_MESSAGE,
            ),
        ),
        e @ (SsoError::Config(_)
        | SsoError::File { .. }
        | SsoError::Listen(_)
        | SsoError::Denied(_)
        | SsoError::TimedOut(_)) => StsError::NoBaseCredentials(line(&e)),
    }
}

/// Why an MFA session could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    #[error("an MFA code is exactly 6 digits")]
    InvalidCode,
    #[error(transparent)]
    Sts(#[from] StsError),
}

/// The expired-login errors logged as warnings, by any role of one registry: a session that
/// expires stops every role it signs for, and the user needs to read that once. Each message
/// names its session, so two expired sessions are two warnings, once each. Shared by the roles
/// of a registry (not process-wide, so two daemons in one process, as tests run them, do not
/// silence each other).
#[derive(Debug, Default)]
pub struct LoginWarnings {
    reported: std::sync::Mutex<Vec<String>>,
}

impl LoginWarnings {
    /// Whether `error` is news to the log: not warned about already. A new login (a token
    /// cache file changed, [`LoginWarnings::forget`]) makes the next expiry news again even if
    /// it reads the same.
    pub fn first_report(&self, error: &StsError) -> bool {
        let mut reported = self.reported.lock().expect("poisoned");
        let message = error.message();
        if reported.iter().any(|m| m == message) {
            return false;
        }
        reported.push(message.to_owned());
        true
    }

    pub fn forget(&self) {
        self.reported.lock().expect("poisoned").clear();
    }
}

pub use crate::model::text::one_line;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_centers_refusal_is_an_answer_and_keeps_its_code() {
        let refused = crate::sso::SsoError::Refused {
            operation: "CreateToken",
            code: "SlowDownException".into(),
            message: "slow down".into(),
        };
        let e = token_failure(refused, || unreachable!());
        assert_eq!(e.code(), "SlowDownException");
        assert!(!e.is_no_answer() && e.reached_upstream());
    }

    #[test]
    fn only_identity_center_not_answering_is_no_answer() {
        let unreachable = crate::sso::SsoError::Unreachable {
            region: "eu-west-1".into(),
            why: "dns error".into(),
        };
        assert!(token_failure(unreachable, || unreachable!()).is_no_answer());
        let config = crate::sso::SsoError::Config("no [sso-session corp]".into());
        assert_eq!(
            token_failure(config, || unreachable!()).code(),
            "NoBaseCredentials"
        );
    }

    #[test]
    fn each_class_has_its_document_code() {
        assert_eq!(
            StsError::refused("AccessDenied", "no").code(),
            "AccessDenied"
        );
        assert_eq!(
            StsError::NoBaseCredentials("x".into()).code(),
            "NoBaseCredentials"
        );
        assert_eq!(StsError::Timeout("x".into()).code(), "StsTimeout");
        assert_eq!(StsError::Unreachable("x".into()).code(), "StsUnreachable");
        assert_eq!(StsError::Malformed("x".into()).code(), "MalformedResponse");
        assert_eq!(StsError::MfaRequired("x".into()).code(), "MfaRequired");
    }

    #[test]
    fn display_is_code_then_message() {
        let e = StsError::refused("AccessDenied", "not authorized");
        assert_eq!(e.to_string(), "AccessDenied: not authorized");
        assert_eq!(e.message(), "not authorized");
    }

    #[test]
    fn an_expired_login_is_news_once_per_session_whichever_role_meets_it_until_a_new_login() {
        let expired = StsError::SsoLoginRequired("the SSO session \"unit\" expired".into());
        let other = StsError::SsoLoginRequired("the SSO session \"unit2\" expired".into());
        let warnings = LoginWarnings::default();
        assert!(warnings.first_report(&expired), "the first role to meet it");
        assert!(warnings.first_report(&other), "another session's");
        assert!(
            !warnings.first_report(&expired),
            "every other role, every retry"
        );
        assert!(
            !warnings.first_report(&other),
            "alternating roles, no repeats"
        );
        warnings.forget();
        assert!(
            warnings.first_report(&expired),
            "after a new login, news again"
        );
    }
}
