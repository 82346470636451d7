//! Word from the kernel that this machine's network changed: an address or a route came or went
//! (Wi-Fi joined, a VPN up, a cable plugged in). On Linux, a `NETLINK_ROUTE` socket subscribed
//! to the address and route groups (rtnetlink(7)); the messages themselves are not read for
//! their content, only as "something changed, look again". Elsewhere there is no such word:
//! [`Changes::subscribe`] says so, and a caller relies on its other ways of noticing.

use std::io;

/// A subscription to address and route changes.
#[derive(Debug)]
pub struct Changes {
    #[cfg(target_os = "linux")]
    socket: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl Changes {
    /// Subscribes to IPv4 and IPv6 address and route changes. Needs a tokio runtime with I/O.
    pub fn subscribe() -> io::Result<Changes> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2) with constant arguments; the descriptor is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
        let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data, valid when zeroed.
        let mut address: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        address.nl_groups = (libc::RTMGRP_IPV4_IFADDR
            | libc::RTMGRP_IPV6_IFADDR
            | libc::RTMGRP_IPV4_ROUTE
            | libc::RTMGRP_IPV6_ROUTE) as u32;
        // SAFETY: `address` is a valid sockaddr_nl of the length given, for the socket above.
        let bound = unsafe {
            libc::bind(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: an OwnedFd's descriptor is valid and open until it is dropped, which is when
        // the AsyncFd owning it is, and it always returns the same descriptor.
        let socket = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)?;
        Ok(Changes { socket })
    }

    /// Waits for the next change, and reads every message waiting then: a burst is one change.
    pub async fn next(&self) -> io::Result<()> {
        loop {
            let mut ready = self.socket.readable().await?;
            let drained = ready.try_io(|socket| match drain(socket.get_ref()) {
                Ok(true) => Ok(()),
                Ok(false) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(e),
            });
            if let Ok(result) = drained {
                return result;
            }
        }
    }

    /// Discards what is waiting, never blocking: changes that belong to the one just seen.
    pub fn discard(&self) {
        let _ = drain(self.socket.get_ref());
    }
}

/// Reads every message waiting on `socket` and says whether there was one. A lost message (the
/// kernel's `ENOBUFS` when changes came faster than they were read) counts as a change. Never
/// blocks: `Ok(false)` when nothing was waiting.
#[cfg(target_os = "linux")]
fn drain(socket: &std::os::fd::OwnedFd) -> io::Result<bool> {
    let mut any = false;
    let mut buffer = [0u8; 8192];
    loop {
        // SAFETY: `buffer` is writable for its whole length; the socket is open.
        let n = unsafe {
            libc::recv(
                std::os::fd::AsRawFd::as_raw_fd(socket),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        // An empty datagram is a message too; only EAGAIN says the queue is empty.
        if n >= 0 {
            any = true;
            continue;
        }
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::EAGAIN) => Ok(any),
            Some(libc::ENOBUFS) => {
                any = true;
                continue;
            }
            Some(libc::EINTR) => continue,
            _ => Err(error),
        };
    }
}

#[cfg(not(target_os = "linux"))]
impl Changes {
    /// No word of network changes on this system.
    pub fn subscribe() -> io::Result<Changes> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "network changes are watched on Linux only",
        ))
    }

    pub async fn next(&self) -> io::Result<()> {
        std::future::pending().await
    }

    pub fn discard(&self) {}
}
