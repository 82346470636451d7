//! DNS rebinding, browsers and proxies: requests that do not name the metadata service, or that
//! a web page made, are refused on every listener.

use crate::require_venv;
use crate::support::{Daemon, TWO_ROLES, http, raw_request};

/// Where, what path, and the headers it needs (the container endpoint's token).
type Probe = (std::net::SocketAddr, String, Vec<(String, String)>);

/// A daemon with every listener, and for each a request it answers: IMDS's cached credentials
/// (the fast path) and its role API (routed), the container endpoint, the admin API.
fn every_listener() -> (Daemon, Vec<Probe>) {
    let d = Daemon::builder(TWO_ROLES)
        .arg("--admin-port")
        .arg("0")
        .start();
    let (ecs, _) = crate::container::endpoint(&d);
    let token = crate::support::container_token(&d, Some("example"));
    let admin = d.logged_addr("admin API on");
    let creds = "/latest/meta-data/iam/security-credentials/example".to_owned();
    assert_eq!(d.get(&creds).status, 200, "cached before the probes");
    let probes = vec![
        (d.addr, creds, vec![]),
        (d.addr, "/roles".to_owned(), vec![]),
        (
            ecs,
            "/creds/example".to_owned(),
            vec![("Authorization".to_owned(), token)],
        ),
        (admin, "/healthz".to_owned(), vec![]),
    ];
    (d, probes)
}

#[test]
fn what_a_browser_sends_is_refused_on_every_listener_and_what_sdks_send_is_not() {
    require_venv!();
    let (_d, probes) = every_listener();
    for (addr, path, auth) in &probes {
        let headers = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
            auth.iter()
                .cloned()
                .chain(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())))
                .collect()
        };
        let send = |extra: &[(&'static str, &'static str)]| {
            let headers = headers(extra);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            http(*addr, "GET", path, &headers, "")
        };
        assert_eq!(send(&[]).status, 200, "{addr}{path}");
        assert_eq!(
            send(&[("Sec-Fetch-Site", "none")]).status,
            200,
            "{addr}{path}"
        );
        for browser in [
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ] {
            let r = send(&[browser]);
            assert_eq!(r.status, 403, "{addr}{path} {browser:?}");
            assert!(!r.body.contains("SecretAccessKey"));
        }
    }
}

#[test]
fn two_host_headers_or_a_foreign_absolute_target_are_refused_on_every_listener() {
    require_venv!();
    let (_d, probes) = every_listener();
    for (addr, path, auth) in &probes {
        let auth: String = auth.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let send = |target: &str, hosts: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\n{hosts}{auth}Connection: close\r\n\r\n");
            raw_request(*addr, raw.as_bytes())
        };
        let twice = send(path, &format!("Host: {addr}\r\nHost: evil.example\r\n"));
        assert_eq!(twice.status, 400, "{addr}{path}");
        let foreign = send(
            &format!("http://evil.example{path}"),
            &format!("Host: {addr}\r\n"),
        );
        assert_eq!(foreign.status, 403, "{addr}{path}");
        assert!(!foreign.body.contains("SecretAccessKey"));
        let own = send(&format!("http://{addr}{path}"), "Host: evil.example\r\n");
        assert_eq!(own.status, 200, "{addr}{path}");
    }
}

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
fn a_request_without_host_is_400() {
    require_venv!();
    let d = Daemon::start();
    for request in [
        &b"GET /roles HTTP/1.0\r\n\r\n"[..],
        b"GET /latest/meta-data/iam/security-credentials/example HTTP/1.1\r\n\r\n",
    ] {
        let r = crate::support::raw_request(d.addr, request);
        assert_eq!(r.status, 400);
    }
}

