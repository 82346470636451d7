//! `"aws_profiles": true`: roles imported from ~/.aws/config, used for real.

use serde_json::json;

use crate::require_venv;
use crate::support::{Daemon, run_client};

const CONFIG: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "aws_profiles": true,
  "roles": { "example": "arn:aws:iam::123456789012:role/example" },
  "default_role": "dev"
}"#;

const AWS_CONFIG: &str = "\
[profile dev]
role_arn = arn:aws:iam::111111111111:role/dev
source_profile = identity
role_session_name = alice
region = us-east-1

[profile example]
role_arn = arn:aws:iam::111111111111:role/shadowed
source_profile = identity

[profile needs-mfa]
role_arn = arn:aws:iam::111111111111:role/secure
source_profile = identity
mfa_serial = arn:aws:iam::111111111111:mfa/me

[profile plain]
region = eu-west-1
";

fn daemon() -> Daemon {
    let builder = Daemon::builder(CONFIG).file("aws-config", AWS_CONFIG);
    let aws_config = builder.path("aws-config");
    let credentials = builder.path("creds");
    builder
        .env("AWS_CONFIG_FILE", aws_config.to_str().unwrap())
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap())
        .start()
}

#[test]
fn profiles_with_role_arn_are_served_and_explicit_roles_win() {
    require_venv!();
    let d = daemon();
    assert_eq!(
        d.get("/roles").json(),
        json!({"roles": ["dev", "example", "needs-mfa"]})
    );
    assert_eq!(
        d.get("/roles/dev").json(),
        json!({"kind": "assume", "arn": "arn:aws:iam::111111111111:role/dev",
               "session_name": "alice"})
    );
    assert_eq!(
        d.get("/roles/example").json()["arn"],
        "arn:aws:iam::123456789012:role/example"
    );
    let mfa = d
        .get("/latest/meta-data/iam/security-credentials/needs-mfa")
        .json();
    assert_eq!(mfa["Code"], "MfaRequired", "its mfa_serial is honoured");
}

#[test]
fn an_imported_default_role_is_assumed_with_its_source_profile() {
    let venv = require_venv!();
    let d = daemon();
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/").body,
        "dev"
    );
    let script = "import boto3\nprint(boto3.Session().client('sts').get_caller_identity()['Arn'])";
    assert_eq!(
        run_client(&d, &venv.join("bin/python"), &["-c", script]),
        "arn:aws:sts::111111111111:assumed-role/dev/alice"
    );
}
