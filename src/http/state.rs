//! What the request handlers share: the engine (registry, MFA sessions, reloader), the
//! instance, the IMDSv2 tokens and the clock, and where the container endpoint is.

use std::sync::Arc;

use super::handoffs::Handoffs;
use crate::credentials::console::Federation;
use crate::credentials::{MfaSessions, Registry, Reloader};
use crate::ec2::events::Events;
use crate::ec2::identity_signing::LazySigner;
use crate::ec2::instance::Instance;
use crate::ec2::tokens::Tokens;
use crate::model::{Clock, RoleArn};

/// Where the container credentials endpoint is, for the status report.
#[derive(Clone)]
pub struct ContainerInfo {
    pub url: String,
}

#[derive(Clone)]
pub struct AppState {
    pub reloader: Arc<Reloader>,
    pub container: Option<ContainerInfo>,
    pub mfa: Arc<MfaSessions>,
    pub registry: Arc<Registry>,
    pub instance: Instance,
    /// The instance events `fintors simulate` started.
    pub events: Arc<Events>,
    /// What signs the identity document.
    pub identity: Arc<LazySigner>,
    pub tokens: Arc<Tokens>,
    pub clock: Clock,
    pub imdsv2_required: bool,
    /// It serves on a socket systemd passed in, which outlives the process.
    pub socket_activated: bool,
    /// Console sign-in (`fintors console`), and the sign-ins waiting for the browser.
    pub federation: Federation,
    pub handoffs: Arc<Handoffs>,
    /// This clock against STS's (`None` where STS is not the real client, as in the contract
    /// tests).
    pub sts_clock: Option<crate::credentials::ClockWatch>,
}

impl AppState {
    /// The role ARN that stands for "this instance's" account and partition: the active role's,
    /// else that of the first role that has one (a credential command's role has none).
    pub fn account_arn(&self) -> Option<RoleArn> {
        self.registry
            .active()
            .and_then(|active| active.role().arn.clone())
            .or_else(|| {
                self.registry
                    .caches()
                    .iter()
                    .find_map(|cache| cache.role().arn.clone())
            })
    }
}
