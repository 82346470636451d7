//! The command line. Serving is the default action (`fintors` alone, or `fintors serve`), which
//! leaves room for client subcommands beside it.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

pub const DEFAULT_ADDR: &str = "169.254.169.254";
pub const DEFAULT_PORT: u16 = 16925;

#[derive(Debug, Parser)]
#[command(
    name = "fintors",
    version,
    about = "Serve AWS role credentials to every SDK on this machine, the way EC2 does",
    long_about = "fintors makes this workstation look like an EC2 instance with an instance \
profile. It assumes IAM roles with STS from your own base credentials, caches and refreshes the \
temporary credentials, and serves them on the instance metadata (IMDS) paths, so the AWS CLI and \
every SDK pick them up with no configuration. Switch the active role with \
`curl -XPUT -H 'Content-Type: application/json' -d '{\"alias\":\"NAME\"}' http://ADDR:PORT/roles`.",
    after_help = "Point clients at it with AWS_EC2_METADATA_SERVICE_ENDPOINT=http://ADDR:PORT, or \
give this machine the 169.254.169.254 address (see the README).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (what `fintors` does with no command)
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: the metadata address (needs it assigned to an interface, e.g. lo)
    /// or a loopback address
    #[arg(long, default_value = DEFAULT_ADDR, value_name = "IP")]
    pub addr: IpAddr,

    /// Port to listen on (0 picks a free one and logs it)
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Configuration file (finto's JSON format)
    #[arg(
        long,
        env = "FINTORS_CONFIG",
        default_value = "~/.fintorc",
        value_name = "FILE"
    )]
    pub config: String,

    /// Append an HTTP access log to FILE (created with mode 0600)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Where the IMDSv2 token key is kept [default: $XDG_STATE_HOME/fintors or
    /// ~/.local/state/fintors]
    #[arg(long, env = "FINTORS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Refuse requests without an IMDSv2 session token, like an instance with HttpTokens=required
    #[arg(long)]
    pub imdsv2_required: bool,

    /// Answer peers other than this machine (dangerous: they get your credentials)
    #[arg(long)]
    pub allow_remote: bool,

    /// More diagnostics on stderr (-v: fintors debug, -vv: everything); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

impl Cli {
    /// The serve arguments, whichever way they were given.
    pub fn serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            None => self.serve,
        }
    }
}
