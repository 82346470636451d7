//! Stopping processes: a credential command together with whatever it started (it is often a
//! script that runs a tool, and killing the shell alone would leave the tool running), and
//! the daemon for `fintors stop`.

/// What `/proc` says of one process: who runs it, under what name, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The real uid.
    pub uid: u32,
    /// Its `comm`: the executable's name, cut to 15 bytes.
    pub name: String,
    /// When it started, in clock ticks after boot (`/proc/PID/stat`'s 22nd field). With the pid
    /// it names one process for as long as the machine is up: a pid used again after its
    /// process exited comes with a later start.
    pub started: u64,
}

/// The process `pid` as `/proc` describes it. `None` where there is no `/proc` or no such
/// process.
#[cfg(target_os = "linux")]
pub fn describe(pid: u32) -> Option<ProcessInfo> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcessInfo {
        uid,
        name: stat_name(&stat)?.to_owned(),
        started: start_ticks(&stat)?,
    })
}

/// The name in a `/proc/PID/stat` line: `comm`, between the first `(` and the last `)`.
#[cfg(target_os = "linux")]
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// Elsewhere there is no `/proc` to ask.
#[cfg(not(target_os = "linux"))]
pub fn describe(_: u32) -> Option<ProcessInfo> {
    None
}

/// The start time in a `/proc/PID/stat` line. The name in parentheses may hold spaces and
/// parentheses itself, so the fields are counted from the last `)`: the state is the 3rd field,
/// the start time the 22nd.
#[cfg(target_os = "linux")]
fn start_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// When this process started, as [`describe`] gives it to others: read once.
#[cfg(target_os = "linux")]
pub fn own_start() -> Option<u64> {
    static STARTED: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        start_ticks(&stat)
    })
}

/// Elsewhere there is no `/proc` to ask.
#[cfg(not(target_os = "linux"))]
pub fn own_start() -> Option<u64> {
    None
}

/// Whether `pidfd_open` failed for want of the call itself: `ENOSYS` before Linux 5.3, `EPERM`
/// from a seccomp filter that does not know it (older container runtimes); it has no `EPERM`
/// of its own. Once a pidfd is held, a refused signal is an error, never a `kill` of the pid,
/// which by then may be another process's.
#[cfg(target_os = "linux")]
fn unavailable(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
}

/// A process held so that a signal reaches it or nothing: on Linux a pidfd (5.3 and later),
/// through which a signal to a process that has exited fails, even if its pid is some other
/// process's by then. Open it before looking at the process in `/proc`: if the signal then
/// succeeds, the process was alive all along, so what `/proc` said was said of it.
pub struct Held {
    pid: libc::pid_t,
    #[cfg(target_os = "linux")]
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl Held {
    /// Holds the process `pid`. An error if there is no such process; where pidfds are not to
    /// be had (an older kernel, another system) it holds the pid alone, as `kill` does.
    pub fn open(pid: u32) -> std::io::Result<Held> {
        let pid = libc::pid_t::try_from(pid)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::FromRawFd;
            // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1;
            // it touches no memory of ours.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
            let pidfd = match fd {
                -1 => match std::io::Error::last_os_error() {
                    e if unavailable(&e) => None,
                    e => return Err(e),
                },
                // SAFETY: a descriptor pidfd_open just returned, owned by nothing else.
                fd => Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as std::os::fd::RawFd) }),
            };
            Ok(Held { pid, pidfd })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(Held { pid })
        }
    }

    /// Asks the process to stop (SIGTERM), as systemd and a shell's `kill` do. `ESRCH` if it
    /// has exited since it was held. Without a pidfd, `kill` with the pid.
    pub fn terminate(&self) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(pidfd) = &self.pidfd {
            use std::os::fd::AsRawFd;
            // SAFETY: pidfd_send_signal(2) with a descriptor we own, a signal number, no
            // siginfo (NULL) and no flags; it touches no memory of ours.
            let sent = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGTERM,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            return match sent {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
        }
        // SAFETY: kill(2) with a positive pid signals that one process; it touches no memory.
        match unsafe { libc::kill(self.pid, libc::SIGTERM) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
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
    fn this_process_is_told_by_its_owner_name_and_start() {
        let me = describe(std::process::id()).unwrap();
        assert_eq!(me.uid, crate::platform::users::effective_uid());
        assert!(!me.name.is_empty());
        assert_eq!(own_start(), Some(me.started));
        assert_eq!(describe(u32::MAX), None);
    }

    #[test]
    fn the_name_and_start_are_read_around_the_last_parenthesis() {
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1 2";
        assert_eq!(start_ticks(stat), Some(987_654));
        assert_eq!(stat_name(stat), Some("a) b) c"));
        assert_eq!(start_ticks("42 (no closing"), None);
    }

    #[test]
    fn a_held_process_is_stopped_by_sigterm() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let held = Held::open(child.id()).unwrap();
        held.terminate().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    }

    /// Once the held process has exited and been reaped, its pid may be anyone's: the signal
    /// fails rather than reach them.
    #[test]
    fn a_held_process_that_exited_is_not_signalled_again() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let held = Held::open(child.id()).unwrap();
        assert!(
            held.pidfd.is_some(),
            "no pidfd_open here (Linux before 5.3, or a seccomp filter): this test needs one"
        );
        child.wait().unwrap();
        let e = held.terminate().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    }

    /// A kernel or a seccomp filter without `pidfd_open` holds the pid alone; a process that
    /// is gone is an error.
    #[test]
    fn only_a_missing_or_filtered_pidfd_open_falls_back_to_the_pid() {
        let errno = std::io::Error::from_raw_os_error;
        assert!(unavailable(&errno(libc::ENOSYS)));
        assert!(unavailable(&errno(libc::EPERM)));
        assert!(!unavailable(&errno(libc::ESRCH)));
        assert!(!unavailable(&errno(libc::EMFILE)));
    }

    #[test]
    fn no_process_cannot_be_held() {
        assert!(Held::open(0).is_err());
        assert!(Held::open(u32::MAX).is_err());
    }
}
