//! Unmodified AWS clients get their credentials from fintors and use them against STS: the
//! emulator answers GetCallerIdentity with the assumed-role ARN, so each test proves the whole
//! chain, and that switching roles is followed by the very next call. Every client is pointed
//! at fintors exactly the way `fintors env` (or `fintors env --ecs`) prints it.
//!
//! The matrix (README, "Tested clients"): botocore, AWS CLI v1 and v2, aws-sdk-rust,
//! aws-sdk-go-v2 and JS v3; over IMDSv2, IMDSv1 (a proxy refuses the token route, as a proxy
//! adding X-Forwarded-For makes EC2 do), the container endpoint with each form of its token,
//! and the region from the instance metadata.

use std::path::Path;

use crate::support::clients::{ClientRun, Via, aws_cli_v2, go_whoami, js_whoami};
use crate::support::{Daemon, FakeServer, TWO_ROLES, http, run_client, rust_whoami};
use crate::{require_client, require_venv};

const EXAMPLE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example/finto-example";
const EXAMPLE2_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example2/me";

const BOTO3_WHOAMI: &str = "import boto3
s = boto3.Session()
c = s.get_credentials()
assert c is not None, 'botocore found no credentials'
assert c.method == 'iam-role', c.method
print(s.client('sts').get_caller_identity()['Arn'])";

const BOTO3_CONTAINER_WHOAMI: &str = "import boto3
s = boto3.Session()
assert s.get_credentials().method == 'container-role', s.get_credentials().method
print(s.client('sts').get_caller_identity()['Arn'])";

