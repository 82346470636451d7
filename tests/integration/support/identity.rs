//! An STS that says who signed: real clients ask it `GetCallerIdentity`, and its answer names
//! the key that signed the call, so a test knows whose credentials a client was given.

use super::clients::{ClientRun, aws_cli_v2, go_whoami, js_whoami};
use super::{FakeSts, StsCall, issued, rust_whoami, sts_error, venv};

/// An STS that knows only `GetCallerIdentity`, and answers it with the signing key as the
/// session name: `arn:aws:sts::000000000000:assumed-role/sso/<key>`.
pub fn identity_sts() -> FakeSts {
    FakeSts::start(identity)
}

/// [`identity_sts`]'s answer.
fn identity(call: &StsCall) -> (u16, String) {
    match call.action.as_str() {
        "GetCallerIdentity" => (
            200,
            format!(
                r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>{}</Arn>
    <UserId>AROAEXAMPLE:{}</UserId>
    <Account>000000000000</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#,
                signed_by(&call.access_key),
                call.access_key
            ),
        ),
        other => sts_error(400, "InvalidAction", other),
    }
}

/// [`identity_sts`], which also answers `AssumeRole` with `ASIAROLE00000001` for an hour.
pub fn chaining_sts() -> FakeSts {
    FakeSts::start(|call: &StsCall| match call.action.as_str() {
        "AssumeRole" => issued(call, 1, chrono::Duration::hours(1)),
        _ => identity(call),
    })
}

/// What [`identity_sts`] says to a caller signing with `key`.
pub fn signed_by(key: &str) -> String {
    format!("arn:aws:sts::000000000000:assumed-role/sso/{key}")
}

/// What each real client (botocore, AWS CLI v2, Go v2, JS v3, aws-sdk-rust) says it is, run as
/// `run` says and asking `sts` who signed: (client, ARN), for every client installed here.
pub fn identities_seen(run: ClientRun, sts: &FakeSts) -> Vec<(&'static str, String)> {
    let run = run.env("AWS_ENDPOINT_URL_STS", &sts.url);
    let mut seen = Vec::new();
    if let Some(venv) = venv() {
        let boto3 =
            "import boto3\nprint(boto3.Session().client('sts').get_caller_identity()['Arn'])";
        seen.push((
            "botocore",
            run.run(&venv.join("bin/python"), &["-c", boto3]),
        ));
    }
    if let Some(aws) = aws_cli_v2() {
        // Debian's CLI v2 predates AWS_ENDPOINT_URL_STS.
        let args = [
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            &sts.url,
            "--query",
            "Arn",
            "--output",
            "text",
        ];
        seen.push(("AWS CLI v2", run.run(&aws, &args)));
    }
    if let Some(go) = go_whoami() {
        seen.push(("aws-sdk-go-v2", run.run(&go, &["imds"])));
    }
    if let Some((node, script)) = js_whoami() {
        seen.push(("JS v3", run.run(&node, &[script.to_str().unwrap(), "imds"])));
    }
    seen.push(("aws-sdk-rust", run.run(&rust_whoami(), &[])));
    seen
}
