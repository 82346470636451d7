//! The admin API (`--admin-port`): health, status, and base credentials supplied at run time.

use std::time::{Duration, Instant};

use crate::require_venv;
use crate::support::{Daemon, TWO_ROLES, http, run_client};

/// Base credentials from a file that does not exist: nothing works until they are bootstrapped.
const NO_BASE_CREDENTIALS: &str = r#"{
  "credentials": { "file": "DIR/no-such-credentials", "profile": "identity" },
  "roles": { "example": "arn:aws:iam::123456789012:role/example" },
  "default_role": "example"
}"#;

const BOOTSTRAP_SECRET: &str = "bootstrapSECRETbootstrapSECRETbootstrap1";

fn bootstrap_body() -> String {
    format!(
        r#"{{"AccessKeyId": "AKIABOOTSTRAPEXAMPLE", "SecretAccessKey": "{BOOTSTRAP_SECRET}", "Token": ""}}"#
    )
}

fn with_admin(config: &str) -> Daemon {
    Daemon::builder(config).arg("--admin-port").arg("0").start()
}

pub(crate) fn admin(d: &Daemon) -> std::net::SocketAddr {
    d.logged_addr("admin API on")
}

pub(crate) fn post_json(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> crate::support::Reply {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    http(addr, "POST", path, &headers, body)
}

#[test]
fn health_and_status_answer() {
    require_venv!();
    let d = with_admin(TWO_ROLES);
    let a = admin(&d);
    let r = http(a, "GET", "/healthz", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(http(a, "GET", "/status", &[], "").body, "true");
}

#[test]
fn bootstrapped_credentials_bring_pending_roles_up_at_once() {
    let venv = require_venv!();
    let d = Daemon::builder(NO_BASE_CREDENTIALS)
        .arg("--admin-port")
        .arg("0")
        .arg("-vv")
        .start();
    let a = admin(&d);
    assert_eq!(http(a, "GET", "/status", &[], "").body, "false");
    let failing = d
        .get("/latest/meta-data/iam/security-credentials/example")
        .json();
    assert_ne!(failing["Code"], "Success");

    let r = post_json(a, "/bootstrap/creds", &bootstrap_body(), &[]);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.body.is_empty(), "write-only: nothing is echoed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(a, "GET", "/status", &[], "").body != "true" {
        assert!(
            Instant::now() < deadline,
            "role not assumed after bootstrap:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = "import boto3\nprint(boto3.Session().client('sts').get_caller_identity()['Arn'])";
    assert_eq!(
        run_client(&d, &venv.join("bin/python"), &["-c", script]),
        "arn:aws:sts::123456789012:assumed-role/example/finto-example"
    );
    assert!(
        !d.stderr().contains(BOOTSTRAP_SECRET),
        "bootstrap secret in the debug log"
    );
}

#[test]
fn bootstrap_refuses_bad_requests_without_quoting_them() {
    require_venv!();
    let d = with_admin(TWO_ROLES);
    let a = admin(&d);
    let r = http(
        a,
        "POST",
        "/bootstrap/creds",
        &[("Content-Type", "text/plain")],
        &bootstrap_body(),
    );
    assert_eq!(r.status, 415);
    let typo = format!(r#"{{"AccessKeyId": "AKIA", "SecretAccesKey": "{BOOTSTRAP_SECRET}"}}"#);
    let wrong_type = format!(r#"{{"AccessKeyId": "{BOOTSTRAP_SECRET}", "SecretAccessKey": 5}}"#);
    for body in [
        typo.as_str(),
        wrong_type.as_str(),
        "{",
        r#"{"AccessKeyId": "", "SecretAccessKey": "x"}"#,
    ] {
        let r = post_json(a, "/bootstrap/creds", body, &[]);
        assert_eq!(r.status, 400, "{body}");
        assert!(!r.body.contains(BOOTSTRAP_SECRET), "{}", r.body);
    }
}

#[test]
fn admin_token_is_required_when_configured() {
    require_venv!();
    let d = Daemon::builder(TWO_ROLES)
        .arg("--admin-port")
        .arg("0")
        .env("FINTORS_ADMIN_TOKEN", "s3cret-admin")
        .start();
    let a = admin(&d);
    assert_eq!(http(a, "GET", "/status", &[], "").status, 401);
    assert_eq!(
        http(
            a,
            "GET",
            "/status",
            &[("Authorization", "Bearer wrong")],
            ""
        )
        .status,
        401
    );
    assert_eq!(
        http(
            a,
            "GET",
            "/status",
            &[("Authorization", "s3cret-admin")],
            ""
        )
        .status,
        401
    );
    let ok = http(
        a,
        "GET",
        "/status",
        &[("Authorization", "Bearer s3cret-admin")],
        "",
    );
    assert_eq!((ok.status, ok.body.as_str()), (200, "true"));
}

#[test]
fn admin_refuses_foreign_host_headers() {
    require_venv!();
    let d = with_admin(TWO_ROLES);
    let r = http(admin(&d), "GET", "/status", &[("Host", "evil.example")], "");
    assert_eq!(r.status, 403);
}
