//! Which local user a connection comes from, so that on a shared machine other users' processes
//! get nothing: every listener answers a connection from this machine only when the process
//! that opened it runs as the daemon's own user, root, or a user named in `allow_users`.
//!
//! The client's socket is this machine's too, so the kernel knows its owner. It is asked once
//! per connection, at accept, never per request, with one exact `sock_diag` netlink lookup of the
//! client's socket by its four addresses: the connection's peer address is the client's local
//! one, and the client's remote one is where it connected, the listener's address or, through
//! `fintors network up`'s redirect (which changes only the destination), the metadata address
//! on port 80; an IPv6 socket may hold an IPv4 connection as `::ffff:a.b.c.d`. Each lookup is a
//! hash lookup in the kernel, some microseconds. Reading `/proc/net/tcp` instead walks the whole
//! connection table: 4 ms per read on a machine with 262,144 hash buckets, measured, which stalled
//! the requests of every connection accepted meanwhile; it remains only for kernels without
//! `sock_diag`. Peers that are not on this machine (containers on a bridge, `--allow-remote`
//! hosts) have no local socket to look up: the container endpoint judges them by its token.
//! Linux only; elsewhere every local user is answered, as the README says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let mut uids = vec![me, 0];
        uids.extend(others);
        uids.sort_unstable();
        uids.dedup();
        AllowedUsers { uids }
    }

    /// Whether the connection from `peer` to `local` may be answered; `Ok` for peers not on this
    /// machine (nothing to look up) and on systems other than Linux.
    pub fn admit(&self, peer: SocketAddr, local: SocketAddr) -> Result<(), Stranger> {
        if !cfg!(target_os = "linux") || !is_local(peer.ip()) {
            return Ok(());
        }
        match owner(peer, local) {
            Some(uid) if self.uids.contains(&uid) => Ok(()),
            Some(uid) => Err(Stranger::User(uid)),
            None => Err(Stranger::Unknown),
        }
    }
}

/// Addresses a connection from this machine comes from: loopback, and the metadata addresses
/// `network up` puts on `lo`.
fn is_local(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback()
        || ip == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

/// The uid of the client's socket: the one whose own address is `peer` and whose remote one is
/// `local` or, redirected, a metadata address's port 80.
fn owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let redirected = [
        SocketAddr::from((Ipv4Addr::new(169, 254, 169, 254), 80)),
        SocketAddr::from((Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), 80)),
    ];
    let mut unsupported = false;
    for remote in std::iter::once(local).chain(redirected) {
        match sock_diag::owner(peer, remote) {
            Ok(Some(uid)) => return Some(uid),
            Ok(None) => {}
            Err(_) => unsupported = true,
        }
    }
    unsupported.then(|| owner_from_proc(peer)).flatten()
}

/// The slow way, for kernels without `sock_diag`: the socket tables in `/proc/net`.
fn owner_from_proc(peer: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|file| {
        let table = std::fs::read_to_string(file).ok()?;
        table
            .lines()
            .skip(1)
            .find_map(|line| socket_owner(line, peer))
    })
}

/// One exact lookup of a TCP socket by its addresses over `NETLINK_SOCK_DIAG` (linux/sock_diag.h,
/// linux/inet_diag.h): a request without `NLM_F_DUMP` names one socket, which the kernel finds in
/// its hash table.
mod sock_diag {
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const NETLINK_SOCK_DIAG: libc::c_int = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const INET_DIAG_NOCOOKIE: u32 = !0;

    #[repr(C)]
    struct NlMsgHdr {
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
    }

    /// `struct inet_diag_sockid`: ports and addresses in network byte order.
    #[repr(C)]
    struct SockId {
        sport: [u8; 2],
        dport: [u8; 2],
        src: [u8; 16],
        dst: [u8; 16],
        interface: u32,
        cookie: [u32; 2],
    }

    /// `struct inet_diag_req_v2`, behind its netlink header.
    #[repr(C)]
    struct Request {
        header: NlMsgHdr,
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }

    /// Where `struct inet_diag_msg`'s `idiag_uid` is in an answer: after the netlink header (16
    /// bytes), family, state, timer and retransmits (4), the socket id (48), and the expiry and
    /// the two queue sizes (12).
    const UID_AT: usize = 16 + 4 + 48 + 12;

    /// The owner of the TCP socket whose local address is `local` and remote one `remote`:
    /// `Ok(None)` when there is none, `Err` when the kernel cannot be asked.
    pub fn owner(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
        // An IPv4 connection may also be held by an IPv6 socket, as mapped addresses.
        let families: &[libc::c_int] = match (local.ip(), remote.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => &[libc::AF_INET, libc::AF_INET6],
            (IpAddr::V6(_), IpAddr::V6(_)) => &[libc::AF_INET6],
            _ => return Ok(None),
        };
        for &family in families {
            if let Some(uid) = lookup(family, local, remote)? {
                return Ok(Some(uid));
            }
        }
        Ok(None)
    }

