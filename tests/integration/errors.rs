//! Every error a user can see is one readable line that names the thing: the error document's
//! `Message`, `fintors status`, and the daemon's log at the default level. The SDKs' error chains
//! (with their raw HTTP responses) belong to `-vv` only; one case per class of failure.

use crate::support::sso::{IdentityCenter, ended_login_daemon};
use crate::support::{
    Daemon, FakeSts, HANG_UP, StsCall, fintors_cli, free_port, issued, sts_error,
};

const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

/// What an SDK's error chain looks like when it is dumped with `{:?}`.
const DEBUG_DUMP_MARKS: [&str; 5] = [
    "DispatchFailure",
    "ConnectorError",
    "Response {",
    "ServiceError {",
    "{ source: ",
];

fn assert_readable_line(what: &str, text: &str, max: usize) {
    assert!(!text.trim().is_empty(), "{what}: empty");
    assert!(!text.trim().contains('\n'), "{what}: several lines: {text}");
    assert!(
        text.chars().count() <= max,
        "{what}: {} characters: {text}",
        text.chars().count()
    );
    for mark in DEBUG_DUMP_MARKS {
        assert!(
            !text.contains(mark),
            "{what}: a debug dump ({mark}): {text}"
        );
    }
}

/// The error document's `Message` for `alias`, checked, with its `Code`.
fn error_document(d: &Daemon, alias: &str) -> (String, String) {
    let doc = d.get(&format!("{CREDS}{alias}")).json();
    let code = doc["Code"].as_str().unwrap().to_owned();
    assert_ne!(code, "Success", "{alias}: {doc}");
    let message = doc["Message"].as_str().unwrap().to_owned();
    assert_readable_line(&format!("{alias}'s error document"), &message, 300);
    (code, message)
}

/// `fintors status` and the daemon's log so far: every line readable.
fn status_and_log_are_readable(d: &Daemon) {
    let out = fintors_cli(d, &["status"]);
    assert!(out.status.success(), "{out:?}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        assert_readable_line("fintors status", line, 400);
    }
    for line in d.stderr().lines() {
        assert_readable_line("the log", line, 500);
    }
}

#[test]
fn each_sts_failure_class_is_one_line_in_the_document_the_status_and_the_log() {
    let sts = FakeSts::start(|call: &StsCall| match call.role_name() {
        Some("throttled") => sts_error(400, "Throttling", "Rate exceeded"),
        Some("expired") => sts_error(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ),
        Some("denied") => sts_error(
            403,
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/me is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/denied",
        ),
        Some("portal") => (
            200,
            format!(
                "<html><body>{}</body></html>",
                "captive portal\n".repeat(200)
            ),
        ),
        Some("hangup") => (HANG_UP, String::new()),
        _ => issued(call, 0, chrono::Duration::hours(1)),
    });
    let config = r#"{
      "credentials": { "file": "CREDS", "profile": "identity" },
      "roles": {
        "healthy": "arn:aws:iam::123456789012:role/healthy",
        "throttled": "arn:aws:iam::123456789012:role/throttled",
        "expired": "arn:aws:iam::123456789012:role/expired",
        "denied": "arn:aws:iam::123456789012:role/denied",
        "portal": "arn:aws:iam::123456789012:role/portal",
        "hangup": "arn:aws:iam::123456789012:role/hangup",
        "mfa": { "arn": "arn:aws:iam::123456789012:role/mfa", "mfa_serial": "arn:aws:iam::123456789012:mfa/me" }
      },
      "default_role": "healthy"
    }"#;
    let d = Daemon::builder(config).sts(&sts.url).start();
    for (alias, code) in [
        ("throttled", "Throttling"),
        ("expired", "ExpiredToken"),
        ("denied", "AccessDenied"),
        ("portal", "MalformedResponse"),
        ("hangup", "StsUnreachable"),
        ("mfa", "MfaRequired"),
    ] {
        assert_eq!(error_document(&d, alias).0, code, "{alias}");
    }
    status_and_log_are_readable(&d);
}

#[test]
fn an_unreachable_sts_is_one_line_naming_where_it_was_looked_for() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let d = Daemon::builder(crate::support::TWO_ROLES)
        .sts(&closed)
        .start();
    let (code, message) = error_document(&d, "example");
    assert_eq!(code, "StsUnreachable");
    assert!(
        message.starts_with(&format!("cannot reach STS at {closed}: ")),
        "{message}"
    );
    let status = fintors_cli(&d, &["status"]);
    let line = String::from_utf8_lossy(&status.stdout)
        .lines()
        .find(|l| l.contains(" example "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("; 0 STS calls (") && line.contains(" more that never reached it)"),
        "no call reached STS: {line}"
    );
    status_and_log_are_readable(&d);
}

#[test]
fn a_base_profile_that_is_nowhere_is_one_line_naming_it() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(
        r#"{"credentials": {"profile": "nosuch"},
            "roles": {"example": "arn:aws:iam::123456789012:role/example"},
            "default_role": "example"}"#,
    )
    .sts(&sts.url)
    .start();
    let (code, message) = error_document(&d, "example");
    assert_eq!(code, "NoBaseCredentials");
    assert!(message.contains("profile \"nosuch\""), "{message}");
    status_and_log_are_readable(&d);
    assert_eq!(sts.request_count(), 0, "nothing may reach STS unsigned");
}

#[test]
fn a_misspelt_base_profile_names_the_profile_meant() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(&crate::support::TWO_ROLES.replace("\"identity\"", "\"identiy\""))
        .sts(&sts.url)
        .start();
    let (code, message) = error_document(&d, "example");
    assert_eq!(code, "NoBaseCredentials");
    assert!(
        message.contains("no profile \"identiy\" in ")
            && message.contains("(did you mean \"identity\"?)"),
        "{message}"
    );
    assert!(!message.contains("root profile"), "SDK jargon: {message}");
    status_and_log_are_readable(&d);
    assert_eq!(sts.request_count(), 0);
}

#[test]
fn a_credentials_file_that_is_not_there_is_named() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(&crate::support::TWO_ROLES.replace("\"CREDS\"", "\"DIR/credz\""))
        .sts(&sts.url)
        .start();
    let (code, message) = error_document(&d, "example");
    assert_eq!(code, "NoBaseCredentials");
    let missing = d.dir.path().join("credz");
    assert!(
        message.contains(&format!(
            "the credentials file {} does not exist",
            missing.display()
        )),
        "{message}"
    );
    status_and_log_are_readable(&d);
}

#[test]
fn an_expired_sso_session_is_one_line() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let d = ended_login_daemon(&center, &sts);
    let (code, message) = error_document(&d, "example");
    assert_eq!(code, "SsoLoginRequired");
    assert!(
        message.contains("run `fintors login`") && message.len() <= 200,
        "{message}"
    );
    status_and_log_are_readable(&d);
}
