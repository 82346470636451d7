//! Stopping processes: a credential command together with whatever it started (it is often a
//! script that runs a tool, and killing the shell alone would leave the tool running), and
//! the daemon for `fintors stop`.

/// Asks the process `pid` to stop (SIGTERM), as systemd and a shell's `kill` do.
pub fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) with a positive pid signals that one process; it touches no memory.
    match unsafe { libc::kill(pid, libc::SIGTERM) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sends SIGKILL to every process of the process group `leader` leads (a child spawned with
/// `process_group(0)`). A group that is gone already is no error: there is nothing to stop.
pub fn kill_group(leader: u32) {
    let Ok(pid) = libc::pid_t::try_from(leader) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
