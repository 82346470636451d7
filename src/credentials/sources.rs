//! Every kind of role behind the one [`RoleAssumer`] the caches use: a role is a source of
//! credentials, and this is where its kind picks the source. Assumed roles go to STS
//! ([`Sts`]), permission sets to the Identity Center portal ([`Portal`]), credential commands
//! are run ([`process`](super::process)).

use std::sync::Arc;

use super::assumer::{ConsoleFuture, ConsoleSession, unchainable};
use super::portal::Portal;
use super::{AssumeFuture, RoleAssumer, Sts};
use crate::model::{Clock, Credentials, Role, RoleSource};

pub struct Sources {
    pub sts: Arc<Sts>,
    pub portal: Arc<Portal>,
    pub clock: Clock,
}

impl RoleAssumer for Sources {
    fn assume_role<'a>(&'a self, role: &'a Role) -> AssumeFuture<'a> {
        match &role.source {
            RoleSource::Assume => self.sts.assume_role(role),
            RoleSource::PermissionSet(set) => Box::pin(self.portal.role_credentials(set)),
            RoleSource::Process(process) => {
                Box::pin(super::process::credentials(&process.command, self.clock))
            }
        }
    }

    fn assume_role_as<'a>(&'a self, role: &'a Role, signer: Credentials) -> AssumeFuture<'a> {
        match &role.source {
            RoleSource::Assume => self.sts.assume_role_as(role, signer),
            RoleSource::PermissionSet(_) | RoleSource::Process(_) => {
                Box::pin(async move { Err(unchainable(role)) })
            }
        }
    }

    fn console_session_as<'a>(&'a self, role: &'a Role, signer: Credentials) -> ConsoleFuture<'a> {
        match &role.source {
            RoleSource::Assume => self.sts.console_session_as(role, signer),
            RoleSource::PermissionSet(_) | RoleSource::Process(_) => {
                Box::pin(async move { Err(unchainable(role)) })
            }
        }
    }

    fn signing_profile(&self, role: &Role) -> Option<String> {
        match &role.source {
            RoleSource::Assume => self.sts.signing_profile(role),
            RoleSource::PermissionSet(_) | RoleSource::Process(_) => None,
        }
    }

    fn console_session<'a>(&'a self, role: &'a Role) -> ConsoleFuture<'a> {
        match &role.source {
            RoleSource::Assume => self.sts.console_session(role),
            // The portal's credentials are a session already: the console signs in with them;
            // so are a command's (fintors serves no long-term keys).
            RoleSource::PermissionSet(_) | RoleSource::Process(_) => {
                Box::pin(async { Ok(ConsoleSession::Cached) })
            }
        }
    }
}
