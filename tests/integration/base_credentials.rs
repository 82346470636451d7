//! Where the base credentials come from, as AWS tooling finds them: a profile kept in
//! `~/.aws/config` alone (no credentials file at all, the usual case for IAM Identity Center
//! users), `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`. The fake STS records which key
//! signed each AssumeRole, so each test proves which source was used.

use crate::support::sso::{IdentityCenter, SSO_ACCESS_KEY, sso_daemon};
use crate::support::{BASE_ACCESS_KEY, BASE_SECRET_KEY, Daemon, FakeSts, fintors_cli_with};

const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/example";

fn config(credentials: &str) -> String {
    format!(
        r#"{{"credentials": {credentials},
            "roles": {{"example": "arn:aws:iam::123456789012:role/example"}},
            "default_role": "example"}}"#
    )
}

/// The keys that signed the fake STS's AssumeRole calls.
fn signers(sts: &FakeSts) -> Vec<String> {
    sts.calls()
        .iter()
        .filter(|c| c.action == "AssumeRole")
        .map(|c| c.access_key.clone())
        .collect()
}

fn static_keys_profile() -> String {
    format!(
        "[profile identity]\naws_access_key_id = {BASE_ACCESS_KEY}\n\
         aws_secret_access_key = {BASE_SECRET_KEY}\n"
    )
}

#[test]
fn an_sso_profile_in_the_config_file_alone_serves_credentials() {
    let center = IdentityCenter::start(&["cached-access-token"]);
    let sts = FakeSts::issuing();
    let d = sso_daemon(
        &center,
        &sts,
        "cached-access-token",
        chrono::Utc::now() + chrono::Duration::hours(8),
    );
    assert!(!d.dir.path().join(".aws/credentials").exists());
    let r = d.get(CREDS_PATH);
    assert_eq!(r.json()["Code"], "Success", "{}\n{}", r.body, d.stderr());
    assert_eq!(signers(&sts), [SSO_ACCESS_KEY]);
    assert_eq!(center.credential_calls(), ["cached-access-token"]);
}

#[test]
fn static_keys_in_the_config_file_alone_serve_credentials_even_if_the_named_file_is_missing() {
    for credentials in [
        r#"{"profile": "identity"}"#,
        r#"{"file": "~/.aws/credentials", "profile": "identity"}"#,
    ] {
        let sts = FakeSts::issuing();
        let builder = Daemon::builder(&config(credentials))
            .sts(&sts.url)
            .file("elsewhere/config", &static_keys_profile());
        let aws_config = builder.path("elsewhere/config");
        let d = builder
            .env("AWS_CONFIG_FILE", aws_config.to_str().unwrap())
            .start();
        let r = d.get(CREDS_PATH);
        assert_eq!(r.json()["Code"], "Success", "{credentials}: {}", r.body);
        assert_eq!(signers(&sts), [BASE_ACCESS_KEY], "{credentials}");
    }
}

#[test]
fn aws_shared_credentials_file_names_the_credentials_file() {
    let sts = FakeSts::issuing();
    let builder = Daemon::builder(&config(r#"{"profile": "identity"}"#))
        .sts(&sts.url)
        .file(
            "keys/credentials",
            &static_keys_profile().replace("profile ", ""),
        );
    let file = builder.path("keys/credentials");
    let d = builder
        .env("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())
        .start();
    assert_eq!(d.get(CREDS_PATH).json()["Code"], "Success");
    assert_eq!(signers(&sts), [BASE_ACCESS_KEY]);
}

#[test]
fn a_default_profile_with_keys_is_named_at_start_and_in_status_as_what_sdks_use_instead() {
    const WARNING: &str = "the default profile in the AWS credentials file has credentials, \
                           which SDKs use before fintors's";
    let sts = FakeSts::issuing();
    let d = Daemon::builder(&config(r#"{"profile": "default"}"#))
        .sts(&sts.url)
        .file(
            ".aws/credentials",
            &format!(
                "[default]\naws_access_key_id = {BASE_ACCESS_KEY}\n\
                 aws_secret_access_key = {BASE_SECRET_KEY}\n"
            ),
        )
        .start();
    assert_eq!(d.get(CREDS_PATH).json()["Code"], "Success");
    let log = d.log_with(WARNING);
    let line = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(WARNING))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.len() <= 240, "{line}");
    let home = d.dir.path().to_str().unwrap();
    let o = fintors_cli_with(&d.url(), &["status"], &[("HOME", home)]);
    let status = String::from_utf8(o.stdout).unwrap();
    assert!(
        status.contains(&format!("warning: {WARNING}: move them to a named profile")),
        "{status}"
    );
    // Another home's AWS files: no such warning (the harness's AWS_EC2_METADATA_DISABLED has
    // one of its own).
    let elsewhere = fintors_cli_with(&d.url(), &["status"], &[]);
    assert!(
        !String::from_utf8(elsewhere.stdout)
            .unwrap()
            .contains(WARNING)
    );
}
