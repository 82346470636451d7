//! Unmodified AWS clients get their credentials from fintors and use them against STS: the
//! emulator answers GetCallerIdentity with the active role's assumed-role ARN, so each test proves
//! the whole chain, and that switching roles is followed by the very next call.

use crate::require_venv;
use crate::support::{Daemon, run_client, rust_whoami};

const EXAMPLE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example/finto-example";
const EXAMPLE2_ARN: &str = "arn:aws:sts::123456789012:assumed-role/example2/me";

const BOTO3_WHOAMI: &str = "import boto3
s = boto3.Session()
c = s.get_credentials()
assert c is not None, 'botocore found no credentials'
assert c.method == 'iam-role', c.method
print(s.client('sts').get_caller_identity()['Arn'])";

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
    let d = Daemon::builder(crate::support::TWO_ROLES)
        .arg("--imdsv2-required")
        .start();
    assert_eq!(run_client(&d, &rust_whoami(), &[]), EXAMPLE_ARN);
}

#[test]
fn botocore_follows_the_active_role() {
    let venv = require_venv!();
    let d = Daemon::start();
    let python = venv.join("bin/python");
    assert_eq!(run_client(&d, &python, &["-c", BOTO3_WHOAMI]), EXAMPLE_ARN);
    assert_eq!(d.switch("example2").status, 200);
    assert_eq!(run_client(&d, &python, &["-c", BOTO3_WHOAMI]), EXAMPLE2_ARN);
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

#[test]
fn clients_use_imdsv2_tokens() {
    let venv = require_venv!();
    let d = Daemon::builder(crate::support::TWO_ROLES)
        .arg("--imdsv2-required")
        .start();
    let python = venv.join("bin/python");
    assert_eq!(run_client(&d, &python, &["-c", BOTO3_WHOAMI]), EXAMPLE_ARN);
}
