//! What the end-to-end tests stand on: a real STS emulator (moto's server), the real fintors
//! binary started as a user would start it, a raw HTTP client that sends exactly the bytes a test
//! asks for, a scriptable fake STS for failures moto cannot produce, and the Python venv with
//! botocore and the AWS CLI.
//!
//! Everything binds to 127.0.0.1. Every child process gets `AWS_EC2_METADATA_DISABLED=true`
//! unless it is pointed at a fintors on loopback, so nothing ever reaches 169.254.169.254.

#![allow(dead_code)]

pub mod clients;
pub mod identity;
pub mod oidc;
pub mod sso;

pub use fintors_testkit::{
    FakeServer, FakeSts, HANG_UP, Reply, Request, StsCall, http, in_ci, issued, raw_request,
    skipped, sts_error,
};

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BASE_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const BASE_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// Two roles in finto's format; `CREDS` is replaced by the test's base credentials file (and
/// `DIR/` in any config by the daemon's directory).
pub const TWO_ROLES: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "roles": {
    "example": "arn:aws:iam::123456789012:role/example",
    "example2": { "arn": "arn:aws:iam::123456789012:role/path/example2", "session_name": "me" }
  },
  "default_role": "example"
}"#;

/// This process's effective uid (root may switch users in a test; others skip those tests).
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends `signal` to process `pid` (negative: its process group), as a terminal or a user
/// would; whether it arrived.
pub fn send_signal(pid: i32, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) has no memory preconditions; the tests only signal processes they started.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The Python venv with moto, boto3 and the AWS CLI (`make venv`), or `None` outside CI when it
/// is missing. Under `CI=true` a missing venv fails the test: CI must never skip the real clients.
pub fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("FINTORS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    if dir.join("bin/moto_server").exists() {
        return Some(dir);
    }
    let why = format!(
        "no Python venv with moto at {} (run `make venv`)",
        dir.display()
    );
    if in_ci() {
        panic!("{why}");
    }
    skipped(&why);
    None
}

/// Skips the calling test (returns) when the venv is not there, outside CI.
#[macro_export]
macro_rules! require_venv {
    () => {
        match $crate::support::venv() {
            Some(v) => v,
            None => return,
        }
    };
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The moto STS emulator shared by all tests of this binary, started on first use.
pub fn moto() -> String {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start_on(free_port())).url.clone()
}

/// A moto STS emulator of one's own, for tests that stop it; killed when dropped.
pub struct Moto {
    pub url: String,
    addr: SocketAddr,
    pid: u32,
}

impl Moto {
    pub fn start_on(port: u16) -> Moto {
        let venv = venv().expect("moto requires the venv");
        let (tx, rx) = mpsc::channel();
        // The emulator must die with the test process. PR_SET_PDEATHSIG fires when the *thread*
        // that spawned the child exits, so spawn it from a thread that lives as long as it does.
        std::thread::spawn(move || {
            let mut command = Command::new(venv.join("bin/moto_server"));
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_parent(&mut command);
            let mut child = command.spawn().expect("starting moto_server");
            tx.send(child.id()).unwrap();
            let _ = child.wait();
        });
        let pid = rx.recv().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            wait_for_port(addr, Duration::from_secs(60)),
            "moto_server did not start on {addr}"
        );
        Moto {
            url: format!("http://{addr}"),
            addr,
            pid,
        }
    }

    /// Kills the emulator and waits until its port refuses connections.
    pub fn kill(&self) {
        // SAFETY: kill(2) on our own child's pid; its thread reaps it.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "moto on {} did not stop",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // SAFETY: as in `kill`; a pid already reaped is not reused while its thread still waits.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
    }
}

