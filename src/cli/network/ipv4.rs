//! The IPv4 metadata address, 169.254.169.254, on Linux: the address on `lo` with fintors's
//! label, its port 80 redirected to the daemon (`iptables -t nat OUTPUT`), and a drop of what
//! arrives for it on any other interface.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use super::ipv6::{
    ADDR6_COMMENT, Linux6State, METADATA_ADDR6, drop6_rule, linux6_down, linux6_up, observe_linux6,
    redirect6_rule,
};
use super::plan::{Cmd, iptables, our_rules, output};
use super::{COMMENT, LABEL, METADATA_ADDR, NetworkError};

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
pub(super) fn redirect_rule(target: SocketAddrV4) -> String {
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

pub(super) fn drop_rule() -> String {
    format!("-A INPUT -d {METADATA_ADDR}/32 ! -i lo -m comment --comment {COMMENT} -j DROP")
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

/// Reads the current state from `ip` and `iptables`.
pub fn observe_linux() -> Result<LinuxState, NetworkError> {
    Ok(LinuxState {
        ipv6: observe_linux6()?,
        address: observe_address()?,
        nat_rules: our_rules("iptables", "nat", "OUTPUT", &[COMMENT])?,
        filter_rules: our_rules("iptables", "filter", "INPUT", &[COMMENT])?,
    })
}

/// Whose 169.254.169.254 is on lo, if anyone's (needs no root).
pub(super) fn observe_address() -> Result<Address, NetworkError> {
    let addresses = output(&Cmd::new(&["ip", "-o", "-4", "addr", "show", "dev", "lo"]))?;
    Ok(parse_address(&addresses))
}

pub(super) fn parse_address(ip_output: &str) -> Address {
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

pub(super) fn describe(state: &LinuxState, target: SocketAddrV4) -> String {
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
    use crate::cli::network::testing::{lines, to};
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
}
