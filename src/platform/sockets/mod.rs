//! Who owns a TCP socket of this machine, found by its four addresses.
//!
//! The kernel answers with one exact `sock_diag` netlink lookup (a hash lookup, some
//! microseconds); `/proc/net/tcp{,6}` is the slow way for kernels without `sock_diag` (it walks
//! the whole connection table: 4 ms per read on a machine with 262,144 hash buckets, measured).
//!
//! An answer is trusted only for what it really says. A socket whose process has closed it is an
//! orphan: the kernel reports inode 0 for it, and once its FIN is acknowledged (~40 ms) it becomes
//! a TIME_WAIT "minisock" that reports uid 0 and inode 0 whatever user opened it, with its
//! substate (FIN_WAIT2, say) rather than TIME_WAIT. So a socket closed before fintors looked it
//! up reads as root's: [`Socket::held_by`] gives an owner only for a socket a process still holds
//! (inode not 0) in a state such a socket can be in, and the lookup drops an answer for another
//! socket than the one asked for.

use std::io;
use std::net::SocketAddr;

/// What the kernel says of one TCP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    pub uid: u32,
    /// The socket's inode; 0 when no process holds it (an orphan, a minisock, or a connection
    /// still in a listener's accept queue).
    pub inode: u32,
    pub state: TcpState,
}

/// `TCP_*` from the kernel's `include/net/tcp_states.h`, as sock_diag and `/proc` report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpState(pub u8);

impl TcpState {
    pub const ESTABLISHED: TcpState = TcpState(1);
    pub const TIME_WAIT: TcpState = TcpState(6);
    pub const CLOSE: TcpState = TcpState(7);
    pub const LISTEN: TcpState = TcpState(10);
}

impl Socket {
    /// The user of the process that holds this socket open; `None` when no process does (its
    /// uid is then the kernel's placeholder, 0) or the state is one a held connection is never
    /// in.
    pub fn held_by(&self) -> Option<u32> {
        let gone = [TcpState::TIME_WAIT, TcpState::CLOSE, TcpState::LISTEN];
        (self.inode != 0 && !gone.contains(&self.state)).then_some(self.uid)
    }

    /// The user of a connected socket on the far side of a connection this process made: the
    /// server's socket may still wait in its listener's accept queue (inode 0, the listener's
    /// uid), so only an established connection counts, which a minisock never is.
    pub fn serving_user(&self) -> Option<u32> {
        (self.state == TcpState::ESTABLISHED).then_some(self.uid)
    }
}

/// The TCP socket whose own address is `local` and whose remote one is `remote`: `Ok(None)` when
/// there is none, `Err` when this system cannot be asked.
pub fn find(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Socket>> {
    // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d; its socket is an IPv4 one.
    let (local, remote) = (canonical(local), canonical(remote));
    match sock_diag::find(local, remote) {
        Err(e) if e.kind() != io::ErrorKind::Unsupported => find_in_proc(local, remote),
        answer => answer,
    }
}

/// Whether `peer`'s address is one of this host's own: binding a socket to it works only then
/// (a few microseconds, no table to read). Only "not available" means another host's: any other
/// failure (out of descriptors, say) counts as this host's, so that the caller looks the
/// connection up rather than waving it through. Where `net.ipv4.ip_nonlocal_bind` is on every
/// address binds, so every peer is taken for a local one, which fails closed too.
pub fn is_this_hosts(peer: SocketAddr) -> bool {
    let mut probe = match peer {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => {
            SocketAddr::new(v6.ip().to_canonical(), 0)
        }
        other => other,
    };
    // The port must be free; the scope of a link-local address is kept.
    probe.set_port(0);
    match std::net::UdpSocket::bind(probe) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::AddrNotAvailable,
    }
}

