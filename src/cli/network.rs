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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::process::Command;

use super::args::{NetworkAction, NetworkArgs};
use crate::config::{Config, ContainerPort, DEFAULT_PORT, expand_tilde};
use crate::ec2::CONTAINER_ADDR;

pub const METADATA_ADDR: &str = "169.254.169.254";
/// The label `up` gives the address (Linux limits labels to 15 characters).
const LABEL: &str = "lo:fintors";
/// The comment on every iptables rule `up` adds.
const COMMENT: &str = "fintors";
/// The comments on the rules `up --containers` adds; the second marks the guard rule of a bridge
/// whose `route_localnet` fintors turned on.
const CONTAINERS_COMMENT: &str = "fintors-containers";
const LOCALNET_COMMENT: &str = "fintors-localnet";

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
    /// The IPv6 half; `None` where the machine has no IPv6.
    pub ipv6: Option<Linux6State>,
}

/// What is in place for fd00:ec2::254.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Linux6State {
    /// The address is on `lo`, whoever put it there.
    pub address: bool,
    /// Our rules in `ip6tables -S` form.
    pub nat_rules: Vec<String>,
    pub filter_rules: Vec<String>,
}

pub const METADATA_ADDR6: &str = "fd00:ec2::254";
/// The comment on the IPv6 drop rule when `up` added the address (which `down` then removes).
const ADDR6_COMMENT: &str = "fintors-addr6";

fn redirect6_rule(port: u16) -> String {
    format!(
        "-A OUTPUT -d {METADATA_ADDR6}/128 -p tcp -m tcp --dport 80 -m comment --comment {COMMENT} \
         -j DNAT --to-destination [::1]:{port}"
    )
}

fn drop6_rule(comment: &str) -> String {
    format!("-A INPUT -d {METADATA_ADDR6}/128 ! -i lo -m comment --comment {comment} -j DROP")
}

fn ip6tables(table: &str, rule: &str) -> Cmd {
    let mut args = vec!["ip6tables", "-w", "-t", table];
    args.extend(rule.split(' '));
    Cmd::new(&args)
}

fn address6(verb: &str) -> Cmd {
    Cmd::new(&[
        "ip",
        "-6",
        "addr",
        verb,
        &format!("{METADATA_ADDR6}/128"),
        "dev",
        "lo",
    ])
}

/// The IPv6 half of `up`: the daemon is reached on [::1] at the IPv4 target's port.
fn linux6_up(state: &Linux6State, port: u16) -> Vec<Cmd> {
    let mut plan = Vec::new();
    let dropped = [COMMENT, ADDR6_COMMENT]
        .iter()
        .any(|c| state.filter_rules.contains(&drop6_rule(c)));
    if !dropped {
        // The drop goes in first, so the address is never reachable from outside.
        let comment = if state.address {
            COMMENT
        } else {
            ADDR6_COMMENT
        };
        plan.push(ip6tables("filter", &drop6_rule(comment)));
    }
    if !state.address {
        plan.push(address6("add"));
    }
    let redirect = redirect6_rule(port);
    if !state.nat_rules.contains(&redirect) {
        plan.push(ip6tables("nat", &redirect));
    }
    plan
}

