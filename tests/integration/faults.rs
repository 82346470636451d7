//! STS misbehaving, seen through the daemon: every kind of failure becomes the EC2 error document
//! with STS's code, at once; cached credentials outlive an outage; nothing expired is ever served;
//! service comes back by itself. The STS side is a scripted fake (or a private moto that the test
//! kills), so the real aws-sdk-sts retry, timeout and parsing code is what gets exercised.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::require_venv;

use crate::support::{
    Daemon, FakeSts, HANG_UP, Moto, Reply, StsCall, fintors_cli, free_port, issued, status_json,
    sts_error,
};

const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

/// One role per kind of failure, plus a healthy one.
const FAULTY_ROLES: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "roles": {
    "healthy": "arn:aws:iam::123456789012:role/healthy",
    "throttled": "arn:aws:iam::123456789012:role/throttled",
    "expired": "arn:aws:iam::123456789012:role/expired",
    "denied": "arn:aws:iam::123456789012:role/denied",
    "garbled": "arn:aws:iam::123456789012:role/garbled",
    "hangup": "arn:aws:iam::123456789012:role/hangup",
    "slow": "arn:aws:iam::123456789012:role/slow"
  },
  "default_role": "healthy"
}"#;

/// The credential document for `alias`, timed.
fn fetch(d: &Daemon, alias: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let r = d.get(&format!("{CREDS}{alias}"));
    (r, started.elapsed())
}

/// Asserts a reply carries credentials that are not about to expire, and returns the key id.
fn valid_credentials(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["Code"], "Success", "{}", r.body);
    let expiration: DateTime<Utc> = doc["Expiration"].as_str().unwrap().parse().unwrap();
    // fintors never hands out less than a minute; allow a second for the timestamp's rounding.
    let left = expiration - Utc::now();
    assert!(
        left >= chrono::Duration::seconds(59),
        "served credentials with {left} left: {}",
        r.body
    );
    doc["AccessKeyId"].as_str().unwrap().to_owned()
}

fn error_code(r: &Reply) -> String {
    assert_eq!(
        r.status, 200,
        "EC2 reports role errors in a 200 document: {r:?}"
    );
    let doc = r.json();
    assert!(doc.get("AccessKeyId").is_none(), "{}", r.body);
    doc["Code"].as_str().unwrap().to_owned()
}

fn last_error_code(status: &serde_json::Value, alias: &str) -> Option<String> {
    let role = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in {status}"));
    role["last_error"]["code"].as_str().map(str::to_owned)
}

fn assume_calls(sts: &FakeSts, role: &str) -> usize {
    sts.calls()
        .iter()
        .filter(|c| c.action == "AssumeRole" && c.role_name() == Some(role))
        .count()
}

/// A fake STS that fails each role of [`FAULTY_ROLES`] its own way.
fn faulty_sts() -> FakeSts {
    let n = AtomicU32::new(0);
    FakeSts::start(move |call: &StsCall| match call.role_name() {
        Some("throttled") => sts_error(400, "Throttling", "Rate exceeded"),
        Some("expired") => sts_error(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ),
        Some("denied") => sts_error(403, "AccessDenied", "not authorized to assume denied"),
        Some("garbled") => (200, "<html><body>captive portal</body></html>".to_owned()),
        Some("hangup") => (HANG_UP, String::new()),
        Some("slow") => {
            std::thread::sleep(Duration::from_secs(8));
            issued(
                call,
                n.fetch_add(1, Ordering::SeqCst),
                chrono::Duration::hours(1),
            )
        }
        _ => issued(
            call,
            n.fetch_add(1, Ordering::SeqCst),
            chrono::Duration::hours(1),
        ),
    })
}

#[test]
fn every_sts_failure_is_the_ec2_error_document_with_its_code() {
    let sts = faulty_sts();
    let d = Daemon::builder(FAULTY_ROLES).sts(&sts.url).start();
    for (alias, code) in [
        ("throttled", "Throttling"),
        ("expired", "ExpiredToken"),
        ("denied", "AccessDenied"),
        ("garbled", "MalformedResponse"),
        ("hangup", "StsUnreachable"),
    ] {
        let (r, took) = fetch(&d, alias);
        assert_eq!(error_code(&r), code, "{alias}: {}", r.body);
        // The SDK's own retries included, the answer comes within the daemon's wait bound.
        assert!(took < Duration::from_secs(6), "{alias} took {took:?}");
    }
    // The healthy role is served throughout.
    valid_credentials(&fetch(&d, "healthy").0);
}

