//! The client side of the command line: the definition ([`args`]), finding and talking to a
//! running daemon ([`client`]), the subcommands that ask it and print what a person or a script
//! wants to read ([`commands`]), pinning a command, shell or container to a role of its own
//! ([`pin`]) and `exec`'s pinned shell ([`subshell`]), picking a role by typing ([`picker`],
//! ordered by the [`history`] of picks), logging the base identity in again ([`login`]), opening
//! the console as a role ([`console`]), simulated instance events ([`simulate`]), `fintors
//! network` ([`network`]) and `fintors service` ([`service`]). It speaks the daemon's
//! wire protocol ([`crate::api`]) and reads the configuration, never the engine or the
//! handlers.

pub mod args;
pub mod browser;
pub mod client;
pub mod commands;
pub mod console;
pub mod daemon;
pub mod doctor;
pub mod environment;
pub mod history;
pub mod keys;
pub mod login;
pub mod man;
pub mod network;
pub mod picker;
pub mod pin;
pub mod service;
pub mod simulate;
pub mod status;
pub mod subshell;

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use args::{Cli, Command};

/// Runs a client subcommand, `completions` or `network`: prints its output, or its one-line
/// error with exit status 2 when the daemon is not running and 1 otherwise.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "fintors",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Network(args) => match network::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fintors: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Man { dir } => match man::man(dir.as_deref()) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fintors: cannot write the manual pages: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Service(args) => match service::service(&args) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fintors: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve(_) => unreachable!("the daemon is not a client"),
        client => ask_the_daemon(client),
    }
}

fn ask_the_daemon(command: Command) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    let result = runtime.block_on(async {
        match &command {
            Command::Roles {
                filter,
                json,
                client,
            } => commands::roles(client, filter, *json).await,
            Command::Use { alias, client } => commands::use_role(client, alias.as_deref()).await,
            Command::Current { client } => commands::current(client).await,
            Command::Creds {
                alias,
                format,
                client,
            } => commands::creds(client, alias.as_deref(), *format).await,
            Command::Status { json, client } => status::status(client, *json).await,
            Command::Stop { client } => commands::stop(client).await,
            Command::Doctor { client } => doctor::doctor(client).await,
            Command::Env {
                ecs,
                role,
                container,
                format,
                client,
            } => {
                let choice = match (role, ecs) {
                    (Some(role), _) => commands::EnvChoice::Role(
                        // `--role=` (as a script with an empty variable writes it) names none.
                        role.as_deref().filter(|r| !r.is_empty()),
                        if *container {
                            pin::Place::Container
                        } else {
                            pin::Place::Here
                        },
                    ),
                    (None, true) => commands::EnvChoice::ActiveRole,
                    (None, false) => commands::EnvChoice::Imds,
                };
                commands::env(client, choice, *format).await
            }
            Command::Exec {
                role,
                command,
                client,
            } => Err(commands::exec(client, role.as_deref(), command).await),
            Command::Reload { client } => commands::reload(client).await,
            Command::Sync { client } => commands::sync(client).await,
            Command::Simulate(event) => simulate::simulate(event).await,
            Command::Login { device, client } => login::login(client, *device).await,
            Command::Logout { client } => login::logout(client).await,
            Command::Console {
                role,
                print,
                destination,
                duration,
                client,
            } => {
                let request = crate::api::ConsoleRequest {
                    destination: destination.clone(),
                    duration: *duration,
                    handoff: false,
                };
                console::console(client, role.as_deref(), *print, request).await
            }
            Command::Mfa {
                code,
                serial,
                client,
            } => commands::mfa(client, code, serial.as_deref()).await,
            Command::Serve(_)
            | Command::Completions { .. }
            | Command::Network(_)
            | Command::Man { .. }
            | Command::Service(_) => {
                unreachable!("not a question for the daemon")
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
