//! The IMDS contract as real EC2 keeps it, checked on the wire.

use crate::require_venv;
use crate::support::{Daemon, FakeSts, TWO_ROLES, http};

const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/";
const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "X-aws-ec2-metadata-token";

fn put_token(d: &Daemon, headers: &[(&str, &str)]) -> crate::support::Reply {
    http(d.addr, "PUT", "/latest/api/token", headers, "")
}

#[test]
fn token_put_returns_token_with_granted_ttl_header() {
    require_venv!();
    let d = Daemon::start();
    let r = put_token(&d, &[(TTL, "21600")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header(TTL), Some("21600"));
    assert_eq!(r.header("Server"), Some("EC2ws"));
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert!(
        !r.body.is_empty() && !r.body.ends_with('\n'),
        "{:?}",
        r.body
    );
}

#[test]
fn token_put_with_missing_or_bad_ttl_is_400() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(put_token(&d, &[]).status, 400);
    for ttl in ["0", "-1", "21601", "abc", "1.5", ""] {
        assert_eq!(put_token(&d, &[(TTL, ttl)]).status, 400, "ttl {ttl:?}");
    }
    assert_eq!(put_token(&d, &[(TTL, "1")]).status, 200);
}

#[test]
fn proxied_token_request_is_403() {
    require_venv!();
    let d = Daemon::start();
    let r = put_token(&d, &[(TTL, "60"), ("X-Forwarded-For", "10.0.0.1")]);
    assert_eq!(r.status, 403);
}

#[test]
fn get_on_token_path_is_405_with_allow() {
    require_venv!();
    let d = Daemon::start();
    let r = d.get("/latest/api/token");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("OPTIONS, PUT"));
    assert_eq!(r.header("Server"), Some("EC2ws"));
}

#[test]
fn valid_token_is_answered_with_remaining_ttl() {
    require_venv!();
    let d = Daemon::start();
    let r = put_token(&d, &[(TTL, "300")]);
    let r = http(d.addr, "GET", CREDS_PATH, &[(TOKEN, &r.body)], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "example");
    let remaining: u32 = r.header(TTL).unwrap().parse().unwrap();
    assert!((295..=300).contains(&remaining), "{remaining}");
}

#[test]
fn invalid_or_forged_token_is_401() {
    require_venv!();
    let d = Daemon::start();
    let good = d.token();
    let mut forged = good.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for token in ["garbage", &good[..good.len() - 1], &forged] {
        let r = http(d.addr, "GET", CREDS_PATH, &[(TOKEN, token)], "");
        assert_eq!(r.status, 401, "token {token:?}");
        assert_eq!(r.header("Server"), Some("EC2ws"));
    }
}

#[test]
fn imdsv1_is_served_unless_v2_is_required() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(d.get(CREDS_PATH).status, 200);

    let strict = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    assert_eq!(strict.get(CREDS_PATH).status, 401);
    assert_eq!(
        strict
            .get("/latest/meta-data/iam/security-credentials/example")
            .status,
        401
    );
    let token = strict.token();
    let r = http(strict.addr, "GET", CREDS_PATH, &[(TOKEN, &token)], "");
    assert_eq!(r.status, 200);
}

#[test]
fn listing_works_with_and_without_trailing_slash() {
    require_venv!();
    let d = Daemon::start();
    for path in [
        "/latest/meta-data/iam/security-credentials",
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data/iam/security-credentials-extended",
        "/latest/meta-data/iam/security-credentials-extended/",
    ] {
        let r = d.get(path);
        assert_eq!((r.status, r.body.as_str()), (200, "example"), "{path}");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
    }
}

#[test]
fn credential_document_has_ec2_layout_and_fields() {
    require_venv!();
    let d = Daemon::start();
    let r = d.get("/latest/meta-data/iam/security-credentials/example");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("Server"), Some("EC2ws"));
    let lines: Vec<&str> = r.body.lines().collect();
    let keys: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            l.trim_start()
                .split(" : ")
                .next()
                .unwrap()
                .trim_matches('"')
        })
        .collect();
    assert_eq!(
        keys,
        [
            "Code",
            "LastUpdated",
            "Type",
            "AccessKeyId",
            "SecretAccessKey",
            "Token",
            "Expiration"
        ]
    );
    assert!(
        lines[1].starts_with("  \"Code\" : \"Success\""),
        "{}",
        r.body
    );
    assert!(
        r.body.starts_with("{\n") && r.body.ends_with("\n}"),
        "{:?}",
        r.body
    );
    let doc = r.json();
    assert_eq!(doc["Type"], "AWS-HMAC");
    assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    for field in ["LastUpdated", "Expiration"] {
        let t = doc[field].as_str().unwrap();
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ")
            .unwrap_or_else(|e| panic!("{field} {t:?}: {e}"));
    }
}

