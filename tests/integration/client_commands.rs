//! The client subcommands against a live daemon: what they print, what they change, how they fail.

use std::process::{Command, Output};

use crate::require_venv;
use crate::support::{
    Daemon, FakeSts, TWO_ROLES, fintors_cli, fintors_cli_at, free_port, moto, run_client,
    status_json,
};

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn roles_marks_the_active_role_and_shows_lifetimes() {
    require_venv!();
    let d = Daemon::start();
    let out = stdout(&fintors_cli(&d, &["roles"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("ROLE") && lines[0].contains("EXPIRES IN"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("* example ") && lines[1].contains("59m"),
        "{out}"
    );
    assert!(lines[2].starts_with("  example2 "), "{out}");
    assert!(
        lines[2].contains("arn:aws:iam::123456789012:role/path/example2"),
        "{out}"
    );
}

#[test]
fn roles_json_is_machine_readable() {
    require_venv!();
    let d = Daemon::start();
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&fintors_cli(&d, &["roles", "--json"]))).unwrap();
    assert_eq!(v["active_role"], "example");
    assert_eq!(v["roles"][0]["alias"], "example");
    assert!(v["roles"][0]["credentials"]["expiration"].is_string());
    assert!(v["roles"][1]["credentials"].is_null());
}

#[test]
fn use_switches_through_the_role_api() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(
        stdout(&fintors_cli(&d, &["use", "example2"])),
        "active role: example2\n"
    );
    assert_eq!(
        d.get("/roles?status=active").body,
        r#"{"roles":["example2"]}"#
    );
    assert_eq!(stdout(&fintors_cli(&d, &["current"])), "example2\n");
}

