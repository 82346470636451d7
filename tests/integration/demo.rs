//! `make demo` as a new user meets it: it starts, and the commands it prints work exactly as
//! printed; when it cannot start, it says why and how to pick another port, and stops.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::require_venv;
use crate::support::{free_port, repo_path};

/// The demo, in a process group of its own (as a terminal's foreground job is), with its
/// temporary files under `home/tmp`.
fn demo(venv: &std::path::Path, home: &std::path::Path, port: u16, sts_port: u16) -> Command {
    use std::os::unix::process::CommandExt;
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut c = Command::new("bash");
    c.arg(repo_path("examples/demo.sh"))
        .process_group(0)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", tmp)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("VENV", venv)
        .env("FINTORS", env!("CARGO_BIN_EXE_fintors"))
        .env("FINTORS_DEMO_PORT", port.to_string())
        .env("FINTORS_DEMO_STS_PORT", sts_port.to_string())
        .env("FINTORS_DEMO_ECS_PORT", free_port().to_string());
    c
}

#[test]
fn a_taken_port_stops_the_demo_with_the_reason_and_the_way_out() {
    let venv = require_venv!();
    let home = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let o = demo(&venv, home.path(), port, free_port())
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(!out.contains("fintors is serving"), "{out}");
    assert!(err.contains("already in use"), "fintors's own error: {err}");
    assert!(
        err.contains(&format!("port {port} is taken")) && err.contains("FINTORS_DEMO_PORT=PORT"),
        "{err}"
    );
}

#[test]
fn the_commands_the_demo_prints_work_as_printed() {
    let venv = require_venv!();
    let home = tempfile::tempdir().unwrap();
    let mut child = demo(&venv, home.path(), free_port(), free_port())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut commands = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "Ctrl-C stops both." {
            break;
        }
        if let Some(command) = line.strip_prefix("  ") {
            commands.push(command.to_owned());
        }
    }
    // If an assertion fails, the demo still cleans up after itself (its trap on TERM).
    let demo = Stopped(child);
    assert!(commands.len() >= 8, "{commands:?}");
    // A user's shell: no AWS configuration of its own, nothing pointing anywhere but the demo.
    let client_home = home.path().join("user");
    std::fs::create_dir_all(&client_home).unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e\n{}", commands.join("\n")))
        .current_dir(repo_path(""))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &client_home)
        .env("AWS_CONFIG_FILE", client_home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", client_home.join("none"))
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{commands:#?}\n{out}\n{err}");
    let arns: Vec<&str> = out.lines().filter(|l| l.starts_with("arn:")).collect();
    assert_eq!(
        arns,
        [
            "arn:aws:sts::123456789012:assumed-role/example/finto-example",
            "arn:aws:sts::123456789012:assumed-role/example2/fintors-demo",
            // `fintors exec example -- aws ...`, with example2 still the active role.
            "arn:aws:sts::123456789012:assumed-role/example/finto-example",
        ],
        "{out}"
    );
    assert!(out.contains("* example\n"), "fintors_roles: {out}");
    assert!(out.contains("is running at http://127.0.0.1:"), "{out}");

    // Ctrl-C (SIGINT to the whole foreground group: bash, moto, fintors, the tee of its log)
    // stops both at the first press, and the demo's files go with them.
    let group = demo.0.id() as i32;
    crate::support::send_signal(-group, libc::SIGINT);
    let mut demo = demo;
    let status = wait_with_timeout(&mut demo.0, Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the demo did not stop"
    );
    std::thread::sleep(Duration::from_millis(500));
    // (A zombie is no process: the tee of a process substitution is reaped by init, which in
    // some containers never reaps.)
    let ps = Command::new("ps")
        .args(["-e", "-o", "pgid=,stat=,args="])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    let group = group.to_string();
    let left: Vec<&str> = ps
        .lines()
        .filter(|l| {
            let mut fields = l.split_whitespace();
            fields.next() == Some(group.as_str()) && !fields.next().unwrap_or("").starts_with('Z')
        })
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
    let files: Vec<_> = std::fs::read_dir(home.path().join("tmp"))
        .unwrap()
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
    let log = log.join().unwrap();
    assert!(!log.contains("readable by other users"), "{log}");
    assert!(
        !log.contains(" WARN "),
        "the demo's first lines must not warn about the demo itself: {log}"
    );
}

/// The demo, stopped the way a user stops it (its `trap` then stops moto and fintors), and
/// killed only if that does not work.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        crate::support::send_signal(self.0.id() as i32, libc::SIGTERM);
        if wait_with_timeout(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
