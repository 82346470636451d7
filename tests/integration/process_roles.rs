//! Credential commands as roles: any tool that prints `credential_process` JSON is served
//! through every door, run once per refresh however many clients ask, and can sign for a role
//! chained to it. The command is a script that counts its runs and prints a session whose key
//! says which run made it; STS is the fake that answers `GetCallerIdentity` with the key that
//! signed it, so a real client's answer says whose credentials it was given.

use crate::support::clients::{ClientRun, Via};
use crate::support::identity::{chaining_sts, identities_seen, identity_sts, signed_by};
use crate::support::{Daemon, DaemonBuilder, FakeSts, StsCall, rust_whoami};

const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

/// Prints a one-hour session keyed by its run (`ASIAPROCESS0001`, ...) after `$DELAY` seconds,
/// counting runs in `runs` beside it.
const COMMAND: &str = r#"#!/bin/sh
here=$(dirname "$0")
n=$(( $(cat "$here/runs" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$here/runs"
sleep "${DELAY:-0}"
printf '{"Version": 1, "AccessKeyId": "ASIAPROCESS%04d", "SecretAccessKey": "process-secret",
  "SessionToken": "process-token", "Expiration": "%s"}' "$n" \
  "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
"#;

/// A daemon whose role `okta`, the default, runs [`COMMAND`] (with no delay) and whose
/// `deploy` is assumed via `okta`, with STS at `sts`.
fn daemon(sts: &FakeSts) -> Daemon {
    builder(sts, "0", r#", "default_role": "okta""#).start()
}

/// [`daemon`]'s, with `delay` seconds of work for the command and `default` appended to the
/// config (a default role is fetched at start).
fn builder(sts: &FakeSts, delay: &str, default: &str) -> DaemonBuilder {
    let config = format!(
        r#"{{
      "roles": {{
        "okta": {{ "credential_process": "DELAY={delay} sh DIR/okta.sh" }},
        "deploy": {{ "arn": "arn:aws:iam::111122223333:role/deploy", "via": "okta" }}
      }}{default}
    }}"#
    );
    Daemon::builder(&config)
        .sts(&sts.url)
        .file("okta.sh", COMMAND)
}

fn runs(d: &Daemon) -> String {
    std::fs::read_to_string(d.dir.path().join("runs"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Sixteen clients at once for a role nobody has fetched: one run of the command, the same
/// session for all.
#[test]
fn a_credential_command_runs_once_however_many_clients_ask() {
    let sts = identity_sts();
    let d = builder(&sts, "0.5", "").start();
    let keys: Vec<String> = std::thread::scope(|scope| {
        let asks: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| d.get(&format!("{CREDS}okta")).json()["AccessKeyId"].to_string())
            })
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    });
    assert!(keys.iter().all(|k| k == "\"ASIAPROCESS0001\""), "{keys:?}");
    assert_eq!(runs(&d), "1");
}

/// Every real client, given IMDS as `fintors env` prints it, signs with what the command
/// printed; no STS call but theirs.
#[test]
fn every_real_client_signs_with_the_credential_commands_session() {
    let sts = identity_sts();
    let d = daemon(&sts);
    for (client, arn) in identities_seen(ClientRun::new(&d, Via::Imds), &sts) {
        assert_eq!(arn, signed_by("ASIAPROCESS0001"), "{client}");
    }
    assert_eq!(runs(&d), "1", "one run serves them all");
    assert!(
        sts.calls().iter().all(|c| c.action == "GetCallerIdentity"),
        "no AssumeRole"
    );
}

/// `fintors exec` hands a command the role's session over the container endpoint.
#[test]
fn exec_pins_a_command_to_a_credential_command_role() {
    let sts = identity_sts();
    let d = daemon(&sts);
    let run = ClientRun::new(&d, Via::Exec("okta"));
    assert_eq!(
        run.run(&rust_whoami(), &["--container", "--access-key"]),
        "ASIAPROCESS0001"
    );
}

/// A role via the command's role: one run, one AssumeRole signed with what it printed.
#[test]
fn a_role_via_a_credential_command_is_assumed_with_its_session() {
    let sts = chaining_sts();
    let d = daemon(&sts);
    assert_eq!(d.switch("deploy").status, 200);
    let doc = d.get(&format!("{CREDS}deploy")).json();
    assert_eq!(doc["AccessKeyId"], "ASIAROLE00000001", "{doc}");
    let assumed: Vec<StsCall> = sts
        .calls()
        .into_iter()
        .filter(|c| c.action == "AssumeRole")
        .collect();
    assert_eq!(assumed.len(), 1);
    assert_eq!(assumed[0].access_key, "ASIAPROCESS0001");
    assert_eq!(runs(&d), "1");
}

/// A command that fails is one line with its exit code and what it said last, as the
/// error document's code and message.
#[test]
fn a_failing_credential_command_is_one_line_with_what_it_said() {
    let sts = identity_sts();
    let d = Daemon::builder(
        r#"{"roles": {"saml": {"credential_process":
            "echo 'Error: your session has expired, run saml2aws login' >&2; exit 1"}}}"#,
    )
    .sts(&sts.url)
    .start();
    let doc = d.get(&format!("{CREDS}saml")).json();
    assert_eq!(doc["Code"], "CredentialProcessFailed", "{doc}");
    assert_eq!(
        doc["Message"],
        "the credential command exited with 1: Error: your session has expired, run saml2aws login"
    );
}

/// A command slower than a client waits (5 s) still signs for the role chained to it: the
/// chained role's fetch waits for it to the end and records no failure of its own.
#[test]
fn a_role_via_a_slow_credential_command_is_served_once_the_command_is_done() {
    let sts = chaining_sts();
    let d = builder(&sts, "6", "").start();
    let path = format!("{CREDS}deploy");
    let first = d.get(&path).json();
    assert_ne!(
        first["Code"], "Success",
        "the client gave up first: {first}"
    );
    let started = std::time::Instant::now();
    loop {
        let doc = d.get(&path).json();
        if doc["Code"] == "Success" {
            assert_eq!(doc["AccessKeyId"], "ASIAROLE00000001");
            break;
        }
        assert!(started.elapsed().as_secs() < 15, "never served: {doc}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(runs(&d), "1");
    let status = d.get("/fintors/status").json();
    let deploy = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alias"] == "deploy")
        .unwrap();
    assert_eq!(deploy["last_error"], serde_json::Value::Null, "{deploy}");
}

/// What a pinned process is not given, a credential command is not either.
#[test]
fn a_credential_command_is_not_given_the_admin_token() {
    let sts = identity_sts();
    let d = Daemon::builder(
        r#"{"roles": {"tool": {"credential_process":
            "printf '{\"Version\": 1, \"AccessKeyId\": \"K-%s\", \"SecretAccessKey\": \"s\", \"SessionToken\": \"t\"}' \"${FINTORS_ADMIN_TOKEN:-none}\""}},
           "admin_port": 0}"#,
    )
    .sts(&sts.url)
    .env("FINTORS_ADMIN_TOKEN", "admin-secret-123456789012345678901234")
    .start();
    let doc = d.get(&format!("{CREDS}tool")).json();
    assert_eq!(doc["AccessKeyId"], "K-none", "{doc}");
}