/// The AWS CLI's way to STS: v2.9 knows no AWS_ENDPOINT_URL_STS.
fn cli_v2_args(moto: &str) -> Vec<String> {
    [
        "sts",
        "get-caller-identity",
        "--endpoint-url",
        moto,
        "--query",
        "Arn",
        "--output",
        "text",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs the client with `via` before and after a switch to example2: it must follow.
fn follows_a_switch(d: &Daemon, via: Via, program: &Path, args: &[&str]) {
    let run = ClientRun::new(d, via);
    assert_eq!(run.run(program, args), EXAMPLE_ARN, "{via:?}");
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(
        run.run(program, args),
        EXAMPLE2_ARN,
        "{via:?} after the switch"
    );
}

/// A daemon with an access log (which records every request path) and a distinctive instance
/// region, for the clients that look their region up in the metadata.
fn logging_in_region(region: &str) -> (Daemon, std::path::PathBuf) {
    let config = TWO_ROLES.replacen(
        "\"default_role\"",
        &format!("\"instance\": {{\"region\": \"{region}\"}},\n  \"default_role\""),
        1,
    );
    let builder = Daemon::builder(&config);
    let log = builder.path("access.log");
    let d = builder.arg("--log").arg(log.to_str().unwrap()).start();
    (d, log)
}

fn logged(log: &Path) -> String {
    crate::support::access_log(log)
}

/// An IMDS in front of fintors that refuses the token route (403, as EC2 answers a proxied
/// token request) and passes every other request on: clients that fall back speak IMDSv1.
fn imdsv1_only(d: &Daemon) -> FakeServer {
    let addr = d.addr;
    FakeServer::start(move |r| {
        if r.path() == "/latest/api/token" {
            return (403, "text/plain", String::new());
        }
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("host") && !n.eq_ignore_ascii_case("connection")
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http(addr, &r.method, &r.target, &headers, &r.body);
        (reply.status, "text/plain", reply.body)
    })
}

/// Runs the client through [`imdsv1_only`]; proves it got credentials with no session token.
fn works_over_imdsv1(d: &Daemon, program: &Path, args: &[&str]) {
    let proxy = imdsv1_only(d);
    let run = ClientRun::new(d, Via::Imds).imds_endpoint(&format!("{}/", proxy.url));
    assert_eq!(run.run(program, args), EXAMPLE_ARN);
    let credential_gets: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path().contains("/iam/security-credentials"))
        .collect();
    assert!(
        !credential_gets.is_empty(),
        "no credential request went through the proxy"
    );
    assert!(
        credential_gets
            .iter()
            .all(|r| r.header("x-aws-ec2-metadata-token").is_none()),
        "a token was sent"
    );
}

// --- botocore (boto3), AWS CLI v1 -------------------------------------------------------------

#[test]
fn botocore_follows_the_active_role() {
    let venv = require_venv!();
    let d = Daemon::start();
    let python = venv.join("bin/python");
    assert_eq!(run_client(&d, &python, &["-c", BOTO3_WHOAMI]), EXAMPLE_ARN);
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(run_client(&d, &python, &["-c", BOTO3_WHOAMI]), EXAMPLE2_ARN);
}

/// botocore reads no region from IMDS: in a shell with none, the one `fintors env` exports is
/// the instance's (here the configured one).
#[test]
fn botocore_gets_the_instance_region_from_what_fintors_env_prints() {
    let venv = require_venv!();
    let (d, _) = logging_in_region("eu-central-1");
    let run = ClientRun::new(&d, Via::Imds).with_the_printed_region();
    let python = venv.join("bin/python");
    let script = "import boto3\ns = boto3.session.Session()\n\
                  print(s.region_name, s.client('sts').get_caller_identity()['Arn'])";
    assert_eq!(
        run.run(&python, &["-c", script]),
        format!("eu-central-1 {EXAMPLE_ARN}")
    );
}

#[test]
fn clients_use_imdsv2_tokens() {
    let venv = require_venv!();
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    let python = venv.join("bin/python");
    assert_eq!(run_client(&d, &python, &["-c", BOTO3_WHOAMI]), EXAMPLE_ARN);
}

#[test]
fn botocore_falls_back_to_imdsv1() {
    let venv = require_venv!();
    let d = Daemon::start();
    works_over_imdsv1(&d, &venv.join("bin/python"), &["-c", BOTO3_WHOAMI]);
}

#[test]
fn botocore_uses_the_container_endpoint() {
    let venv = require_venv!();
    let python = venv.join("bin/python");
    let d = Daemon::start();
    follows_a_switch(&d, Via::Container, &python, &["-c", BOTO3_CONTAINER_WHOAMI]);
}

#[test]
fn aws_cli_follows_the_active_role() {
    let venv = require_venv!();
    let d = Daemon::start();
    let aws = venv.join("bin/aws");
    let args = [
        "sts",
        "get-caller-identity",
        "--query",
        "Arn",
        "--output",
        "text",
    ];
    assert_eq!(run_client(&d, &aws, &args), EXAMPLE_ARN);
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(run_client(&d, &aws, &args), EXAMPLE2_ARN);
}

// --- AWS CLI v2 (Debian's awscli) ---------------------------------------------------------------

#[test]
fn aws_cli_v2_follows_the_active_role_with_the_region_from_the_instance_metadata() {
    let aws = require_client!(aws_cli_v2());
    require_venv!();
    let (d, _) = logging_in_region("eu-central-1");
    let run = ClientRun::new(&d, Via::Imds).without_region();
    let args = cli_v2_args(&crate::support::moto());
    assert_eq!(run.run(&aws, &strs(&args)), EXAMPLE_ARN);
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(run.run(&aws, &strs(&args)), EXAMPLE2_ARN);
    let configured = run.run(&aws, &["configure", "list"]);
    let region = configured
        .lines()
        .find(|l| l.trim_start().starts_with("region"))
        .unwrap_or_default();
    assert!(
        region.contains("eu-central-1") && region.contains("imds"),
        "{configured}"
    );
}

#[test]
fn aws_cli_v2_works_when_imdsv2_is_required() {
    let aws = require_client!(aws_cli_v2());
    require_venv!();
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    let run = ClientRun::new(&d, Via::Imds).without_region();
    let args = cli_v2_args(&crate::support::moto());
    assert_eq!(run.run(&aws, &strs(&args)), EXAMPLE_ARN);
}

#[test]
fn aws_cli_v2_falls_back_to_imdsv1() {
    let aws = require_client!(aws_cli_v2());
    require_venv!();
    let d = Daemon::start();
    works_over_imdsv1(&d, &aws, &strs(&cli_v2_args(&crate::support::moto())));
}

// --- aws-sdk-rust (examples/whoami.rs) --------------------------------------------------------

#[test]
fn aws_sdk_rust_imds_provider_follows_the_active_role() {
    require_venv!();
    let d = Daemon::start();
    let whoami = rust_whoami();
    assert_eq!(run_client(&d, &whoami, &[]), EXAMPLE_ARN);
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(run_client(&d, &whoami, &[]), EXAMPLE2_ARN);
}

#[test]
fn aws_sdk_rust_works_when_imdsv2_is_required() {
    require_venv!();
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    assert_eq!(run_client(&d, &rust_whoami(), &[]), EXAMPLE_ARN);
}

#[test]
fn aws_sdk_rust_uses_the_container_endpoint() {
    require_venv!();
    let d = Daemon::start();
    follows_a_switch(&d, Via::Container, &rust_whoami(), &["--container"]);
}

// --- aws-sdk-go-v2 (Debian's golang-github-aws-aws-sdk-go-v2-dev) -------------------------------

#[test]
fn go_v2_ec2_role_provider_follows_the_active_role() {
    let go = require_client!(go_whoami());
    require_venv!();
    let d = Daemon::start();
    follows_a_switch(&d, Via::Imds, &go, &["imds"]);
}

#[test]
fn go_v2_works_when_imdsv2_is_required() {
    let go = require_client!(go_whoami());
    require_venv!();
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    assert_eq!(
        ClientRun::new(&d, Via::Imds).run(&go, &["imds"]),
        EXAMPLE_ARN
    );
}

#[test]
fn go_v2_falls_back_to_imdsv1() {
    let go = require_client!(go_whoami());
    require_venv!();
    let d = Daemon::start();
    works_over_imdsv1(&d, &go, &["imds"]);
}

#[test]
fn go_v2_takes_its_region_from_the_identity_document_when_asked() {
    let go = require_client!(go_whoami());
    require_venv!();
    let (d, log) = logging_in_region("eu-central-1");
    let run = ClientRun::new(&d, Via::Imds).without_region();
    assert_eq!(run.run(&go, &["--region-from-imds", "imds"]), EXAMPLE_ARN);
    assert!(
        logged(&log).contains("GET /latest/dynamic/instance-identity/document "),
        "{}",
        logged(&log)
    );
}

/// aws-sdk-go-v2 1.17 reads the token from AWS_CONTAINER_AUTHORIZATION_TOKEN only (no `_FILE`;
/// config/resolve_credentials.go), which is why `fintors env` gives the token by value.
#[test]
fn go_v2_container_provider_follows_the_active_role() {
    let go = require_client!(go_whoami());
    require_venv!();
    let d = Daemon::start();
    follows_a_switch(&d, Via::Container, &go, &["container"]);
}

// --- JS v3 (@aws-sdk/* from the npm registry) -------------------------------------------------

#[test]
fn js_v3_from_instance_metadata_follows_the_active_role() {
    let (node, script) = require_client!(js_whoami());
    require_venv!();
    let d = Daemon::start();
    follows_a_switch(&d, Via::Imds, &node, &[script.to_str().unwrap(), "imds"]);
}

#[test]
fn js_v3_from_instance_metadata_works_when_imdsv2_is_required() {
    let (node, script) = require_client!(js_whoami());
    require_venv!();
    let d = Daemon::builder(TWO_ROLES).arg("--imdsv2-required").start();
    let run = ClientRun::new(&d, Via::Imds);
    assert_eq!(
        run.run(&node, &[script.to_str().unwrap(), "imds"]),
        EXAMPLE_ARN
    );
}

#[test]
fn js_v3_falls_back_to_imdsv1() {
    let (node, script) = require_client!(js_whoami());
    require_venv!();
    let d = Daemon::start();
    works_over_imdsv1(&d, &node, &[script.to_str().unwrap(), "imds"]);
}

#[test]
fn js_v3_default_chain_takes_credentials_and_region_from_the_instance_metadata() {
    let (node, script) = require_client!(js_whoami());
    require_venv!();
    let (d, log) = logging_in_region("eu-central-1");
    let run = ClientRun::new(&d, Via::Imds).without_region();
    let args = [script.to_str().unwrap(), "default"];
    assert_eq!(run.run(&node, &args), EXAMPLE_ARN);
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(run.run(&node, &args), EXAMPLE2_ARN);
    assert!(
        logged(&log).contains("GET /latest/meta-data/placement/region "),
        "{}",
        logged(&log)
    );
}

/// `fromContainerMetadata` reads AWS_CONTAINER_AUTHORIZATION_TOKEN only.
#[test]
fn js_v3_from_container_metadata_follows_the_active_role() {
    let (node, script) = require_client!(js_whoami());
    require_venv!();
    let d = Daemon::start();
    let args = [script.to_str().unwrap(), "container"];
    follows_a_switch(&d, Via::Container, &node, &args);
}

#[test]
fn js_v3_from_http_uses_the_container_endpoint() {
    let (node, script) = require_client!(js_whoami());
    require_venv!();
    let args = [script.to_str().unwrap(), "http"];
    let d = Daemon::start();
    follows_a_switch(&d, Via::Container, &node, &args);
}
