use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use fintors::cli::Cli;

fn main() -> std::process::ExitCode {
    let args = Cli::parse().serve_args();
    init_logging(args.verbose);
    // fintors must never fetch its own base credentials (or region) from an instance metadata
    // service: that would be itself, or a real IMDS it should not talk to.
    // SAFETY: no other thread exists yet; the runtime is started below.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    match runtime
        .block_on(fintors::daemon::run(args))
        .map_err(anyhow::Error::from)
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fintors: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let base = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec,
        _ => match verbose {
            // The SDK's own info lines (which provider it chose, and so on) are noise here.
            0 => "warn,fintors=info".to_owned(),
            1 => "info,fintors=debug".to_owned(),
            _ => "debug".to_owned(),
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
