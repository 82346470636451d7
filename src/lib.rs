//! fintors: a local EC2 instance metadata service that serves STS AssumeRole credentials for the
//! role you choose. The binary is a thin shell over [`daemon::serve`] and [`cli::run`]; the
//! modules are public so the integration tests, the benchmarks and the fuzz targets drive the
//! same code.
//!
//! # Layout
//!
//! The folders are layers, and imports only go down them. `ARCHITECTURE.md` at the top of the
//! repository has the layer map with what each may import and the route → file table;
//! `tests/layers.rs` enforces both.
//!
//! At the bottom, [`model`] holds the value types every layer speaks: role names and ARNs that
//! were checked where they entered, secrets whose `Debug` shows nothing, credentials, the clock;
//! beside it, [`platform`] asks the operating system what std cannot (who owns a socket), with
//! each system's code chosen at compile time.
//! [`api`] is the wire protocol of fintors's own API (route paths and one type per message),
//! shared by the daemon's handlers and the client subcommands. [`config`] reads what the user
//! wrote (the fintors config file, and roles imported from `~/.aws/config`) into those types,
//! reporting every mistake at once.
//!
//! [`ec2`] is what an EC2 instance looks like, with no HTTP in it: the IMDS paths and headers,
//! its JSON documents in EC2's exact layout, the instance and its metadata tree, IMDSv2 tokens.
//! [`sso`] is IAM Identity Center's sign-in, which both sides use: `fintors login` signs in
//! with it, the daemon renews the login with it; it writes the token cache the AWS CLI shares.
//! [`credentials`] is the engine, without an HTTP server: STS behind the `RoleAssumer` seam,
//! MFA sessions, one refresh-ahead cache per role, the registry of roles and the active one,
//! reload, SSO sessions, console sign-in.
//!
//! [`http`] is the request path, top to bottom: the listener's accept loop, the app (router,
//! fast path for cached credentials, the guard), and one file per API, named for it (`imds`,
//! `metadata`, `roles`, `status`, `reload`, `retry`, `simulate`, `console`, `mfa`, `container`,
//! `admin`):
//! ARCHITECTURE.md's route table names the file of every route. [`daemon`] is the composition
//! root, the only module that sees every layer: load, bind, build the state, spawn the
//! listeners, wait.
//!
//! [`cli`] is the client side (the command line's definition, finding and verifying the daemon,
//! the requests the subcommands share, the subcommands, `fintors network`); it uses `api`,
//! `config`, `ec2`'s protocol facts, `sso`, `platform` and `model`, never `http`, `credentials` or
//! `daemon`.

/// `fintors --version`: the version and the commit it was built from (see `build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FINTORS_COMMIT"), ")");

pub mod api;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod ec2;
pub mod http;
pub mod model;
pub mod platform;
pub mod sso;
