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
