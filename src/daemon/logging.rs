//! Diagnostics on stderr. The default level shows fintors's own one-line messages; `-v` adds
//! fintors's debug lines, `-vv` everything, the SDKs' error chains and raw responses included.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8) {
    let base = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec,
        _ => match verbose {
            // fintors's own lines only, and others' errors: the SDK's warnings repeat, with a
            // Debug dump of its error chain, what fintors reports in one line.
            0 => "error,fintors=info".to_owned(),
            1 => "info,fintors=debug".to_owned(),
            _ => "debug,fintors=trace".to_owned(),
        },
    };
    // The SigV4 signer traces canonical requests, which carry a session token when the base
    // credentials have one: never let it log, whatever RUST_LOG asks for.
    let filter = EnvFilter::new(format!("{base},aws_sigv4=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
