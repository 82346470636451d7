//! One exact lookup of a TCP socket by its addresses over `NETLINK_SOCK_DIAG` (linux/sock_diag.h,
//! linux/inet_diag.h): a request without `NLM_F_DUMP` names one socket, which the kernel finds in
//! its hash table.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Socket, TcpState};

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

/// Where the fields of `struct inet_diag_msg` are in an answer, after the 16-byte netlink
/// header: family, state, timer and retransmits (1 byte each), the socket id (48 bytes, of
/// which ports and addresses are the first 36), expiry and the two queue sizes (4 each), then
/// the uid and the inode.
const STATE_AT: usize = 16 + 1;
const ID_AT: usize = 16 + 4;
const ADDRESSES_LEN: usize = 2 + 2 + 16 + 16;
const UID_AT: usize = ID_AT + 48 + 12;
const INODE_AT: usize = UID_AT + 4;

/// See [`super::find`].
pub fn find(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Socket>> {
    // An IPv4 connection may also be held by an IPv6 socket, as mapped addresses.
    let families: &[libc::c_int] = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => &[libc::AF_INET, libc::AF_INET6],
        (IpAddr::V6(_), IpAddr::V6(_)) => &[libc::AF_INET6],
        _ => return Ok(None),
    };
    for &family in families {
        if let Some(socket) = lookup(family, local, remote)? {
            return Ok(Some(socket));
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
) -> io::Result<Option<Socket>> {
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
    let got = unsafe { libc::recv(fd.as_raw_fd(), answer.as_mut_ptr().cast(), answer.len(), 0) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut asked = [0u8; ADDRESSES_LEN];
    asked[..2].copy_from_slice(&request.id.sport);
    asked[2..4].copy_from_slice(&request.id.dport);
    asked[4..20].copy_from_slice(&request.id.src);
    asked[20..].copy_from_slice(&request.id.dst);
    parse(&answer[..got as usize], &asked)
}

const NLMSG_ERROR: u16 = 2;

/// The socket in an answer. Netlink's error message is `Ok(None)` for ENOENT (no such
/// socket) and the error otherwise; an answer shorter than it says, or about any socket but
/// the one `asked` names, is `Ok(None)` too: nothing found that can be trusted.
fn parse(answer: &[u8], asked: &[u8; ADDRESSES_LEN]) -> io::Result<Option<Socket>> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(answer.get(at..at + 4)?.try_into().ok()?))
    };
    let (Some(len), Some(kind)) = (word(0), answer.get(4..6)) else {
        return Ok(None);
    };
    if (len as usize) > answer.len() {
        return Ok(None);
    }
    match u16::from_ne_bytes([kind[0], kind[1]]) {
        NLMSG_ERROR => {
            let code = word(16).map_or(0, |c| (c as i32).wrapping_neg());
            if code == 0 || code == libc::ENOENT {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(code))
            }
        }
        SOCK_DIAG_BY_FAMILY if answer.get(ID_AT..ID_AT + ADDRESSES_LEN) == Some(asked) => {
            Ok((|| {
                Some(Socket {
                    uid: word(UID_AT)?,
                    inode: word(INODE_AT)?,
                    state: TcpState(*answer.get(STATE_AT)?),
                })
            })())
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink error message carrying `errno` (negated, as the kernel sends it).
    fn error_message(errno: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&(-errno).to_ne_bytes());
        m.extend_from_slice(&[0u8; 16]);
        m
    }

    #[test]
    fn netlink_errors_are_no_socket_for_enoent_and_errors_otherwise() {
        let asked = [0u8; ADDRESSES_LEN];
        assert!(
            parse(&error_message(libc::ENOENT), &asked)
                .unwrap()
                .is_none()
        );
        let e = parse(&error_message(libc::EPERM), &asked).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn a_truncated_or_foreign_answer_is_no_socket() {
        let asked = [1u8; ADDRESSES_LEN];
        assert!(parse(&[0u8; 3], &asked).unwrap().is_none());
        let mut claims_more = error_message(libc::ENOENT);
        claims_more[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse(&claims_more, &asked).unwrap().is_none());
        let mut other = vec![0u8; INODE_AT + 4];
        other[0..4].copy_from_slice(&((INODE_AT + 4) as u32).to_ne_bytes());
        other[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        assert!(parse(&other, &asked).unwrap().is_none(), "another socket's");
    }
}
