//! What the end-to-end tests (`tests/integration`) and the benchmarks (`bench`) share, so each
//! exists once: a raw HTTP client ([`mod@http`]) and fake AWS endpoints on loopback ([`fake`]);
//! and, for the unit tests too, how a test that cannot run here says so ([`skip`]).

pub mod fake;
pub mod http;
pub mod skip;

pub use fake::{FakeServer, FakeSts, HANG_UP, Issued, Request, StsCall, issued, sts_error};
pub use http::{Reply, http, raw_request, try_raw_request};
pub use skip::{as_root, in_ci, skipped};