#[test]
fn status_and_log_name_the_last_sts_error_of_each_role() {
    let sts = faulty_sts();
    let d = Daemon::builder(FAULTY_ROLES).sts(&sts.url).start();
    for alias in ["throttled", "expired", "garbled"] {
        fetch(&d, alias);
    }
    let status = status_json(&d);
    assert_eq!(last_error_code(&status, "throttled").unwrap(), "Throttling");
    assert_eq!(last_error_code(&status, "expired").unwrap(), "ExpiredToken");
    assert_eq!(
        last_error_code(&status, "garbled").unwrap(),
        "MalformedResponse"
    );
    assert_eq!(last_error_code(&status, "healthy"), None);
    let log = d.settled_log();
    for (arn, code) in [
        ("role/throttled", "Throttling"),
        ("role/expired", "ExpiredToken"),
        ("role/garbled", "MalformedResponse"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(arn) && l.contains(code)),
            "no log line for {arn} with {code}:\n{log}"
        );
    }
}

#[test]
fn a_slow_sts_holds_no_request_and_its_late_answer_serves_the_retry() {
    let sts = faulty_sts();
    let d = Daemon::builder(FAULTY_ROLES).sts(&sts.url).start();
    // An SDK client gives up after a second; its AssumeRole must go on regardless.
    let mut impatient = std::net::TcpStream::connect(d.addr).unwrap();
    impatient
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    std::io::Write::write_all(
        &mut impatient,
        format!(
            "GET {CREDS}slow HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            d.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        std::io::Read::read(&mut impatient, &mut buf).is_err(),
        "STS is 8 s slow; nothing can have been answered within 1 s"
    );
    drop(impatient);
    // A patient client is answered within the wait bound, with an error that says what is going on.
    let (r, took) = fetch(&d, "slow");
    assert_eq!(error_code(&r), "StsTimeout", "{}", r.body);
    assert!(took < Duration::from_secs(6), "waited {took:?}");
    // Other roles are not held up meanwhile.
    valid_credentials(&fetch(&d, "healthy").0);
    // Once STS has answered the first call, the next request is served from it.
    std::thread::sleep(Duration::from_secs(4));
    let (r, took) = fetch(&d, "slow");
    valid_credentials(&r);
    assert!(
        took < Duration::from_secs(1),
        "served from the cache, yet took {took:?}"
    );
    assert_eq!(
        assume_calls(&sts, "slow"),
        1,
        "one AssumeRole for all three requests"
    );
}

/// Lifetime of the credentials in the outage test: refresh at half life (65 s), served until a
/// minute before expiry (70 s), which leaves a window to observe a failing refresh.
const SHORT_LIFETIME: i64 = 130;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Issuing,
    /// Slower than an SDK's IMDS timeout, then refusing.
    SlowAndThrottled,
}

