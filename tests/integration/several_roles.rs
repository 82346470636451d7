//! Several roles at once: a command (`fintors exec`), a shell (`fintors env --role`) and a
//! container each on a role of its own, while the machine-wide active role stays as it is, and
//! all of them sharing the daemon's one cache per role.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use crate::require_venv;
use crate::support::clients::{ClientRun, Via, aws_cli_v2};
use crate::support::{
    Daemon, FakeSts, StsCall, TWO_ROLES, container_token, fintors_cli, http, issued, moto,
    rust_whoami, status_json,
};

const EXAMPLE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example/finto-example";
const EXAMPLE2_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example2/me";

/// What a user runs for `docker run --env-file <(...)` with example2.
pub const ENV_FILE_FOR_EXAMPLE2: [&str; 6] = [
    "env",
    "--role",
    "example2",
    "--container",
    "--format",
    "env-file",
];

/// botocore's credential method, then the caller's ARN.
const BOTO_WHOAMI: &str = "import boto3\ns = boto3.Session()\nprint(s.get_credentials().method)\n\
                           print(s.client('sts').get_caller_identity()['Arn'])";

fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// `fintors exec ARGS` as a user runs it, with a parent environment that holds keys, a profile
/// and a region (all of which the command must not see, but for the region of a role without
/// one).
fn exec(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fintors"));
    c.arg("exec")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", d.dir.path())
        .env("FINTORS_ENDPOINT", d.url())
        .env("FINTORS_STATE_DIR", d.state_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIAPARENTSHELLKEY00")
        .env("AWS_SECRET_ACCESS_KEY", "parent-secret")
        .env("AWS_PROFILE", "parent")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("{}/", d.url()))
        .env("FINTORS_ADMIN_TOKEN", "parent-admin-token");
    c
}

#[test]
fn exec_runs_the_command_with_its_role_while_the_active_role_stays() {
    let venv = require_venv!();
    let d = Daemon::start();
    let out = ClientRun::new(&d, Via::Exec("example2"))
        .run(&venv.join("bin/python"), &["-c", BOTO_WHOAMI]);
    assert_eq!(out, format!("container-role\n{EXAMPLE2_ARN}"));
    assert_eq!(stdout(&fintors_cli(&d, &["current"])), "example");
    assert_eq!(
        ClientRun::new(&d, Via::Imds).run(&venv.join("bin/python"), &["-c", BOTO_WHOAMI]),
        format!("iam-role\n{EXAMPLE_ARN}")
    );
}

#[test]
fn aws_cli_v2_inside_exec_is_the_commands_role() {
    require_venv!();
    let Some(aws) = aws_cli_v2() else { return };
    let d = Daemon::start();
    let arn = ClientRun::new(&d, Via::Exec("example2")).run(
        &aws,
        &[
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            &moto(),
            "--query",
            "Arn",
            "--output",
            "text",
        ],
    );
    assert_eq!(arn, EXAMPLE2_ARN);
    assert_eq!(stdout(&fintors_cli(&d, &["current"])), "example");
}

#[test]
fn exec_hands_over_the_endpoint_and_token_never_keys_or_a_profile() {
    require_venv!();
    let d = Daemon::start();
    let env = stdout(&exec(&d, &["example2", "--", "env"]).output().unwrap());
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    let uri = var("AWS_CONTAINER_CREDENTIALS_FULL_URI").expect("the endpoint");
    assert!(
        uri.starts_with("http://127.0.0.1:") && uri.ends_with("/creds/example2"),
        "{uri}"
    );
    assert_eq!(
        var("AWS_CONTAINER_AUTHORIZATION_TOKEN").expect("the token"),
        container_token(&d, Some("example2")),
        "the role's own token"
    );
    for gone in [
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "FINTORS_ADMIN_TOKEN",
    ] {
        assert_eq!(var(gone), None, "{gone} reached the command");
    }
    assert_eq!(var("FINTORS_ROLE").as_deref(), Some("example2"));
    for gone in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
        assert_eq!(var(gone), None, "{gone} reached the command");
    }
    // A role without a region of its own leaves the caller's.
    assert_eq!(var("AWS_REGION").as_deref(), Some("us-east-1"));
}

#[test]
fn exec_gives_the_command_its_roles_region() {
    require_venv!();
    let d = Daemon::builder(
        r#"{"credentials": {"file": "CREDS", "profile": "identity"},
            "roles": {"eu": {"arn": "arn:aws:iam::123456789012:role/eu", "region": "eu-west-1"}}}"#,
    )
    .start();
    let env = stdout(&exec(&d, &["eu", "env"]).output().unwrap());
    assert!(env.lines().any(|l| l == "AWS_REGION=eu-west-1"), "{env}");
    assert!(env.lines().any(|l| l == "AWS_DEFAULT_REGION=eu-west-1"));
}

