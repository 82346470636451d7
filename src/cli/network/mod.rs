//! `fintors network up|down|status`: making clients find fintors at http://169.254.169.254/.
//!
//! SDKs with no endpoint configured talk to 169.254.169.254 port 80. On Linux, `up` gives `lo`
//! that address, redirects its port 80 to the unprivileged daemon on 127.0.0.1 (so the daemon runs
//! as the user whose ~/.aws it reads, not as root), and drops packets for the address that arrive
//! on any other interface, so a LAN neighbour cannot reach it. Everything `up` adds is marked as
//! fintors's own (an address label, an iptables comment), which is how `down` removes exactly that
//! and nothing else, and how `up` twice adds nothing twice. On macOS the `ifconfig`/`pfctl`
//! equivalents are run.
//!
//! The IPv6 metadata address, fd00:ec2::254 (where SDKs go with
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`), gets the same: the address on `lo`, port 80
//! redirected to the daemon on `[::1]` (`ip6tables`), and a drop from other interfaces. An IPv6
//! address has no label, so the drop rule's comment records that `up` added it.
//!
//! `--containers` is the same for containers on a bridge (docker0 by default): their requests to
//! 169.254.170.2:80, ECS's container credentials address, are redirected to the container
//! endpoint on 127.0.0.1, as the ECS agent does. That takes `route_localnet` on the bridge (a
//! bridged packet may not otherwise be delivered to 127.0.0.1), and with it a rule that drops
//! whatever else from the bridge heads for 127.0.0.0/8, so the redirect is the only way in and
//! IMDS, the role API and the admin API stay out of the containers' reach. `route_localnet` is
//! turned back off by `down` only if `up` turned it on, which the guard rule's comment records.
//!
//! The plans are pure functions of the observed state, so they are unit-tested here; the
//! integration tests run them for real inside a network namespace.

mod containers;
mod ipv4;
mod ipv6;
mod macos;
mod plan;

use std::path::PathBuf;

use super::args::{NetworkAction, NetworkArgs};
use crate::config::{Config, ConfigError, DEFAULT_PORT, expand_tilde};
use ipv4::{LinuxState, describe, linux_down, linux_up, observe_linux, redirect_target};
use macos::{macos_down, macos_up};
use plan::{Cmd, execute};

pub const METADATA_ADDR: &str = "169.254.169.254";
/// The label `up` gives the address (Linux limits labels to 15 characters).
pub(super) const LABEL: &str = "lo:fintors";
/// The comment on every iptables rule `up` adds.
pub(super) const COMMENT: &str = "fintors";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "`fintors network {0}` changes the network configuration and needs root: \
         run `sudo fintors network {0}` (or see what it would do with --dry-run)"
    )]
    NotRoot(&'static str),
    #[error("{program} is not installed: {hint}")]
    Missing { program: String, hint: &'static str },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("`fintors network` supports Linux and macOS only")]
    Unsupported,
    #[error(
        "`fintors network --containers` supports Linux only (Docker Desktop has no bridge on the host)"
    )]
    ContainersUnsupported,
    #[error(
        "there is no network interface {0:?}: is docker running? Name the containers' bridge \
         with --bridge IF (`ip link show type bridge` lists them)"
    )]
    NoBridge(String),
    #[error(
        "the container endpoint is off in {0} (\"ecs_port\": false): turn it on, or name its \
         port with --ecs-port PORT"
    )]
    ContainerEndpointOff(String),
}

pub(super) fn is_root() -> bool {
    crate::platform::users::effective_uid() == 0
}

/// The configuration file `network` reads: `--config`, where `~` is the home of the user who
/// ran sudo (`sudo_user`, from `SUDO_USER`) when running as root: sudo sets HOME to root's, and
/// the port in that user's ~/.fintorc would otherwise be silently ignored.
fn config_path(
    config: &str,
    root: bool,
    sudo_user: Option<&str>,
    home_of: impl Fn(&str) -> Option<PathBuf>,
) -> PathBuf {
    let home = sudo_user
        .filter(|user| root && !user.is_empty() && *user != "root")
        .and_then(home_of);
    match (config.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => expand_tilde(config),
    }
}

/// Whether 169.254.169.254 is on `lo` with fintors's label, which `network up` puts there:
/// `None` where that cannot be told (not Linux, no `ip`). Needs no root.
pub fn metadata_address_is_ours() -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    Some(ipv4::observe_address().ok()? == ipv4::Address::Ours)
}

/// Runs `fintors network ...`.
pub fn run(args: &NetworkArgs) -> Result<(), NetworkError> {
    let path = config_path(
        &args.config,
        is_root(),
        std::env::var("SUDO_USER").ok().as_deref(),
        crate::platform::users::home_of,
    );
    let config = match Config::load(&path) {
        Ok(config) => Some(config),
        Err(ConfigError::Missing { .. }) => None,
        Err(e) => {
            eprintln!(
                "fintors: warning: {}",
                e.to_string().lines().next().unwrap_or("")
            );
            None
        }
    };
    let port = args.port.or(config.as_ref().and_then(|c| c.port));
    // Which daemon the redirect is for is not obvious under sudo: say where the port came from.
    if args.action != NetworkAction::Status {
        eprintln!(
            "fintors: fintors's port {}, from {}",
            port.unwrap_or(DEFAULT_PORT),
            match (args.port, &config) {
                (Some(_), _) => "--port".to_owned(),
                (None, Some(c)) if c.port.is_some() => path.display().to_string(),
                (None, Some(_)) => format!("the default ({} names none)", path.display()),
                (None, None) => format!("the default (no {})", path.display()),
            }
        );
    }
    let target = redirect_target(
        config.as_ref().and_then(|c| c.addr),
        port.unwrap_or(DEFAULT_PORT),
    );
    let verb = match args.action {
        NetworkAction::Up => "up",
        NetworkAction::Down => "down",
        NetworkAction::Status => "status",
    };
    if args.action != NetworkAction::Status && !args.dry_run && !is_root() {
        return Err(NetworkError::NotRoot(verb));
    }
    if args.containers {
        return containers::run(args, config.as_ref());
    }
    if cfg!(target_os = "linux") {
        // A dry run by a normal user cannot read iptables: plan from an empty state then.
        let state = match observe_linux() {
            Ok(state) => state,
            Err(_) if args.dry_run && !is_root() => LinuxState::default(),
            Err(e) => return Err(e),
        };
        match args.action {
            NetworkAction::Up => execute(&linux_up(&state, target), args.action, args.dry_run),
            NetworkAction::Down => execute(&linux_down(&state), args.action, args.dry_run),
            NetworkAction::Status => {
                print!("{}", describe(&state, target));
                Ok(())
            }
        }
    } else if cfg!(target_os = "macos") {
        match args.action {
            NetworkAction::Up => execute(&macos_up(target), args.action, args.dry_run),
            NetworkAction::Down => execute(&macos_down(), args.action, args.dry_run),
            NetworkAction::Status => execute(
                &[
                    Cmd::new(&["ifconfig", "lo0"]),
                    Cmd::new(&["pfctl", "-a", "com.apple/fintors", "-s", "nat"]),
                ],
                args.action,
                true,
            ),
        }
    } else {
        Err(NetworkError::Unsupported)
    }
}

/// What the plans' tests share.
#[cfg(test)]
mod testing {
    use std::net::SocketAddrV4;

    use super::{Cmd, redirect_target};

    /// The daemon's default target at `port`.
    pub fn to(port: u16) -> SocketAddrV4 {
        redirect_target(None, port)
    }

    /// A plan as the lines `--dry-run` prints.
    pub fn lines(plan: &[Cmd]) -> Vec<String> {
        plan.iter().map(|c| c.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::config_path;

    fn alice(user: &str) -> Option<PathBuf> {
        (user == "alice").then(|| PathBuf::from("/home/alice"))
    }

    #[test]
    fn under_sudo_the_default_config_is_the_sudo_users() {
        assert_eq!(
            config_path("~/.fintorc", true, Some("alice"), alice),
            PathBuf::from("/home/alice/.fintorc")
        );
    }

    #[test]
    fn a_path_without_a_tilde_is_taken_as_given() {
        assert_eq!(
            config_path("/etc/fintorc", true, Some("alice"), alice),
            PathBuf::from("/etc/fintorc")
        );
    }

    #[test]
    fn sudo_user_counts_only_for_root_and_a_known_user() {
        let own = |root, user| config_path("~/.fintorc", root, user, alice);
        let home = crate::config::expand_tilde("~/.fintorc");
        assert_eq!(
            own(false, Some("alice")),
            home,
            "not root: SUDO_USER is stale"
        );
        assert_eq!(own(true, Some("root")), home);
        assert_eq!(own(true, Some("nobody-known")), home);
        assert_eq!(own(true, None), home);
    }
}
