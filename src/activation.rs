//! systemd socket activation: serving on a listening socket that systemd (or launchd's
//! equivalent wrapper) opened and passed in.
//!
//! This is how a root-owned socket on 169.254.169.254:80 feeds an unprivileged daemon: systemd
//! binds the privileged port, then starts fintors as the user whose ~/.aws it reads, with the
//! socket as file descriptor 3 and `LISTEN_PID`/`LISTEN_FDS` set (the `sd_listen_fds` protocol).

use std::os::fd::{FromRawFd, RawFd};

/// The first passed descriptor, by the protocol's definition.
const SD_LISTEN_FDS_START: RawFd = 3;

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(
        "systemd passed {0} sockets; fintors serves exactly one (check ListenStream= in the \
         .socket unit)"
    )]
    SocketCount(usize),
    #[error("file descriptor 3 passed by systemd is not a listening TCP socket: {0}")]
    NotATcpSocket(String),
}

/// The socket passed by systemd, if this process was socket-activated.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, ActivationError> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !for_us {
        return Ok(None);
    }
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    match count {
        0 => return Ok(None),
        1 => {}
        n => return Err(ActivationError::SocketCount(n)),
    }
    let fd = SD_LISTEN_FDS_START;
    // SAFETY: fstat and fcntl only inspect or flag the descriptor the protocol hands us.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    if !is_socket {
        return Err(ActivationError::NotATcpSocket("not a socket".into()));
    }
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: fd 3 is a socket passed to this process alone, and nothing else owns it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener
        .local_addr()
        .and_then(|_| listener.set_nonblocking(true))
        .map_err(|e| ActivationError::NotATcpSocket(e.to_string()))?;
    Ok(Some(listener))
}