fn linux6_down(state: &Linux6State) -> Vec<Cmd> {
    let mut plan = Vec::new();
    for rule in &state.nat_rules {
        plan.push(ip6tables("nat", &rule.replacen("-A ", "-D ", 1)));
    }
    let mut ours = false;
    for rule in &state.filter_rules {
        ours |= rule.contains(&format!("--comment {ADDR6_COMMENT} "));
        plan.push(ip6tables("filter", &rule.replacen("-A ", "-D ", 1)));
    }
    if ours && state.address {
        plan.push(address6("del"));
    }
    plan
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
    if let Some(v6) = &state.ipv6 {
        plan.extend(linux6_up(v6, target.port()));
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
    if let Some(v6) = &state.ipv6 {
        plan.extend(linux6_down(v6));
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

/// What `up --containers` finds in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainersState {
    /// The bridge's `route_localnet`; `None`: there is no such interface.
    pub route_localnet: Option<bool>,
    /// Our rules in `iptables -S` form, for any bridge: the redirect (nat), the guard (raw),
    /// and the guard as versions before 0.1 put it (filter), which `up` replaces and `down`
    /// removes.
    pub nat_rules: Vec<String>,
    pub raw_rules: Vec<String>,
    pub filter_rules: Vec<String>,
}

fn container_redirect_rule(bridge: &str, target: SocketAddrV4) -> String {
    format!(
        "-A PREROUTING -d {CONTAINER_ADDR}/32 -i {bridge} -p tcp -m tcp --dport 80 -m comment \
         --comment {CONTAINERS_COMMENT} -j DNAT --to-destination {target}"
    )
}

/// Drops what arrives from the bridge for 127.0.0.0/8: with `route_localnet` on, a container
/// could otherwise reach every loopback listener of the host (Docker's API, databases, dev
/// servers). In the raw table's PREROUTING, before any filter rule and before the redirect's DNAT
/// (so the redirected traffic, still addressed to 169.254.170.2 there, passes): an earlier
/// `ACCEPT` on the bridge in INPUT (`ufw allow in on docker0`) cannot outrank it. `up` inserts it
/// first in its chain.
fn container_guard_rule(bridge: &str, comment: &str) -> String {
    format!("-A PREROUTING -d 127.0.0.0/8 -i {bridge} -m comment --comment {comment} -j DROP")
}

/// The guard as earlier versions put it, in filter INPUT, where an earlier ACCEPT outranked it.
fn legacy_guard_rule(bridge: &str, comment: &str) -> String {
    format!(
        "-A INPUT -d 127.0.0.0/8 -i {bridge} -m conntrack ! --ctstate DNAT -m comment --comment \
         {comment} -j DROP"
    )
}

/// Whether the guard for `bridge` is in place, and with which comment.
fn guard_comment(state: &ContainersState, bridge: &str) -> Option<&'static str> {
    [CONTAINERS_COMMENT, LOCALNET_COMMENT]
        .into_iter()
        .find(|c| state.raw_rules.contains(&container_guard_rule(bridge, c)))
}

fn route_localnet_path(bridge: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
}

fn set_route_localnet(bridge: &str, on: bool) -> Cmd {
    Cmd::new(&[
        "sh",
        "-c",
        &format!("echo {} > {}", u8::from(on), route_localnet_path(bridge)),
    ])
}

/// The commands that let containers on `bridge` reach the container endpoint at `target`.
pub fn containers_up(
    state: &ContainersState,
    bridge: &str,
    target: SocketAddrV4,
) -> Result<Vec<Cmd>, NetworkError> {
    let Some(route_localnet) = state.route_localnet else {
        return Err(NetworkError::NoBridge(bridge.to_owned()));
    };
    let mut plan = Vec::new();
    // The guard goes in before route_localnet opens loopback to the bridge. Its comment says
    // whether `up` turned route_localnet on (a legacy guard's says so too), for `down`.
    if guard_comment(state, bridge).is_none() {
        let legacy_localnet = state
            .filter_rules
            .contains(&legacy_guard_rule(bridge, LOCALNET_COMMENT));
        let comment = if route_localnet && !legacy_localnet {
            CONTAINERS_COMMENT
        } else {
            LOCALNET_COMMENT
        };
        let rule =
            container_guard_rule(bridge, comment).replacen("-A PREROUTING", "-I PREROUTING 1", 1);
        plan.push(iptables("raw", &rule));
        for legacy in &state.filter_rules {
            if legacy.contains(&format!(" -i {bridge} ")) {
                plan.push(iptables("filter", &legacy.replacen("-A ", "-D ", 1)));
            }
        }
    }
    if !route_localnet {
        plan.push(set_route_localnet(bridge, true));
    }
    let redirect = container_redirect_rule(bridge, target);
    if !state.nat_rules.contains(&redirect) {
        plan.push(iptables("nat", &redirect));
    }
    Ok(plan)
}

/// The commands that remove what `up --containers` added, for every bridge, and nothing else.
pub fn containers_down(state: &ContainersState) -> Vec<Cmd> {
    let mut plan = Vec::new();
    for rule in &state.nat_rules {
        plan.push(iptables("nat", &rule.replacen("-A ", "-D ", 1)));
    }
    let guards = [("raw", &state.raw_rules), ("filter", &state.filter_rules)];
    for (table, rules) in guards {
        for rule in rules {
            if rule.contains(&format!("--comment {LOCALNET_COMMENT} "))
                && let Some(bridge) = rule.split(" -i ").nth(1).and_then(|r| r.split(' ').next())
            {
                plan.push(set_route_localnet(bridge, false));
            }
            plan.push(iptables(table, &rule.replacen("-A ", "-D ", 1)));
        }
    }
    plan
}

/// An interface name as the kernel allows it (and so safe in a /proc path).
fn check_bridge(bridge: &str) -> Result<(), NetworkError> {
    let fine = (1..=15).contains(&bridge.len())
        && bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if fine {
        Ok(())
    } else {
        Err(NetworkError::NoBridge(bridge.to_owned()))
    }
}

pub fn observe_containers(bridge: &str) -> Result<ContainersState, NetworkError> {
    let ours = [CONTAINERS_COMMENT, LOCALNET_COMMENT];
    Ok(ContainersState {
        route_localnet: std::fs::read_to_string(route_localnet_path(bridge))
            .ok()
            .map(|v| v.trim() != "0"),
        nat_rules: our_rules("iptables", "nat", "PREROUTING", &ours)?,
        raw_rules: our_rules("iptables", "raw", "PREROUTING", &ours)?,
        filter_rules: our_rules("iptables", "filter", "INPUT", &ours)?,
    })
}

/// The rules of `chain` in `table` (`iptables -S` form) that carry one of our `comments`.
fn our_rules(
    program: &str,
    table: &str,
    chain: &str,
    comments: &[&str],
) -> Result<Vec<String>, NetworkError> {
    let rules = output(&Cmd::new(&[program, "-w", "-t", table, "-S", chain]))?;
    Ok(rules
        .lines()
        .filter(|l| {
            comments
                .iter()
                .any(|c| l.contains(&format!("--comment {c} ")))
        })
        .map(str::to_owned)
        .collect())
}

/// Reads the current state from `ip` and `iptables`.
pub fn observe_linux() -> Result<LinuxState, NetworkError> {
    let addresses = output(&Cmd::new(&["ip", "-o", "-4", "addr", "show", "dev", "lo"]))?;
    Ok(LinuxState {
        ipv6: observe_linux6()?,
        address: parse_address(&addresses),
        nat_rules: our_rules("iptables", "nat", "OUTPUT", &[COMMENT])?,
        filter_rules: our_rules("iptables", "filter", "INPUT", &[COMMENT])?,
    })
}

/// The IPv6 half of the state; `None` where the kernel has no IPv6.
fn observe_linux6() -> Result<Option<Linux6State>, NetworkError> {
    if !std::path::Path::new("/proc/net/if_inet6").exists() {
        return Ok(None);
    }
    let addresses = output(&Cmd::new(&["ip", "-o", "-6", "addr", "show", "dev", "lo"]))?;
    let ours = [COMMENT, ADDR6_COMMENT];
    Ok(Some(Linux6State {
        address: addresses.contains(&format!(" {METADATA_ADDR6}/128 ")),
        nat_rules: our_rules("ip6tables", "nat", "OUTPUT", &ours)?,
        filter_rules: our_rules("ip6tables", "filter", "INPUT", &ours)?,
    }))
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
    if args.containers {
        return run_containers(args, config.as_ref());
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

/// `fintors network up|down|status --containers`.
fn run_containers(args: &NetworkArgs, config: Option<&Config>) -> Result<(), NetworkError> {
    if !cfg!(target_os = "linux") {
        return Err(NetworkError::ContainersUnsupported);
    }
    check_bridge(&args.bridge)?;
    let port = match args.ecs_port {
        Some(port) => port,
        None => ContainerPort::resolve(config.and_then(|c| c.ecs_port))
            .ok_or_else(|| NetworkError::ContainerEndpointOff(args.config.clone()))?,
    };
    let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let state = match observe_containers(&args.bridge) {
        Ok(state) => state,
        // As for the IMDS set-up: a normal user's dry run plans from what it can see.
        Err(_) if args.dry_run && !is_root() => ContainersState {
            route_localnet: std::fs::read_to_string(route_localnet_path(&args.bridge))
                .ok()
                .map(|v| v.trim() != "0"),
            ..ContainersState::default()
        },
        Err(e) => return Err(e),
    };
    match args.action {
        NetworkAction::Up => execute(&containers_up(&state, &args.bridge, target)?, args.dry_run),
        NetworkAction::Down => execute(&containers_down(&state), args.dry_run),
        NetworkAction::Status => {
            let redirect = state
                .nat_rules
                .contains(&container_redirect_rule(&args.bridge, target));
            let guard = guard_comment(&state, &args.bridge).is_some();
            let present = |on: bool| if on { "present" } else { "absent" };
            println!(
                "{CONTAINER_ADDR}:80 from {} -> {target}: {}\nroute_localnet on {}: {}\n\
                 guard against other loopback traffic from {} (raw PREROUTING): {}",
                args.bridge,
                present(redirect),
                args.bridge,
                match state.route_localnet {
                    None => "no such interface",
                    Some(true) => "on",
                    Some(false) => "off",
                },
                args.bridge,
                present(guard)
            );
            Ok(())
        }
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
    let mut out = format!(
        "{METADATA_ADDR}/32 on lo: {address}\n\
         redirect {METADATA_ADDR}:80 -> {target}: {redirect}\n\
         drop {METADATA_ADDR} from other interfaces: {drop}\n"
    );
    match &state.ipv6 {
        None => out.push_str("IPv6: not available on this machine\n"),
        Some(v6) => {
            let present = |on: bool| if on { "present" } else { "absent" };
            out.push_str(&format!(
                "{METADATA_ADDR6}/128 on lo: {}\nredirect [{METADATA_ADDR6}]:80 -> [::1]:{}: {}\n\
                 drop {METADATA_ADDR6} from other interfaces: {}\n",
                present(v6.address),
                target.port(),
                present(v6.nat_rules.contains(&redirect6_rule(target.port()))),
                present(
                    [COMMENT, ADDR6_COMMENT]
                        .iter()
                        .any(|c| v6.filter_rules.contains(&drop6_rule(c)))
                ),
            ));
        }
    }
    out
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
            ipv6: None,
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
            ipv6: None,
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
    fn up_with_ipv6_also_drops_adds_and_redirects_the_ipv6_address() {
        let state = LinuxState {
            ipv6: Some(Linux6State::default()),
            ..LinuxState::default()
        };
        let plan = lines(&linux_up(&state, to(16925)));
        assert_eq!(
            plan[3..],
            [
                "ip6tables -w -t filter -A INPUT -d fd00:ec2::254/128 '!' -i lo -m comment --comment fintors-addr6 -j DROP",
                "ip -6 addr add fd00:ec2::254/128 dev lo",
                "ip6tables -w -t nat -A OUTPUT -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -m comment --comment fintors -j DNAT --to-destination [::1]:16925",
            ]
        );
    }

    #[test]
    fn down_removes_the_ipv6_address_only_if_up_added_it() {
        let added = Linux6State {
            address: true,
            nat_rules: vec![redirect6_rule(16925)],
            filter_rules: vec![drop6_rule(ADDR6_COMMENT)],
        };
        let plan = lines(&linux6_down(&added));
        assert_eq!(
            plan.last().unwrap(),
            "ip -6 addr del fd00:ec2::254/128 dev lo"
        );
        let foreign = Linux6State {
            filter_rules: vec![drop6_rule(COMMENT)],
            ..added
        };
        assert!(
            !lines(&linux6_down(&foreign))
                .iter()
                .any(|l| l.starts_with("ip "))
        );
        assert!(linux6_up(&foreign, 16925).is_empty());
    }

    fn bridge(route_localnet: bool) -> ContainersState {
        ContainersState {
            route_localnet: Some(route_localnet),
            ..ContainersState::default()
        }
    }

    #[test]
    fn containers_up_guards_loopback_before_opening_it_then_redirects() {
        let plan = lines(&containers_up(&bridge(false), "docker0", to(16926)).unwrap());
        assert_eq!(
            plan,
            [
                "iptables -w -t raw -I PREROUTING 1 -d 127.0.0.0/8 -i docker0 -m comment --comment fintors-localnet -j DROP",
                "sh -c 'echo 1 > /proc/sys/net/ipv4/conf/docker0/route_localnet'",
                "iptables -w -t nat -A PREROUTING -d 169.254.170.2/32 -i docker0 -p tcp -m tcp --dport 80 -m comment --comment fintors-containers -j DNAT --to-destination 127.0.0.1:16926",
            ]
        );
    }

    #[test]
    fn containers_up_twice_adds_nothing_twice() {
        let state = ContainersState {
            route_localnet: Some(true),
            nat_rules: vec![container_redirect_rule("docker0", to(16926))],
            raw_rules: vec![container_guard_rule("docker0", LOCALNET_COMMENT)],
            filter_rules: vec![],
        };
        assert!(
            containers_up(&state, "docker0", to(16926))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn containers_down_turns_route_localnet_off_only_where_up_turned_it_on() {
        let state = ContainersState {
            route_localnet: Some(true),
            nat_rules: vec![container_redirect_rule("br0", to(1))],
            raw_rules: vec![
                container_guard_rule("br0", LOCALNET_COMMENT),
                container_guard_rule("br1", CONTAINERS_COMMENT),
            ],
            filter_rules: vec![],
        };
        let plan = lines(&containers_down(&state));
        assert_eq!(plan.len(), 4);
        assert!(plan[0].contains("-t nat -D PREROUTING"));
        assert_eq!(
            plan[1],
            "sh -c 'echo 0 > /proc/sys/net/ipv4/conf/br0/route_localnet'"
        );
        assert!(plan[2].contains("-t raw -D PREROUTING") && plan[2].contains("-i br0"));
        assert!(plan[3].contains("-t raw -D PREROUTING") && plan[3].contains("-i br1"));
    }

    #[test]
    fn containers_up_moves_a_legacy_filter_guard_to_the_raw_table_keeping_its_meaning() {
        let state = ContainersState {
            route_localnet: Some(true),
            nat_rules: vec![container_redirect_rule("docker0", to(16926))],
            raw_rules: vec![],
            filter_rules: vec![legacy_guard_rule("docker0", LOCALNET_COMMENT)],
        };
        let plan = lines(&containers_up(&state, "docker0", to(16926)).unwrap());
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert!(plan[0].contains("-t raw -I PREROUTING 1") && plan[0].contains("fintors-localnet"));
        assert!(plan[1].contains("-t filter -D INPUT"));
        let down = ContainersState {
            raw_rules: vec![container_guard_rule("docker0", CONTAINERS_COMMENT)],
            filter_rules: vec![legacy_guard_rule("docker0", LOCALNET_COMMENT)],
            ..ContainersState::default()
        };
        let plan = lines(&containers_down(&down));
        assert!(
            plan.iter().any(|c| c.contains("route_localnet")),
            "{plan:?}"
        );
        assert_eq!(plan.iter().filter(|c| c.contains(" -D ")).count(), 2);
    }

    #[test]
    fn containers_up_without_the_bridge_names_it_and_the_option() {
        let e = containers_up(&ContainersState::default(), "docker0", to(1)).unwrap_err();
        assert!(e.to_string().contains("\"docker0\"") && e.to_string().contains("--bridge"));
        assert!(check_bridge("../../etc").is_err());
        assert!(check_bridge("br-1.a_b").is_ok());
    }

    #[test]
    fn macos_plan_redirects_to_the_port() {
        let plan = lines(&macos_up(to(8080)));
        assert!(plan[0].contains("ifconfig lo0 alias 169.254.169.254"));
        assert!(plan[1].contains("port 80 -> 127.0.0.1 port 8080"));
    }
}