#[test]
fn extended_document_adds_account_id() {
    require_venv!();
    let d = Daemon::start();
    let plain = d
        .get("/latest/meta-data/iam/security-credentials/example")
        .json();
    let ext = d
        .get("/latest/meta-data/iam/security-credentials-extended/example")
        .json();
    assert_eq!(ext["AccountId"], "123456789012");
    assert_eq!(
        ext["AccessKeyId"], plain["AccessKeyId"],
        "one cached credential"
    );
}

#[test]
fn any_configured_alias_is_served_and_unknown_is_404() {
    require_venv!();
    let d = Daemon::start();
    let r = d.get("/latest/meta-data/iam/security-credentials/example2");
    assert_eq!(r.json()["Code"], "Success");
    let r = d.get("/latest/meta-data/iam/security-credentials/nope");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/html"),
        "EC2's 404 page"
    );
}

#[test]
fn iam_info_describes_the_active_instance_profile() {
    require_venv!();
    let d = Daemon::start();
    let info = d.get("/latest/meta-data/iam/info").json();
    assert_eq!(info["Code"], "Success");
    assert_eq!(
        info["InstanceProfileArn"],
        "arn:aws:iam::123456789012:instance-profile/example"
    );
    assert!(
        info["InstanceProfileId"]
            .as_str()
            .unwrap()
            .starts_with("AIPA")
    );
}

#[test]
fn no_active_role_means_404_for_listing_and_info() {
    require_venv!();
    let d = Daemon::builder(
        r#"{"credentials": {"file": "CREDS", "profile": "identity"},
        "roles": {"example": "arn:aws:iam::123456789012:role/example"}}"#,
    )
    .start();
    assert_eq!(d.get(CREDS_PATH).status, 404);
    assert_eq!(d.get("/latest/meta-data/iam/info").status, 404);
    assert_eq!(
        d.get("/roles?status=active").json()["roles"],
        serde_json::json!([])
    );
}

#[test]
fn unknown_paths_are_404() {
    require_venv!();
    let d = Daemon::start();
    for path in [
        "/2030-01-01/meta-data/",
        "/latest/meta-data/nothing-here",
        "/latest/user-data",
        "/favicon.ico",
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("Server"), Some("EC2ws"));
        assert_eq!(r.header("Content-Type"), Some("text/html"), "{path}");
        assert!(
            r.body.contains("<title>404 - Not Found</title>")
                && r.body.contains("<h1>404 - Not Found</h1>"),
            "{path}: not EC2's page: {}",
            r.body
        );
    }
}

/// A refused session token gets EC2's 401 page: SDKs only look at the status, but readers that
/// log the body show what they would show on an instance.
#[test]
fn a_refused_token_gets_ec2s_401_page() {
    require_venv!();
    let d = Daemon::start();
    let r = crate::support::http(
        d.addr,
        "GET",
        "/latest/meta-data/instance-id",
        &[("X-aws-ec2-metadata-token", "forged")],
        "",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert!(r.body.contains("<h1>401 - Unauthorized</h1>"), "{}", r.body);
}

#[test]
fn sts_refusal_is_served_as_ec2_error_document() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let r = d.get("/latest/meta-data/iam/security-credentials/example");
    assert_eq!(r.status, 200, "EC2 reports role errors in a 200 document");
    let doc = r.json();
    assert_eq!(doc["Code"], "AccessDenied");
    assert!(doc["Message"].as_str().unwrap().contains("not authorized"));
    assert!(doc.get("AccessKeyId").is_none());
    assert!(r.body.contains("\"Code\" : \"AccessDenied\""), "{}", r.body);
}

#[test]
fn failing_sts_is_not_hammered_by_polling_clients() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let before = sts.request_count();
    for _ in 0..20 {
        let r = d.get("/latest/meta-data/iam/security-credentials/example");
        assert_eq!(r.json()["Code"], "AccessDenied");
    }
    // Backoff: polls within the retry window reuse the failure instead of calling STS again.
    assert!(
        sts.request_count() - before <= 2,
        "{} STS calls",
        sts.request_count() - before
    );
}

