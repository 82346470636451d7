//! IAM Identity Center sign-in, done by fintors itself: no AWS CLI needed, and one login that
//! renews itself for every caller. Both sides use it: `fintors login` and `logout` in the
//! client, and the daemon, which renews the access token ahead of its expiry.
//!
//! - `session.rs`: an `[sso-session NAME]` of the AWS config file, as the sign-in needs it.
//! - `cache.rs`: the token and client-registration files in `~/.aws/sso/cache`, in the AWS
//!   CLI's exact form, so the CLI, the SDKs and fintors share one login.
//! - `oidc.rs`: SSO OIDC's operations (RegisterClient, StartDeviceAuthorization, CreateToken),
//!   each failure classified by its error type.
//! - `pkce.rs`: the authorization code grant's verifier, challenge and state, and the authorize
//!   URL; `callback.rs`: the loopback listener the browser comes back to.
//! - `flow.rs`: the two sign-ins (the browser with PKCE, and the device code), the refresh, and
//!   logging out.

mod cache;
mod callback;
mod error;
mod flow;
mod oidc;
mod pkce;
mod session;

pub use cache::{CachedToken, Registration, token_file};
pub use error::SsoError;
pub use flow::{Browser, Login, logout, refresh, sign_in, usable_token};
pub use session::Session;
