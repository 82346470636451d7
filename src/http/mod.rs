//! The request path, top to bottom: a [`listener`] accepts connections (from this machine, only
//! those of allowed users: [`owner`]) and hands each request
//! to an [`App`] (the router, the fast path for cached credentials, the front door of
//! [`guard`] and IMDS session checks); the routes live one file per API, named for it: [`imds`]
//! (tokens and credentials) and [`metadata`] (the rest of the tree) under `/latest/`, [`roles`]
//! (`/roles`, and a role's console sign-in), [`status`], [`reload`], [`retry`], [`simulate`],
//! [`console`] (the browser's handoff) and [`mfa`] (`/fintors/...`, `/mfa`) on the IMDS listener,
//! [`container`] and [`admin`] on listeners of their own. Handlers ask the credential engine and
//! the `ec2` layer; they decide nothing about credentials themselves.

pub mod access_log;
pub mod admin;
mod app;
pub mod console;
pub mod container;
pub mod guard;
pub mod handoffs;
pub mod imds;
mod json;
pub mod listener;
pub mod metadata;
pub mod mfa;
pub mod owner;
pub mod reload;
pub mod retry;
pub mod roles;
pub mod simulate;
pub mod state;
pub mod status;
pub mod sync;
pub mod throttle;

pub use app::{App, container_app, imds_app};
pub use json::MAX_BODY_BYTES;
pub use state::{AppState, ContainerInfo};
