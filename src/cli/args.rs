//! The command line's definition. Serving is the default action (`fintors` alone, or `fintors
//! serve`); the other subcommands are clients of a running daemon, or set up the machine
//! around it.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::api::{MaintenanceCode, SpotAction};
use crate::config::{ContainerPort, DEFAULT_CONFIG, Listening};

#[derive(Debug, Parser)]
#[command(
    name = "fintors",
    version = crate::VERSION,
    about = "Serve AWS role credentials to every SDK on this machine, the way EC2 does",
    long_about = "fintors makes this workstation look like an EC2 instance with an instance \
profile. It assumes IAM roles with STS from your own base credentials, caches and refreshes the \
temporary credentials, and serves them on the instance metadata (IMDS) paths, so the AWS CLI and \
every SDK pick them up with no configuration.\n\nRun the daemon with `fintors` (or `fintors \
serve`); switch roles with `fintors use ROLE`.",
    after_help = "The daemon listens on http://127.0.0.1:16925/. Point clients at it with \
`eval \"$(fintors env)\"`, or give this machine the 169.254.169.254 address with \
`sudo fintors network up`.",
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
    /// List the configured roles, the active one marked, with their cached credentials' lifetime
    Roles {
        /// Only the roles matching every word (case-insensitive) in their alias, account id,
        /// role name, sso-session or ARN: `fintors roles prod admin`
        filter: Vec<String>,
        /// Print JSON (the daemon's status report) instead of a table
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Switch the active role
    Use {
        /// Role alias, as listed by `fintors roles` [default: pick one by typing, on a terminal]
        alias: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the active role's alias (empty if none), e.g. for a shell prompt
    Current {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print credentials for a role (default: picked on a terminal, else the active one)
    Creds {
        /// Role alias [default: picked by typing on a terminal, the active one first; else the
        /// active role]
        alias: Option<String>,
        /// env: `export` lines for eval; json: the IMDS document; credential-process: for
        /// `credential_process` in ~/.aws/config
        #[arg(long, value_enum, default_value_t = CredsFormat::Env)]
        format: CredsFormat,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Why a tool in this shell would not get fintors's credentials: one line per check, ok or
    /// FAIL with the fix; exits 1 if any failed
    Doctor {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop the daemon (SIGTERM, as systemd would), and wait until it has
    Stop {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Is the daemon up, where, which role is active, cache state and last STS errors
    Status {
        /// Print the daemon's status report as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Re-read the configuration file (like SIGHUP): roles added or removed, the active role and
    /// cached credentials kept; an invalid file is rejected and the running configuration kept
    Reload {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List every account and role of the Identity Center sessions in `identity_center` again
    /// now (the daemon also does at start, on reload and after a login)
    Sync {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give the daemon an MFA code: starts the MFA session the roles that need MFA are assumed with
    Mfa {
        /// The 6-digit code from the device
        code: String,
        /// Which device, when roles use several
        #[arg(long)]
        serial: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print `export` lines that point SDKs at the daemon: IMDS; with --ecs the container
    /// credentials endpoint; with --role ROLE one role for this shell (or, with --container,
    /// for a container)
    Env {
        /// The container endpoint for the active role: AWS_CONTAINER_CREDENTIALS_FULL_URI and
        /// the authorization token
        #[arg(long, conflicts_with = "role")]
        ecs: bool,
        /// Pin the shell that evals the output to ROLE, whatever the active role: the container
        /// endpoint's /creds/ROLE, the token, the role's region, FINTORS_ROLE; the variables
        /// that would win over it are unset. With no ROLE, pick one by typing
        #[arg(long, value_name = "ROLE", num_args = 0..=1)]
        role: Option<Option<String>>,
        /// With --role: the lines for inside a container on the bridge `sudo fintors network up
        /// --containers` serves (http://169.254.170.2/creds/ROLE)
        #[arg(long, requires = "role")]
        container: bool,
        /// sh: `export`/`unset` lines (bash, zsh); fish: `set -gx`/`set -e`; env-file: KEY=VALUE
        /// lines for `docker run --env-file`
        #[arg(long, value_enum, default_value_t = EnvFormat::Sh)]
        format: EnvFormat,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a command with a role of its own, refreshed by the daemon for as long as it runs: it
    /// gets the container endpoint's /creds/ROLE (no keys in its environment) and FINTORS_ROLE,
    /// and the active role stays as it is. Exits with the command's status. With no command,
    /// your shell pinned to the role, with the role in its prompt
    Exec {
        /// Role alias, as listed by `fintors roles` [default: pick one by typing]
        role: Option<String>,
        /// The command and its arguments [default: $SHELL, pinned, until you exit it]
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<std::ffi::OsString>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Log in again, here in this terminal: to the IAM Identity Center sessions the roles depend
    /// on (in the browser, or with a device code), or with credentials.login_process; then the
    /// daemon retries every failing role at once and says whether that fixed them
    Login {
        /// Sign in with a code entered on any device, not in this machine's browser (the
        /// default when there is no display, as over SSH)
        #[arg(long)]
        device: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Log out of the IAM Identity Center sessions the roles depend on: the session ended at
    /// Identity Center, its cached login removed, its roles' credentials no longer served
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Open the AWS console as a role (default: picked on a terminal, else the active one) in
    /// the browser, through the
    /// federation endpoint; --print prints the sign-in URL instead (it opens the console as the
    /// role for 15 minutes: treat it as a password)
    Console {
        /// Role alias [default: picked by typing on a terminal, the active one first; else the
        /// active role]
        role: Option<String>,
        /// Print the sign-in URL instead of opening it (also what happens with no display)
        #[arg(long)]
        print: bool,
        /// Where the console opens: a service (s3, ec2, iam, ...) or an https:// console URL
        /// [default: the console home, in the role's region]
        #[arg(long, value_name = "SERVICE|URL")]
        destination: Option<String>,
        /// The console session's length in seconds, 900 to 43200 (only for roles assumed from
        /// long-term keys) [default: the federation endpoint's]
        #[arg(long, value_name = "SECONDS", value_parser = console_seconds())]
        duration: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Simulate an instance event (a Spot interruption, a rebalance recommendation, scheduled
    /// maintenance, an Auto Scaling termination) for applications that watch the metadata
    #[command(subcommand)]
    Simulate(SimulateEvent),
    /// Print a shell completion script (bash, zsh, fish, ...)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or with --dir write one per subcommand into DIR
    Man {
        /// Write fintors.1 and a page per subcommand (fintors-use.1, ...) here
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Make clients find fintors at http://169.254.169.254/, or with --containers containers on
    /// a bridge at http://169.254.170.2/creds/ROLE (needs root)
    Network(NetworkArgs),
    /// Run the daemon as a service of your session, started at login and again if it fails: a
    /// systemd user unit (Linux) or a launchd agent (macOS) running this binary
    Service(ServiceArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    #[arg(value_enum)]
    pub action: ServiceAction,
    /// With install: the configuration file the service reads [default: ~/.fintorc]
    #[arg(long, env = "FINTORS_CONFIG", value_name = "FILE")]
    pub config: Option<String>,
    /// Only write (install) or remove (uninstall) the file; start or stop nothing
    #[arg(long)]
    pub no_start: bool,
    /// With install: replace a unit (or agent) fintors did not write
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceAction {
    /// Write the unit (or agent) for this binary, enable it and start it
    Install,
    /// Stop and disable the service, and remove the file `install` wrote
    Uninstall,
    /// Whether the file is there and what the service manager says of it
    Status,
}

/// The events `fintors simulate` starts; each stays until `fintors simulate clear`.
#[derive(Debug, Clone, Subcommand)]
pub enum SimulateEvent {
    /// A Spot interruption notice: spot/instance-action (and spot/termination-time for
    /// terminate); instance-life-cycle says spot
    SpotInterruption {
        /// When the action happens, from now: 120, 90s, 2m, 1h30m [EC2's warning: 2m]
        #[arg(long = "in", value_name = "DURATION", default_value = "2m", value_parser = seconds)]
        after: u32,
        /// terminate, stop or hibernate
        #[arg(long, default_value = "terminate", value_parser = wire_value::<SpotAction>)]
        action: SpotAction,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A rebalance recommendation: events/recommendations/rebalance, noticed now
    Rebalance {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A scheduled event in events/maintenance/scheduled, with a two-hour window
    Maintenance {
        /// When the window opens, from now: 3600, 30m, 2h, 1d
        #[arg(long = "in", value_name = "DURATION", default_value = "1h", value_parser = seconds)]
        after: u32,
        /// system-reboot, instance-reboot, system-maintenance, instance-retirement or
        /// instance-stop
        #[arg(long, default_value = "system-reboot", value_parser = wire_value::<MaintenanceCode>)]
        code: MaintenanceCode,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Auto Scaling terminates the instance: autoscaling/target-lifecycle-state is Terminated
    AsgTermination {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End every simulated event
    Clear {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// A duration as a user types it: seconds (`120`), or numbers with units `d`, `h`, `m`, `s`
/// (`90s`, `2m`, `1h30m`).
fn seconds(text: &str) -> Result<u32, String> {
    let bad = || format!("{text:?} is not a duration like 120, 90s, 2m or 1h30m");
    if let Ok(n) = text.parse::<u32>() {
        return Ok(n);
    }
    let (mut total, mut number) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    u32::try_from(total).map_err(|_| format!("{text:?} is too long"))
}

/// A value of the wire type `T` by its name on the wire (`terminate`, `system-reboot`), so the
/// command line takes exactly what the API does.
fn wire_value<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("{text:?} is not one of the values listed in --help"))
}

/// `--duration`: what the federation endpoint accepts.
fn console_seconds() -> clap::builder::RangedI64ValueParser<u32> {
    let range = crate::api::CONSOLE_SESSION_SECONDS;
    clap::value_parser!(u32).range(i64::from(*range.start())..=i64::from(*range.end()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    Sh,
    Fish,
    EnvFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredsFormat {
    Env,
    Json,
    CredentialProcess,
}

/// How a client subcommand finds the daemon.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The daemon's URL [default: from the config's addr/port, else http://127.0.0.1:16925]
    #[arg(long, env = "FINTORS_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Configuration file, read for its addr/port
    #[arg(long, env = "FINTORS_CONFIG", default_value = DEFAULT_CONFIG, value_name = "FILE")]
    pub config: String,
    /// The daemon's state directory, where `exec` and `env --role/--ecs` read the container
    /// key [default: $XDG_STATE_HOME/fintors or ~/.local/state/fintors]
    #[arg(long, env = "FINTORS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct NetworkArgs {
    #[arg(value_enum)]
    pub action: NetworkAction,
    /// Print the commands instead of running them
    #[arg(long)]
    pub dry_run: bool,
    /// The port fintors listens on, which port 80 is redirected to [default: the config's port,
    /// else 16925]
    #[arg(long)]
    pub port: Option<u16>,
    /// Configuration file, read for its port
    #[arg(long, env = "FINTORS_CONFIG", default_value = DEFAULT_CONFIG, value_name = "FILE")]
    pub config: String,
    /// The container set-up instead: containers on --bridge reach the container endpoint at
    /// http://169.254.170.2/ (each request still needs its token); IMDS, the role API and the
    /// admin API stay loopback-only
    #[arg(long)]
    pub containers: bool,
    /// With --containers: the bridge the containers are on
    #[arg(
        long,
        value_name = "IF",
        default_value = "docker0",
        requires = "containers"
    )]
    pub bridge: String,
    /// With --containers: the container endpoint's port [default: the config's ecs_port, else
    /// 16926]
    #[arg(long, value_name = "PORT", requires = "containers")]
    pub ecs_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkAction {
    /// Add the metadata address to lo and redirect port 80 to fintors
    Up,
    /// Remove exactly what `up` added
    Down,
    /// Show which parts are in place
    Status,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: loopback (`sudo fintors network up` forwards 169.254.169.254:80
    /// there), or 169.254.169.254 itself as finto did [default: the config's addr, else
    /// 127.0.0.1]
    #[arg(long, value_name = "IP")]
    pub addr: Option<IpAddr>,

    /// Port to listen on; 0 picks a free one and logs it [default: the config's port, else 16925]
    #[arg(long)]
    pub port: Option<u16>,

    /// Configuration file (finto's JSON format)
    #[arg(long, env = "FINTORS_CONFIG", default_value = DEFAULT_CONFIG, value_name = "FILE")]
    pub config: String,

    /// The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) on
    /// 127.0.0.1:PORT, which `fintors exec`, `fintors env --role` and `fintors env --ecs` use;
    /// `off` serves none [default: the config's ecs_port, else 16926]
    #[arg(long, value_name = "PORT|off")]
    pub ecs_port: Option<ContainerPort>,

    /// Also serve the admin API (GET /healthz, GET /status, POST /bootstrap/creds) on
    /// 127.0.0.1:PORT; FINTORS_ADMIN_TOKEN, if set, is required as a bearer token
    /// [default: the config's admin_port, else off]
    #[arg(long, value_name = "PORT")]
    pub admin_port: Option<u16>,

    /// Append an HTTP access log to FILE (created with mode 0600; reopened on SIGHUP)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Rotate the access log to FILE.1 once it reaches this many bytes
    #[arg(long, value_name = "BYTES", default_value_t = crate::config::DEFAULT_LOG_MAX_BYTES, requires = "log")]
    pub log_max_bytes: u64,

    /// Where the IMDSv2 token key and the container key are kept [default:
    /// $XDG_STATE_HOME/fintors or ~/.local/state/fintors]
    #[arg(long, env = "FINTORS_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Also serve every profile with a role_arn in the AWS config file as a role (like
    /// "aws_profiles": true in the config)
    #[arg(long)]
    pub aws_profiles: bool,

    /// Refuse requests without an IMDSv2 session token, like an instance with HttpTokens=required
    #[arg(long)]
    pub imdsv2_required: bool,

    /// IP TTL (IPv6 hop limit) of the IMDS listener's replies: 1, as EC2's default
    /// HttpPutResponseHopLimit, so a reply cannot be routed on to another host (or out of a
    /// container behind a NAT); the container endpoint keeps the system's default
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub hop_limit: u32,

    /// Also answer these local users' processes (names or uids, comma-separated); the daemon's
    /// own user and root always are, other users never (Linux) [default: the config's
    /// allow_users]
    #[arg(long, value_name = "USERS", value_delimiter = ',')]
    pub allow_users: Vec<String>,

    /// Answer peers other than this machine (dangerous: they get your credentials)
    #[arg(long)]
    pub allow_remote: bool,

    /// More diagnostics on stderr (-v: fintors debug, -vv: everything); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

impl ServeArgs {
    /// Where the command line says to listen; the configuration fills in the rest.
    pub fn listening(&self) -> Listening {
        Listening {
            addr: self.addr,
            port: self.port,
            ecs_port: self.ecs_port,
            admin_port: self.admin_port,
        }
    }
}

impl Cli {
    /// The command to run; no command means serving with the top-level options.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_serve_with_top_level_flags() {
        let cli = Cli::try_parse_from(["fintors", "--port", "1234"]).unwrap();
        let Command::Serve(args) = cli.into_command() else {
            panic!("expected serve")
        };
        assert_eq!(args.port, Some(1234));
    }

    #[test]
    fn exec_takes_the_command_with_its_own_flags_with_or_without_a_separator() {
        for argv in [
            &["fintors", "exec", "ops", "aws", "--region", "x"][..],
            &["fintors", "exec", "ops", "--", "aws", "--region", "x"][..],
        ] {
            let Command::Exec { role, command, .. } =
                Cli::try_parse_from(argv).unwrap().into_command()
            else {
                panic!("expected exec")
            };
            assert_eq!(role.as_deref(), Some("ops"));
            assert_eq!(command, ["aws", "--region", "x"]);
        }
    }

    #[test]
    fn exec_without_a_command_is_a_shell_and_without_a_role_a_pick() {
        let exec = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().into_command() {
            Command::Exec { role, command, .. } => (role, command.len()),
            _ => panic!("expected exec"),
        };
        assert_eq!(exec(&["fintors", "exec", "ops"]), (Some("ops".into()), 0));
        assert_eq!(exec(&["fintors", "exec"]), (None, 0));
    }

    #[test]
    fn env_role_takes_a_role_or_none_to_pick_one() {
        let role = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().into_command() {
            Command::Env { role, .. } => role,
            _ => panic!("expected env"),
        };
        assert_eq!(
            role(&["fintors", "env", "--role", "ops"]),
            Some(Some("ops".into()))
        );
        assert_eq!(role(&["fintors", "env", "--role"]), Some(None));
        assert_eq!(
            role(&["fintors", "env", "--role", "--container"]),
            Some(None)
        );
        assert_eq!(role(&["fintors", "env"]), None);
        assert!(Cli::try_parse_from(["fintors", "env", "--container"]).is_err());
    }

    #[test]
    fn console_durations_outside_the_federation_endpoints_range_are_refused() {
        for seconds in ["899", "43201", "0"] {
            assert!(
                Cli::try_parse_from(["fintors", "console", "--duration", seconds]).is_err(),
                "{seconds}"
            );
        }
        let cli = Cli::try_parse_from(["fintors", "console", "ops", "--duration", "43200"]);
        let Command::Console { role, duration, .. } = cli.unwrap().into_command() else {
            panic!("expected console")
        };
        assert_eq!((role.as_deref(), duration), (Some("ops"), Some(43200)));
    }

    #[test]
    fn creds_format_names_match_the_docs() {
        let cli =
            Cli::try_parse_from(["fintors", "creds", "dev", "--format", "credential-process"])
                .unwrap();
        let Command::Creds { alias, format, .. } = cli.into_command() else {
            panic!("expected creds")
        };
        assert_eq!(alias.as_deref(), Some("dev"));
        assert_eq!(format, CredsFormat::CredentialProcess);
    }

    #[test]
    fn durations_read_as_users_type_them() {
        for (text, expected) in [
            ("120", 120),
            ("90s", 90),
            ("2m", 120),
            ("1h30m", 5400),
            ("1d", 86_400),
        ] {
            assert_eq!(seconds(text), Ok(expected), "{text}");
        }
        for text in ["", "2x", "m", "1h30", "-5", "1.5h"] {
            assert!(seconds(text).is_err(), "{text}");
        }
    }

    #[test]
    fn simulate_takes_the_wire_names_of_actions_and_codes() {
        let cli = Cli::try_parse_from([
            "fintors",
            "simulate",
            "maintenance",
            "--code",
            "instance-stop",
            "--in",
            "30m",
        ]);
        let Command::Simulate(SimulateEvent::Maintenance { code, after, .. }) =
            cli.unwrap().into_command()
        else {
            panic!("expected simulate maintenance")
        };
        assert_eq!((code, after), (MaintenanceCode::InstanceStop, 1800));
        assert!(
            Cli::try_parse_from([
                "fintors",
                "simulate",
                "spot-interruption",
                "--action",
                "reboot"
            ])
            .is_err()
        );
    }
}
