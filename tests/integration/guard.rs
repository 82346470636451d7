//! DNS rebinding and proxies: requests that do not name the metadata service are refused.

use crate::require_venv;
use crate::support::{Daemon, http};

#[test]
fn foreign_host_header_is_403_on_every_route() {
    require_venv!();
    let d = Daemon::start();
    for (method, path) in [
        ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", "/latest/meta-data/iam/security-credentials/example"),
        ("PUT", "/latest/api/token"),
        ("GET", "/roles"),
        ("PUT", "/roles"),
        ("GET", "/nowhere"),
    ] {
        let r = http(
            d.addr,
            method,
            path,
            &[
                ("Host", "rebind.attacker.example"),
                ("Content-Type", "application/json"),
                ("X-aws-ec2-metadata-token-ttl-seconds", "60"),
            ],
            if method == "PUT" && path == "/roles" {
                r#"{"alias":"example2"}"#
            } else {
                ""
            },
        );
        assert_eq!(r.status, 403, "{method} {path}");
        assert!(!r.body.contains("SecretAccessKey"));
    }
    assert_eq!(
        d.get("/roles?status=active").body,
        r#"{"roles":["example"]}"#
    );
}

#[test]
fn metadata_and_local_host_names_are_accepted() {
    require_venv!();
    let d = Daemon::start();
    let port = d.addr.port();
    for host in [
        "169.254.169.254".to_owned(),
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
    ] {
        let r = http(d.addr, "GET", "/roles", &[("Host", &host)], "");
        assert_eq!(r.status, 200, "{host}");
    }
    let r = http(d.addr, "GET", "/roles", &[("Host", "localhost:1")], "");
    assert_eq!(r.status, 403);
}

#[test]
fn request_without_host_is_403() {
    require_venv!();
    let d = Daemon::start();
    let r = crate::support::raw_request(d.addr, b"GET /roles HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 403);
}