/// Two namespaces joined by a veth pair: the daemon's host and a neighbour on its LAN.
fn lan() -> Option<(crate::network::Netns, crate::network::Netns, String)> {
    let daemon_host = crate::network::Netns::create()?;
    let neighbour = crate::network::Netns::create()?;
    let n = std::process::id() % 100_000;
    let (a, b) = (format!("fta{n}"), format!("ftb{n}"));
    let ip = |args: &[&str]| {
        assert!(
            std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap()
                .success(),
            "ip {args:?}"
        );
    };
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    ip(&["link", "set", &a, "netns", &daemon_host.0]);
    ip(&["link", "set", &b, "netns", &neighbour.0]);
    daemon_host.ok(&["ip", "addr", "add", "10.213.0.1/24", "dev", &a]);
    daemon_host.ok(&["ip", "link", "set", &a, "up"]);
    neighbour.ok(&["ip", "addr", "add", "10.213.0.2/24", "dev", &b]);
    neighbour.ok(&["ip", "link", "set", &b, "up"]);
    Some((daemon_host, neighbour, "10.213.0.1".to_owned()))
}

fn status_from(neighbour: &crate::network::Netns, url: &str) -> String {
    let mut argv = crate::network::CURL_STATUS.to_vec();
    argv.push(url);
    neighbour.ok(&argv)
}

#[test]
fn a_neighbour_on_the_lan_is_refused_unless_remote_peers_are_allowed() {
    let Some((daemon_host, neighbour, ip)) = lan() else {
        return;
    };
    let closed = Daemon::builder(crate::support::TWO_ROLES)
        .netns(&daemon_host.0)
        .addr(&ip)
        .port(16925)
        .sts("http://127.0.0.1:1")
        .start();
    for path in [
        "/roles",
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data/iam/security-credentials/example",
    ] {
        assert_eq!(
            status_from(&neighbour, &format!("http://{ip}:16925{path}")),
            "403",
            "{path}"
        );
    }
    drop(closed);
    let _open = Daemon::builder(crate::support::TWO_ROLES)
        .netns(&daemon_host.0)
        .addr(&ip)
        .port(16926)
        .arg("--allow-remote")
        .sts("http://127.0.0.1:1")
        .start();
    assert_eq!(
        status_from(&neighbour, &format!("http://{ip}:16926/roles")),
        "200"
    );
}

#[test]
fn no_state_changing_route_accepts_what_a_form_can_send() {
    require_venv!();
    let d = Daemon::builder(crate::support::TWO_ROLES)
        .arg("--admin-port")
        .arg("0")
        .start();
    let admin = d.logged_addr("admin API on");
    let routes = [
        (d.addr, "PUT", "/roles", r#"{"alias":"example2"}"#),
        (d.addr, "PUT", "/mfa", r#"{"code":"123456"}"#),
        (d.addr, "POST", "/fintors/reload", "{}"),
        (d.addr, "POST", "/fintors/retry", "{}"),
        (d.addr, "POST", "/fintors/sync", "{}"),
        (
            admin,
            "POST",
            "/bootstrap/creds",
            r#"{"AccessKeyId":"A","SecretAccessKey":"B"}"#,
        ),
    ];
    for (addr, method, path, body) in routes {
        for content_type in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
        ] {
            let r = http(addr, method, path, &[("Content-Type", content_type)], body);
            assert_eq!(r.status, 415, "{method} {path} accepted {content_type}");
            assert!(
                r.headers
                    .iter()
                    .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control"))
            );
        }
    }
    assert_eq!(
        d.get("/roles?status=active").body,
        r#"{"roles":["example"]}"#
    );
}

/// A page (or a scanner) can make thousands of refused requests a second: the log says so in
/// one line per cause per 10 s, with a count, not a line each.
#[test]
fn a_flood_of_refused_requests_is_one_log_line_per_cause_with_a_count() {
    require_venv!();
    let d = Daemon::start();
    for _ in 0..300 {
        let r = http(
            d.addr,
            "GET",
            "/roles",
            &[("Origin", "http://evil.example")],
            "",
        );
        assert_eq!(r.status, 403);
        let r = http(d.addr, "GET", "/roles", &[("Host", "evil.example")], "");
        assert_eq!(r.status, 403);
    }
    let log = d.settled_log();
    let lines = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(lines("refused a request from a web browser"), 1, "{log}");
    assert_eq!(lines("for an unknown Host"), 1, "{log}");
}
