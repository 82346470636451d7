//! `fintors network` for real, inside a network namespace this test creates (loopback only, no
//! route out), and systemd socket activation.
//!
//! In the namespace an unmodified SDK, with no endpoint override and IMDS enabled, must get its
//! credentials from http://169.254.169.254/ — which there is fintors, through the address on lo
//! and the port-80 redirect. Nothing leaves the namespace: it has no other interface.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::require_venv;
use crate::support::{Daemon, Reaped, TWO_ROLES, container_token, http, in_ci, rust_whoami};

const EXAMPLE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example/finto-example";
const NS_STS_PORT: u16 = 45123;
const NS_FINTORS_PORT: u16 = 16925;

/// A network namespace, deleted (with everything running in it) when dropped.
pub struct Netns(pub String);

impl Netns {
    /// `None` (test skipped) where namespaces are impossible; under CI they must work.
    pub fn create() -> Option<Netns> {
        let root = crate::support::euid() == 0;
        let tools = ["ip", "iptables"]
            .iter()
            .all(|t| Command::new(t).arg("--version").output().is_ok());
        if !root || !tools {
            let why = "network namespace tests need root, iproute2 and iptables";
            assert!(!in_ci(), "{why}");
            crate::support::skipped(why);
            return None;
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("fintors-test-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success()
        );
        let ns = Netns(name);
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    pub fn exec(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(argv);
        c
    }

    pub fn ok(&self, argv: &[&str]) -> String {
        let o = self.exec(argv).output().unwrap();
        assert!(
            o.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The rules and addresses `network up/down` may touch.
    fn snapshot(&self) -> String {
        [
            self.ok(&["iptables", "-w", "-t", "nat", "-S"]),
            self.ok(&["iptables", "-w", "-t", "filter", "-S"]),
            self.ok(&["ip6tables", "-w", "-t", "nat", "-S"]),
            self.ok(&["ip6tables", "-w", "-t", "filter", "-S"]),
            self.ok(&["ip", "-o", "addr", "show", "dev", "lo"]),
        ]
        .join("\n")
    }

    /// The STS emulator, inside the namespace on [`NS_STS_PORT`], once it accepts connections.
    pub fn moto(&self, venv: &std::path::Path) -> Reaped {
        let moto = Reaped(
            self.exec(&[
                venv.join("bin/moto_server").to_str().unwrap(),
                "-H",
                "127.0.0.1",
                "-p",
                &NS_STS_PORT.to_string(),
            ])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        );
        self.wait_for_port(NS_STS_PORT);
        moto
    }

    pub fn wait_for_port(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
        while Instant::now() < deadline {
            if self
                .exec(&["bash", "-c", &probe])
                .output()
                .unwrap()
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nothing listening on port {port} in {}", self.0);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn fintors_network(ns: &Netns, action: &str) -> Output {
    ns.exec(&[
        env!("CARGO_BIN_EXE_fintors"),
        "network",
        action,
        "--port",
        &NS_FINTORS_PORT.to_string(),
    ])
    .env("FINTORS_CONFIG", "/nonexistent")
    .output()
    .unwrap()
}

fn text(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Runs `program` in the namespace as a plain client: IMDS enabled, no endpoint override.
fn client_in_ns(ns: &Netns, home: &std::path::Path, program: &str, args: &[&str]) -> String {
    client_in_ns_with(ns, home, &[], program, args)
}

/// [`client_in_ns`] with `env` (`NAME=value`) added.
fn client_in_ns_with(
    ns: &Netns,
    home: &std::path::Path,
    env: &[&str],
    program: &str,
    args: &[&str],
) -> String {
    let o = ns
        .exec(&["env", "-i"])
        .args(env)
        .arg(format!(
            "PATH={}",
            std::env::var("PATH").unwrap_or_default()
        ))
        .arg(format!("HOME={}", home.display()))
        .arg(format!(
            "AWS_ENDPOINT_URL_STS=http://127.0.0.1:{NS_STS_PORT}"
        ))
        .args(["AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1"])
        .arg(format!("AWS_CONFIG_FILE={}/none", home.display()))
        .arg(format!(
            "AWS_SHARED_CREDENTIALS_FILE={}/none",
            home.display()
        ))
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

#[test]
fn network_up_makes_unmodified_sdks_find_fintors_and_down_restores_everything() {
    let venv = require_venv!();
    let Some(ns) = Netns::create() else { return };
    let before = ns.snapshot();

    let _moto = ns.moto(&venv);
    let daemon = Daemon::builder(TWO_ROLES)
        .netns(&ns.0)
        .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
        .port(NS_FINTORS_PORT)
        .start();

    let up = text(&fintors_network(&ns, "up"));
    assert_eq!(up.lines().count(), 6, "IPv4 and IPv6: {up}");
    let after_up = ns.snapshot();
    assert_ne!(after_up, before);
    assert_eq!(
        text(&fintors_network(&ns, "up")),
        "nothing to do: already in place\n"
    );
    assert_eq!(ns.snapshot(), after_up, "a second `up` changed something");
    let status = text(&fintors_network(&ns, "status"));
    assert!(
        status.contains("on lo: present (added by fintors)"),
        "{status}"
    );

    let home = daemon.dir.path().join("client");
    std::fs::create_dir_all(&home).unwrap();
    let python = venv.join("bin/python");
    let boto = "import boto3\ns = boto3.Session()\nassert s.get_credentials().method == 'iam-role'\n\
                print(s.client('sts').get_caller_identity()['Arn'])";
    assert_eq!(
        client_in_ns(&ns, &home, python.to_str().unwrap(), &["-c", boto]),
        EXAMPLE_ARN
    );
    assert_eq!(
        client_in_ns(&ns, &home, rust_whoami().to_str().unwrap(), &[]),
        EXAMPLE_ARN
    );

    // The IPv6 metadata address, where SDKs in IPv6 endpoint mode go.
    let ipv6 = ["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6"];
    let boto6 = boto.replace("s = boto3.Session()", "s = boto3.Session()\nassert s._session.get_config_variable('ec2_metadata_service_endpoint_mode').lower() == 'ipv6'");
    assert_eq!(
        client_in_ns_with(&ns, &home, &ipv6, python.to_str().unwrap(), &["-c", &boto6]),
        EXAMPLE_ARN,
        "botocore in IPv6 endpoint mode"
    );
    assert_eq!(
        client_in_ns_with(&ns, &home, &ipv6, rust_whoami().to_str().unwrap(), &[]),
        EXAMPLE_ARN,
        "aws-sdk-rust in IPv6 endpoint mode"
    );

    let down = text(&fintors_network(&ns, "down"));
    assert_eq!(down.lines().count(), 6, "{down}");
    assert_eq!(
        ns.snapshot(),
        before,
        "`down` did not restore the namespace"
    );
    assert_eq!(
        text(&fintors_network(&ns, "down")),
        "nothing to do: nothing of fintors's is in place\n"
    );
}

/// Back online: a role that could not reach STS is fetched again as soon as the machine's
/// addresses or routes change, without waiting for its backoff or for anyone to ask. In a
/// namespace of the test's own: STS (moto) comes up after the failure, then an address is added.
#[test]
fn a_network_change_fetches_a_role_nothing_answered_without_a_request() {
    let venv = require_venv!();
    let Some(ns) = Netns::create() else { return };
    let daemon = Daemon::builder(TWO_ROLES)
        .netns(&ns.0)
        .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
        .port(NS_FINTORS_PORT)
        .start();
    let url = format!(
        "http://127.0.0.1:{NS_FINTORS_PORT}/latest/meta-data/iam/security-credentials/example2"
    );
    let answer = ns.ok(&["curl", "-s", &url]);
    assert!(answer.contains("StsUnreachable"), "{answer}");

    let _moto = ns.moto(&venv);
    let fetched = |log: &str| {
        log.lines()
            .any(|l| l.contains("assumed role") && l.contains("example2"))
    };
    assert!(
        !fetched(&daemon.stderr()),
        "nobody asked for example2 again"
    );
    ns.ok(&["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
    let changed = Instant::now();
    // 750 ms for the change to settle, then moto's first AssumeRole: seconds, but a loaded
    // machine gets room; the point is that no request was needed.
    while !fetched(&daemon.stderr()) {
        assert!(
            changed.elapsed() < Duration::from_secs(20),
            "example2 not fetched {:?} after the network changed:\n{}",
            changed.elapsed(),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = ns.ok(&["curl", "-s", &url]);
    assert!(answer.contains("\"Success\""), "{answer}");
}

/// `fintors doctor` sees `network up` in force: 169.254.169.254 on lo with fintors's label, and
/// fintors (its role API, which no real IMDS has) answering there through the redirect; after
/// `down`, that nothing points the shell's tools at fintors.
#[test]
fn doctor_sees_whether_network_up_is_in_force() {
    let Some(ns) = Netns::create() else { return };
    let _daemon = Daemon::builder(TWO_ROLES)
        .netns(&ns.0)
        .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
        .port(NS_FINTORS_PORT)
        .start();
    let doctor = || {
        let o = ns
            .exec(&[env!("CARGO_BIN_EXE_fintors"), "doctor"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .env("AWS_REGION", "eu-west-1")
            .env(
                "FINTORS_ENDPOINT",
                format!("http://127.0.0.1:{NS_FINTORS_PORT}"),
            )
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    text(&fintors_network(&ns, "up"));
    let up = doctor();
    assert!(
        up.contains("\nok    http://169.254.169.254/ is fintors (`network up` is in force)\n"),
        "{up}"
    );
    text(&fintors_network(&ns, "down"));
    let down = doctor();
    assert!(
        down.contains("\nFAIL  nothing points this shell's tools at fintors: "),
        "{down}"
    );
}

#[test]
fn network_down_leaves_an_address_it_did_not_add() {
    let Some(ns) = Netns::create() else { return };
    ns.ok(&["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    let before = ns.snapshot();
    text(&fintors_network(&ns, "up"));
    text(&fintors_network(&ns, "down"));
    assert_eq!(ns.snapshot(), before);
}

#[test]
fn network_dry_run_prints_commands_and_changes_nothing() {
    let Some(ns) = Netns::create() else { return };
    let before = ns.snapshot();
    let o = ns
        .exec(&[
            env!("CARGO_BIN_EXE_fintors"),
            "network",
            "up",
            "--dry-run",
            "--port",
            "1234",
        ])
        .env("FINTORS_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    let plan = text(&o);
    assert!(
        plan.contains("ip addr add 169.254.169.254/32 dev lo label lo:fintors"),
        "{plan}"
    );
    assert!(plan.contains("--to-destination 127.0.0.1:1234"), "{plan}");
    assert_eq!(ns.snapshot(), before);
}

/// Under sudo HOME is root's: the port comes from the config of the user who ran sudo, and the
/// command says which file it read.
#[test]
fn network_up_under_sudo_reads_the_sudo_users_config_and_says_so() {
    let Some(ns) = Netns::create() else { return };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".fintorc"),
        r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a"}, "port": 4321}"#,
    )
    .unwrap();
    // SUDO_USER=root counts as no sudo user; HOME stands in for a user's home here, while a
    // user unknown to the system would fall back to it the same way.
    let o = ns
        .exec(&[env!("CARGO_BIN_EXE_fintors"), "network", "up", "--dry-run"])
        .env_remove("FINTORS_CONFIG")
        .env("HOME", home.path())
        .env("SUDO_USER", "no-such-user-here")
        .output()
        .unwrap();
    let plan = text(&o);
    assert!(plan.contains("--to-destination 127.0.0.1:4321"), "{plan}");
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        said.trim_end(),
        format!(
            "fintors: fintors's port 4321, from {}",
            home.path().join(".fintorc").display()
        )
    );
}

#[test]
fn socket_activation_serves_on_the_passed_socket() {
    require_venv!();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let d = Daemon::builder(TWO_ROLES).socket(listener).start();
    assert_eq!(
        d.addr, addr,
        "the daemon must serve on the inherited socket"
    );
    assert!(
        d.stderr().contains("socket passed by systemd"),
        "{}",
        d.stderr()
    );
    let r = http(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[],
        "",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "example"));
}

/// The README's set-up, step by step, with no flags and no endpoint variables anywhere: `fintors`
/// (reads ~/.fintorc, serves on 127.0.0.1:16925), `sudo fintors network up`, then the client
/// subcommands, the shell helpers and an unmodified SDK all find the daemon by their defaults.
#[test]
fn the_readme_set_up_needs_no_flags_and_no_endpoint_variables() {
    let venv = require_venv!();
    let Some(ns) = Netns::create() else { return };
    let _moto = ns.moto(&venv);
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join(".aws/credentials");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    crate::support::write_private(
        &creds,
        format!(
            "[identity]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            crate::support::BASE_ACCESS_KEY,
            crate::support::BASE_SECRET_KEY
        ),
    );
    crate::support::write_private(
        &home.path().join(".fintorc"),
        TWO_ROLES.replace("CREDS", "~/.aws/credentials"),
    );
    // As the user's login shell would run them: HOME and PATH, nothing about fintors.
    let user = |argv: &[&str]| {
        let mut c = ns.exec(&["env", "-i"]);
        c.arg(format!("HOME={}", home.path().display()))
            .arg(format!(
                "PATH={}",
                std::env::var("PATH").unwrap_or_default()
            ))
            .arg(format!(
                "AWS_ENDPOINT_URL_STS=http://127.0.0.1:{NS_STS_PORT}"
            ))
            .args(["AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1"])
            .args(argv);
        c
    };
    let log = home.path().join("fintors.log");
    let _daemon = Reaped(
        user(&[env!("CARGO_BIN_EXE_fintors")])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    ns.wait_for_port(16925);
    let fintors = env!("CARGO_BIN_EXE_fintors");
    assert!(
        text(&user(&[fintors, "network", "up"]).output().unwrap())
            .contains("--to-destination 127.0.0.1:16925")
    );

    let roles = text(&user(&[fintors, "roles"]).output().unwrap());
    assert!(roles.contains("* example "), "{roles}");
    let helpers = format!(
        "source {}; fintors_roles",
        crate::support::repo_path("shell/fintors.bash").display()
    );
    assert_eq!(
        text(&user(&["bash", "-c", &helpers]).output().unwrap()),
        "* example\n  example2\n"
    );
    let boto = "import boto3\ns = boto3.Session()\nassert s.get_credentials().method == 'iam-role'\n\
                print(s.client('sts').get_caller_identity()['Arn'])";
    let python = venv.join("bin/python");
    // ~/.aws/credentials has no default profile: botocore's chain reaches the instance profile.
    let sdk = text(
        &user(&[python.to_str().unwrap(), "-c", boto])
            .output()
            .unwrap(),
    );
    assert_eq!(
        sdk.trim(),
        EXAMPLE_ARN,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    text(&user(&[fintors, "network", "down"]).output().unwrap());
}

/// What `network up --containers` may touch: the rules and the bridge's `route_localnet`.
fn containers_snapshot(ns: &Netns, bridge: &str) -> String {
    [
        ns.ok(&["iptables", "-w", "-t", "nat", "-S"]),
        ns.ok(&["iptables", "-w", "-t", "raw", "-S"]),
        ns.ok(&["iptables", "-w", "-t", "filter", "-S"]),
        ns.ok(&[
            "cat",
            &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
        ]),
    ]
    .join("\n")
}

/// A "container": a namespace of its own, its end of a veth pair on `bridge` in `host` at
/// `ip`/24, with its default route through the bridge's `gateway`.
fn container_on(host: &Netns, bridge: &str, ip: &str, gateway: &str) -> Netns {
    let container = Netns::create().unwrap();
    let n = container.0.rsplit('-').next().unwrap().to_owned();
    let (outer, inner) = (format!("vh{n}"), format!("vc{n}"));
    host.ok(&[
        "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
    ]);
    host.ok(&["ip", "link", "set", &inner, "netns", &container.0]);
    host.ok(&["ip", "link", "set", &outer, "master", bridge, "up"]);
    container.ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &inner]);
    container.ok(&["ip", "link", "set", &inner, "up"]);
    container.ok(&["ip", "route", "add", "default", "via", gateway]);
    container
}

fn bridge(host: &Netns, name: &str, gateway: &str) {
    host.ok(&["ip", "link", "add", name, "type", "bridge"]);
    host.ok(&["ip", "addr", "add", &format!("{gateway}/24"), "dev", name]);
    host.ok(&["ip", "link", "set", name, "up"]);
}

fn fintors_containers(ns: &Netns, action: &str, bridge: &str, ecs_port: u16) -> Output {
    ns.exec(&[
        env!("CARGO_BIN_EXE_fintors"),
        "network",
        action,
        "--containers",
        "--bridge",
        bridge,
        "--ecs-port",
        &ecs_port.to_string(),
    ])
    .env("FINTORS_CONFIG", "/nonexistent")
    .output()
    .unwrap()
}

/// Runs `program` in a container namespace with only the variables `fintors env --role ROLE
/// --container --format env-file` printed, as `docker run --env-file` would set them.
fn in_container(container: &Netns, env_file: &str, program: &str, args: &[&str]) -> Output {
    container
        .exec(&["env", "-i", "HOME=/nonexistent"])
        .args(env_file.lines())
        .arg(program)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn network_up_containers_serves_each_bridged_container_its_role_at_the_ecs_address() {
    let venv = require_venv!();
    let Some(host) = Netns::create() else { return };
    const ECS_PORT: u16 = 16926;
    bridge(&host, "br-fintors", "10.77.0.1");
    bridge(&host, "br-other", "10.78.0.1");
    let container = container_on(&host, "br-fintors", "10.77.0.2", "10.77.0.1");
    let stranger = container_on(&host, "br-other", "10.78.0.2", "10.78.0.1");
    let before = containers_snapshot(&host, "br-fintors");

    let _moto = host.moto(&venv);
    let daemon = Daemon::builder(TWO_ROLES)
        .netns(&host.0)
        .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
        .port(NS_FINTORS_PORT)
        .ecs_port(&ECS_PORT.to_string())
        .start();
    let up = text(&fintors_containers(&host, "up", "br-fintors", ECS_PORT));
    assert_eq!(up.lines().count(), 3, "{up}");
    assert_eq!(
        text(&fintors_containers(&host, "up", "br-fintors", ECS_PORT)),
        "nothing to do: already in place\n"
    );

    // What a user passes to `docker run --env-file`, printed on the host.
    let o = host
        .exec(&[env!("CARGO_BIN_EXE_fintors")])
        .args(crate::several_roles::ENV_FILE_FOR_EXAMPLE2)
        .env("FINTORS_ENDPOINT", daemon.url())
        .env("FINTORS_STATE_DIR", daemon.state_dir())
        .env("HOME", daemon.dir.path())
        .output()
        .unwrap();
    let env_file = text(&o);
    let served = host.ok(&[
        "curl",
        "-sS",
        &format!("http://127.0.0.1:{NS_FINTORS_PORT}/roles/example2/credentials"),
    ]);
    let served: serde_json::Value = serde_json::from_str(&served).unwrap();
    let key = served["AccessKeyId"].as_str().unwrap();

    let python = venv.join("bin/python");
    let boto = "import botocore.session\nc = botocore.session.get_session().get_credentials()\n\
                print(c.method, c.get_frozen_credentials().access_key)";
    let o = in_container(
        &container,
        &env_file,
        python.to_str().unwrap(),
        &["-c", boto],
    );
    assert_eq!(text(&o).trim(), format!("container-role {key}"));
    let o = in_container(
        &container,
        &env_file,
        rust_whoami().to_str().unwrap(),
        &["--container", "--access-key"],
    );
    assert_eq!(text(&o).trim(), key, "aws-sdk-rust in the container");

    // No token: 401. Another bridge: nothing at all.
    let url = "http://169.254.170.2/creds/example2";
    let no_token = container.ok(&["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]);
    assert_eq!(no_token, "401");
    let token = env_file
        .lines()
        .find_map(|l| l.strip_prefix("AWS_CONTAINER_AUTHORIZATION_TOKEN="))
        .unwrap();
    let o = stranger
        .exec(&["curl", "-s", "--max-time", "3", "-H"])
        .arg(format!("Authorization: {token}"))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        !o.status.success() && o.stdout.is_empty(),
        "another bridge got an answer"
    );
    // IMDS stays out of the containers' reach, even at the host's bridge address.
    let o = container
        .exec(&["curl", "-s", "--max-time", "3"])
        .arg(format!(
            "http://10.77.0.1:{NS_FINTORS_PORT}/latest/meta-data/iam/security-credentials/"
        ))
        .output()
        .unwrap();
    assert!(!o.status.success(), "IMDS answered a container");

    let down = text(&fintors_containers(&host, "down", "br-fintors", ECS_PORT));
    assert_eq!(down.lines().count(), 3, "{down}");
    assert_eq!(
        containers_snapshot(&host, "br-fintors"),
        before,
        "`down --containers` did not restore the namespace"
    );
}

/// Packets the counting rule with `comment` saw, from `iptables -L -v -x` (or ip6tables).
fn counted(ns: &Netns, iptables: &str, comment: &str) -> u64 {
    let listing = ns.ok(&[iptables, "-w", "-L", "OUTPUT", "-v", "-n", "-x"]);
    listing
        .lines()
        .find(|l| l.contains(&format!("/* {comment} */")))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rule {comment}:\n{listing}"))
}

#[test]
fn imds_replies_leave_with_ttl_1_and_container_replies_with_the_systems_default() {
    let venv = require_venv!();
    let Some(ns) = Netns::create() else { return };
    const ECS_PORT: u16 = 16926;
    let _moto = ns.moto(&venv);
    let daemon = Daemon::builder(TWO_ROLES)
        .netns(&ns.0)
        .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
        .port(NS_FINTORS_PORT)
        .ecs_port(&ECS_PORT.to_string())
        .start();
    // Counting rules (no target): replies from each listener, by TTL / hop limit.
    for (iptables, ttl, port, name) in [
        ("iptables", "ttl", NS_FINTORS_PORT, "imds"),
        ("ip6tables", "hl", NS_FINTORS_PORT, "imds6"),
        ("iptables", "ttl", ECS_PORT, "ecs"),
    ] {
        for (test, label) in [("eq", "one"), ("gt", "more")] {
            let option = format!("--{ttl}-{test}");
            ns.ok(&[
                iptables,
                "-w",
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                "--sport",
                &port.to_string(),
                "-m",
                ttl,
                &option,
                "1",
                "-m",
                "comment",
                "--comment",
                &format!("{name}-{label}"),
            ]);
        }
    }
    let path = "/latest/meta-data/iam/security-credentials/example";
    ns.ok(&[
        "curl",
        "-sSf",
        &format!("http://127.0.0.1:{NS_FINTORS_PORT}{path}"),
    ]);
    ns.ok(&[
        "curl",
        "-sSfg",
        &format!("http://[::1]:{NS_FINTORS_PORT}{path}"),
    ]);
    let token = container_token(&daemon, Some("example"));
    let answered = ns
        .exec(&["curl", "-sSf", "-o", "/dev/null", "-H"])
        .arg(format!("Authorization: {token}"))
        .arg(format!("http://127.0.0.1:{ECS_PORT}/creds/example"))
        .status()
        .unwrap();
    assert!(answered.success(), "the container endpoint answered");
    assert!(
        counted(&ns, "iptables", "imds-one") > 0,
        "IMDS replies with TTL 1"
    );
    assert_eq!(
        counted(&ns, "iptables", "imds-more"),
        0,
        "an IMDS reply with TTL > 1"
    );
    assert!(
        counted(&ns, "ip6tables", "imds6-one") > 0,
        "IMDS on [::1] with hop limit 1"
    );
    assert_eq!(counted(&ns, "ip6tables", "imds6-more"), 0);
    assert_eq!(
        counted(&ns, "iptables", "ecs-one"),
        0,
        "the container endpoint keeps the default"
    );
    assert!(counted(&ns, "iptables", "ecs-more") > 0);
}

/// curl printing only the HTTP status ("000" when nothing answered), giving up after 5 s.
pub const CURL_STATUS: [&str; 8] = [
    "curl",
    "-sg",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "--max-time",
    "5",
];

/// The daemon logged that it refused the other user of these tests (waiting for the line,
/// which reaches stderr after the reply: reading it at once failed once in a full run).
fn assert_refused_uid_4242(daemon: &Daemon) {
    daemon.log_with("another user of this machine (uid 4242)");
}

/// `curl` as the user `uid` (which needs no entry in /etc/passwd): the HTTP status, or "000".
fn status_as(ns: &Netns, uid: &str, url: &str, headers: &[String]) -> String {
    status_from(ns, uid, None, url, headers)
}

/// [`status_as`], connecting from the local address `source` when given.
fn status_from(
    ns: &Netns,
    uid: &str,
    source: Option<&str>,
    url: &str,
    headers: &[String],
) -> String {
    let mut c = ns.exec(&["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups"]);
    c.args(CURL_STATUS);
    if let Some(source) = source {
        c.args(["--interface", source]);
    }
    for h in headers {
        c.args(["-H", h]);
    }
    let o = c.arg(url).env_clear().output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn another_local_user_gets_403_on_every_listener_directly_and_through_the_redirect() {
    let venv = require_venv!();
    let Some(ns) = Netns::create() else { return };
    let _moto = ns.moto(&venv);
    let start = |port: u16, extra: &[&str]| {
        let mut builder = Daemon::builder(TWO_ROLES)
            .netns(&ns.0)
            .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
            .port(port)
            .ecs_port(&(port + 1).to_string())
            .arg("--admin-port")
            .arg((port + 2).to_string());
        for arg in extra {
            builder = builder.arg(*arg);
        }
        builder.start()
    };
    let daemon = start(NS_FINTORS_PORT, &[]);
    text(&fintors_network(&ns, "up"));
    let token = container_token(&daemon, Some("example"));
    let authorized = vec![format!("Authorization: {token}")];
    let creds = "/latest/meta-data/iam/security-credentials/example";
    let urls = |port: u16| {
        vec![
            (format!("http://127.0.0.1:{port}{creds}"), vec![]),
            (format!("http://[::1]:{port}{creds}"), vec![]),
            (format!("http://127.0.0.1:{port}/roles"), vec![]),
            (
                format!("http://127.0.0.1:{}/creds/example", port + 1),
                authorized.clone(),
            ),
            (format!("http://127.0.0.1:{}/healthz", port + 2), vec![]),
        ]
    };
    let mut every = urls(NS_FINTORS_PORT);
    every.push((format!("http://169.254.169.254{creds}"), vec![]));
    every.push((format!("http://[fd00:ec2::254]{creds}"), vec![]));
    for (url, headers) in &every {
        assert_eq!(
            status_as(&ns, "4242", url, headers),
            "403",
            "another user: {url}"
        );
        assert_eq!(
            status_as(&ns, "0", url, headers),
            "200",
            "the daemon's user: {url}"
        );
    }
    assert_refused_uid_4242(&daemon);

    // Named in allow_users, the same user is served.
    let allowing = start(NS_FINTORS_PORT + 10, &["--allow-users", "4242"]);
    let token = container_token(&allowing, Some("example"));
    for (url, headers) in urls(NS_FINTORS_PORT + 10) {
        let headers: Vec<String> = if headers.is_empty() {
            headers
        } else {
            vec![format!("Authorization: {token}")]
        };
        assert_eq!(
            status_as(&ns, "4242", &url, &headers),
            "200",
            "allowed: {url}"
        );
    }
}

/// A local user may connect to 127.0.0.1 from one of the host's other addresses. The container
/// endpoint, which admits peers that are not on this machine by their token alone, used to take
/// such a connection for a container's and skip the owner check.
#[test]
fn another_local_user_connecting_from_a_non_loopback_address_of_the_host_gets_403() {
    let venv = require_venv!();
    let Some(ns) = Netns::create() else { return };
    let _moto = ns.moto(&venv);
    // The host's "LAN" address (on lo: this namespace has no other link, and needs none).
    ns.ok(&["ip", "addr", "add", "10.9.9.1/32", "dev", "lo"]);
    let daemon = Daemon::builder(TWO_ROLES)
        .netns(&ns.0)
        .sts(format!("http://127.0.0.1:{NS_STS_PORT}"))
        .port(NS_FINTORS_PORT)
        .ecs_port(&(NS_FINTORS_PORT + 1).to_string())
        .start();
    let token = container_token(&daemon, Some("example"));
    let authorized = [format!("Authorization: {token}")];
    let url = format!("http://127.0.0.1:{}/creds/example", NS_FINTORS_PORT + 1);
    let lan = Some("10.9.9.1");
    assert_eq!(status_from(&ns, "0", lan, &url, &authorized), "200");
    assert_eq!(status_from(&ns, "4242", lan, &url, &authorized), "403");
    assert_refused_uid_4242(&daemon);
}

/// A container that routes 127.0.0.0/8 to the host through the bridge reaches the host's
/// loopback-only services once `route_localnet` is on, unless something drops that traffic
/// first. `network up --containers` drops it where no filter rule can come before it, so an
/// ACCEPT on the bridge (what `ufw allow in on docker0` adds) does not open the host's loopback.
#[test]
fn after_network_up_containers_no_container_reaches_a_loopback_service_despite_a_prior_accept() {
    let venv = require_venv!();
    let Some(host) = Netns::create() else { return };
    const ECS_PORT: u16 = 16926;
    const PRIVATE_PORT: u16 = 18080;
    bridge(&host, "br-fintors", "10.77.0.1");
    let container = container_on(&host, "br-fintors", "10.77.0.2", "10.77.0.1");
    // The container's attack: 127.0.0.0/8 routed out through the bridge, not to its own lo.
    let iface = container.ok(&["sh", "-c", "ls /sys/class/net | grep '^vc'"]);
    let iface = iface.trim();
    // (Without 127.0.0.1 on its lo, replies from the host's 127.0.0.1 are not martians to it.)
    container.ok(&["ip", "addr", "del", "127.0.0.1/8", "dev", "lo"]);
    container.ok(&[
        "ip",
        "route",
        "add",
        "127.0.0.0/8",
        "via",
        "10.77.0.1",
        "dev",
        iface,
    ]);
    container.ok(&[
        "sysctl",
        "-qw",
        &format!("net.ipv4.conf.{iface}.route_localnet=1"),
    ]);
    // A service of the host's that listens on loopback only.
    let _private = Reaped(
        host.exec(&[
            venv.join("bin/python").to_str().unwrap(),
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &PRIVATE_PORT.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    host.wait_for_port(PRIVATE_PORT);
    let reach = || {
        container
            .exec(&CURL_STATUS)
            .arg(format!("http://127.0.0.1:{PRIVATE_PORT}/"))
            .output()
            .unwrap()
    };
    let localnet = "/proc/sys/net/ipv4/conf/br-fintors/route_localnet";
    // The attack works where route_localnet is on and nothing drops it: the test's control.
    host.ok(&["sh", "-c", &format!("echo 1 > {localnet}")]);
    assert_eq!(
        text(&reach()),
        "200",
        "the control: the attack reaches loopback"
    );
    host.ok(&["sh", "-c", &format!("echo 0 > {localnet}")]);

    host.ok(&[
        "iptables",
        "-w",
        "-I",
        "INPUT",
        "-i",
        "br-fintors",
        "-j",
        "ACCEPT",
    ]);
    let daemon = Daemon::builder(TWO_ROLES)
        .netns(&host.0)
        .sts("http://127.0.0.1:1")
        .port(NS_FINTORS_PORT)
        .ecs_port(&ECS_PORT.to_string())
        .start();
    text(&fintors_containers(&host, "up", "br-fintors", ECS_PORT));
    let o = reach();
    let answered = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success() && answered != "200",
        "a container reached a loopback-only service: {answered}"
    );
    // The redirect still works: the container endpoint answers (401 without a token).
    let ecs = text(
        &container
            .exec(&CURL_STATUS)
            .arg("http://169.254.170.2/creds/example")
            .output()
            .unwrap(),
    );
    assert_eq!(ecs, "401");
    let status = text(&fintors_containers(&host, "status", "br-fintors", ECS_PORT));
    assert!(status.contains("(raw PREROUTING): present"), "{status}");
    drop(daemon);
}
