//! What can go wrong signing in to IAM Identity Center, one variant per thing the user does
//! about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The AWS config file has no usable `[sso-session NAME]`: the message says what to add.
    #[error("{0}")]
    Config(String),
    /// SSO OIDC or the portal could not be reached or did not answer.
    #[error("cannot reach IAM Identity Center in {region}: {why}")]
    Unreachable { region: String, why: String },
    /// An operation was refused, for a reason that is not one of the others: its error type.
    #[error("IAM Identity Center refused {operation}: {code}: {message}")]
    Refused {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The refresh token no longer works: the session has ended and only a sign-in renews it.
    #[error("the SSO session \"{0}\" has ended: run `fintors login` to sign in again")]
    Ended(String),
    /// Another process is signing in to the session or renewing it (it holds the lock file).
    #[error("a sign-in or renewal of the SSO session \"{0}\" is under way: try again in a moment")]
    Busy(String),
    /// There is no login of the session on this machine (never signed in, or signed out).
    #[error("the SSO session \"{0}\" has no login on this machine: run `fintors login`")]
    NoLogin(String),
    /// The user (or the identity provider) refused the sign-in in the browser.
    #[error("the sign-in was refused in the browser ({0}): run `fintors login` to try again")]
    Denied(String),
    /// Nobody finished the sign-in in time.
    #[error("the sign-in was not finished within {0} minutes: run `fintors login` to try again")]
    TimedOut(u64),
    #[error("cannot {action} {}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on 127.0.0.1 for the browser's return")]
    Listen(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_one_line_within_160_characters_with_the_longest_words_passed_on() {
        let said = format!("{}...", "w".repeat(super::super::oidc::SAID));
        let session = "a-session-name-of-30-character".to_owned();
        let path = PathBuf::from(
            "/home/a-rather-long-user-name/.aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json.lock",
        );
        let errors = [
            SsoError::Unreachable {
                region: "ap-southeast-4".into(),
                why: said.clone(),
            },
            SsoError::Refused {
                operation: "StartDeviceAuthorization",
                code: "InvalidClientException".into(),
                message: said.clone(),
            },
            SsoError::Ended(session.clone()),
            SsoError::NoLogin(session.clone()),
            SsoError::Busy(session),
            SsoError::Config(
                "[sso-session a-session-name-of-30-character] in the AWS config file has no \
                 sso_registration_scopes: add it"
                    .into(),
            ),
            SsoError::Denied(format!("{}...", "d".repeat(60))),
            SsoError::TimedOut(10),
            SsoError::File {
                action: "remove",
                path,
                source: std::io::Error::other("x"),
            },
            SsoError::Listen(std::io::Error::other("x")),
        ];
        for e in errors {
            let line = format!("fintors: {e}");
            assert!(
                !line.contains('\n') && line.len() <= 160,
                "{} chars: {line}",
                line.len()
            );
        }
    }
}
