use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use fintors::cli::args::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(args) => match fintors::daemon::serve(args).map_err(anyhow::Error::from) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Not eprintln!, which panics when stderr is gone.
                let _ = writeln!(std::io::stderr(), "fintors: error: {e:#}");
                ExitCode::FAILURE
            }
        },
        command => fintors::cli::run(command),
    }
}
