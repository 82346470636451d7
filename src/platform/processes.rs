//! Stopping a command together with whatever it started: a credential command is often a
//! script that runs a tool, and killing the shell alone would leave the tool running.

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