/// Where the client of an accepted connection connected to: the destination a DNAT (`fintors
/// network up`'s redirect of 169.254.169.254:80) rewrote, as conntrack remembers it, else the
/// connection's own local address. Its owner is looked up by exactly this one tuple: trying
/// other candidates would let a client whose own socket cannot be found (bound to a device, or
/// reset) borrow another process's socket that happens to share its address and port.
#[cfg(target_os = "linux")]
pub fn original_destination(stream: std::os::fd::BorrowedFd<'_>, local: SocketAddr) -> SocketAddr {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    match local {
        SocketAddr::V4(_) => {
            // SAFETY: sockaddr_in is plain data, valid for any bytes.
            match unsafe { sockopt::<libc::sockaddr_in>(fd, libc::SOL_IP, libc::SO_ORIGINAL_DST) } {
                Some(addr) if i32::from(addr.sin_family) == libc::AF_INET => SocketAddr::from((
                    std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                    u16::from_be(addr.sin_port),
                )),
                _ => local,
            }
        }
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => {
            // SAFETY: sockaddr_in6 is plain data, valid for any bytes.
            match unsafe {
                sockopt::<libc::sockaddr_in6>(fd, libc::SOL_IPV6, libc::IP6T_SO_ORIGINAL_DST)
            } {
                Some(addr) if i32::from(addr.sin6_family) == libc::AF_INET6 => SocketAddr::from((
                    std::net::Ipv6Addr::from(addr.sin6_addr.s6_addr),
                    u16::from_be(addr.sin6_port),
                )),
                _ => local,
            }
        }
        // An IPv4 client of a dual-stack listener: no IPv6 conntrack entry to ask.
        SocketAddr::V6(_) => local,
    }
}

