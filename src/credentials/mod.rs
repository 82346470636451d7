//! The credential engine, with no HTTP server in it: STS behind the [`RoleAssumer`] seam, MFA
//! sessions, one cache per role that refreshes ahead of expiry, the registry of roles and the
//! active one, reloading the configuration into it, and the console sign-in (whose federation
//! endpoint it calls as a client, as it calls STS). The `http` layer asks it for credentials;
//! nothing here knows how it was asked, only through which door ([`usage`]), so that a user can
//! see who uses a role.

mod assumer;
mod bootstrap;
pub mod cache;
mod chain;
pub mod console;
pub mod discovery;
mod error;
pub mod mfa;
pub mod online;
pub mod portal;
pub mod process;
pub mod registry;
pub mod reload;
#[cfg(test)]
mod replay;
pub mod scripted;
pub mod sources;
pub mod sso;
pub mod sts;
pub mod usage;

pub use assumer::{AssumeFuture, ConsoleFuture, ConsoleSession, RoleAssumer};
pub use bootstrap::Bootstrap;
pub use cache::{Attempt, Failure, Issued, RoleCache};
pub use error::{MfaError, StsError, one_line};
pub use mfa::MfaSessions;
pub use registry::{Registry, SwitchError};
pub use reload::Reloader;
pub use sources::Sources;
pub use sts::{ClockWatch, FALLBACK_REGION, Skew, Sts};
pub use usage::{Door, DoorUsage, Usage};
