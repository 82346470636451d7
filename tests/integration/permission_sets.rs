//! IAM Identity Center permission sets as roles: served with the portal's credentials through
//! every door, with no STS call and no base credentials. The portal and OIDC are the fakes on
//! 127.0.0.1 ([`IdentityCenter`]); STS is a fake that answers `GetCallerIdentity` with the key
//! that signed it, so a real client's answer says whose credentials it was given.

use crate::support::clients::{ClientRun, Via};
use crate::support::identity::{chaining_sts, identities_seen, identity_sts, signed_by};
use crate::support::sso::{
    Endpoints, IdentityCenter, LAPSED, SESSION_ONLY, VALID, daemon_with, expired, portal_key,
    write_token_cache,
};
use crate::support::{Daemon, FakeServer, FakeSts, StsCall, fintors_cli, rust_whoami, venv};

const DEV_ACCOUNT: &str = "444455556666";
const OPS_ACCOUNT: &str = "777788889999";
const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

/// Two permission sets in two accounts of the session `corp`; `dev` is the default.
const CONFIG: &str = r#"{
  "roles": {
    "dev": { "sso_session": "corp", "account_id": "444455556666", "role_name": "Developer" },
    "ops": { "sso_session": "corp", "account_id": "777788889999", "role_name": "Operator",
             "region": "eu-west-1" }
  },
  "default_role": "dev"
}"#;

/// A portal that answers every call with `status` and `body`, its OIDC too.
struct Answering(FakeServer);

impl Endpoints for Answering {
    fn endpoints(&self) -> [(&'static str, String); 2] {
        let url = self.0.url.clone();
        [
            ("AWS_ENDPOINT_URL_SSO", url.clone()),
            ("AWS_ENDPOINT_URL_SSO_OIDC", url),
        ]
    }
}

/// [`CONFIG`]'s daemon with the session's token valid for eight hours.
fn daemon(center: &IdentityCenter, sts: &FakeSts) -> Daemon {
    daemon_with(center, sts, CONFIG, SESSION_ONLY, VALID)
}

#[test]
fn a_permission_set_is_served_with_the_portals_keys_for_its_account_and_no_sts_call() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    let dev = d.get(&format!("{CREDS}dev")).json();
    assert_eq!(dev["Code"], "Success", "{dev}\n{}", d.stderr());
    assert_eq!(dev["AccessKeyId"], portal_key(DEV_ACCOUNT, "Developer"));
    assert_eq!(d.switch("ops").status, 200);
    let ops = d.get(&format!("{CREDS}ops")).json();
    assert_eq!(ops["AccessKeyId"], portal_key(OPS_ACCOUNT, "Operator"));
    assert_eq!(
        center.credential_calls(),
        ["valid-token", "valid-token"],
        "one GetRoleCredentials per role, with the session's token"
    );
    assert_eq!(sts.request_count(), 0, "no STS call");
    d.log_with("got the credentials of permission set Operator in account 777788889999");
}

#[test]
fn an_expired_session_is_one_line_with_the_login_command_for_a_permission_set() {
    let center = IdentityCenter::start(&[]);
    let sts = identity_sts();
    let d = daemon_with(&center, &sts, CONFIG, SESSION_ONLY, LAPSED);
    let doc = d.get(&format!("{CREDS}dev")).json();
    assert_eq!(doc["Code"], "SsoLoginRequired", "{doc}");
    let message = doc["Message"].as_str().unwrap();
    assert!(
        message.starts_with("the SSO session \"corp\" expired at ")
            && message.ends_with("run `fintors login`")
            && message.len() <= 160,
        "{message}"
    );
    assert!(
        center.credential_calls().is_empty(),
        "no call with a dead token"
    );
}

#[test]
fn a_token_the_portal_refuses_is_a_login_required_not_an_unknown_failure() {
    // The cache says valid; the portal no longer accepts it (signed out elsewhere).
    let center = IdentityCenter::start(&[]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    let doc = d.get(&format!("{CREDS}dev")).json();
    assert_eq!(doc["Code"], "SsoLoginRequired", "{doc}");
    assert!(
        doc["Message"]
            .as_str()
            .unwrap()
            .contains("was refused by the portal: run `fintors login`"),
        "{doc}"
    );
}

/// Every real client, given IMDS as `fintors env` prints it, is served the switched-to
/// permission set's credentials and signs with them.
#[test]
fn every_real_client_signs_with_the_switched_to_permission_sets_keys() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    assert_eq!(d.switch("ops").status, 200);
    let expected = signed_by(&portal_key(OPS_ACCOUNT, "Operator"));
    let seen = identities_seen(ClientRun::new(&d, Via::Imds), &sts);
    for (client, arn) in &seen {
        assert_eq!(arn, &expected, "{client}");
    }
    assert!(
        sts.calls().iter().all(|c| c.action == "GetCallerIdentity"),
        "no AssumeRole"
    );
}

