//! `--containers` (Linux): containers on a bridge reach the container endpoint at ECS's
//! 169.254.170.2:80, redirected to 127.0.0.1 (as the ECS agent does), which takes
//! `route_localnet` on the bridge, and with it a guard that drops whatever else from the bridge
//! heads for 127.0.0.0/8.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::plan::{Cmd, execute, iptables, our_rules};
use super::{NetworkError, is_root};
use crate::cli::args::{NetworkAction, NetworkArgs};
use crate::config::{Config, ContainerPort};
use crate::ec2::CONTAINER_ADDR;

/// The comments on the rules `up --containers` adds; the second marks the guard rule of a bridge
/// whose `route_localnet` fintors turned on.
const CONTAINERS_COMMENT: &str = "fintors-containers";
const LOCALNET_COMMENT: &str = "fintors-localnet";

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

pub(super) fn container_redirect_rule(bridge: &str, target: SocketAddrV4) -> String {
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
pub(super) fn container_guard_rule(bridge: &str, comment: &str) -> String {
    format!("-A PREROUTING -d 127.0.0.0/8 -i {bridge} -m comment --comment {comment} -j DROP")
}

/// The guard as earlier versions put it, in filter INPUT, where an earlier ACCEPT outranked it.
pub(super) fn legacy_guard_rule(bridge: &str, comment: &str) -> String {
    format!(
        "-A INPUT -d 127.0.0.0/8 -i {bridge} -m conntrack ! --ctstate DNAT -m comment --comment \
         {comment} -j DROP"
    )
}

/// Whether the guard for `bridge` is in place, and with which comment.
pub(super) fn guard_comment(state: &ContainersState, bridge: &str) -> Option<&'static str> {
    [CONTAINERS_COMMENT, LOCALNET_COMMENT]
        .into_iter()
        .find(|c| state.raw_rules.contains(&container_guard_rule(bridge, c)))
}

pub(super) fn route_localnet_path(bridge: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
}

pub(super) fn set_route_localnet(bridge: &str, on: bool) -> Cmd {
    Cmd::write(route_localnet_path(bridge), if on { "1" } else { "0" })
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
pub(super) fn check_bridge(bridge: &str) -> Result<(), NetworkError> {
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

/// `fintors network up|down|status --containers`.
pub(super) fn run(args: &NetworkArgs, config: Option<&Config>) -> Result<(), NetworkError> {
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
        NetworkAction::Up => execute(
            &containers_up(&state, &args.bridge, target)?,
            args.action,
            args.dry_run,
        ),
        NetworkAction::Down => execute(&containers_down(&state), args.action, args.dry_run),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::network::testing::{lines, to};
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
                "echo 1 > /proc/sys/net/ipv4/conf/docker0/route_localnet",
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
            "echo 0 > /proc/sys/net/ipv4/conf/br0/route_localnet"
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
}
