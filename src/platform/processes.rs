//! Stopping processes: a credential command together with whatever it started (it is often a
//! script that runs a tool, and killing the shell alone would leave the tool running), and
//! the daemon for `fintors stop`.

/// Who runs the process `pid` and under what name: its real uid and its `comm` (the executable's
/// name, cut to 15 bytes), from `/proc`. `None` where there is no `/proc` or no such process.
#[cfg(target_os = "linux")]
pub fn owner_and_name(pid: u32) -> Option<(u32, String)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some((uid, name.trim_end().to_owned()))
}

/// Elsewhere there is no `/proc` to ask.
#[cfg(not(target_os = "linux"))]
pub fn owner_and_name(_: u32) -> Option<(u32, String)> {
    None
}

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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_told_by_its_owner_and_name() {
        let (uid, name) = owner_and_name(std::process::id()).unwrap();
        assert_eq!(uid, crate::platform::users::effective_uid());
        assert!(!name.is_empty());
        assert_eq!(owner_and_name(u32::MAX), None);
    }
}
