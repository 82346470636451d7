//! The seam between the credential cache and STS: the daemon plugs in [`super::Sts`], built on
//! aws-sdk-sts with the user's base credentials; tests plug in doubles that count calls, stall
//! or fail on cue.

use std::future::Future;
use std::pin::Pin;

use super::StsError;
use crate::model::{Credentials, Role};

pub type AssumeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, StsError>> + Send + 'a>>;

/// Obtains temporary credentials for a role.
pub trait RoleAssumer: Send + Sync + 'static {
    fn assume_role<'a>(&'a self, role: &'a Role) -> AssumeFuture<'a>;
}
