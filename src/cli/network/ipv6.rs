//! The IPv6 metadata address, fd00:ec2::254, on Linux: the same as for IPv4 with `ip6tables`,
//! the daemon reached on `[::1]`. An IPv6 address has no label, so the drop rule's comment
//! records that `up` added it.

use super::plan::{Cmd, ip6tables, our_rules, output};
use super::{COMMENT, NetworkError};

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
pub(super) const ADDR6_COMMENT: &str = "fintors-addr6";

pub(super) fn redirect6_rule(port: u16) -> String {
    format!(
        "-A OUTPUT -d {METADATA_ADDR6}/128 -p tcp -m tcp --dport 80 -m comment --comment {COMMENT} \
         -j DNAT --to-destination [::1]:{port}"
    )
}

pub(super) fn drop6_rule(comment: &str) -> String {
    format!("-A INPUT -d {METADATA_ADDR6}/128 ! -i lo -m comment --comment {comment} -j DROP")
}

pub(super) fn address6(verb: &str) -> Cmd {
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
pub(super) fn linux6_up(state: &Linux6State, port: u16) -> Vec<Cmd> {
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

pub(super) fn linux6_down(state: &Linux6State) -> Vec<Cmd> {
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

/// The IPv6 half of the state; `None` where the kernel has no IPv6.
pub(super) fn observe_linux6() -> Result<Option<Linux6State>, NetworkError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::network::ipv4::{LinuxState, linux_up};
    use crate::cli::network::testing::{lines, to};
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
                "ip6tables -w -t nat -A OUTPUT -d fd00:ec2::254/128 -p tcp -m tcp --dport 80 -m comment --comment fintors -j DNAT --to-destination '[::1]:16925'",
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
}