#[test]
fn use_of_an_unknown_role_fails_and_names_the_configured_ones() {
    require_venv!();
    let d = Daemon::start();
    let o = fintors_cli(&d, &["use", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "fintors: unknown role: nope (configured: example, example2)\n"
    );
}

#[test]
fn use_of_a_mistyped_role_names_the_one_meant() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let o = fintors_cli(&d, &["use", "exmaple2"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "fintors: unknown role: exmaple2 (did you mean example2? configured: example, example2)\n"
    );
}

#[test]
fn use_without_a_role_says_how_to_name_one_and_does_not_exit_as_if_not_running() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let o = fintors_cli(&d, &["use"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "2 means the daemon is not running"
    );
    assert_eq!(
        stderr(&o),
        "fintors: name a role: `fintors use ROLE` (configured: example, example2)\n"
    );
}

#[test]
fn use_of_a_role_sts_refuses_prints_stss_error() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let o = fintors_cli(&d, &["use", "example2"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("AccessDenied") && err.contains("not authorized"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn daemon_not_running_is_one_line_and_exit_2() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    for args in [
        &["roles"][..],
        &["use", "x"],
        &["current"],
        &["creds"],
        &["status"],
    ] {
        let o = fintors_cli_at(&endpoint, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert_eq!(
            err,
            format!(
                "fintors is not running at {endpoint}: start it with `fintors serve` \
                 (or point --endpoint / FINTORS_ENDPOINT at it)\n"
            )
        );
    }
}

#[test]
fn stop_ends_the_daemon_gracefully_and_waits_for_it() {
    let sts = FakeSts::issuing();
    let mut d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let status = status_json(&d);
    assert_eq!(status["pid"], d.pid());
    assert!(status["config"].as_str().unwrap().ends_with("fintorc.json"));
    let o = fintors_cli(&d, &["stop"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        stdout(&o),
        format!("stopped fintors (pid {}) at http://{}\n", d.pid(), d.addr)
    );
    // By the time stop returns, the port is closed; the exit follows at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let exited = loop {
        if let Some(status) = d.exited() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exited.code(), Some(0), "a graceful stop: {}", d.stderr());
    assert!(
        d.stderr().contains("SIGTERM: shutting down"),
        "{}",
        d.stderr()
    );
    assert_eq!(fintors_cli(&d, &["stop"]).status.code(), Some(2));
}

/// A daemon on systemd's socket is not signalled: the socket would start it again at the next
/// connection (the wait for the port to close included), so `stop` says which unit to stop.
#[test]
fn stop_leaves_a_socket_activated_daemon_to_systemd_and_says_so() {
    let sts = FakeSts::issuing();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut d = Daemon::builder(TWO_ROLES)
        .sts(&sts.url)
        .socket(listener)
        .start();
    let o = fintors_cli(&d, &["stop"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "fintors: cannot stop fintors (pid {}) at http://{}: systemd's socket would start it \
             again: stop the socket unit with systemctl",
            d.pid(),
            d.addr
        )
    );
    assert!(d.exited().is_none(), "the daemon was signalled");
}

/// Whatever answers at the endpoint names the pid `stop` signals: a server of this user's that
/// names another process of this user (here a `sleep`) is refused, and the process lives.
#[test]
fn stop_signals_only_a_fintors() {
    let mut sleeper = crate::support::Reaped(
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap(),
    );
    let pid = sleeper.0.id();
    let liar = crate::support::FakeServer::start(move |_| {
        (
            200,
            "application/json",
            format!(
                r#"{{"version":"0","pid":{pid},"active_role":null,"imdsv2_required":false,"container_endpoint":null,"roles":[]}}"#
            ),
        )
    });
    let o = fintors_cli_at(&liar.url, &["stop"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(&o).contains(&format!("process {pid} is \"sleep\"")),
        "{}",
        stderr(&o)
    );
    assert!(
        sleeper.0.try_wait().unwrap().is_none(),
        "the sleep was signalled"
    );
}

/// A pid names a process only with its start: a server that names this user's fintors by pid
/// but another start time (as a pid used again after the daemon exited would look) is refused,
/// and the fintors lives.
#[test]
fn stop_signals_only_the_process_that_started_when_the_daemon_says() {
    let sts = FakeSts::issuing();
    let mut d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let status = status_json(&d);
    let started = status["process_started"]
        .as_u64()
        .expect("a start time on Linux");
    let pid = d.pid();
    let liar = crate::support::FakeServer::start(move |_| {
        (
            200,
            "application/json",
            format!(
                r#"{{"version":"0","pid":{pid},"process_started":{},"active_role":null,"imdsv2_required":false,"container_endpoint":null,"roles":[]}}"#,
                started + 1
            ),
        )
    });
    let o = fintors_cli_at(&liar.url, &["stop"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(&o).contains(&format!(
            "process {pid} is not the fintors that answered (it started at another time)"
        )),
        "{}",
        stderr(&o)
    );
    assert!(d.exited().is_none(), "the daemon was signalled");
}

#[test]
fn env_prints_the_same_lines_whether_or_not_the_daemon_is_running_yet() {
    let d = Daemon::start();
    let endpoint = format!("http://{}", d.addr);
    // A shell whose SDKs may ask IMDS: the tests' clients run with it disabled, which env
    // rightly warns about. It has a region, which env would otherwise export from the daemon.
    let sdks_ask = [
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    let running = crate::support::fintors_cli_with(&endpoint, &["env"], &sdks_ask);
    assert!(running.status.success(), "{running:?}");
    assert_eq!(stderr(&running), "");
    assert_eq!(
        stdout(&running),
        format!("export AWS_EC2_METADATA_SERVICE_ENDPOINT='{endpoint}/'\n")
    );
    let nothing = format!("http://127.0.0.1:{}", free_port());
    let stopped = crate::support::fintors_cli_with(&nothing, &["env"], &sdks_ask);
    assert!(stopped.status.success(), "{stopped:?}");
    assert_eq!(
        stdout(&stopped),
        format!("export AWS_EC2_METADATA_SERVICE_ENDPOINT='{nothing}/'\n")
    );
    assert!(
        stderr(&stopped).starts_with("fintors: warning: fintors is not running at "),
        "{}",
        stderr(&stopped)
    );
}

/// The daemon whose instance is in eu-central-1, and the `fintors env` lines of a shell with
/// `vars`.
fn env_lines_in_eu_central_1(vars: &[(&str, &str)]) -> (String, String) {
    let config = TWO_ROLES.replacen(
        "\"default_role\"",
        "\"instance\": {\"region\": \"eu-central-1\"},\n  \"default_role\"",
        1,
    );
    let d = Daemon::builder(&config).start();
    let endpoint = format!("http://{}", d.addr);
    let mut shell = vec![("AWS_EC2_METADATA_DISABLED", "false")];
    shell.extend_from_slice(vars);
    let o = crate::support::fintors_cli_with(&endpoint, &["env"], &shell);
    (stdout(&o), endpoint)
}

#[test]
fn env_exports_the_instance_region_for_botocore_in_a_shell_with_none() {
    let (out, endpoint) = env_lines_in_eu_central_1(&[]);
    assert_eq!(
        out,
        format!(
            "export AWS_EC2_METADATA_SERVICE_ENDPOINT='{endpoint}/'\n\
             export AWS_DEFAULT_REGION='eu-central-1'\n"
        )
    );
}

#[test]
fn env_exports_no_region_where_botocore_finds_one() {
    let (out, _) = env_lines_in_eu_central_1(&[("AWS_DEFAULT_REGION", "ap-south-1")]);
    assert!(!out.contains("REGION"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[profile work]\nregion = sa-east-1\n").unwrap();
    let (out, _) = env_lines_in_eu_central_1(&[
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_DEFAULT_PROFILE", "work"),
    ]);
    assert!(!out.contains("REGION"), "{out}");
}

#[test]
fn env_gives_botocore_the_shells_aws_region_rather_than_another() {
    let (out, _) = env_lines_in_eu_central_1(&[("AWS_REGION", "ap-south-1")]);
    assert!(
        out.ends_with("export AWS_DEFAULT_REGION='ap-south-1'\n"),
        "{out}"
    );
}

/// The two example roles, example2 with a region of its own (eu-west-1, the daemon's being
/// us-east-1).
fn example2_in_eu_west_1() -> Daemon {
    let config = TWO_ROLES.replace(
        r#""session_name": "me""#,
        r#""session_name": "me", "region": "eu-west-1""#,
    );
    Daemon::builder(&config).start()
}

/// A region exported earlier (say by `fintors env`) stays in the shell when the active role
/// changes; botocore (and the other SDKs but JS) would keep it, so `use` says so, both ways.
#[test]
fn use_says_when_a_switch_leaves_the_shells_region_behind() {
    require_venv!();
    let d = example2_in_eu_west_1();
    let endpoint = d.url();
    let use_in = |role: &str, shell: &[(&str, &str)]| {
        let o = crate::support::fintors_cli_with(&endpoint, &["use", role], shell);
        assert_eq!(stdout(&o), format!("active role: {role}\n"));
        stderr(&o)
    };
    assert_eq!(
        use_in("example2", &[("AWS_DEFAULT_REGION", "us-east-1")]),
        "fintors: note: this shell's AWS_DEFAULT_REGION is us-east-1, the instance's is now \
         eu-west-1: export AWS_DEFAULT_REGION=eu-west-1\n"
    );
    assert_eq!(
        use_in("example", &[("AWS_DEFAULT_REGION", "eu-west-1")]),
        "fintors: note: this shell's AWS_DEFAULT_REGION is eu-west-1, the instance's is now \
         us-east-1: export AWS_DEFAULT_REGION=us-east-1\n"
    );
}

#[test]
fn use_leaves_a_region_the_shell_did_not_take_from_the_instance_alone() {
    require_venv!();
    let d = example2_in_eu_west_1();
    let endpoint = d.url();
    for shell in [
        &[][..],
        &[("AWS_DEFAULT_REGION", "ap-south-1")][..],
        // A pinned shell does not follow the active role.
        &[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("FINTORS_ROLE", "example"),
        ][..],
    ] {
        let o = crate::support::fintors_cli_with(&endpoint, &["use", "example2"], shell);
        assert_eq!(stderr(&o), "", "{shell:?}");
        let o = crate::support::fintors_cli_with(&endpoint, &["use", "example"], shell);
        assert_eq!(stderr(&o), "", "{shell:?}");
    }
}

#[test]
fn env_and_status_warn_about_what_wins_over_fintors_as_doctor_does() {
    let d = Daemon::start();
    let endpoint = format!("http://{}", d.addr);
    let shell = [
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_PROFILE", "dev"),
    ];
    let env = crate::support::fintors_cli_with(&endpoint, &["env"], &shell);
    assert!(env.status.success());
    assert!(
        stderr(&env).starts_with("fintors: warning: AWS_PROFILE is set in this shell: "),
        "{}",
        stderr(&env)
    );
    let status = crate::support::fintors_cli_with(&endpoint, &["status"], &shell);
    assert!(
        stdout(&status).contains("\nwarning: AWS_PROFILE is set in this shell: "),
        "{}",
        stdout(&status)
    );
}

#[test]
fn creds_env_output_works_for_a_real_client_after_eval() {
    let venv = require_venv!();
    let d = Daemon::start();
    let exports = stdout(&fintors_cli(&d, &["creds", "example2", "--format", "env"]));
    assert!(exports.contains("export AWS_SESSION_TOKEN='"), "{exports}");
    let o = Command::new("bash")
        .args([
            "-c",
            &format!("{exports}\nexec \"$0\" sts get-caller-identity --query Arn --output text"),
        ])
        .arg(venv.join("bin/aws"))
        .env_clear()
        .envs(no_imds_env(&d))
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), EXAMPLE2_ARN);
}

const EXAMPLE2_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example2/me";

/// A clean environment for a client whose credentials come from anywhere but IMDS.
fn no_imds_env(d: &Daemon) -> impl Iterator<Item = (String, std::ffi::OsString)> {
    [
        ("PATH", std::env::var_os("PATH").unwrap_or_default()),
        ("HOME", d.dir.path().into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL_STS", moto().into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
}

#[test]
fn creds_default_to_the_active_role_and_json_is_the_imds_document() {
    require_venv!();
    let d = Daemon::start();
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(&fintors_cli(&d, &["creds", "--format", "json"]))).unwrap();
    let imds = d
        .get("/latest/meta-data/iam/security-credentials/example")
        .json();
    assert_eq!(doc, imds);
}

#[test]
fn creds_credential_process_feeds_the_aws_cli() {
    let venv = require_venv!();
    let d = Daemon::start();
    let out = stdout(&fintors_cli(
        &d,
        &["creds", "example2", "--format", "credential-process"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Version"], 1);
    assert!(v["SessionToken"].is_string() && v["Expiration"].is_string());

    // A profile whose credential_process is fintors: the CLI must come out as example2.
    let config = d.dir.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile viafintors]\ncredential_process = {} creds example2 --format credential-process --endpoint {}\n",
            env!("CARGO_BIN_EXE_fintors"),
            d.url()
        ),
    )
    .unwrap();
    let o = Command::new(venv.join("bin/aws"))
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "viafintors",
            "--query",
            "Arn",
            "--output",
            "text",
        ])
        .env_clear()
        .envs(no_imds_env(&d))
        .env("AWS_CONFIG_FILE", &config)
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), EXAMPLE2_ARN);
}

#[test]
fn creds_for_a_refused_role_fails_with_stss_reason() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let o = fintors_cli(&d, &["creds", "example"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no credentials for example: AccessDenied"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn status_shows_role_cache_and_last_sts_error() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let out = stdout(&fintors_cli(&d, &["status"]));
    assert!(out.contains(&format!("is running at {}", d.url())), "{out}");
    assert!(out.contains("active role: example\n"), "{out}");
    assert!(out.contains("no credentials cached"), "{out}");
    assert!(
        out.contains("last STS error at ") && out.contains("AccessDenied"),
        "{out}"
    );
}

#[test]
fn status_reports_valid_cached_credentials() {
    require_venv!();
    let d = Daemon::start();
    let out = stdout(&fintors_cli(&d, &["status"]));
    assert!(
        out.contains("* example   credentials valid for 59m"),
        "{out}"
    );
    assert!(out.contains("1 STS call"), "{out}");
}

#[test]
fn completion_scripts_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = fintors_cli_at("http://127.0.0.1:1", &["completions", shell]);
        let script = stdout(&o);
        assert!(
            script.contains("creds") && script.contains("network"),
            "{shell}"
        );
    }
    // bash accepts its script.
    let o = fintors_cli_at("http://127.0.0.1:1", &["completions", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c", &String::from_utf8(o.stdout).unwrap()])
        .status()
        .unwrap();
    assert!(check.success());
}

#[test]
fn clients_use_the_rust_sdk_path_after_switching_via_cli() {
    require_venv!();
    let d = Daemon::start();
    stdout(&fintors_cli(&d, &["use", "example2"]));
    assert_eq!(
        run_client(&d, &crate::support::rust_whoami(), &[]),
        "arn:aws:sts::123456789012:assumed-role/example2/me"
    );
}
