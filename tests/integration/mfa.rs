//! MFA in a background daemon: requests answer at once with what to do, one code starts a
//! GetSessionToken session, and roles are then assumed with that session (not the base keys).

use std::time::{Duration, Instant};

use crate::support::{BASE_ACCESS_KEY, Daemon, FakeSts, fintors_cli};

const MFA_CONFIG: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity",
                   "mfa_serial": "arn:aws:iam::123456789012:mfa/me", "mfa_session_seconds": 3600 },
  "roles": {
    "example": "arn:aws:iam::123456789012:role/example",
    "other": "arn:aws:iam::123456789012:role/other"
  },
  "default_role": "example"
}"#;

const CREDS: &str = "/latest/meta-data/iam/security-credentials/example";

#[test]
fn without_a_code_requests_answer_at_once_with_instructions() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(MFA_CONFIG).sts(&sts.url).start();
    let started = Instant::now();
    let doc = d.get(CREDS).json();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a request waited for a human"
    );
    assert_eq!(doc["Code"], "MfaRequired");
    assert!(
        doc["Message"]
            .as_str()
            .unwrap()
            .contains("fintors mfa CODE"),
        "{doc}"
    );
    assert!(
        sts.calls().is_empty(),
        "no STS call can succeed without a code: {:?}",
        sts.calls()
    );
    let status = String::from_utf8(fintors_cli(&d, &["status"]).stdout).unwrap();
    assert!(
        status.contains("MFA arn:aws:iam::123456789012:mfa/me: no session"),
        "{status}"
    );
}

#[test]
fn one_code_starts_a_session_that_assumes_every_role() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(MFA_CONFIG).sts(&sts.url).start();
    let o = fintors_cli(&d, &["mfa", "864209"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with("MFA session for arn:aws:iam::123456789012:mfa/me until ")
    );

    // The pending default role is assumed at once, in the background.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if d.get(CREDS).json()["Code"] == "Success" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "role not assumed after the code: {:?}",
            sts.calls()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/other")
            .json()["Code"],
        "Success"
    );

    let calls = sts.calls();
    let actions: Vec<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        ["GetSessionToken", "AssumeRole", "AssumeRole"],
        "{calls:?}"
    );
    let session = &calls[0];
    assert_eq!(
        session.access_key, BASE_ACCESS_KEY,
        "GetSessionToken uses the base keys"
    );
    assert!(
        session.body.contains("TokenCode=864209"),
        "{}",
        session.body
    );
    assert!(
        session
            .body
            .contains("SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fme"),
        "{}",
        session.body
    );
    assert!(
        session.body.contains("DurationSeconds=3600"),
        "{}",
        session.body
    );
    for assume in &calls[1..] {
        assert_eq!(
            assume.access_key, "ASIASESSION00000000",
            "AssumeRole uses the MFA session"
        );
        assert!(
            !assume.body.contains("TokenCode"),
            "no code per role: {}",
            assume.body
        );
    }
    let status = String::from_utf8(fintors_cli(&d, &["status"]).stdout).unwrap();
    assert!(
        status.contains("MFA arn:aws:iam::123456789012:mfa/me: session valid for"),
        "{status}"
    );
    assert!(
        !d.stderr().contains("864209"),
        "the MFA code reached the log"
    );
}

#[test]
fn once_the_code_is_entered_status_no_longer_shows_mfa_required() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(MFA_CONFIG).sts(&sts.url).start();
    assert_eq!(d.get(CREDS).json()["Code"], "MfaRequired");
    let status = String::from_utf8(fintors_cli(&d, &["status"]).stdout).unwrap();
    assert!(status.contains("MfaRequired"), "{status}");

    let o = fintors_cli(&d, &["mfa", "864209"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
    let status = String::from_utf8(fintors_cli(&d, &["status"]).stdout).unwrap();
    assert!(!status.contains("MfaRequired"), "{status}");
    assert!(!status.contains("last STS error"), "{status}");
}

#[test]
fn malformed_codes_are_refused_without_calling_sts() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(MFA_CONFIG).sts(&sts.url).start();
    for code in ["12345", "1234567", "abcdef"] {
        let o = fintors_cli(&d, &["mfa", code]);
        assert_eq!(o.status.code(), Some(1), "{code}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("exactly 6 digits"));
    }
    assert!(sts.calls().is_empty());
}

#[test]
fn mfa_process_supplies_the_code_in_the_background() {
    let sts = FakeSts::issuing();
    let config = MFA_CONFIG.replace(
        "\"mfa_session_seconds\": 3600",
        "\"mfa_session_seconds\": 3600, \"mfa_process\": \"sleep 0.2; echo 654321\"",
    );
    let d = Daemon::builder(&config).sts(&sts.url).start();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let started = Instant::now();
        let doc = d.get(CREDS).json();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a request waited for mfa_process"
        );
        if doc["Code"] == "Success" {
            break;
        }
        assert_eq!(doc["Code"], "MfaRequired");
        assert!(
            Instant::now() < deadline,
            "mfa_process never produced a session: {:?}",
            sts.calls()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls = sts.calls();
    assert_eq!(calls[0].action, "GetSessionToken");
    assert!(calls[0].body.contains("TokenCode=654321"));
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.action == "GetSessionToken")
            .count(),
        1,
        "{calls:?}"
    );
}
