//! The slow way to find a socket, for kernels without `sock_diag`: the socket tables in
//! `/proc/net`, walked whole.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Socket, TcpState, canonical};

/// The socket with these addresses in `/proc/net/tcp{,6}`, if any.
pub fn find_in_proc(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Socket>> {
    let (local, remote) = (canonical(local), canonical(remote));
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let table = match std::fs::read_to_string(file) {
            Ok(table) => table,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let found = table.lines().skip(1).find_map(|line| {
            let row = parse_row(line)?;
            (row.0 == local && row.1 == remote).then_some(row.2)
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// One line of `/proc/net/tcp{,6}`: `sl local remote st tx:rx tr:when retrnsmt uid timeout inode`.
pub(super) fn parse_row(line: &str) -> Option<(SocketAddr, SocketAddr, Socket)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local = parse_address(fields.get(1)?)?;
    let remote = parse_address(fields.get(2)?)?;
    let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
    let uid = fields.get(7)?.parse().ok()?;
    let inode = fields.get(9)?.parse().ok()?;
    Some((
        local,
        remote,
        Socket {
            uid,
            inode,
            state: TcpState(state),
        },
    ))
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
        let (local, remote, socket) = parse_row(v4).unwrap();
        assert_eq!(local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(remote, "127.0.0.1:16921".parse().unwrap());
        assert_eq!(
            socket,
            Socket {
                uid: 1000,
                inode: 4242,
                state: TcpState::ESTABLISHED
            }
        );
        let mapped = "   0: 0000000000000000FFFF00000100007F:9C40 0000000000000000FFFF00000100007F:4219 01 00000000:00000000 00:00000000 00000000     0        0 7 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            parse_row(mapped).unwrap().0,
            "127.0.0.1:40000".parse().unwrap()
        );
        let v6 = "   1: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:4219 06 00000000:00000000 00:00000000 00000000   500        0 0 1 0000000000000000 20 4 30 10 -1";
        let (local, _, socket) = parse_row(v6).unwrap();
        assert_eq!(local, "[::1]:40000".parse().unwrap());
        assert_eq!(socket.held_by(), None, "a TIME_WAIT socket has no holder");
    }
}
