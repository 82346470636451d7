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
//! The plans are pure functions of the observed state, so they are unit-tested here; the
//! integration tests run them for real inside a network namespace.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::process::Command;

use super::args::{NetworkAction, NetworkArgs};
use crate::config::{Config, DEFAULT_PORT, expand_tilde};

pub const METADATA_ADDR: &str = "169.254.169.254";
/// The label `up` gives the address (Linux limits labels to 15 characters).
const LABEL: &str = "lo:fintors";
/// The comment on every iptables rule `up` adds.
const COMMENT: &str = "fintors";

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
}

/// One command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd(pub Vec<String>);

impl Cmd {
    fn new(args: &[&str]) -> Self {
        Cmd(args.iter().map(|a| a.to_string()).collect())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self
            .0
            .iter()
            .map(|a| {
                if a.is_empty()
                    || a.contains(|c: char| c.is_whitespace() || "'\"!$;&|<>".contains(c))
                {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect();
        f.write_str(&quoted.join(" "))
    }
}

/// What is in place on a Linux machine now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxState {
    pub address: Address,
    /// Our rules in `iptables -S` form (`-A CHAIN ...`), per table.
    pub nat_rules: Vec<String>,
    pub filter_rules: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Address {
    #[default]
    Absent,
    /// Present with our label: ours to remove.
    Ours,
    /// Present, put there by someone else: left alone.
    Foreign,
}

/// The rules `up` adds, in `iptables -S` form.
fn redirect_rule(target: SocketAddrV4) -> String {
    format!(
        "-A OUTPUT -d {METADATA_ADDR}/32 -p tcp -m tcp --dport 80 -m comment --comment {COMMENT} \
         -j DNAT --to-destination {target}"
    )
}

/// Where port 80 of the metadata address is sent: the daemon's address and port as its
/// configuration sets them, 127.0.0.1:16925 by default, so `fintors` and `sudo fintors network
/// up` with no flags agree. A daemon on every address is reached on loopback; one configured on
/// 169.254.169.254 itself (finto's way) is reached there.
pub fn redirect_target(addr: Option<IpAddr>, port: u16) -> SocketAddrV4 {
    let ip = match addr {
        Some(IpAddr::V4(v4)) if !v4.is_unspecified() => v4,
        _ => Ipv4Addr::LOCALHOST,
    };
    SocketAddrV4::new(ip, port)
}

fn drop_rule() -> String {
    format!("-A INPUT -d {METADATA_ADDR}/32 ! -i lo -m comment --comment {COMMENT} -j DROP")
}

fn iptables(table: &str, rule: &str) -> Cmd {
    let mut args = vec!["iptables", "-w", "-t", table];
    args.extend(rule.split(' '));
    Cmd::new(&args)
}

/// The commands that bring the set-up in place, given what is there already.
pub fn linux_up(state: &LinuxState, target: SocketAddrV4) -> Vec<Cmd> {
    let mut plan = Vec::new();
    if state.address == Address::Absent {
        plan.push(Cmd::new(&[
            "ip",
            "addr",
            "add",
            &format!("{METADATA_ADDR}/32"),
            "dev",
            "lo",
            "label",
            LABEL,
        ]));
    }
    let redirect = redirect_rule(target);
    if !state.nat_rules.contains(&redirect) {
        plan.push(iptables("nat", &redirect));
    }
    let drop = drop_rule();
    if !state.filter_rules.contains(&drop) {
        plan.push(iptables("filter", &drop));
    }
    plan
}

/// The commands that remove what `up` added (whatever port it was for), and nothing else.
pub fn linux_down(state: &LinuxState) -> Vec<Cmd> {
    let mut plan = Vec::new();
    for rule in &state.filter_rules {
        plan.push(iptables("filter", &rule.replacen("-A ", "-D ", 1)));
    }
    for rule in &state.nat_rules {
        plan.push(iptables("nat", &rule.replacen("-A ", "-D ", 1)));
    }
    if state.address == Address::Ours {
        plan.push(Cmd::new(&[
            "ip",
            "addr",
            "del",
            &format!("{METADATA_ADDR}/32"),
            "dev",
            "lo",
            "label",
            LABEL,
        ]));
    }
    plan
}

pub fn macos_up(target: SocketAddrV4) -> Vec<Cmd> {
    vec![
        Cmd::new(&["ifconfig", "lo0", "alias", METADATA_ADDR]),
        Cmd::new(&[
            "sh",
            "-c",
            &format!(
                "echo 'rdr pass on lo0 inet proto tcp from any to {METADATA_ADDR} port 80 -> \
                 {} port {}' | pfctl -a com.apple/fintors -f -",
                target.ip(),
                target.port()
            ),
        ]),
        Cmd::new(&["pfctl", "-E"]),
    ]
}

pub fn macos_down() -> Vec<Cmd> {
    vec![
        Cmd::new(&["pfctl", "-a", "com.apple/fintors", "-F", "all"]),
        Cmd::new(&["ifconfig", "lo0", "-alias", METADATA_ADDR]),
    ]
}

/// Reads the current state from `ip` and `iptables`.
pub fn observe_linux() -> Result<LinuxState, NetworkError> {
    let addresses = output(&Cmd::new(&["ip", "-o", "-4", "addr", "show", "dev", "lo"]))?;
    let ours = |rules: String| -> Vec<String> {
        rules
            .lines()
            .filter(|l| l.contains(&format!("--comment {COMMENT} ")))
            .map(str::to_owned)
            .collect()
    };
    Ok(LinuxState {
        address: parse_address(&addresses),
        nat_rules: ours(output(&Cmd::new(&[
            "iptables", "-w", "-t", "nat", "-S", "OUTPUT",
        ]))?),
        filter_rules: ours(output(&Cmd::new(&[
            "iptables", "-w", "-t", "filter", "-S", "INPUT",
        ]))?),
    })
}

fn parse_address(ip_output: &str) -> Address {
    let needle = format!(" {METADATA_ADDR}/32 ");
    match ip_output.lines().find(|l| l.contains(&needle)) {
        // `ip -o` ends each record's first line with a backslash: "... lo:fintors\\".
        Some(line)
            if line
                .split_whitespace()
                .any(|w| w.trim_end_matches('\\') == LABEL) =>
        {
            Address::Ours
        }
        Some(_) => Address::Foreign,
        None => Address::Absent,
    }
}

fn output(cmd: &Cmd) -> Result<String, NetworkError> {
    let out = Command::new(&cmd.0[0])
        .args(&cmd.0[1..])
        .output()
        .map_err(|e| missing_or_failed(cmd, e))?;
    if !out.status.success() {
        return Err(NetworkError::Failed {
            command: cmd.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn missing_or_failed(cmd: &Cmd, e: std::io::Error) -> NetworkError {
    if e.kind() == std::io::ErrorKind::NotFound {
        NetworkError::Missing {
            program: cmd.0[0].clone(),
            hint: "install iproute2 and iptables (Debian/Ubuntu: apt install iproute2 iptables)",
        }
    } else {
        NetworkError::Failed {
            command: cmd.to_string(),
            stderr: e.to_string(),
        }
    }
}

fn execute(plan: &[Cmd], dry_run: bool) -> Result<(), NetworkError> {
    if plan.is_empty() {
        println!("nothing to do: already in place");
    }
    for cmd in plan {
        println!("{}{cmd}", if dry_run { "" } else { "+ " });
        if !dry_run {
            output(cmd)?;
        }
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `fintors network ...`.
pub fn run(args: &NetworkArgs) -> Result<(), NetworkError> {
    let config = Config::load(&expand_tilde(&args.config)).ok();
    let target = redirect_target(
        config.as_ref().and_then(|c| c.addr),
        args.port
            .or(config.as_ref().and_then(|c| c.port))
            .unwrap_or(DEFAULT_PORT),
    );
    let verb = match args.action {
        NetworkAction::Up => "up",
        NetworkAction::Down => "down",
        NetworkAction::Status => "status",
    };
    if args.action != NetworkAction::Status && !args.dry_run && !is_root() {
        return Err(NetworkError::NotRoot(verb));
    }
    if cfg!(target_os = "linux") {
        // A dry run by a normal user cannot read iptables: plan from an empty state then.
        let state = match observe_linux() {
            Ok(state) => state,
            Err(_) if args.dry_run && !is_root() => LinuxState::default(),
            Err(e) => return Err(e),
        };
        match args.action {
            NetworkAction::Up => execute(&linux_up(&state, target), args.dry_run),
            NetworkAction::Down => execute(&linux_down(&state), args.dry_run),
            NetworkAction::Status => {
                print!("{}", describe(&state, target));
                Ok(())
            }
        }
    } else if cfg!(target_os = "macos") {
        match args.action {
            NetworkAction::Up => execute(&macos_up(target), args.dry_run),
            NetworkAction::Down => execute(&macos_down(), args.dry_run),
            NetworkAction::Status => execute(
                &[
                    Cmd::new(&["ifconfig", "lo0"]),
                    Cmd::new(&["pfctl", "-a", "com.apple/fintors", "-s", "nat"]),
                ],
                true,
            ),
        }
    } else {
        Err(NetworkError::Unsupported)
    }
}

fn describe(state: &LinuxState, target: SocketAddrV4) -> String {
    let address = match state.address {
        Address::Absent => "absent",
        Address::Ours => "present (added by fintors)",
        Address::Foreign => "present (not added by fintors; `down` leaves it)",
    };
    let redirect = if state.nat_rules.contains(&redirect_rule(target)) {
        "present".to_owned()
    } else if state.nat_rules.is_empty() {
        "absent".to_owned()
    } else {
        format!(
            "present, but to another port: {}",
            state.nat_rules.join("; ")
        )
    };
    let drop = if state.filter_rules.contains(&drop_rule()) {
        "present"
    } else {
        "absent"
    };
    format!(
        "{METADATA_ADDR}/32 on lo: {address}\n\
         redirect {METADATA_ADDR}:80 -> {target}: {redirect}\n\
         drop {METADATA_ADDR} from other interfaces: {drop}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(port: u16) -> SocketAddrV4 {
        redirect_target(None, port)
    }

    fn lines(plan: &[Cmd]) -> Vec<String> {
        plan.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn up_on_a_bare_machine_adds_address_redirect_and_drop() {
        assert_eq!(
            lines(&linux_up(&LinuxState::default(), to(16925))),
            [
                "ip addr add 169.254.169.254/32 dev lo label lo:fintors",
                "iptables -w -t nat -A OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment fintors -j DNAT --to-destination 127.0.0.1:16925",
                "iptables -w -t filter -A INPUT -d 169.254.169.254/32 '!' -i lo -m comment --comment fintors -j DROP",
            ]
        );
    }

    #[test]
    fn up_when_everything_is_in_place_does_nothing() {
        let state = LinuxState {
            address: Address::Ours,
            nat_rules: vec![redirect_rule(to(16925))],
            filter_rules: vec![drop_rule()],
        };
        assert!(linux_up(&state, to(16925)).is_empty());
    }

    #[test]
    fn up_leaves_an_address_someone_else_added() {
        let state = LinuxState {
            address: Address::Foreign,
            ..LinuxState::default()
        };
        assert!(
            !lines(&linux_up(&state, to(1)))
                .iter()
                .any(|l| l.starts_with("ip "))
        );
        assert!(
            !lines(&linux_down(&state))
                .iter()
                .any(|l| l.starts_with("ip "))
        );
    }

    #[test]
    fn down_removes_our_rules_whatever_their_port() {
        let state = LinuxState {
            address: Address::Ours,
            nat_rules: vec![redirect_rule(to(1)), redirect_rule(to(2))],
            filter_rules: vec![drop_rule()],
        };
        let plan = lines(&linux_down(&state));
        assert_eq!(plan.len(), 4);
        assert!(plan[0].contains("-D INPUT"));
        assert!(plan[1].contains("-D OUTPUT") && plan[1].ends_with("127.0.0.1:1"));
        assert!(plan[2].contains("-D OUTPUT") && plan[2].ends_with("127.0.0.1:2"));
        assert_eq!(
            plan[3],
            "ip addr del 169.254.169.254/32 dev lo label lo:fintors"
        );
    }

    #[test]
    fn down_on_a_bare_machine_does_nothing() {
        assert!(linux_down(&LinuxState::default()).is_empty());
    }

    #[test]
    fn recognises_our_address_by_its_label() {
        let ours = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    1: lo    inet 169.254.169.254/32 scope global lo:fintors\\       valid_lft forever\n";
        let foreign =
            "1: lo    inet 169.254.169.254/32 scope global lo\\       valid_lft forever\n";
        assert_eq!(parse_address(ours), Address::Ours);
        assert_eq!(parse_address(foreign), Address::Foreign);
        assert_eq!(
            parse_address("1: lo    inet 127.0.0.1/8 scope host lo\n"),
            Address::Absent
        );
    }

    #[test]
    fn the_redirect_goes_where_the_daemon_listens_by_default_or_by_config() {
        assert_eq!(redirect_target(None, 16925).to_string(), "127.0.0.1:16925");
        let any = "0.0.0.0".parse().ok();
        assert_eq!(redirect_target(any, 1).to_string(), "127.0.0.1:1");
        let finto = "169.254.169.254".parse().ok();
        assert_eq!(
            redirect_target(finto, 16925).to_string(),
            "169.254.169.254:16925"
        );
        let v6 = "::1".parse().ok();
        assert_eq!(redirect_target(v6, 2).to_string(), "127.0.0.1:2");
    }

    #[test]
    fn macos_plan_redirects_to_the_port() {
        let plan = lines(&macos_up(to(8080)));
        assert!(plan[0].contains("ifconfig lo0 alias 169.254.169.254"));
        assert!(plan[1].contains("port 80 -> 127.0.0.1 port 8080"));
    }
}
