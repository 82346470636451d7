//! Another user of this machine gets nothing, whatever the timing: the attacks of hardening
//! round 3, run as a second user (uid 4242, through `setpriv`) against a daemon of this test's
//! user. They need root to switch users; elsewhere they say they are skipped (under CI they fail).

use std::process::Command;
use std::time::Duration;

use crate::require_venv;
use crate::support::{Daemon, in_ci, skipped};

const ATTACKER: &str = "4242";

/// Whether this test may run commands as another user; says why not when it may not.
pub(crate) fn can_switch_users() -> bool {
    let root = crate::support::euid() == 0;
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if root && setpriv {
        return true;
    }
    let why = "tests of another local user need root and setpriv";
    assert!(!in_ci(), "{why}");
    skipped(why);
    false
}

/// Runs `script` in bash as the attacker; panics if bash fails.
fn as_attacker(script: &str) {
    let o = attacker_output(script);
    assert!(o.status.success(), "{script}: {o:?}");
}

/// Runs `script` in bash as the attacker: what it printed (stdout and stderr).
pub(crate) fn attacker_output(script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", ATTACKER, "--regid", ATTACKER, "--clear-groups"])
        .args(["bash", "-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

fn signal(daemon: &Daemon, signal: libc::c_int) {
    assert!(crate::support::send_signal(daemon.pid() as i32, signal));
}

fn active(daemon: &Daemon) -> String {
    daemon.get("/roles?status=active").json()["roles"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The hole of round 3: a request written and closed before the daemon accepts it. By the time
/// the daemon looked, the kernel reported the closed socket as root's, and hyper ran the request
/// already in its buffer. Stopping the daemon (SIGSTOP) is the slowest accept there is.
#[test]
fn a_request_sent_and_closed_before_the_daemon_accepts_it_changes_nothing() {
    require_venv!();
    if !can_switch_users() {
        return;
    }
    let daemon = Daemon::start();
    // Cached, so a switch to it needs no STS call: the request would take effect at once.
    assert_eq!(daemon.get("/roles/example2/credentials").status, 200);
    assert_eq!(active(&daemon), "example");

    let body = r#"{"alias":"example2"}"#;
    let request = format!(
        "PUT /roles HTTP/1.1\\r\\nHost: {}\\r\\nContent-Type: application/json\\r\\n\
         Content-Length: {}\\r\\n\\r\\n{body}",
        daemon.addr,
        body.len()
    );
    signal(&daemon, libc::SIGSTOP);
    for _ in 0..5 {
        // printf turns the request's `\r\n`s into CR LF; bash closes the socket at once.
        as_attacker(&format!(
            "exec 3<>/dev/tcp/{}/{} && printf '{request}' >&3; exec 3>&-",
            daemon.addr.ip(),
            daemon.addr.port()
        ));
    }
    // The closed sockets become minisocks (uid 0, inode 0) once their FINs are acknowledged.
    std::thread::sleep(Duration::from_millis(500));
    signal(&daemon, libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(active(&daemon), "example", "{}", daemon.stderr());
    assert!(
        daemon
            .stderr()
            .contains("whose local owner cannot be found"),
        "{}",
        daemon.stderr()
    );
}