/// A command run with `fintors exec` for a permission set gets that set's keys over the
/// container endpoint, whatever role is active.
#[test]
fn exec_pins_a_command_to_a_permission_set() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    let run = ClientRun::new(&d, Via::Exec("ops"));
    assert_eq!(
        run.run(&rust_whoami(), &["--container", "--access-key"]),
        portal_key(OPS_ACCOUNT, "Operator")
    );
    assert_eq!(
        d.get("/roles?status=active").json()["roles"],
        serde_json::json!(["dev"]),
        "nothing switched"
    );
}

/// With `"aws_profiles": true`, a profile that names a permission set (what `aws configure sso`
/// writes) is a role of its own, served from the portal.
#[test]
fn an_sso_profile_is_imported_as_a_permission_set_role() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let profiles = format!(
        "{SESSION_ONLY}[profile payments-dev]\nsso_session = corp\n\
         sso_account_id = 444455556666\nsso_role_name = Developer\nregion = eu-west-1\n"
    );
    let config = r#"{"aws_profiles": true}"#;
    let d = daemon_with(&center, &sts, config, &profiles, VALID);
    let doc = d.get("/roles/payments-dev/credentials").json();
    assert_eq!(
        doc["AccessKeyId"],
        portal_key(DEV_ACCOUNT, "Developer"),
        "{doc}"
    );
    assert_eq!(sts.request_count(), 0);
}