#[test]
fn cached_credentials_outlive_an_outage_then_the_error_document_then_recovery() {
    let mode = Arc::new(Mutex::new(Mode::Issuing));
    let sts = {
        let mode = mode.clone();
        let n = AtomicU32::new(0);
        FakeSts::start(move |call| {
            let current = *mode.lock().unwrap();
            match current {
                Mode::Issuing => issued(
                    call,
                    n.fetch_add(1, Ordering::SeqCst),
                    chrono::Duration::seconds(SHORT_LIFETIME),
                ),
                Mode::SlowAndThrottled => {
                    std::thread::sleep(Duration::from_millis(1500));
                    sts_error(400, "Throttling", "Rate exceeded")
                }
            }
        })
    };
    let d = Daemon::builder(FAULTY_ROLES).sts(&sts.url).start();
    let started = Instant::now();
    let first = valid_credentials(&fetch(&d, "healthy").0);
    *mode.lock().unwrap() = Mode::SlowAndThrottled;
    let calls_before = assume_calls(&sts, "healthy");

    // Past the refresh point, before the last minute: STS is failing, the cache answers at once.
    std::thread::sleep(Duration::from_secs(66).saturating_sub(started.elapsed()));
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(68) {
        let (r, took) = fetch(&d, "healthy");
        assert_eq!(valid_credentials(&r), first);
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a cached answer waited {slowest:?}"
    );
    assert!(
        assume_calls(&sts, "healthy") > calls_before,
        "the refresh should have been attempted"
    );

    // Within the last minute: never the old credentials; the error document, without a hang.
    std::thread::sleep(Duration::from_secs(71).saturating_sub(started.elapsed()));
    let mut codes = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(80) {
        let (r, took) = fetch(&d, "healthy");
        codes.insert(error_code(&r));
        assert!(
            took < Duration::from_secs(6),
            "an error answer took {took:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        codes.iter().all(|c| c == "Throttling" || c == "StsTimeout"),
        "{codes:?}"
    );
    assert!(codes.contains("Throttling"), "{codes:?}");
    // Bounded retries: backoff, not one call per request.
    let attempts = assume_calls(&sts, "healthy") - calls_before;
    assert!(
        attempts <= 15,
        "{attempts} AssumeRole calls in 14 s of outage"
    );
    assert_eq!(
        last_error_code(&status_json(&d), "healthy").unwrap(),
        "Throttling"
    );

    // STS recovers: the daemon serves again by itself, without a restart or a role switch.
    *mode.lock().unwrap() = Mode::Issuing;
    let recovered = Instant::now();
    loop {
        let r = fetch(&d, "healthy").0;
        if r.json()["Code"] == "Success" {
            assert_ne!(valid_credentials(&r), first);
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(90),
            "still failing {:?} after STS recovered: {}",
            recovered.elapsed(),
            r.body
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn attempts_of(status: &serde_json::Value, alias: &str) -> u64 {
    status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in {status}"))["attempts"]
        .as_u64()
        .unwrap()
}

/// A laptop offline long enough for the backoff to grow past what anyone would wait: the first
/// request once STS answers again is not turned away until the backoff ends.
#[test]
fn a_role_nothing_answered_is_served_within_seconds_of_sts_answering_again() {
    let answering = Arc::new(AtomicBool::new(false));
    let sts = {
        let answering = answering.clone();
        let n = AtomicU32::new(0);
        FakeSts::start(move |call| {
            if answering.load(Ordering::SeqCst) {
                issued(
                    call,
                    n.fetch_add(1, Ordering::SeqCst),
                    chrono::Duration::hours(1),
                )
            } else {
                (HANG_UP, String::new())
            }
        })
    };
    let d = Daemon::builder(crate::support::TWO_ROLES)
        .sts(&sts.url)
        .start();

    // An SDK polling four times a second through the outage, until the fourth attempt has just
    // failed: its backoff is 8 to 16 s.
    let offline = Instant::now();
    let mut requests = 0;
    let mut attempts = 0;
    while attempts < 4 {
        let code = error_code(&fetch(&d, "example2").0);
        assert!(code == "StsUnreachable" || code == "StsTimeout", "{code}");
        requests += 1;
        attempts = attempts_of(&status_json(&d), "example2");
        assert!(
            offline.elapsed() < Duration::from_secs(60),
            "{attempts} attempts in a minute"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let limit = offline.elapsed().as_secs() / 3 + 2;
    assert!(
        attempts <= limit,
        "{attempts} attempts for {requests} requests in {:?}: at most one every 3 s",
        offline.elapsed()
    );

    // STS answers again.
    answering.store(true, Ordering::SeqCst);
    let back = Instant::now();
    loop {
        let r = fetch(&d, "example2").0;
        if r.json()["Code"] == "Success" {
            valid_credentials(&r);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "still {} {:?} after STS answered again",
            r.json()["Code"],
            back.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_emulator_killed_and_restarted_is_used_again_without_a_restart() {
    require_venv!();
    let port = free_port();
    let moto = Moto::start_on(port);
    let d = Daemon::builder(FAULTY_ROLES).sts(&moto.url).start();
    let healthy = valid_credentials(&fetch(&d, "healthy").0);

    moto.kill();
    // Cached credentials are still served; a role not yet cached fails at once, saying why.
    assert_eq!(valid_credentials(&fetch(&d, "healthy").0), healthy);
    let (r, took) = fetch(&d, "denied");
    assert_eq!(error_code(&r), "StsUnreachable", "{}", r.body);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(
        last_error_code(&status_json(&d), "denied").unwrap(),
        "StsUnreachable"
    );

    let _moto = Moto::start_on(port);
    let use_it = fintors_cli(&d, &["use", "denied"]);
    assert!(use_it.status.success(), "{use_it:?}\n{}", d.stderr());
    valid_credentials(&fetch(&d, "denied").0);
}

#[test]
fn a_rotated_credentials_file_signs_the_next_sts_call() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(FAULTY_ROLES).sts(&sts.url).start();
    let before = sts.calls();
    let first_key = &before.last().unwrap().access_key;
    std::fs::write(
        d.dir.path().join("creds"),
        "[identity]\naws_access_key_id = AKIAROTATEDKEY000001\n\
         aws_secret_access_key = rotatedsecret\n",
    )
    .unwrap();
    valid_credentials(&fetch(&d, "throttled").0);
    let after = sts.calls();
    let call = after.last().unwrap();
    assert_eq!(call.role_name(), Some("throttled"));
    assert_ne!(&call.access_key, first_key);
    assert_eq!(call.access_key, "AKIAROTATEDKEY000001");
}
