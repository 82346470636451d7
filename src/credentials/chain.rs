//! Role chaining (`"via"`): a role assumed with another role's credentials instead of the base
//! ones, e.g. a permission set in the identity account, then a deploy role in a workload
//! account. [`Chain`] wraps the registry's assumer: for a chained role it first obtains the
//! `via` role's credentials from that role's own cache (refreshed ahead, single flight, so a
//! chain of refreshes makes one upstream call per hop at most), then has the role assumed with
//! them. Hops are followed at call time, so a reload that changes the `via` role is used at the
//! next refresh; the configuration has refused chains that loop or lead nowhere.

use std::sync::{Arc, Weak};

use super::assumer::ConsoleFuture;
use super::cache::Attempt;
use super::{AssumeFuture, Registry, RoleAssumer, StsError};
use crate::model::{Alias, Credentials, Role};

pub struct Chain {
    pub inner: Arc<dyn RoleAssumer>,
    /// Weak: the registry owns the caches, which own this.
    pub registry: Weak<Registry>,
}

impl Chain {
    /// The credentials of `via`, the role that signs for `role`: served from its cache or
    /// fetched for it, or the reason they cannot be had, said as `via`'s.
    async fn signer(&self, role: &Role, via: &Alias) -> Result<Credentials, StsError> {
        let source = self
            .registry
            .upgrade()
            .and_then(|registry| registry.role(via.as_str()))
            .ok_or_else(|| {
                StsError::NoBaseCredentials(format!(
                    "role {} goes via role {via}, which is not a role (not listed yet, or \
                     removed): fix `via`, or `fintors sync`",
                    role.alias
                ))
            })?;
        // To the end, and now: this fetch is a task of its own (nobody waits on it but the
        // chained role's callers, who have their own limit), and the chained role's own backoff
        // already paces it, so `via`'s backoff must not fail it again (after a login, say, when
        // the chained role is retried before `via` is).
        match source.get_to_the_end(Attempt::Now).await {
            Ok(issued) => Ok(issued.credentials.clone()),
            Err(failure) => Err(failure.error.clone().via(via)),
        }
    }
}

impl RoleAssumer for Chain {
    fn assume_role<'a>(&'a self, role: &'a Role) -> AssumeFuture<'a> {
        match &role.via {
            None => self.inner.assume_role(role),
            Some(via) => Box::pin(async move {
                let signer = self.signer(role, via).await?;
                self.inner.assume_role_as(role, signer).await
            }),
        }
    }

    fn signing_profile(&self, role: &Role) -> Option<String> {
        match &role.via {
            None => self.inner.signing_profile(role),
            Some(_) => None,
        }
    }

    fn console_session<'a>(&'a self, role: &'a Role) -> ConsoleFuture<'a> {
        match &role.via {
            None => self.inner.console_session(role),
            Some(via) => Box::pin(async move {
                let signer = self.signer(role, via).await?;
                self.inner.console_session_as(role, signer).await
            }),
        }
    }
}