/// `fintors roles` names each permission set and its account, takes words to filter by, and
/// gives the kind, account and role name in JSON.
#[test]
fn fintors_roles_shows_and_filters_permission_sets_by_account_and_role_name() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    let table = |args: &[&str]| {
        let o = fintors_cli(&d, args);
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let all = table(&["roles"]);
    assert!(
        all.contains("permission set Operator in 777788889999 (SSO session corp)"),
        "{all}"
    );
    let filtered = table(&["roles", "OPERATOR", "7777"]);
    assert!(
        filtered.contains("ops") && !filtered.contains("Developer"),
        "{filtered}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&table(&["roles", "--json", "dev"])).unwrap();
    let roles = json["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 1, "{json}");
    assert_eq!(roles[0]["kind"], "sso");
    assert_eq!(roles[0]["account_id"], DEV_ACCOUNT);
    assert_eq!(roles[0]["role_name"], "Developer");
    assert_eq!(roles[0]["sso_session"], "corp");
}

/// A 401 whose body names no error type is still the portal refusing the session.
#[test]
fn a_401_of_no_known_type_is_a_login_required() {
    let portal = Answering(FakeServer::start(|_| {
        (401, "application/json", r#"{"message":"no"}"#.to_owned())
    }));
    let sts = identity_sts();
    let d = daemon_with(&portal, &sts, CONFIG, SESSION_ONLY, VALID);
    let doc = d.get(&format!("{CREDS}dev")).json();
    assert_eq!(doc["Code"], "SsoLoginRequired", "{doc}");
}

/// A role naming a session the AWS config file does not have is one line with the fix.
#[test]
fn a_session_missing_from_the_aws_config_file_is_one_line_naming_it() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon_with(
        &center,
        &sts,
        CONFIG,
        "[profile plain]\nregion = us-east-1\n",
        VALID,
    );
    let doc = d.get(&format!("{CREDS}dev")).json();
    let message = doc["Message"].as_str().unwrap();
    assert!(
        message.contains("has no [sso-session corp]: add it") && message.len() <= 160,
        "{doc}"
    );
    assert!(center.credential_calls().is_empty());
}

/// A session whose access token has expired but whose cache holds a refresh token keeps
/// serving: the token is renewed through SSO OIDC and the portal asked with the new one.
#[test]
fn a_refreshable_session_serves_a_permission_set_past_its_access_tokens_expiry() {
    // The portal accepts only what CreateToken issues for `refresh-1`.
    let center = IdentityCenter::start(&[]);
    let sts = identity_sts();
    let login = expired("expired-token", true);
    let d = daemon_with(&center, &sts, CONFIG, SESSION_ONLY, login);
    let doc = d.get(&format!("{CREDS}dev")).json();
    assert_eq!(
        doc["AccessKeyId"],
        portal_key(DEV_ACCOUNT, "Developer"),
        "{doc}"
    );
    assert_eq!(center.credential_calls(), ["refreshed-access-token"]);
}

/// A login made while the daemon runs is seen by the session's watcher, which retries the
/// failing permission set at once: no restart, no switch.
#[test]
fn a_new_login_serves_a_permission_set_within_seconds() {
    let center = IdentityCenter::start(&["fresh-token"]);
    let sts = identity_sts();
    let d = daemon_with(&center, &sts, CONFIG, SESSION_ONLY, LAPSED);
    let creds = format!("{CREDS}dev");
    assert_eq!(d.get(&creds).json()["Code"], "SsoLoginRequired");
    let in_eight_hours = chrono::Utc::now() + chrono::Duration::hours(8);
    write_token_cache(d.dir.path(), "corp", "fresh-token", in_eight_hours, false);
    let written = std::time::Instant::now();
    d.log_with("changed: retrying what failed");
    loop {
        let doc = d.get(&creds).json();
        if doc["Code"] == "Success" {
            assert_eq!(doc["AccessKeyId"], portal_key(DEV_ACCOUNT, "Developer"));
            break;
        }
        assert!(written.elapsed().as_secs() < 30, "still {doc}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(center.credential_calls(), ["fresh-token"]);
}

/// A deploy role in another account, assumed with a permission set's credentials: one
/// AssumeRole per refresh, signed with the portal's keys, for the one hour STS allows a chain;
/// a real client then signs with the chained session.
#[test]
fn a_role_via_a_permission_set_is_assumed_once_with_the_portals_keys_for_an_hour() {
    let config = r#"{
      "roles": {
        "dev": { "sso_session": "corp", "account_id": "444455556666", "role_name": "Developer" },
        "deploy": { "arn": "arn:aws:iam::111122223333:role/deploy", "via": "dev",
                    "duration_seconds": 43200 }
      },
      "default_role": "dev"
    }"#;
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = chaining_sts();
    let d = daemon_with(&center, &sts, config, SESSION_ONLY, VALID);
    assert_eq!(d.switch("deploy").status, 200);
    assert_eq!(
        d.get(&format!("{CREDS}deploy")).json()["AccessKeyId"],
        "ASIAROLE00000001"
    );
    let assumed: Vec<StsCall> = sts
        .calls()
        .into_iter()
        .filter(|c| c.action == "AssumeRole")
        .collect();
    assert_eq!(
        assumed.len(),
        1,
        "one AssumeRole for the switch and the GET"
    );
    assert_eq!(assumed[0].access_key, portal_key(DEV_ACCOUNT, "Developer"));
    assert!(
        assumed[0].body.contains("DurationSeconds=3600"),
        "{}",
        assumed[0].body
    );
    assert!(
        assumed[0]
            .body
            .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fdeploy"),
        "{}",
        assumed[0].body
    );
    assert_eq!(
        center.credential_calls(),
        ["valid-token"],
        "dev fetched once"
    );
    // Said once per reading of the config: the barrier's reload reads it again.
    let log = d.settled_log();
    let before_reload = log.split("SIGHUP: reloading").next().unwrap();
    assert_eq!(
        before_reload
            .matches("a chained session lasts at most 3600 s")
            .count(),
        1,
        "{log}"
    );
    if let Some(venv) = venv() {
        let boto3 =
            "import boto3\nprint(boto3.Session().client('sts').get_caller_identity()['Arn'])";
        let run = ClientRun::new(&d, Via::Imds).env("AWS_ENDPOINT_URL_STS", &sts.url);
        let arn = run.run(&venv.join("bin/python"), &["-c", boto3]);
        assert_eq!(arn.trim(), signed_by("ASIAROLE00000001"));
    }
}

#[test]
fn a_session_a_reload_no_longer_uses_is_neither_watched_nor_renewed() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    std::fs::write(
        d.dir.path().join("fintorc.json"),
        r#"{"roles": {"plain": "arn:aws:iam::123456789012:role/plain"}}"#,
    )
    .unwrap();
    let o = fintors_cli(&d, &["reload"]);
    assert!(o.status.success(), "{o:?}");
    d.log_with("no longer watching");
    // A renewable login that is due: a watch still running would renew it within 2 s.
    write_token_cache(
        d.dir.path(),
        "corp",
        "due-token",
        chrono::Utc::now() + chrono::Duration::minutes(1),
        true,
    );
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(
        center.oidc.token_calls("refresh_token"),
        0,
        "{}",
        d.stderr()
    );
}

#[test]
fn a_login_under_way_elsewhere_leaves_the_cached_token_in_use_without_a_wait() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    // A renewable token with 3 minutes left: due for renewal, still good to use.
    write_token_cache(
        d.dir.path(),
        "corp",
        "valid-token",
        chrono::Utc::now() + chrono::Duration::minutes(3),
        true,
    );
    // What a `fintors login` of the session holds from start to end: the lock beside the token.
    let lock = d
        .dir
        .path()
        .join(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json.lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    while !lock.exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dev = d.get(&format!("{CREDS}dev")).json();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(dev["Code"], "Success", "{dev}");
    assert_eq!(
        center.oidc.token_calls("refresh_token"),
        0,
        "not while the login is under way"
    );
}
