//! Credentials are the crown jewels: one whole session with every secret fintors handles, debug
//! logging and the access log on, and none of the secrets may appear in either.

use crate::admin::{admin, post_json};
use crate::container::endpoint;
use crate::support::{BASE_SECRET_KEY, Daemon, FakeSts, fintors_cli, http, issued, sts_error};

const SESSION: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "roles": {
    "plain": "arn:aws:iam::123456789012:role/plain",
    "guarded": { "arn": "arn:aws:iam::123456789012:role/guarded",
                 "mfa_serial": "arn:aws:iam::123456789012:mfa/me" },
    "denied": "arn:aws:iam::123456789012:role/denied"
  },
  "default_role": "plain"
}"#;

const ADMIN_TOKEN: &str = "adminTOKENadminTOKEN0042";
const BOOTSTRAP_SECRET: &str = "bootstrapSECRETbootstrapSECRET0042";
const BOOTSTRAP_TOKEN: &str = "bootstrapSESSIONtokenBOOTSTRAP0042";
const REFUSED_SECRET: &str = "refusedSECRETrefusedSECRET0042";
const MFA_CODE: &str = "864209";

#[test]
fn a_full_session_leaves_no_secret_in_stderr_or_the_access_log() {
    let sts = FakeSts::start(|call| match call.role_name() {
        Some("denied") => sts_error(403, "AccessDenied", "not authorized to assume denied"),
        _ => issued(call, 7, chrono::Duration::hours(1)),
    });
    let builder = Daemon::builder(SESSION);
    let log = builder.path("access.log");
    let d = builder
        .sts(&sts.url)
        .arg("-vv")
        .arg("--log")
        .arg(log.to_str().unwrap())
        .arg("--admin-port")
        .arg("0")
        .env("FINTORS_ADMIN_TOKEN", ADMIN_TOKEN)
        .start();
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];

    // Bootstrap: a refused body carrying a secret, then the real one.
    let refused =
        format!(r#"{{"AccessKeyId": "AKIAREFUSED", "SecretAccesKey": "{REFUSED_SECRET}"}}"#);
    assert_eq!(
        post_json(admin(&d), "/bootstrap/creds", &refused, &auth).status,
        400
    );
    let body = format!(
        r#"{{"AccessKeyId": "AKIABOOTSTRAPEXAMPLE", "SecretAccessKey": "{BOOTSTRAP_SECRET}",
            "Token": "{BOOTSTRAP_TOKEN}"}}"#
    );
    assert_eq!(
        post_json(admin(&d), "/bootstrap/creds", &body, &auth).status,
        204
    );

    // Serve: IMDSv2, an STS refusal, an MFA role, the container endpoint.
    let token = d.token();
    let imds = |path: &str| {
        http(
            d.addr,
            "GET",
            path,
            &[("X-aws-ec2-metadata-token", &token)],
            "",
        )
    };
    let plain = imds("/latest/meta-data/iam/security-credentials/plain").json();
    assert_eq!(plain["Code"], "Success");
    assert_eq!(
        imds("/latest/meta-data/iam/security-credentials/denied").json()["Code"],
        "AccessDenied"
    );
    assert_eq!(d.switch("denied").status, 502);
    assert_eq!(
        imds("/latest/meta-data/iam/security-credentials/guarded").json()["Code"],
        "MfaRequired"
    );
    assert!(fintors_cli(&d, &["mfa", MFA_CODE]).status.success());
    let guarded = imds("/latest/meta-data/iam/security-credentials/guarded").json();
    assert_eq!(guarded["Code"], "Success", "{guarded}");
    let (ecs, ecs_token) = endpoint(&d);
    let container = http(ecs, "GET", "/creds", &[("Authorization", &ecs_token)], "").json();
    assert!(container["SecretAccessKey"].is_string(), "{container}");
    // Errors: a forged token, a wrong container token, a wrong admin token.
    let forged = format!("{token}x");
    assert_eq!(
        http(
            d.addr,
            "GET",
            "/latest/meta-data/",
            &[("X-aws-ec2-metadata-token", &forged)],
            ""
        )
        .status,
        401
    );
    assert_eq!(
        http(ecs, "GET", "/creds", &[("Authorization", "wrong")], "").status,
        403
    );

    let stderr = d.settled_log();
    let access_log = crate::support::access_log(&log);
    // The logs did record the session, so their silence about secrets means something.
    assert!(stderr.contains("DEBUG"), "not debug logging:\n{stderr}");
    assert!(stderr.contains("AccessDenied"), "{stderr}");
    assert!(access_log.contains("/bootstrap/creds") || access_log.contains("security-credentials"));
    // Timestamps carry microseconds, which could spell a six-digit MFA code by chance.
    let messages: String = stderr
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n");
    let served = [&plain, &guarded, &container]
        .iter()
        .flat_map(|doc| ["SecretAccessKey", "Token"].map(|f| doc[f].as_str().unwrap().to_owned()))
        .collect::<Vec<_>>();
    let fixed = [
        BASE_SECRET_KEY,
        ADMIN_TOKEN,
        BOOTSTRAP_SECRET,
        BOOTSTRAP_TOKEN,
        REFUSED_SECRET,
        MFA_CODE,
        &token,
        &ecs_token,
        // Every secret the fake STS hands out, from any call.
        "secretROLE",
        "tokenROLE",
        "secretSESSION",
        "tokenSESSION",
    ];
    for secret in served.iter().map(String::as_str).chain(fixed) {
        assert!(!messages.contains(secret), "{secret:?} in stderr");
        assert!(!access_log.contains(secret), "{secret:?} in the access log");
    }
}