/// What must be equal between two daemons' answers: status, header names, and the document's
/// fields (the credentials themselves differ).
fn shape(r: &crate::support::Reply) -> (u16, Vec<String>, String) {
    let mut names: Vec<String> = r
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n != "date")
        .collect();
    names.sort();
    let body = match serde_json::from_str::<serde_json::Value>(&r.body) {
        Ok(serde_json::Value::Object(doc)) => doc
            .iter()
            .map(|(k, v)| match k.as_str() {
                "Code" | "Type" => format!("{k}={v}"),
                _ => k.clone(),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => r.body.clone(),
    };
    (r.status, names, body)
}

/// Method, path, headers (`TOKEN` stands for a valid token of the daemon asked).
type Probe = (&'static str, String, Vec<(&'static str, &'static str)>);

#[test]
fn cached_credentials_answer_alike_and_are_all_logged_with_an_access_log() {
    require_venv!();
    // The access log must change no answer, refusals included, and record every request, those
    // the fast path answers too, with none lost at a graceful stop.
    let fast = Daemon::start();
    let builder = Daemon::builder(TWO_ROLES);
    let log = builder.path("access.log");
    let mut routed = builder.arg("--log").arg(log.to_str().unwrap()).start();
    let requests: Vec<Probe> = vec![
        ("GET", format!("{CREDS_PATH}example"), vec![]),
        (
            "GET",
            format!("{CREDS_PATH}example"),
            vec![(TOKEN, "TOKEN")],
        ),
        (
            "GET",
            "/latest/meta-data/iam/security-credentials-extended/example".into(),
            vec![(TOKEN, "TOKEN")],
        ),
        (
            "GET",
            format!("{CREDS_PATH}example"),
            vec![(TOKEN, "forged")],
        ),
        (
            "GET",
            format!("{CREDS_PATH}example"),
            vec![("Host", "evil.example:80")],
        ),
        ("GET", format!("{CREDS_PATH}nosuchrole"), vec![]),
        ("GET", format!("{CREDS_PATH}ex%61mple"), vec![]),
        ("GET", format!("{CREDS_PATH}example/"), vec![]),
        ("POST", format!("{CREDS_PATH}example"), vec![]),
        ("HEAD", format!("{CREDS_PATH}example"), vec![]),
    ];
    for (method, path, headers) in &requests {
        let answers: Vec<_> = [&fast, &routed]
            .iter()
            .map(|d| {
                let token = d.token();
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|&(n, v)| (n, if v == "TOKEN" { token.as_str() } else { v }))
                    .collect();
                shape(&http(d.addr, method, path, &headers, ""))
            })
            .collect();
        assert_eq!(answers[0], answers[1], "{method} {path} {headers:?}");
    }
    assert!(routed.terminate().success());
    let lines = std::fs::read_to_string(&log).unwrap();
    // Each probe, and the token PUT before it.
    assert_eq!(lines.lines().count(), 2 * requests.len(), "{lines}");
    let fast_path_line = format!("\"GET {CREDS_PATH}example HTTP/1.1\" 200 ");
    assert!(lines.contains(&fast_path_line), "{lines}");
    assert!(
        !lines.contains("SecretAccessKey") && !lines.contains("ASIA"),
        "{lines}"
    );
}

#[test]
fn doubled_slashes_answer_like_single_ones_on_the_fast_and_the_routed_path() {
    require_venv!();
    // Java v2 joins an endpoint ending in `/` (as `fintors env` prints it) with `/latest/...`.
    let fast = Daemon::start();
    let builder = Daemon::builder(TWO_ROLES);
    let log = builder.path("access.log");
    let routed = builder.arg("--log").arg(log.to_str().unwrap()).start();
    for d in [&fast, &routed] {
        let token = http(d.addr, "PUT", "//latest/api/token", &[(TTL, "60")], "");
        assert_eq!(token.status, 200, "{token:?}");
        let session = [(TOKEN, token.body.as_str())];
        let listing = http(d.addr, "GET", &format!("/{CREDS_PATH}"), &session, "");
        assert_eq!((listing.status, listing.body.as_str()), (200, "example"));
        for path in [
            format!("/{CREDS_PATH}example"),
            "//latest//meta-data//iam/security-credentials/example".to_owned(),
        ] {
            let doubled = http(d.addr, "GET", &path, &session, "");
            let single = http(d.addr, "GET", &format!("{CREDS_PATH}example"), &session, "");
            assert_eq!(shape(&doubled), shape(&single), "{path}");
            assert_eq!(doubled.json()["Code"], "Success", "{path}");
        }
        let roles = http(d.addr, "GET", "//roles", &[], "");
        assert_eq!(roles.json()["roles"][0], "example", "{roles:?}");
    }
}

/// A reader that takes the profile's name from `iam/info` (`instance-profile/NAME`) and asks
/// for `security-credentials/NAME` gets the active role's credentials, as one that asks the
/// listed alias does: on EC2 the two names agree, and fintors's alias need not be the role's.
#[test]
fn the_name_iam_info_gives_serves_the_active_roles_credentials_too() {
    require_venv!();
    let d = Daemon::builder(
        r#"{ "credentials": { "file": "CREDS", "profile": "identity" },
             "roles": { "dev": "arn:aws:iam::123456789012:role/team/Developer" },
             "default_role": "dev" }"#,
    )
    .start();
    let info = d.get("/latest/meta-data/iam/info").json();
    let profile = info["InstanceProfileArn"].as_str().unwrap();
    let name = profile.rsplit('/').next().unwrap();
    assert_eq!(name, "Developer", "{info}");
    let by_alias = d
        .get("/latest/meta-data/iam/security-credentials/dev")
        .json();
    for path in [
        "/latest/meta-data/iam/security-credentials/Developer",
        "/latest/meta-data/iam/security-credentials-extended/Developer",
    ] {
        let doc = d.get(path).json();
        assert_eq!(doc["Code"], "Success", "{path}: {doc}");
        assert_eq!(doc["AccessKeyId"], by_alias["AccessKeyId"], "{path}");
    }
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/Other")
            .status,
        404
    );
}
