//! systemd socket activation: serving on a listening socket that systemd opened and passed in
//! (the `sd_listen_fds` protocol, `LISTEN_PID`/`LISTEN_FDS`, read by the `listenfd` crate).
//!
//! This is how a root-owned socket (169.254.169.254:80, say) feeds an unprivileged daemon:
//! systemd binds the port, then starts fintors as the user whose ~/.aws it reads.

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(
        "systemd passed {0} sockets; fintors serves exactly one (check ListenStream= in the \
         .socket unit)"
    )]
    SocketCount(usize),
    #[error("the socket passed by systemd is not a listening TCP socket: {reason}")]
    NotATcpSocket { reason: std::io::Error },
}

/// The socket passed by systemd, if this process was socket-activated.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, ActivationError> {
    let mut passed = listenfd::ListenFd::from_env();
    match passed.len() {
        0 => return Ok(None),
        1 => {}
        n => return Err(ActivationError::SocketCount(n)),
    }
    let listener = passed
        .take_tcp_listener(0)
        .map_err(|reason| ActivationError::NotATcpSocket { reason })?
        .ok_or_else(|| ActivationError::NotATcpSocket {
            reason: std::io::Error::other("no socket at file descriptor 3"),
        })?;
    listener
        .set_nonblocking(true)
        .map_err(|reason| ActivationError::NotATcpSocket { reason })?;
    Ok(Some(listener))
}
