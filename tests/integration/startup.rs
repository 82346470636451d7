//! Start-up, shutdown and what the daemon leaves on disk and in its logs.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::require_venv;
use crate::support::{Daemon, FakeSts, TWO_ROLES, http};

fn failed_start(config: &str) -> String {
    start_fails(Daemon::builder(config))
}

/// Starts the daemon `builder` makes, which must fail with exit status 1; its stderr.
fn start_fails(builder: crate::support::DaemonBuilder) -> String {
    let sts = FakeSts::access_denied();
    let output = builder
        .sts(&sts.url)
        .command()
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn config_syntax_error_names_file_line_and_column() {
    let err =
        failed_start("{\n  \"roles\": {\n    \"a\": \"arn:aws:iam::123456789012:role/a\",\n  }\n}");
    assert!(err.contains("fintorc.json:4:3:"), "{err}");
}

#[test]
fn invalid_role_names_alias_and_field() {
    let err = failed_start(r#"{"roles": {"ops": "arn:aws:iam::123:role/ops"}}"#);
    assert!(err.contains("role \"ops\", field \"arn\""), "{err}");
}

#[test]
fn missing_config_shows_an_example() {
    let sts = FakeSts::access_denied();
    let output = Daemon::builder(TWO_ROLES)
        .sts(&sts.url)
        .config_path("/nonexistent/fintorc")
        .command()
        .output()
        .unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(err.contains("/nonexistent/fintorc does not exist"), "{err}");
    assert!(err.contains("\"default_role\""), "{err}");
    assert!(
        err.contains(r#""profile": "identity""#) && !err.contains(r#""profile": "default""#),
        "the example must not teach a [default] profile, which SDKs use before fintors: {err}"
    );
}

#[test]
fn port_in_use_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let sts = FakeSts::access_denied();
    let output = Daemon::builder(TWO_ROLES)
        .sts(&sts.url)
        .port(port)
        .command()
        .output()
        .unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(err.contains("already in use"), "{err}");
}

#[test]
fn an_address_this_machine_lacks_points_to_network_up() {
    // 192.0.2.1 (TEST-NET-1) is on no machine: binding it fails at once, and sends nothing.
    let sts = FakeSts::access_denied();
    let output = Daemon::builder(TWO_ROLES)
        .sts(&sts.url)
        .addr("192.0.2.1")
        .command()
        .output()
        .unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(err.contains("sudo fintors network up"), "{err}");
    assert!(!err.contains("ip addr add"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn systemd_is_told_the_daemon_is_ready_once_it_serves() {
    let sts = FakeSts::issuing();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let d = Daemon::builder(TWO_ROLES)
        .sts(&sts.url)
        .env("NOTIFY_SOCKET", socket_path.to_str().unwrap())
        .start();
    let mut message = [0u8; 256];
    let n = socket.recv(&mut message).expect("no READY from the daemon");
    assert_eq!(String::from_utf8_lossy(&message[..n]).trim_end(), "READY=1");
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/").body,
        "example"
    );
}

#[test]
fn daemon_starts_even_when_sts_refuses_the_default_role() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    assert!(d.stderr().contains("AccessDenied"), "{}", d.stderr());
    assert_eq!(d.get("/roles").status, 200);
}

#[test]
fn default_role_is_fetched_before_the_port_reports_ready() {
    require_venv!();
    let d = Daemon::start();
    let log = d.stderr();
    let assumed = log
        .find("assumed role")
        .unwrap_or_else(|| panic!("no AssumeRole logged:\n{log}"));
    let ready = log.find("listening on").unwrap();
    assert!(assumed < ready, "{log}");
}

#[test]
fn tokens_survive_a_restart() {
    require_venv!();
    let d = Daemon::start();
    let token = d.token();
    let state = d.stop();
    let d = Daemon::builder(TWO_ROLES).dir(state).start();
    let r = http(
        d.addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", &token)],
        "",
    );
    assert_eq!(r.status, 200, "token from before the restart was refused");
    assert!(r.header("X-aws-ec2-metadata-token-ttl-seconds").is_some());
}

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    require_venv!();
    let mut d = Daemon::start();
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn access_log_is_private_and_records_each_request() {
    require_venv!();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut d = Daemon::builder(TWO_ROLES)
        .arg("--log")
        .arg(log.to_str().unwrap())
        .start();
    let token = d.token();
    let r = http(
        d.addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/example",
        &[
            ("X-aws-ec2-metadata-token", &token),
            ("User-Agent", "test-agent"),
        ],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(d.switch("example2").status, 200);
    // The log is written in batches; a graceful stop writes what is still queued.
    assert!(d.terminate().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"GET /latest/meta-data/iam/security-credentials/example HTTP/1.1\" 200"),
        "{text}"
    );
    assert!(text.contains("test-agent"), "{text}");
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// The terminal a daemon was started from is closed, or the `tee` its stderr went into is
/// killed: every log line fails from then on. The daemon keeps serving, switching and stopping.
#[test]
fn a_daemon_whose_stderr_is_gone_keeps_serving_switching_and_stops_on_sigterm() {
    require_venv!();
    let builder = Daemon::builder(TWO_ROLES);
    let mut command = builder.command();
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = crate::support::Reaped(command.spawn().unwrap());
    let mut stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let addr: std::net::SocketAddr = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "fintors exited before it was ready"
        );
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    drop(stderr);

    // Each of these logs at least one line, which now fails to be written.
    let browser = http(
        addr,
        "GET",
        "/roles",
        &[("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(browser.status, 403);
    let uncached = http(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/example2",
        &[],
        "",
    );
    assert_eq!(uncached.status, 200, "{uncached:?}");
    assert_eq!(uncached.json()["Code"], "Success");
    let switched = http(
        addr,
        "PUT",
        "/roles",
        &[("Content-Type", "application/json")],
        r#"{"alias":"example2"}"#,
    );
    assert_eq!(switched.status, 200, "{switched:?}");

    crate::support::send_signal(child.0.id() as i32, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM was ignored");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// A log path another user planted as a link (to the victim's shell rc, say) is not followed:
/// the daemon does not start, and says why in one line.
#[test]
fn an_access_log_behind_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("bashrc");
    std::fs::write(&rc, "# the victim's\n").unwrap();
    let log = dir.path().join("access.log");
    std::os::unix::fs::symlink(&rc, &log).unwrap();
    let stderr = start_fails(
        Daemon::builder(TWO_ROLES)
            .arg("--log")
            .arg(log.to_str().unwrap()),
    );
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "# the victim's\n");
}

#[test]
fn an_existing_access_log_others_can_read_is_made_private_with_a_line() {
    require_venv!();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Daemon::builder(TWO_ROLES)
        .arg("--log")
        .arg(log.to_str().unwrap())
        .start();
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        d.stderr().contains("was mode 644; set to 600"),
        "{}",
        d.stderr()
    );
}

/// The state directory holds the keys tokens are made with: one others may read or write
/// into is made 700 at start, with a line that says what it was.
#[test]
fn an_existing_state_directory_open_to_others_is_made_private_with_a_line() {
    require_venv!();
    let builder = Daemon::builder(TWO_ROLES);
    let state = builder.path("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let d = builder.start();
    assert_eq!(d.state_dir(), state);
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let said = format!(
        "state directory {} was mode 777; set to 700 (it holds keys)",
        state.display()
    );
    d.log_with(&said);
}

/// logrotate moves the file and sends SIGHUP; past --log-max-bytes fintors rotates by itself.
#[test]
fn the_access_log_reopens_on_sighup_and_rotates_past_its_size_cap() {
    require_venv!();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let d = Daemon::builder(TWO_ROLES)
        .arg("--log")
        .arg(log.to_str().unwrap())
        .arg("--log-max-bytes")
        .arg("2000")
        .start();
    assert_eq!(d.get("/roles").status, 200);
    crate::support::access_log(&log);
    std::fs::rename(&log, dir.path().join("rotated-by-logrotate")).unwrap();
    crate::support::send_signal(d.pid() as i32, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.get("/roles?status=active").status, 200);
    let reopened = crate::support::access_log(&log);
    assert!(reopened.contains("/roles"), "{reopened}");

    for _ in 0..40 {
        assert_eq!(d.get("/roles").status, 200);
    }
    crate::support::access_log(&log);
    let old = std::fs::metadata(dir.path().join("access.log.1")).expect("rotated to .1");
    assert!(old.len() >= 2000, "{}", old.len());
    assert!(std::fs::metadata(&log).unwrap().len() < 4000);
}

/// Another process (another user's, say) holding the daemon's port on [::1] would be sent every
/// IPv6 client's requests, `network up`'s redirect of fd00:ec2::254 included: the daemon does
/// not start beside it.
#[test]
fn a_port_held_on_ipv6_loopback_stops_the_start() {
    let port = crate::support::free_port();
    let Ok(_squatter) = std::net::TcpListener::bind(("::1", port)) else {
        crate::support::skipped("no IPv6 loopback on this machine");
        return;
    };
    let stderr = start_fails(Daemon::builder(TWO_ROLES).port(port));
    assert!(
        stderr.contains(&format!("[::1]:{port}")) && stderr.contains("already in use"),
        "{stderr}"
    );
}

/// `--version` names the commit the binary was built from, for bug reports and for telling a
/// daemon started before an upgrade from the command beside it.
#[test]
fn version_names_the_commit() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fintors"))
        .arg("--version")
        .output()
        .unwrap();
    let printed = String::from_utf8(o.stdout).unwrap();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let expected = commit.unwrap_or_else(|| "unknown commit".into());
    assert_eq!(
        printed,
        format!("fintors {} ({expected})\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Hundreds of roles (a discovered Identity Center) are counted in the ready line, which stays
/// one line; a few are listed, as scripts and the tests read them.
#[test]
fn the_ready_line_counts_hundreds_of_roles_instead_of_listing_them() {
    require_venv!();
    let roles: Vec<String> = (0..300)
        .map(|i| format!("\"account{i}.Admin\": \"arn:aws:iam::123456789012:role/a{i}\""))
        .collect();
    let config = format!(
        r#"{{"credentials": {{"file": "CREDS", "profile": "identity"}}, "roles": {{{}}}}}"#,
        roles.join(",")
    );
    let d = Daemon::builder(&config).start();
    let log = d.log_with("listening on");
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(
        line.contains("roles=300 (`fintors roles` lists them)"),
        "{line}"
    );
    assert!(!line.contains("account1.Admin"), "{line}");

    let d = Daemon::start();
    let log = d.log_with("listening on");
    assert!(log.contains("roles=example,example2 "), "{log}");
}
