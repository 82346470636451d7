//! A role the user can switch to, as every layer sees it: validated, with STS's parameters.

use super::arn::RoleArn;
use super::names::{Alias, ExternalId, MfaSerial, Region, SessionName};

/// The shortest and longest session STS grants (seconds).
pub const MIN_DURATION_SECONDS: u32 = 900;
pub const MAX_DURATION_SECONDS: u32 = 43_200;
/// finto's default, and STS's.
pub const DEFAULT_DURATION_SECONDS: u32 = 3_600;

/// One role the user can switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub alias: Alias,
    pub arn: RoleArn,
    pub session_name: SessionName,
    pub duration_seconds: u32,
    pub external_id: Option<ExternalId>,
    /// STS region for this role; `None` means the standard AWS region settings.
    pub region: Option<Region>,
    /// For roles imported from ~/.aws/config: the profile whose credentials assume this role
    /// (`source_profile`); `None` means fintors's base credentials.
    pub source_profile: Option<String>,
    /// The MFA device whose session assumes this role (the role's own, else the credentials').
    pub mfa_serial: Option<MfaSerial>,
}