fn pass_as_fd3(command: &mut Command, socket: &std::sync::Arc<TcpListener>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = socket.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe. The duplicate loses CLOEXEC, so it survives
    // exec; but dup2 of fd 3 onto itself changes nothing, so then the flag is cleared by hand.
    unsafe {
        command.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) != -1
            } else {
                libc::dup2(fd, 3) != -1
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing behind.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running fintors, killed when dropped.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

pub struct DaemonBuilder {
    addr: String,
    envs: Vec<(String, String)>,
    removed_envs: Vec<String>,
    netns: Option<String>,
    socket: Option<std::sync::Arc<TcpListener>>,
    config: String,
    config_path: Option<String>,
    port: u16,
    ecs_port: String,
    args: Vec<String>,
    sts: Option<String>,
    dir: tempfile::TempDir,
}

impl Daemon {
    pub fn builder(config: &str) -> DaemonBuilder {
        DaemonBuilder {
            addr: "127.0.0.1".to_owned(),
            envs: Vec::new(),
            removed_envs: Vec::new(),
            netns: None,
            socket: None,
            config: config.to_owned(),
            config_path: None,
            port: 0,
            // On by default, as for users, but never on 16926: tests run side by side.
            ecs_port: "0".to_owned(),
            args: Vec::new(),
            sts: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The daemon with [`TWO_ROLES`], talking to moto.
    pub fn start() -> Daemon {
        Daemon::builder(TWO_ROLES).start()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The log once it holds `needle`. A line reaches stderr through the daemon's writer thread
    /// and this process's reader, after the reply to the request that caused it: asserting on
    /// [`Daemon::stderr`] straight after a reply races them.
    pub fn log_with(&self, needle: &str) -> String {
        self.log_when(needle, |log| log.contains(needle))
    }

    /// The log with every line queued before this call written: a SIGHUP's "reloading" line
    /// follows them through the daemon's one writer queue. For asserting what was *not* logged,
    /// or how often. Reloads the unchanged configuration, which changes nothing.
    pub fn settled_log(&self) -> String {
        const MARK: &str = "SIGHUP: reloading the configuration";
        let before = self.stderr().matches(MARK).count();
        assert!(send_signal(self.pid() as i32, libc::SIGHUP));
        self.log_when(MARK, |log| log.matches(MARK).count() > before)
    }

    /// The log once `done` holds of it; panics with the log after 10 s.
    /// The log once `line` is in it `n` times (the same event happening again).
    pub fn log_with_n(&self, line: &str, n: usize) -> String {
        self.log_when(line, |log| log.matches(line).count() >= n)
    }

    fn log_when(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.stderr();
            if done(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "{what:?} never logged:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address the daemon logged after `label` ("admin API on http://...").
    pub fn logged_addr(&self, label: &str) -> SocketAddr {
        let log = self.stderr();
        let rest = log
            .split(&format!("{label} http://"))
            .nth(1)
            .unwrap_or_else(|| panic!("{label:?} not logged:\n{log}"));
        rest.split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[], "")
    }

    pub fn token(&self) -> String {
        let r = http(
            self.addr,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            "",
        );
        assert_eq!(r.status, 200, "{r:?}");
        r.body
    }

    pub fn switch(&self, alias: &str) -> Reply {
        http(
            self.addr,
            "PUT",
            "/roles",
            &[("Content-Type", "application/json")],
            &format!(r#"{{"alias":"{alias}"}}"#),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The daemon's `--state-dir`, where a client of its user finds the container key.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Kills the daemon and hands back its directory (config, state), e.g. to restart on it.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Stops the daemon with SIGTERM and returns its exit status; its directory stays until the
    /// `Daemon` is dropped.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        send_signal(self.child.id() as i32, libc::SIGTERM);
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DaemonBuilder {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the daemon.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Leaves `name` out of the daemon's environment (the builder sets AWS_CONFIG_FILE, say).
    pub fn without_env(mut self, name: &str) -> Self {
        self.removed_envs.push(name.to_owned());
        self
    }

    /// Where `name` is in the daemon's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Puts a file in the daemon's directory, which the config can name as `DIR/<name>`.
    pub fn file(self, name: &str, contents: &str) -> Self {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_private(&path, contents);
        self
    }

    /// Run the daemon inside network namespace `ns` (`ip netns exec`).
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_owned());
        self
    }

    /// Hand the daemon this listening socket the way systemd socket activation does.
    pub fn socket(mut self, listener: TcpListener) -> Self {
        self.socket = Some(std::sync::Arc::new(listener));
        self
    }

    /// Read the configuration from `path` instead of the builder's own file.
    pub fn config_path(mut self, path: &str) -> Self {
        self.config_path = Some(path.to_owned());
        self
    }

    /// Listen on `addr` (only inside a namespace the test made, for anything but loopback).
    pub fn addr(mut self, addr: &str) -> Self {
        self.addr = addr.to_owned();
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// `--ecs-port`: a port, or `off` (the builder's default is a free port).
    pub fn ecs_port(mut self, port: &str) -> Self {
        self.ecs_port = port.to_owned();
        self
    }

    /// Talk to this STS endpoint instead of moto.
    pub fn sts(mut self, endpoint: impl Into<String>) -> Self {
        self.sts = Some(endpoint.into());
        self
    }

    /// Use an existing directory (e.g. to restart on the same state).
    pub fn dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = dir;
        self
    }

    /// The command line the builder would run, to test start-up failures.
    pub fn command(&self) -> Command {
        let dir = self.dir.path();
        let creds = dir.join("creds");
        write_private(
            &creds,
            format!(
                "[identity]\naws_access_key_id = {BASE_ACCESS_KEY}\n\
                 aws_secret_access_key = {BASE_SECRET_KEY}\n"
            ),
        );
        let config = dir.join("fintorc.json");
        write_private(
            &config,
            self.config
                .replace("CREDS", creds.to_str().unwrap())
                .replace("DIR/", &format!("{}/", dir.display())),
        );
        let sts = self.sts.clone().unwrap_or_else(moto);
        let fintors = env!("CARGO_BIN_EXE_fintors");
        let mut command = match (&self.netns, &self.socket) {
            (Some(ns), _) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, fintors]);
                c
            }
            (None, Some(socket)) => {
                // The sd_listen_fds protocol: the socket as fd 3, LISTEN_PID naming the daemon
                // itself, which only the exec'ing shell can know.
                let mut c = Command::new("sh");
                c.args([
                    "-c",
                    r#"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#,
                    fintors,
                ]);
                pass_as_fd3(&mut c, socket);
                c
            }
            (None, None) => Command::new(fintors),
        };
        command
            .args([
                "--addr",
                &self.addr,
                "--port",
                &self.port.to_string(),
                "--ecs-port",
                &self.ecs_port,
                "--config",
            ])
            .arg(self.config_path.clone().map_or(config, PathBuf::from))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.join("no-such-config"))
            .env("AWS_ENDPOINT_URL_STS", sts)
            .env("AWS_REGION", "us-east-1")
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        for name in &self.removed_envs {
            command.env_remove(name);
        }
        command
    }

    pub fn start(self) -> Daemon {
        let mut command = self.command();
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting fintors");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            // Keep draining stderr for the daemon's whole life, or it blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    {
                        let mut all = stderr.lock().unwrap();
                        all.push_str(&line);
                        all.push('\n');
                    }
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap().to_owned();
                        let _ = tx.send(addr);
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("fintors did not start; stderr:\n{}", stderr.lock().unwrap());
            }
        };
        Daemon {
            child,
            addr,
            dir: self.dir,
            stderr,
        }
    }
}

