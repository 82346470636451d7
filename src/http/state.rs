//! What the request handlers share: the engine (registry, MFA sessions, reloader), the
//! instance, the IMDSv2 tokens and the clock, and where the container endpoint is.

use std::sync::Arc;

use super::handoffs::Handoffs;
use crate::credentials::console::Federation;
use crate::credentials::{MfaSessions, Registry, Reloader};
use crate::ec2::instance::Instance;
use crate::ec2::tokens::Tokens;
use crate::model::Clock;

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
    pub tokens: Arc<Tokens>,
    pub clock: Clock,
    pub imdsv2_required: bool,
    /// Console sign-in (`fintors console`), and the sign-ins waiting for the browser.
    pub federation: Federation,
    pub handoffs: Arc<Handoffs>,
}