#[test]
fn exec_exits_with_the_commands_status() {
    require_venv!();
    let d = Daemon::start();
    let o = exec(&d, &["example2", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7));
}

#[test]
fn exec_of_an_unknown_role_says_so_in_one_line_and_runs_nothing() {
    require_venv!();
    let d = Daemon::start();
    let marker = d.dir.path().join("ran");
    let o = exec(&d, &["nope", "--", "touch", marker.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "fintors: unknown role: nope (configured: example, example2)\n"
    );
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn exec_of_a_role_sts_refuses_says_why_and_runs_nothing() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(sts.url.clone()).start();
    let marker = d.dir.path().join("ran");
    let o = exec(&d, &["example2", "touch", marker.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("fintors: no credentials for example2: AccessDenied: ")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn exec_without_a_daemon_exits_2_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let o = Command::new(env!("CARGO_BIN_EXE_fintors"))
        .args(["exec", "example", "touch", marker.to_str().unwrap()])
        .env_clear()
        .env("FINTORS_ENDPOINT", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("fintors is not running at"));
    assert!(!marker.exists());
}

#[test]
fn exec_of_a_missing_command_exits_127() {
    require_venv!();
    let d = Daemon::start();
    let o = exec(&d, &["example", "no-such-command-here"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("fintors: cannot run no-such-command-here:")
    );
}

#[test]
fn exec_hides_a_default_profile_with_keys_that_would_win_over_the_role() {
    let venv = require_venv!();
    let d = Daemon::start();
    let home = d.dir.path().join("client-home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIADEFAULTPROFILE00\naws_secret_access_key = s\n",
    )
    .unwrap();
    let o = ClientRun::new(&d, Via::Exec("example2"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join(".aws/credentials").to_str().unwrap(),
        )
        .run(&venv.join("bin/python"), &["-c", BOTO_WHOAMI]);
    assert_eq!(o, format!("container-role\n{EXAMPLE2_ARN}"));
}

#[test]
fn two_execs_on_different_roles_run_side_by_side() {
    let venv = require_venv!();
    let d = Daemon::start();
    // Each asks for its identity five times while the other does the same.
    let script = "import boto3, time\nfor _ in range(5):\n    \
                  print(boto3.Session().client('sts').get_caller_identity()['Arn'])\n    \
                  time.sleep(0.2)";
    let python = venv.join("bin/python");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| ClientRun::new(&d, Via::Exec("example")).run(&python, &["-c", script]));
        let b = s.spawn(|| ClientRun::new(&d, Via::Exec("example2")).run(&python, &["-c", script]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.lines().collect::<Vec<_>>(), [EXAMPLE_ARN; 5]);
    assert_eq!(b.lines().collect::<Vec<_>>(), [EXAMPLE2_ARN; 5]);
}

#[test]
fn a_pinned_shell_follows_its_role_while_the_active_role_changes() {
    let venv = require_venv!();
    let d = Daemon::start();
    let pinned = ClientRun::new(&d, Via::Pinned("example2"));
    let python = venv.join("bin/python");
    assert_eq!(
        pinned.run(&python, &["-c", BOTO_WHOAMI]),
        format!("container-role\n{EXAMPLE2_ARN}")
    );
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(d.switch("example").status, 200);
    assert_eq!(
        pinned.run(&rust_whoami(), &["--container"]),
        EXAMPLE2_ARN,
        "aws-sdk-rust in the pinned shell"
    );
}

#[test]
fn env_role_prints_the_same_pin_for_sh_fish_and_docker() {
    require_venv!();
    let d = Daemon::start();
    let sh = stdout(&fintors_cli(&d, &["env", "--role", "example2"]));
    assert!(sh.lines().any(|l| l == "unset AWS_ACCESS_KEY_ID"), "{sh}");
    assert!(sh.lines().any(|l| l == "export FINTORS_ROLE='example2'"));
    let fish = stdout(&fintors_cli(
        &d,
        &["env", "--role", "example2", "--format", "fish"],
    ));
    assert!(fish.lines().any(|l| l == "set -e AWS_PROFILE"), "{fish}");
    assert!(fish.lines().any(|l| l == "set -gx FINTORS_ROLE 'example2'"));
    let docker = stdout(&fintors_cli(&d, &ENV_FILE_FOR_EXAMPLE2));
    let lines: Vec<&str> = docker.lines().collect();
    assert!(
        lines.contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.2/creds/example2"),
        "{docker}"
    );
    assert!(lines.iter().all(|l| l.contains('=') && !l.contains('\'')));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("AWS_CONTAINER_AUTHORIZATION_TOKEN="))
    );
    assert!(
        !docker.contains("TOKEN_FILE"),
        "the host's file is not in the container"
    );
}

#[test]
fn env_role_of_an_unknown_role_prints_nothing_to_eval() {
    require_venv!();
    let d = Daemon::start();
    let o = fintors_cli(&d, &["env", "--role", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
}

#[test]
fn status_and_roles_show_who_uses_each_role_through_which_door() {
    require_venv!();
    let d = Daemon::start();
    let (ecs, _) = crate::container::endpoint(&d);
    let token = container_token(&d, Some("example2"));
    for _ in 0..3 {
        let r = http(
            ecs,
            "GET",
            "/creds/example2",
            &[("Authorization", &token)],
            "",
        );
        assert_eq!(r.status, 200);
    }
    let path = "/latest/meta-data/iam/security-credentials/example";
    assert_eq!(d.get(path).status, 200);
    let report = status_json(&d);
    let served =
        |role: usize, door: &str| report["roles"][role]["served"][door]["last_15_minutes"].as_u64();
    assert_eq!(report["roles"][1]["alias"], "example2");
    assert_eq!(served(1, "container"), Some(3));
    assert_eq!(served(1, "imds"), Some(0));
    assert_eq!(served(0, "imds"), Some(1));
    let roles = stdout(&fintors_cli(&d, &["roles"]));
    assert!(
        roles.lines().next().unwrap().contains("USED (15 MIN)"),
        "{roles}"
    );
    let line = |alias: &str| {
        roles
            .lines()
            .find(|l| l[2..].starts_with(&format!("{alias} ")))
            .unwrap()
            .to_owned()
    };
    assert!(line("example2").contains(" container 3 "), "{roles}");
    assert!(line("example").contains(" imds 1 "), "{roles}");
    let status = stdout(&fintors_cli(&d, &["status"]));
    assert!(
        status.contains("container endpoint: http://127.0.0.1:"),
        "{status}"
    );
}

#[test]
fn every_door_on_a_role_shares_one_assume_role() {
    let venv = require_venv!();
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(sts.url.clone()).start();
    let python = venv.join("bin/python");
    let creds = "import boto3\nprint(boto3.Session().get_credentials().get_frozen_credentials().access_key)";
    let keys: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| ClientRun::new(&d, Via::Exec("example2")).run(&python, &["-c", creds]))
            })
            .chain((0..2).map(|_| {
                s.spawn(|| ClientRun::new(&d, Via::Pinned("example2")).run(&python, &["-c", creds]))
            }))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let imds = d.get("/roles/example2/credentials").json();
    let keys: BTreeSet<String> = keys
        .into_iter()
        .chain([imds["AccessKeyId"].as_str().unwrap().to_owned()])
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one set of credentials for the role: {keys:?}"
    );
    let assumed_example2 = sts
        .calls()
        .iter()
        .filter(|c| c.action == "AssumeRole" && c.role_name() == Some("example2"))
        .count();
    assert_eq!(assumed_example2, 1);
}

/// What a long job inside `fintors exec` sees across refreshes, with sessions of 130 s (refreshed
/// 65 s in): it asks for credentials twice a second for 80 s, as an SDK close to expiry does.
#[test]
fn a_long_job_inside_exec_keeps_valid_credentials_across_refreshes_one_sts_call_each() {
    let venv = require_venv!();
    let n = std::sync::atomic::AtomicU32::new(0);
    let sts = FakeSts::start(move |call: &StsCall| {
        let n = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        issued(call, n, chrono::Duration::seconds(130))
    });
    let d = Daemon::builder(TWO_ROLES).sts(sts.url.clone()).start();
    let job = "import boto3, datetime, time\n\
               c = boto3.Session().get_credentials()\n\
               end = time.time() + 80\n\
               while time.time() < end:\n    \
                   f = c.get_frozen_credentials()\n    \
                   left = (c._expiry_time - datetime.datetime.now(datetime.timezone.utc)).total_seconds()\n    \
                   print(f.access_key, int(left))\n    \
                   time.sleep(0.5)";
    let started = Instant::now();
    let out = ClientRun::new(&d, Via::Exec("example2")).run(&venv.join("bin/python"), &["-c", job]);
    let calls = sts
        .calls()
        .iter()
        .filter(|c| c.action == "AssumeRole" && c.role_name() == Some("example2"))
        .count();
    let seen: Vec<(&str, i64)> = out
        .lines()
        .map(|l| {
            let (key, left) = l.split_once(' ').unwrap();
            (key, left.parse().unwrap())
        })
        .collect();
    let keys: BTreeSet<&str> = seen.iter().map(|(k, _)| *k).collect();
    let least = seen.iter().map(|(_, left)| *left).min().unwrap();
    eprintln!(
        "long job: {} credential reads over {:?}, {} distinct keys, least life left {least} s, \
         {calls} AssumeRole calls for the role",
        seen.len(),
        started.elapsed(),
        keys.len()
    );
    assert!(keys.len() >= 2, "no refresh seen: {keys:?}");
    assert!(
        least >= 55,
        "the job was handed credentials with {least} s left"
    );
    assert!(
        calls <= keys.len() + 1,
        "{calls} AssumeRole calls for {} sessions the job saw",
        keys.len()
    );
}
