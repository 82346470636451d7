//! macOS: the address as an alias of `lo0`, and port 80 redirected by a `pf` anchor.

use std::net::SocketAddrV4;

use super::METADATA_ADDR;
use super::plan::Cmd;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::network::testing::{lines, to};
    #[test]
    fn macos_plan_redirects_to_the_port() {
        let plan = lines(&macos_up(to(8080)));
        assert!(plan[0].contains("ifconfig lo0 alias 169.254.169.254"));
        assert!(plan[1].contains("port 80 -> 127.0.0.1 port 8080"));
    }
}