/// `getsockopt(fd, level, name)` read into a `T`, if the kernel answers.
///
/// # Safety
/// `T` must be plain data for which every bit pattern is a valid value (a C sockaddr).
#[cfg(target_os = "linux")]
unsafe fn sockopt<T: Copy>(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> Option<T> {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the buffer is `len` writable bytes that outlive the call.
    let got = unsafe { libc::getsockopt(fd, level, name, value.as_mut_ptr().cast(), &mut len) };
    // SAFETY: zeroed, then written by the kernel; any bit pattern is a valid `T` (the caller's
    // promise).
    (got == 0).then(|| unsafe { value.assume_init() })
}

#[cfg(target_os = "linux")]
mod proc_net;
#[cfg(target_os = "linux")]
use proc_net::find_in_proc;

#[cfg(not(target_os = "linux"))]
fn find_in_proc(_: SocketAddr, _: SocketAddr) -> io::Result<Option<Socket>> {
    Err(io::ErrorKind::Unsupported.into())
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// One exact lookup of a TCP socket by its addresses over `NETLINK_SOCK_DIAG` (linux/sock_diag.h,
/// linux/inet_diag.h): a request without `NLM_F_DUMP` names one socket, which the kernel finds in
/// its hash table.
#[cfg(target_os = "linux")]
mod sock_diag;

#[cfg(not(target_os = "linux"))]
mod sock_diag {
    pub fn find(
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
    ) -> std::io::Result<Option<super::Socket>> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::Ipv4Addr;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A listener on loopback and a client connected to it, not yet accepted: the listener,
    /// the client, the server's address and the client's.
    fn connected() -> (TcpListener, TcpStream, SocketAddr, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let peer = client.local_addr().unwrap();
        (listener, client, server, peer)
    }

    fn me() -> u32 {
        crate::platform::users::effective_uid()
    }

    #[test]
    fn an_open_connection_is_held_by_this_user_by_either_lookup() {
        let (_listener, _client, server, peer) = connected();
        let by_diag = sock_diag::find(peer, server).unwrap().unwrap();
        assert_eq!(by_diag.held_by(), Some(me()));
        assert_eq!(find_in_proc(peer, server).unwrap(), Some(by_diag));
        let elsewhere = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        assert_eq!(sock_diag::find(peer, elsewhere).unwrap(), None);
        assert_eq!(find_in_proc(peer, elsewhere).unwrap(), None);
    }

    #[test]
    fn an_ipv6_connection_is_found_too() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback on this machine");
            return;
        };
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let found = find(client.local_addr().unwrap(), server).unwrap().unwrap();
        assert_eq!(found.held_by(), Some(me()));
    }

    /// The attack of round 3: a request written and closed before the daemon accepts it. By
    /// the time the daemon looks, the client's socket is a minisock that reads as root's.
    #[test]
    fn a_connection_closed_before_it_is_accepted_has_no_holder() {
        let (listener, mut client, server, peer) = connected();
        client.write_all(b"PUT /roles HTTP/1.1\r\n\r\n").unwrap();
        drop(client);
        // Long enough for the FIN's acknowledgement and the minisock (~40 ms).
        std::thread::sleep(Duration::from_millis(300));
        let (_accepted, from) = listener.accept().unwrap();
        assert_eq!(from, peer);
        for socket in [sock_diag::find(peer, server), find_in_proc(peer, server)] {
            let socket = socket.unwrap().expect("the kernel still knows the socket");
            assert_eq!(socket.inode, 0, "{socket:?}");
            assert_eq!(socket.held_by(), None, "{socket:?}");
        }
    }

    /// A held inode is not enough: a socket in a state no open connection is in (what a
    /// listener or a closed socket reports) has no holder either, whatever its uid.
    #[test]
    fn a_socket_in_a_state_no_open_connection_is_in_has_no_holder() {
        let socket = |state| Socket {
            uid: 1000,
            inode: 4242,
            state,
        };
        assert_eq!(socket(TcpState::ESTABLISHED).held_by(), Some(1000));
        for gone in [TcpState::TIME_WAIT, TcpState::CLOSE, TcpState::LISTEN] {
            assert_eq!(socket(gone).held_by(), None, "{gone:?}");
        }
        let orphan = Socket {
            inode: 0,
            ..socket(TcpState::ESTABLISHED)
        };
        assert_eq!(orphan.held_by(), None, "no inode, no holder");
    }

    #[test]
    fn this_hosts_addresses_are_told_from_others() {
        assert!(is_this_hosts("127.0.0.1:5000".parse().unwrap()));
        assert!(is_this_hosts("[::ffff:127.0.0.2]:5000".parse().unwrap()));
        assert!(
            !is_this_hosts("192.0.2.77:5000".parse().unwrap()),
            "TEST-NET-1"
        );
    }

    #[test]
    fn an_ipv4_client_of_a_dual_stack_listener_is_found_by_its_mapped_addresses() {
        let Ok(listener) = TcpListener::bind("[::]:0") else {
            eprintln!("skipped: no IPv6 on this machine");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        assert!(peer.is_ipv6() && local.is_ipv6(), "{peer} {local}");
        assert_eq!(canonical(peer), client.local_addr().unwrap());
        let found = find(peer, local).unwrap().unwrap();
        assert_eq!(found.held_by(), Some(me()));
    }

    #[test]
    fn a_connection_not_redirected_was_made_to_the_listeners_own_address() {
        use std::os::fd::AsFd;
        let (listener, _client, server, _) = connected();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(original_destination(accepted.as_fd(), server), server);
    }

    #[test]
    fn the_server_side_of_a_connection_names_the_listeners_user_before_and_after_accept() {
        let (listener, _client, server, peer) = connected();
        let queued = find(server, peer).unwrap().unwrap();
        assert_eq!(queued.serving_user(), Some(me()), "{queued:?}");
        let _accepted = listener.accept().unwrap();
        let accepted = find(server, peer).unwrap().unwrap();
        assert_eq!(accepted.serving_user(), Some(me()), "{accepted:?}");
    }

    #[test]
    fn a_server_that_closed_at_once_serves_nobody() {
        let (listener, _client, server, peer) = connected();
        drop(listener.accept().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        let socket = find(server, peer).unwrap();
        assert_eq!(socket.and_then(|s| s.serving_user()), None, "{socket:?}");
    }
}
