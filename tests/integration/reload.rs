//! Reloading the configuration while running: SIGHUP and `fintors reload`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::require_venv;
use crate::support::{Daemon, TWO_ROLES, fintors_cli};

/// TWO_ROLES with example2 removed, example3 added, example unchanged.
const NEXT: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "roles": {
    "example": "arn:aws:iam::123456789012:role/example",
    "example3": "arn:aws:iam::123456789012:role/example3"
  },
  "default_role": "example3"
}"#;

fn write_config(d: &Daemon, text: &str) {
    let creds = d.dir.path().join("creds");
    std::fs::write(
        d.dir.path().join("fintorc.json"),
        text.replace("CREDS", creds.to_str().unwrap()),
    )
    .unwrap();
}

fn wait_for(d: &Daemon, what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}:\n{}", d.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_swaps_roles_keeping_the_active_one_and_its_cache() {
    require_venv!();
    let d = Daemon::start();
    let before = d
        .get("/latest/meta-data/iam/security-credentials/example")
        .json();
    write_config(&d, NEXT);
    crate::support::send_signal(d.pid() as i32, libc::SIGHUP);
    wait_for(&d, "roles not reloaded", || {
        d.get("/roles").json() == json!({"roles": ["example", "example3"]})
    });
    // The active role still exists, so it stays active (the new default does not take over)...
    assert_eq!(
        d.get("/roles?status=active").json(),
        json!({"roles": ["example"]})
    );
    // ...and its cached credentials were kept: no new AssumeRole.
    let after = d
        .get("/latest/meta-data/iam/security-credentials/example")
        .json();
    assert_eq!(before["AccessKeyId"], after["AccessKeyId"]);
    assert_eq!(d.get("/roles/example2").status, 404);
}

#[test]
fn reload_command_reports_changes_and_falls_back_to_the_new_default() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(d.switch("example2").status, 200);
    write_config(&d, NEXT);
    let o = fintors_cli(&d, &["reload"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("added example3; removed example2; changed none; active role: example3"),
        "{out}"
    );
    assert_eq!(
        d.get("/roles?status=active").json(),
        json!({"roles": ["example3"]})
    );
}

#[test]
fn an_invalid_config_is_rejected_and_the_running_one_kept() {
    require_venv!();
    let d = Daemon::start();
    write_config(&d, "{\"roles\": {\"x\": \"not an arn\"}}");
    let o = fintors_cli(&d, &["reload"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("the running one is kept") && err.contains("role \"x\", field \"arn\""),
        "{err}"
    );
    crate::support::send_signal(d.pid() as i32, libc::SIGHUP);
    wait_for(&d, "SIGHUP rejection not logged", || {
        d.stderr().matches("reload rejected").count() >= 2
    });
    assert_eq!(
        d.get("/roles").json(),
        json!({"roles": ["example", "example2"]})
    );
}

fn reload(d: &Daemon) -> String {
    let o = fintors_cli(d, &["reload"]);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn settings_that_need_a_restart_are_named() {
    require_venv!();
    let d = Daemon::start();
    write_config(
        &d,
        &TWO_ROLES.replace("\"default_role\"", "\"admin_port\": 1, \"default_role\""),
    );
    let out = reload(&d);
    assert!(
        out.contains("restart fintors to apply: admin_port"),
        "{out}"
    );
}

/// The test daemon is started with `--port`, which wins over the file's `port`: a restart
/// would listen where it listens now.
#[test]
fn a_port_the_command_line_sets_is_not_changed_by_the_files() {
    require_venv!();
    let d = Daemon::start();
    write_config(
        &d,
        &TWO_ROLES.replace("\"default_role\"", "\"port\": 1, \"default_role\""),
    );
    let out = reload(&d);
    assert!(!out.contains("restart"), "{out}");
}

#[test]
fn a_setting_changed_then_changed_back_needs_no_restart() {
    require_venv!();
    let d = Daemon::start();
    write_config(
        &d,
        &TWO_ROLES.replace("\"default_role\"", "\"admin_port\": 1, \"default_role\""),
    );
    assert!(reload(&d).contains("restart fintors to apply: admin_port"));
    write_config(&d, TWO_ROLES);
    let out = reload(&d);
    assert!(!out.contains("restart"), "{out}");
}