    /// `ip` as `inet_diag_sockid` holds it for `family`.
    fn address(ip: IpAddr, family: libc::c_int) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        match ip {
            IpAddr::V4(v4) if family == libc::AF_INET => bytes[..4].copy_from_slice(&v4.octets()),
            IpAddr::V4(v4) => bytes = v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => bytes = v6.octets(),
        }
        bytes
    }

    fn lookup(
        family: libc::c_int,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<u32>> {
        let request = Request {
            header: NlMsgHdr {
                len: std::mem::size_of::<Request>() as u32,
                kind: SOCK_DIAG_BY_FAMILY,
                flags: NLM_F_REQUEST,
                seq: 1,
                pid: 0,
            },
            family: family as u8,
            protocol: libc::IPPROTO_TCP as u8,
            ext: 0,
            pad: 0,
            states: !0,
            id: SockId {
                sport: local.port().to_be_bytes(),
                dport: remote.port().to_be_bytes(),
                src: address(local.ip(), family),
                dst: address(remote.ip(), family),
                interface: 0,
                cookie: [INET_DIAG_NOCOOKIE; 2],
            },
        };
        // SAFETY: socket(2) has no memory preconditions; a valid descriptor is owned from here.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the request is a live `repr(C)` value of the length given.
        let sent = unsafe {
            libc::send(
                fd.as_raw_fd(),
                (&raw const request).cast(),
                std::mem::size_of::<Request>(),
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut answer = [0u8; 512];
        // SAFETY: the buffer is writable for the length given.
        let got =
            unsafe { libc::recv(fd.as_raw_fd(), answer.as_mut_ptr().cast(), answer.len(), 0) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(parse(&answer[..got as usize]))
    }

    /// The uid in an answer; `None` for netlink's error message (ENOENT: no such socket).
    fn parse(answer: &[u8]) -> Option<u32> {
        let kind = u16::from_ne_bytes(answer.get(4..6)?.try_into().ok()?);
        if kind != SOCK_DIAG_BY_FAMILY {
            return None;
        }
        let uid = answer.get(UID_AT..UID_AT + 4)?;
        Some(u32::from_ne_bytes(uid.try_into().ok()?))
    }
}

/// The uid on one line of `/proc/net/tcp{,6}` if its local address is `peer`.
fn socket_owner(line: &str, peer: SocketAddr) -> Option<u32> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let uid = fields.nth(5)?;
    (parse_address(local)? == canonical(peer)).then(|| uid.parse().ok())?
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// `0100007F:1F90` or 32 hex digits and a port: the kernel prints each 32-bit word of the
/// address as the number it is in memory (so in host byte order), and the port as a number.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = ip.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_endian = "little")]
    #[test]
    fn reads_the_kernels_socket_tables_in_host_byte_order() {
        let v4 = "   3: 0100007F:9C40 0100007F:4219 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            socket_owner(v4, "127.0.0.1:40000".parse().unwrap()),
            Some(1000)
        );
        assert_eq!(socket_owner(v4, "127.0.0.1:40001".parse().unwrap()), None);
        let mapped = "   0: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:4219 01 00000000:00000000 00:00000000 00000000     0        0 7 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            socket_owner(mapped, "127.0.0.1:40000".parse().unwrap()),
            Some(0)
        );
        let v6 = "   1: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:4219 01 00000000:00000000 00:00000000 00000000   500        0 8 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(socket_owner(v6, "[::1]:40000".parse().unwrap()), Some(500));
    }

    #[test]
    fn the_daemons_user_and_root_are_always_allowed() {
        let me = unsafe { libc::geteuid() };
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
        assert!(is_local("169.254.169.254".parse().unwrap()));
        assert!(is_local("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn this_tests_own_connection_belongs_to_its_user_by_either_lookup() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let peer = client.local_addr().unwrap();
        let me = unsafe { libc::geteuid() };
        if cfg!(target_os = "linux") {
            assert_eq!(sock_diag::owner(peer, server).unwrap(), Some(me));
            assert_eq!(owner_from_proc(peer), Some(me));
            let elsewhere = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
            assert_eq!(sock_diag::owner(peer, elsewhere).unwrap(), None);
        }
        assert_eq!(AllowedUsers::new([]).admit(peer, server), Ok(()));
    }

    #[test]
    fn an_ipv6_connection_is_found_too() {
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            return; // no IPv6 on this machine
        };
        let server = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(server).unwrap();
        let me = unsafe { libc::geteuid() };
        if cfg!(target_os = "linux") {
            assert_eq!(owner(client.local_addr().unwrap(), server), Some(me));
        }
    }
}
