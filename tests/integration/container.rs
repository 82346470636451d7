//! The container credentials endpoint (`--ecs-port`): token-guarded, in the container provider's
//! format, and used for real by botocore and aws-sdk-rust through `fintors env --ecs`.

use crate::require_venv;
use crate::support::clients::{ClientRun, Token, Via};
use crate::support::{Daemon, TWO_ROLES, fintors_cli, http, rust_whoami};

const EXAMPLE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example/finto-example";

/// The container endpoint's address and token, as `fintors env --ecs` reports them.
pub(crate) fn endpoint(d: &Daemon) -> (std::net::SocketAddr, String, String) {
    let o = fintors_cli(d, &["env", "--ecs"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let value = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
            .trim_matches('\'')
            .to_owned()
    };
    let url = value("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let token_file = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    let addr = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/creds"))
        .unwrap()
        .parse()
        .unwrap();
    let token = std::fs::read_to_string(&token_file).unwrap();
    (addr, token, token_file)
}

#[test]
fn env_ecs_points_at_a_private_token_file_without_newline() {
    require_venv!();
    let d = Daemon::start();
    let (addr, token, token_file) = endpoint(&d);
    assert!(addr.ip().is_loopback());
    assert_eq!(token.len(), 64);
    assert!(!token.ends_with('\n'));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn credentials_need_the_token() {
    require_venv!();
    let d = Daemon::start();
    let (addr, token, _) = endpoint(&d);
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
    let (addr, token, _) = endpoint(&d);
    let auth = [("Authorization", token.as_str())];
    let r = http(addr, "GET", "/creds/example2", &auth, "");
    assert_eq!(
        r.json()["RoleArn"],
        "arn:aws:iam::123456789012:role/path/example2"
    );
    assert_eq!(http(addr, "GET", "/creds/nope", &auth, "").status, 404);
}

#[test]
fn doubled_slashes_read_as_one() {
    require_venv!();
    let d = Daemon::start();
    let (addr, token, _) = endpoint(&d);
    let auth = [("Authorization", token.as_str())];
    let r = http(addr, "GET", "//creds//example2", &auth, "");
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
    let (addr, token, _) = endpoint(&d);
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
    let o = fintors_cli(&d, &["env"]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("export AWS_EC2_METADATA_SERVICE_ENDPOINT='{}/'\n", d.url())
    );
}

/// Runs `program` with only the container variables (as `fintors env --ecs` prints them) as a
/// credential source.
fn container_client(d: &Daemon, program: &std::path::Path, args: &[&str]) -> String {
    ClientRun::new(d, Via::Container(Token::Both)).run(program, args)
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
