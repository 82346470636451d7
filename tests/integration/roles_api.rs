//! finto's role API: listing, inspecting and switching roles.

use serde_json::json;

use crate::require_venv;
use crate::support::{Daemon, FakeSts, TWO_ROLES, http};

#[test]
fn lists_roles_sorted_as_json() {
    require_venv!();
    let d = Daemon::start();
    let r = d.get("/roles");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json(), json!({"roles": ["example", "example2"]}));
}

#[test]
fn status_active_lists_only_the_active_role() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(
        d.get("/roles?status=active").json(),
        json!({"roles": ["example"]})
    );
    assert_eq!(d.get("/roles?status=bogus").status, 400);
}

#[test]
fn describes_a_role() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(
        d.get("/roles/example2").json(),
        json!({"kind": "assume", "arn": "arn:aws:iam::123456789012:role/path/example2",
               "session_name": "me"})
    );
    assert_eq!(
        d.get("/roles/example").json()["session_name"],
        "finto-example"
    );
    let r = d.get("/roles/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "unknown role: nope"}));
}

#[test]
fn serves_a_roles_credentials() {
    require_venv!();
    let d = Daemon::start();
    let r = d.get("/roles/example2/credentials");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json()["Code"], "Success");
    assert_eq!(d.get("/roles/nope/credentials").status, 404);
}

#[test]
fn role_credentials_need_a_session_token_when_imdsv2_is_required() {
    require_venv!();
    // A server-side request forgery can make a GET to 169.254.169.254; under
    // --imdsv2-required it must not find credentials on the role API either.
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    assert_eq!(d.get("/roles/example/credentials").status, 401);
    let token = d.token();
    let r = http(
        d.addr,
        "GET",
        "/roles/example/credentials",
        &[("X-aws-ec2-metadata-token", &token)],
        "",
    );
    assert_eq!(r.json()["Code"], "Success");
    let creds = crate::support::fintors_cli(&d, &["creds", "example", "--format", "json"]);
    assert!(creds.status.success(), "{creds:?}");
}

/// What a forged GET could read besides credentials: role ARNs, account ids, the status.
#[test]
fn the_whole_api_needs_a_session_token_when_imdsv2_is_required() {
    require_venv!();
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    let token = d.token();
    for path in [
        "/roles",
        "/roles?status=active",
        "/roles/example",
        "/fintors/status",
    ] {
        assert_eq!(d.get(path).status, 401, "{path}");
        let r = http(
            d.addr,
            "GET",
            path,
            &[("X-aws-ec2-metadata-token", &token)],
            "",
        );
        assert_eq!(r.status, 200, "{path}");
    }
    for args in [
        &["status"][..],
        &["roles"],
        &["use", "example2"],
        &["current"],
    ] {
        let o = crate::support::fintors_cli(&d, args);
        assert!(o.status.success(), "{args:?}: {o:?}");
    }
}

#[test]
fn switching_changes_what_imds_serves() {
    require_venv!();
    let d = Daemon::start();
    let r = d.switch("example2");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"active_role": "example2"}));
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/").body,
        "example2"
    );
    assert_eq!(
        d.get("/roles?status=active").json(),
        json!({"roles": ["example2"]})
    );
}

#[test]
fn switch_to_unknown_role_is_404_and_keeps_the_active_role() {
    require_venv!();
    let d = Daemon::start();
    let r = d.switch("nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "unknown role: nope"}));
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/").body,
        "example"
    );
}

#[test]
fn switch_with_malformed_body_is_400_with_the_reason() {
    require_venv!();
    let d = Daemon::start();
    for body in [
        "not json",
        "{}",
        r#"{"alias": 3}"#,
        r#"{"alias":"example","x":1}"#,
    ] {
        let r = http(
            d.addr,
            "PUT",
            "/roles",
            &[("Content-Type", "application/json")],
            body,
        );
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("invalid request body"),
            "{r:?}"
        );
    }
}

#[test]
fn switch_refuses_non_json_content_types() {
    require_venv!();
    let d = Daemon::start();
    let body = r#"{"alias":"example2"}"#;
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data"),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("Content-Type", c)).into_iter().collect();
        let r = http(d.addr, "PUT", "/roles", &headers, body);
        assert_eq!(r.status, 415, "{ct:?}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    let r = http(
        d.addr,
        "PUT",
        "/roles",
        &[("Content-Type", "application/json; charset=utf-8")],
        body,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn switch_refuses_oversized_bodies() {
    require_venv!();
    let d = Daemon::start();
    let body = format!(r#"{{"alias":"example2","pad":"{}"}}"#, "x".repeat(8192));
    let r = http(
        d.addr,
        "PUT",
        "/roles",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(r.status, 413);
}

#[test]
fn switch_to_a_role_sts_refuses_is_502_and_keeps_the_active_role() {
    let sts = FakeSts::access_denied();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let r = d.switch("example2");
    assert_eq!(r.status, 502);
    let body = r.json();
    assert_eq!(body["code"], "AccessDenied");
    assert!(body["message"].as_str().unwrap().contains("not authorized"));
    assert_eq!(
        d.get("/roles?status=active").json(),
        json!({"roles": ["example"]})
    );
}

#[test]
fn no_cors_headers_are_ever_sent() {
    require_venv!();
    let d = Daemon::start();
    let preflight = http(
        d.addr,
        "OPTIONS",
        "/roles",
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        "",
    );
    assert!(
        preflight
            .headers
            .iter()
            .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control"))
    );
    assert_ne!(preflight.status, 200);
}
