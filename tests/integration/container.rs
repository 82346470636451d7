//! The container credentials endpoint (`--ecs-port`): token-guarded, in the container provider's
//! format, and used for real by botocore and aws-sdk-rust through `fintors env --ecs`.

use crate::require_venv;
use crate::support::clients::{ClientRun, Via};
use crate::support::{Daemon, TWO_ROLES, container_token, fintors_cli, http, rust_whoami};

const EXAMPLE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example/finto-example";

/// What `fintors env --ecs` prints.
fn env_ecs(d: &Daemon) -> String {
    let o = fintors_cli(d, &["env", "--ecs"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The container endpoint's address and the active role's token, as `fintors env --ecs`
/// reports them.
pub(crate) fn endpoint(d: &Daemon) -> (std::net::SocketAddr, String) {
    let out = env_ecs(d);
    let value = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
            .trim_matches('\'')
            .to_owned()
    };
    let url = value("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let addr = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/creds"))
        .unwrap()
        .parse()
        .unwrap();
    (addr, value("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
}

#[test]
fn env_ecs_gives_the_active_roles_token_by_value_and_unsets_any_token_file() {
    require_venv!();
    let d = Daemon::start();
    let (addr, token) = endpoint(&d);
    assert!(addr.ip().is_loopback());
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(token, container_token(&d, None));
    assert!(
        env_ecs(&d)
            .lines()
            .any(|l| l == "unset AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    );
    use std::os::unix::fs::PermissionsExt;
    let key = d.state_dir().join("container.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn credentials_need_the_token() {
    require_venv!();
    let d = Daemon::start();
    let (addr, token) = endpoint(&d);
    assert_eq!(http(addr, "GET", "/creds", &[], "").status, 401);
    assert_eq!(
        http(addr, "GET", "/creds", &[("Authorization", "wrong")], "").status,
        403
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(
        http(addr, "GET", "/creds", &[("Authorization", &bearer)], "").status,
        403
    );
    let r = http(addr, "GET", "/creds", &[("Authorization", &token)], "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let doc = r.json();
    for field in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert!(doc[field].is_string(), "{field} missing: {doc}");
    }
    assert_eq!(doc["AccountId"], "123456789012");
    assert_eq!(doc["RoleArn"], "arn:aws:iam::123456789012:role/example");
    chrono::DateTime::parse_from_rfc3339(doc["Expiration"].as_str().unwrap()).unwrap();
}

#[test]
fn a_named_role_and_unknown_roles() {
    require_venv!();
    let d = Daemon::start();
    let (addr, _) = endpoint(&d);
    let token = container_token(&d, Some("example2"));
    let r = http(
        addr,
        "GET",
        "/creds/example2",
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(
        r.json()["RoleArn"],
        "arn:aws:iam::123456789012:role/path/example2"
    );
    let nope = container_token(&d, Some("nope"));
    assert_eq!(
        http(addr, "GET", "/creds/nope", &[("Authorization", &nope)], "").status,
        404
    );
}

/// Pinning is a boundary: what a command or container is handed for one role opens nothing
/// else, neither another role nor the active one.
#[test]
fn a_token_for_one_role_is_refused_for_another_and_for_the_active_role() {
    require_venv!();
    let d = Daemon::start();
    let (addr, active) = endpoint(&d);
    let example2 = container_token(&d, Some("example2"));
    let get = |path: &str, token: &str| http(addr, "GET", path, &[("Authorization", token)], "");
    assert_eq!(get("/creds/example2", &example2).status, 200);
    assert_eq!(get("/creds/example", &example2).status, 403);
    assert_eq!(get("/creds", &example2).status, 403);
    assert_eq!(get("/creds/example", &active).status, 403);
    assert_eq!(get("/creds/example2", &active).status, 403);
    assert_eq!(get("/creds", &active).status, 200);
    d.log_with("with a wrong token for role example");
}

/// Someone guessing tokens is one warning per ten seconds, with the count, not a line each.
#[test]
fn a_flood_of_wrong_tokens_is_one_warning() {
    require_venv!();
    let d = Daemon::start();
    let (addr, _) = endpoint(&d);
    for n in 0..200 {
        let guess = format!("guess-{n}");
        let r = http(addr, "GET", "/creds", &[("Authorization", &guess)], "");
        assert_eq!(r.status, 403);
    }
    let log = d.settled_log();
    assert_eq!(log.matches("with a wrong token").count(), 1, "{log}");
}

#[test]
fn doubled_slashes_read_as_one() {
    require_venv!();
    let d = Daemon::start();
    let (addr, _) = endpoint(&d);
    let token = container_token(&d, Some("example2"));
    let r = http(
        addr,
        "GET",
        "//creds//example2",
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["RoleArn"],
        "arn:aws:iam::123456789012:role/path/example2"
    );
}

#[test]
fn foreign_host_header_is_refused() {
    require_venv!();
    let d = Daemon::start();
    let (addr, token) = endpoint(&d);
    let r = http(
        addr,
        "GET",
        "/creds",
        &[("Authorization", &token), ("Host", "evil.example")],
        "",
    );
    assert_eq!(r.status, 403);
}

#[test]
fn env_ecs_with_the_endpoint_off_says_how_to_turn_it_on() {
    require_venv!();
    let d = Daemon::builder(TWO_ROLES).ecs_port("off").start();
    let o = fintors_cli(&d, &["env", "--ecs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--ecs-port"));
    // IMDS is still served: plain `env` points there (and, in this shell with no region,
    // gives botocore the instance's).
    let o = fintors_cli(&d, &["env"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!(
            "export AWS_EC2_METADATA_SERVICE_ENDPOINT='{}/'\nexport AWS_DEFAULT_REGION='us-east-1'\n",
            d.url()
        )
    );
}

/// Runs `program` with only the container variables (as `fintors env --ecs` prints them) as a
/// credential source.
fn container_client(d: &Daemon, program: &std::path::Path, args: &[&str]) -> String {
    ClientRun::new(d, Via::Container).run(program, args)
}

#[test]
fn botocore_uses_the_container_endpoint() {
    let venv = require_venv!();
    let d = Daemon::start();
    let script = "import boto3\ns = boto3.Session()\nassert s.get_credentials().method == 'container-role', \
                  s.get_credentials().method\nprint(s.client('sts').get_caller_identity()['Arn'])";
    assert_eq!(
        container_client(&d, &venv.join("bin/python"), &["-c", script]),
        EXAMPLE_ARN
    );
}

#[test]
fn aws_sdk_rust_uses_the_container_endpoint() {
    require_venv!();
    let d = Daemon::start();
    assert_eq!(
        container_client(&d, &rust_whoami(), &["--container"]),
        EXAMPLE_ARN
    );
}
