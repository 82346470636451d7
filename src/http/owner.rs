//! Which local user a connection comes from, so that on a shared machine other users' processes
//! get nothing: every listener answers a connection from this machine only when the process
//! that opened it runs as the daemon's own user, root, or a user named in `allow_users`.
//!
//! The client's socket is this machine's too, so the kernel knows its owner. It is asked once
//! per connection, before its first request is read, never per request, by the client socket's
//! four addresses ([`crate::platform::sockets`]): the connection's peer address is the client's
//! local one, and the client's remote one is where it connected, the listener's address or,
//! through `fintors network up`'s redirect (which changes only the destination), the metadata
//! address on port 80. A socket that no process holds any more (closed before the lookup, which
//! the kernel then reports as root's) or that cannot be found is unknown, and unknown is refused:
//! how late the daemon accepts changes nothing. Peers that are not on this machine (containers
//! on a bridge, `--allow-remote` hosts) have no local socket to look up: the container endpoint
//! judges them by their token. A connection from any address of this host's own is looked up,
//! not only loopback. Linux only; elsewhere every local user is answered, as the README says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::platform::sockets;

/// Who may connect: user ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedUsers {
    uids: Vec<u32>,
}

/// Why a connection's owner is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stranger {
    /// The socket belongs to this user.
    User(u32),
    /// No local socket has the peer's address: it closed at once, or is not what it claims.
    Unknown,
}

impl AllowedUsers {
    /// The daemon's own user and root, and `others`.
    pub fn new(others: impl IntoIterator<Item = u32>) -> Self {
        let me = crate::platform::users::effective_uid();
        let mut uids = vec![me, 0];
        uids.extend(others);
        uids.sort_unstable();
        uids.dedup();
        AllowedUsers { uids }
    }

    /// Whether the connection from `peer` may be answered, its client having connected to
    /// `remote` ([`sockets::original_destination`]); `Ok` for peers not on this machine (nothing
    /// to look up) and on systems other than Linux.
    #[cfg(target_os = "linux")]
    pub fn admit(&self, peer: SocketAddr, remote: SocketAddr) -> Result<(), Stranger> {
        if !from_this_host(peer) {
            return Ok(());
        }
        match owner(peer, remote) {
            Some(uid) if self.uids.contains(&uid) => Ok(()),
            Some(uid) => Err(Stranger::User(uid)),
            None => Err(Stranger::Unknown),
        }
    }

    /// Every local user is answered: no system but Linux tells a socket's owner (see the README).
    #[cfg(not(target_os = "linux"))]
    pub fn admit(&self, _: SocketAddr, _: SocketAddr) -> Result<(), Stranger> {
        Ok(())
    }
}

/// Whether a connection from `peer` was made on this machine: loopback, the metadata addresses
/// `network up` puts on `lo`, and any other address of this host's own (a local user may connect
/// to 127.0.0.1 from the host's LAN address); a bridged container's address is not.
#[cfg(target_os = "linux")]
fn from_this_host(peer: SocketAddr) -> bool {
    is_local(peer.ip()) || sockets::is_this_hosts(peer)
}

/// Addresses a connection from this machine comes from: loopback, and the metadata addresses
/// `network up` puts on `lo`.
#[cfg(target_os = "linux")]
fn is_local(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback()
        || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

/// The user of the process that holds the client's socket: the one whose own address is `peer`
/// and whose remote one is `remote`, exactly (see [`sockets::original_destination`] for why no
/// other). `None` when no process holds it any more (it was closed before this lookup; see
/// [`crate::platform::sockets`]), it cannot be found, or the kernel cannot be asked: unknown,
/// so refused.
#[cfg(target_os = "linux")]
fn owner(peer: SocketAddr, remote: SocketAddr) -> Option<u32> {
    sockets::find(peer, remote).ok().flatten()?.held_by()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_user_and_root_are_always_allowed() {
        let me = crate::platform::users::effective_uid();
        let users = AllowedUsers::new([4242]);
        assert!(users.uids.contains(&me) && users.uids.contains(&0) && users.uids.contains(&4242));
    }

    #[test]
    fn peers_off_this_machine_are_not_looked_up() {
        let users = AllowedUsers::new([]);
        let local = "127.0.0.1:16926".parse().unwrap();
        assert_eq!(
            users.admit("172.17.0.2:5000".parse().unwrap(), local),
            Ok(())
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn loopback_metadata_and_this_hosts_own_addresses_are_this_machine() {
        assert!(from_this_host("169.254.169.254:5000".parse().unwrap()));
        assert!(from_this_host("[::ffff:127.0.0.1]:5000".parse().unwrap()));
        assert!(from_this_host("127.0.0.53:5000".parse().unwrap()));
        assert!(!from_this_host("172.17.0.2:5000".parse().unwrap()));
    }

    #[test]
    fn this_tests_own_connection_is_let_in() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let peer = client.local_addr().unwrap();
        assert_eq!(AllowedUsers::new([]).admit(peer, server), Ok(()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_closed_before_its_lookup_is_unknown_not_root() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(server).unwrap();
        let peer = client.local_addr().unwrap();
        client.write_all(b"PUT /roles HTTP/1.1\r\n\r\n").unwrap();
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _accepted = listener.accept().unwrap();
        assert_eq!(
            AllowedUsers::new([]).admit(peer, server),
            Err(Stranger::Unknown)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_peer_that_never_existed_on_loopback_is_unknown() {
        let server = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            AllowedUsers::new([]).admit("127.0.0.1:2".parse().unwrap(), server),
            Err(Stranger::Unknown)
        );
    }

    /// No guessing among destinations: a client whose own socket is not found (bound to a
    /// device, or reset) must not pass on another process's socket that shares its address and
    /// port but connected elsewhere (to the real 169.254.169.254:80, say).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_is_judged_by_exactly_the_destination_its_client_connected_to() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let peer = client.local_addr().unwrap();
        let users = AllowedUsers::new([]);
        assert_eq!(users.admit(peer, server), Ok(()));
        let elsewhere: SocketAddr = "169.254.169.254:80".parse().unwrap();
        assert_eq!(users.admit(peer, elsewhere), Err(Stranger::Unknown));
    }
}
