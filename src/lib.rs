//! fintors: a local EC2 instance metadata service that serves STS AssumeRole credentials for the
//! role you choose. The binary is a thin shell over [`daemon::run`]; the modules are public so the
//! integration tests and benchmarks can drive the same code.

pub mod access_log;
pub mod activation;
pub mod admin;
pub mod aws_profiles;
pub mod cache;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod container;
pub mod daemon;
pub mod document;
pub mod guard;
pub mod imds;
pub mod json_api;
pub mod metadata;
pub mod mfa;
pub mod model;
pub mod network;
pub mod registry;
pub mod reload;
pub mod roles_api;
pub mod server;
pub mod state;
pub mod status;
pub mod sts;
pub mod tokens;
