//! Whoever answers on the daemon's port is not trusted: a process that binds it while fintors is
//! down (or a daemon that lies) must not make a client read a file, send a token anywhere but
//! loopback, or print a variable the user did not ask for. On Linux the client first checks that
//! the listening socket is its own user's.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::require_venv;
use crate::support::{
    Daemon, FakeServer, Reaped, container_token, fintors_cli_with, free_port, in_ci, skipped,
};

/// A fake daemon that answers `/fintors/status` with a real daemon's report, changed by `edit`,
/// and `/creds/...` with a credential document; it records every request.
fn lying_daemon(
    real: &Daemon,
    edit: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
) -> FakeServer {
    let mut report = real.get("/fintors/status").json();
    edit(&mut report);
    let report = report.to_string();
    FakeServer::start(move |r| {
        if r.path() == "/fintors/status" {
            (200, "application/json", report.clone())
        } else {
            (
                403,
                "application/json",
                r#"{"Code":"Forbidden","Message":"no"}"#.into(),
            )
        }
    })
}

/// `fintors ARGS` against `url`, with the real daemon's state directory (so the client has its
/// key) and the AWS files out of the way.
fn client(url: &str, real: &Daemon, args: &[&str]) -> std::process::Output {
    let state = real.state_dir();
    let none = real.dir.path().join("none");
    fintors_cli_with(
        url,
        args,
        &[
            ("FINTORS_STATE_DIR", state.to_str().unwrap()),
            ("AWS_CONFIG_FILE", none.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", none.to_str().unwrap()),
        ],
    )
}

#[test]
fn a_container_endpoint_off_loopback_gets_no_token_and_nothing_is_printed() {
    require_venv!();
    let real = Daemon::start();
    let fake = lying_daemon(&real, |report| {
        report["container_endpoint"] = "http://evil.example/creds".into();
    });
    for args in [
        &["env", "--ecs"][..],
        &["env", "--role", "example"],
        &["exec", "example", "--", "true"],
    ] {
        let o = client(&fake.url, &real, args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(o.stdout.is_empty(), "{args:?} printed something to eval");
        assert!(stderr.contains("no token is sent there"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_file_the_daemon_names_is_never_read_and_the_token_is_the_clients_own() {
    require_venv!();
    let real = Daemon::start();
    let secret_file = real.dir.path().join("vault-token");
    std::fs::write(&secret_file, "s.VICTIMS-VAULT-TOKEN").unwrap();
    let endpoint = FakeServer::start(|_| (403, "application/json", "{}".into()));
    let container = format!("{}/creds", endpoint.url);
    let path = secret_file.display().to_string();
    let fake = lying_daemon(&real, move |report| {
        report["container_endpoint"] = container.clone().into();
        // What the daemon used to name, and clients used to read and send.
        report["container_token_file"] = path.clone().into();
    });
    let o = client(&fake.url, &real, &["env", "--role", "example"]);
    assert_eq!(o.status.code(), Some(1));
    let sent: Vec<String> = endpoint
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(sent, vec![container_token(&real, Some("example"))]);
}

#[test]
fn a_region_with_a_newline_is_never_printed_for_eval() {
    require_venv!();
    let real = Daemon::start();
    let fake = lying_daemon(&real, |report| {
        report["roles"][0]["region"] = "us-east-1\nAWS_PROFILE=attacker".into();
    });
    let o = client(&fake.url, &real, &["env", "--role", "example"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid region"));
}

/// Another user binds the daemon's port while fintors is down: the client sees that the
/// listening socket is not its user's and sends nothing, not even its request line.
#[test]
fn a_port_squatted_by_another_user_is_told_nothing() {
    let root = crate::support::euid() == 0;
    if !root {
        let why = "the squatter test needs root to run a listener as another user";
        assert!(!in_ci(), "{why}");
        skipped(why);
        return;
    }
    let port = free_port();
    let listen = format!(
        "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('127.0.0.1',{port}))\ns.listen()\nprint('ready',flush=True)\n\
         c,_=s.accept()\nc.settimeout(3)\ngot=b''\n\
         try:\n  while True:\n    b=c.recv(4096)\n    if not b: break\n    got+=b\nexcept Exception: pass\n\
         print(len(got),flush=True)"
    );
    let mut squatter = Reaped(
        Command::new("setpriv")
            .args(["--reuid", "4242", "--regid", "4242", "--clear-groups"])
            .args(["python3", "-c", &listen])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = squatter.0.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");

    let url = format!("http://127.0.0.1:{port}");
    let o = fintors_cli_with(&url, &["status"], &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not known to be your fintors: it runs as uid 4242")
            && stderr.trim_end().chars().count() <= 160,
        "{stderr}"
    );
    let mut got = String::new();
    out.read_to_string(&mut got).unwrap();
    assert_eq!(got.trim(), "0", "bytes the squatter received");
    std::thread::sleep(Duration::from_millis(10));
}
