//! The seam between the credential cache and STS: the daemon plugs in [`super::Sts`], built on
//! aws-sdk-sts with the user's base credentials; tests plug in doubles that count calls, stall
//! or fail on cue.

use std::future::Future;
use std::pin::Pin;

use super::StsError;
use crate::model::{Credentials, Role};

pub type AssumeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, StsError>> + Send + 'a>>;

pub type ConsoleFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ConsoleSession, StsError>> + Send + 'a>>;

/// Which role session a console sign-in may use. The federation endpoint refuses a session
/// that was assumed with `DurationSeconds` from anything but an IAM user's long-term keys (IAM
/// User Guide, "Enable custom identity broker access to the AWS console", step 2), and fintors
/// always sends `DurationSeconds`; so a role assumed from temporary credentials (IAM Identity
/// Center, an MFA session, another role) signs in with a session of its own.
#[derive(Debug)]
pub enum ConsoleSession {
    /// The role's cached session will do: it was assumed from long-term keys.
    Cached,
    /// A session assumed for the console alone, without `DurationSeconds` (one hour, the
    /// role-chaining limit), because the role's own was assumed from temporary credentials.
    Fresh(Credentials),
}

/// Obtains temporary credentials for a role.
pub trait RoleAssumer: Send + Sync + 'static {
    fn assume_role<'a>(&'a self, role: &'a Role) -> AssumeFuture<'a>;

    /// The session a console sign-in as `role` uses. Doubles, like long-term keys, need none of
    /// their own.
    fn console_session<'a>(&'a self, _role: &'a Role) -> ConsoleFuture<'a> {
        Box::pin(async { Ok(ConsoleSession::Cached) })
    }

    /// Credentials for `role` signed with `signer`, its `via` role's credentials, instead of
    /// the base credentials (role chaining). Only an assumed role can be chained.
    fn assume_role_as<'a>(&'a self, role: &'a Role, _signer: Credentials) -> AssumeFuture<'a> {
        Box::pin(async move { Err(unchainable(role)) })
    }

    /// The console session of a chained `role`: always one of its own, since `signer` is a
    /// temporary session by definition.
    fn console_session_as<'a>(&'a self, role: &'a Role, _signer: Credentials) -> ConsoleFuture<'a> {
        Box::pin(async move { Err(unchainable(role)) })
    }

    /// The AWS profile whose credentials sign `role`'s AssumeRole now, which says the IAM
    /// Identity Center login the role depends on: its `source_profile`, or the base profile
    /// while the base credentials are configured by profile and none handed over at run time
    /// replace them. `None` for a role signed otherwise (an MFA session, its `via` role, a
    /// double's keys) and for roles that are not assumed.
    fn signing_profile(&self, _role: &Role) -> Option<String> {
        None
    }
}

/// A role of a kind that has no use for another role's credentials (the config refuses it).
pub fn unchainable(role: &Role) -> StsError {
    StsError::NoBaseCredentials(format!(
        "role {} is a {} role, which `via` cannot chain: only a role with an `arn` can",
        role.alias,
        role.kind()
    ))
}
