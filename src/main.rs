use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use fintors::cli::{Cli, Command};
use fintors::commands;

fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(args) => serve(args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "fintors",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Network(args) => match fintors::network::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fintors: {e}");
                ExitCode::FAILURE
            }
        },
        client => run_client(client),
    }
}

fn serve(args: fintors::cli::ServeArgs) -> ExitCode {
    init_logging(args.verbose);
    raise_open_file_limit();
    // fintors must never fetch its own base credentials (or region) from an instance metadata
    // service: that would be itself, or a real IMDS it should not talk to.
    // SAFETY: no other thread exists yet; the runtime is started below.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    // A credential daemon needs a few workers, not one per core: on a 16-core laptop a worker
    // per core would only add idle threads and resident memory.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    match runtime
        .block_on(fintors::daemon::run(args))
        .map_err(anyhow::Error::from)
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fintors: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The common soft limit of 1024 open files would cap the daemon's connections well below what it
/// is built to hold; the hard limit is the user's to set, the soft one is ours to raise.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn run_client(command: Command) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    let result = runtime.block_on(async {
        match &command {
            Command::Roles { json, client } => commands::roles(client, *json).await,
            Command::Use { alias, client } => commands::use_role(client, alias).await,
            Command::Current { client } => commands::current(client).await,
            Command::Creds {
                alias,
                format,
                client,
            } => commands::creds(client, alias.as_deref(), *format).await,
            Command::Status { json, client } => commands::status(client, *json).await,
            Command::Env { ecs, client } => commands::env(client, *ecs).await,
            Command::Reload { client } => commands::reload(client).await,
            Command::Mfa {
                code,
                serial,
                client,
            } => commands::mfa(client, code, serial.as_deref()).await,
            Command::Serve(_) | Command::Completions { .. } | Command::Network(_) => {
                unreachable!("handled in main")
            }
        }
    });
    match result {
        Ok(output) => {
            let _ = std::io::stdout().write_all(output.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // "fintors is not running at ..." names the program already.
            match e.exit_code() {
                2 => eprintln!("{e}"),
                _ => eprintln!("fintors: {e}"),
            }
            ExitCode::from(e.exit_code())
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