/// The container endpoint's token for `role` (`None`: the active role's `/creds`), derived from
/// the daemon's key as `fintors env` derives it.
pub fn container_token(daemon: &Daemon, role: Option<&str>) -> String {
    use fintors::ec2::container_tokens::{ContainerKey, KEY_FILE, Scope};
    let key = std::fs::read(daemon.state_dir().join(KEY_FILE)).unwrap();
    let key = ContainerKey::from_key(key.try_into().unwrap());
    let scope = role.map_or(Scope::Active, Scope::Role);
    key.token(scope).expose().to_owned()
}

/// Writes `contents` to a file only its owner can read, as a careful user keeps a config and
/// credentials (fintors warns about any other).
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(contents.as_ref()).unwrap();
}

/// Runs a program from the venv (or any program) after `eval "$(fintors env)"`, so fintors's
/// IMDS is its only credential source, with the STS endpoint at moto, and returns trimmed stdout;
/// panics with stderr on failure.
pub fn run_client(daemon: &Daemon, program: &Path, args: &[&str]) -> String {
    clients::ClientRun::new(daemon, clients::Via::Imds).run(program, args)
}

/// Writes an executable shell script (a stand-in for `aws`, a browser) at `path`.
pub fn write_script(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{script}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// `fintors status --json` of `daemon`, which must succeed.
pub fn status_json(daemon: &Daemon) -> serde_json::Value {
    let out = fintors_cli(daemon, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `fintors ARGS` as a client of `daemon` (via FINTORS_ENDPOINT, and FINTORS_STATE_DIR for
/// the container key) and returns its output.
pub fn fintors_cli(daemon: &Daemon, args: &[&str]) -> std::process::Output {
    let state = daemon.state_dir();
    fintors_cli_with(
        &daemon.url(),
        args,
        &[("FINTORS_STATE_DIR", state.to_str().unwrap())],
    )
}

/// Runs `fintors ARGS` against the daemon at `endpoint` (which must be on loopback).
pub fn fintors_cli_at(endpoint: &str, args: &[&str]) -> std::process::Output {
    fintors_cli_with(endpoint, args, &[])
}

/// [`fintors_cli_at`] with `envs` added to its environment.
pub fn fintors_cli_with(
    endpoint: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> std::process::Output {
    fintors_cli_command(endpoint, args, envs)
        .output()
        .expect("running fintors")
}

/// The command [`fintors_cli_with`] runs, to be started by the caller (and killed if need be).
pub fn fintors_cli_command(endpoint: &str, args: &[&str], envs: &[(&str, &str)]) -> Command {
    assert!(
        endpoint.starts_with("http://127."),
        "tests talk to loopback only"
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_fintors"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FINTORS_ENDPOINT", endpoint)
        .envs(envs.iter().copied());
    command
}

/// Waits until `done` says so, looking every 100 ms, for at most `limit` (then fails, with
/// `why()`): how long it took. For what a daemon does in its own time (a renewal, a watch).
pub fn wait_until(
    limit: Duration,
    mut done: impl FnMut() -> bool,
    why: impl Fn() -> String,
) -> Duration {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{}", why());
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

/// A running daemon's access log: read after 100 ms, ten times the writer's batching delay
/// (`BATCH_GATHER`), so the lines of the requests just made are in it.
pub fn access_log(path: &Path) -> String {
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_to_string(path).unwrap()
}

/// Where the repository's files are (shell helpers, examples).
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The `whoami` example, which `cargo test` builds beside the test binaries.
pub fn rust_whoami() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().unwrap().parent().unwrap();
    let path = debug_dir.join("examples/whoami");
    assert!(
        path.exists(),
        "{} is missing: run the tests with plain `cargo test` (it builds examples as programs; --all-targets does not)",
        path.display()
    );
    path
}
