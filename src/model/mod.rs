//! The value types every layer speaks: role names and ARNs checked once where they enter,
//! secrets whose `Debug` is redacted (and a table of those recently found valid), credentials,
//! and the clock validity is judged on. Nothing
//! here does I/O or knows about HTTP, so every other layer may use it.

mod arn;
mod clock;
mod credentials;
pub mod glob;
mod names;
pub mod remembered;
mod role;
pub mod secret;
pub mod shell;
pub mod suggest;
pub mod text;
pub mod time;

pub use arn::RoleArn;
pub use clock::Clock;
pub use credentials::Credentials;
pub use names::{Alias, ExternalId, Invalid, MfaSerial, Region, SessionName};
pub use role::{
    Assignment, CHAINED_MAX_SECONDS, CredentialProcess, DEFAULT_DURATION_SECONDS,
    MAX_DURATION_SECONDS, MIN_DURATION_SECONDS, PermissionSet, Role, RoleSource,
};
pub use secret::Secret;
