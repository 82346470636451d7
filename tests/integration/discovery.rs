//! Every account a user can reach: an `identity_center` session's accounts and roles, as the
//! access portal lists them (`ListAccounts`, `ListAccountRoles`, every page, within its
//! throttle), are roles, served like any permission set. The portal is the fake on 127.0.0.1
//! ([`IdentityCenter`]), paging two items at a time unless a test says otherwise; STS is the
//! fake that says who signed.

use crate::support::clients::{ClientRun, Via};
use crate::support::identity::{identities_seen, identity_sts, signed_by};
use crate::support::sso::{
    IdentityCenter, LAPSED, SESSION_ONLY, VALID, accounts, daemon_with, portal_key,
    write_token_cache,
};
use crate::support::{Daemon, FakeSts, fintors_cli, rust_whoami};

/// Every role of the session `corp`, with the default aliases.
const CONFIG: &str = r#"{ "identity_center": { "corp": {} } }"#;

/// Three accounts with three roles each, listed two items a page.
fn portal() -> IdentityCenter {
    let center = IdentityCenter::start(&["valid-token"]);
    center.listing(accounts(3, &["Developer", "Operator", "ReadOnly"]), Some(2));
    center
}

fn daemon(center: &IdentityCenter, sts: &FakeSts) -> Daemon {
    daemon_with(center, sts, CONFIG, SESSION_ONLY, VALID)
}

/// [`portal`], a [`daemon`] on it and an identity STS, after a `fintors sync`.
fn synced() -> (IdentityCenter, FakeSts, Daemon) {
    let center = portal();
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    cli(&d, &["sync"]);
    (center, sts, d)
}

/// `fintors ARGS`' standard output, which must succeed.
fn cli(d: &Daemon, args: &[&str]) -> String {
    let o = fintors_cli(d, args);
    assert!(o.status.success(), "fintors {args:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

fn roles_json(d: &Daemon) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_str(&cli(d, &["roles", "--json"])).unwrap();
    json["roles"].as_array().unwrap().clone()
}

#[test]
fn every_account_and_role_on_every_page_is_a_role_named_by_account_and_role() {
    let center = portal();
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    let synced = cli(&d, &["sync"]);
    assert!(
        synced.starts_with("SSO session \"corp\": 9 roles listed\n"),
        "{synced}"
    );
    let roles = roles_json(&d);
    let aliases: Vec<&str> = roles.iter().map(|r| r["alias"].as_str().unwrap()).collect();
    assert_eq!(
        aliases,
        [
            "account-0.developer",
            "account-0.operator",
            "account-0.readonly",
            "account-1.developer",
            "account-1.operator",
            "account-1.readonly",
            "account-2.developer",
            "account-2.operator",
            "account-2.readonly",
        ]
    );
    let operator = &roles[4];
    assert_eq!(operator["kind"], "sso");
    assert_eq!(operator["account_id"], "100000000001");
    assert_eq!(operator["account_name"], "account-1");
    assert_eq!(operator["role_name"], "Operator");
    let table = cli(&d, &["roles", "account-1", "operator"]);
    assert!(
        table.contains("permission set Operator in account-1 (100000000001, SSO session corp)"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "a header and one role:\n{table}");
}

/// The done-when of the issue: after `fintors use` of a discovered alias, every real client
/// signs with that account's credentials from `GetRoleCredentials`, with no STS call of
/// fintors's.
#[test]
fn every_real_client_signs_with_a_discovered_accounts_credentials() {
    let (_center, sts, d) = synced();
    cli(&d, &["use", "account-2.operator"]);
    let expected = signed_by(&portal_key("100000000002", "Operator"));
    for (client, arn) in identities_seen(ClientRun::new(&d, Via::Imds), &sts) {
        assert_eq!(arn, expected, "{client}");
    }
    assert!(sts.calls().iter().all(|c| c.action == "GetCallerIdentity"));
}

#[test]
fn exec_pins_a_command_to_a_discovered_role() {
    let (_center, _sts, d) = synced();
    let run = ClientRun::new(&d, Via::Exec("account-0.readonly"));
    assert_eq!(
        run.run(&rust_whoami(), &["--container", "--access-key"]),
        portal_key("100000000000", "ReadOnly")
    );
}

/// The portal throttles at about 20 calls a second: a `TooManyRequestsException` is waited
/// out and the listing is still whole.
#[test]
fn a_throttled_listing_waits_and_is_still_whole() {
    let (center, _sts, d) = synced();
    // The listing at start, then sync's: both done before the count.
    d.log_with_n("SSO session \"corp\": the portal lists 9 roles", 2);
    let before = center.list_calls();
    center.throttle(3);
    let synced = cli(&d, &["sync"]);
    assert!(synced.contains("9 roles listed"), "{synced}");
    // A whole listing is 8 calls (2 pages of accounts, 2 of roles for each of 3). The SDK
    // retries a 429 itself and fintors waits out what still comes back throttled: either way
    // each throttled answer costs one call more, and nothing is left out.
    assert_eq!(center.list_calls() - before, 8 + 3);
}

/// A role the portal stops listing stops being served; if it was the active one, the log
/// says so once, and no role is active.
#[test]
fn a_role_the_portal_no_longer_lists_is_gone_and_the_active_one_says_so() {
    let (center, _sts, d) = synced();
    cli(&d, &["use", "account-2.developer"]);
    center.listing(accounts(2, &["Developer", "Operator", "ReadOnly"]), Some(2));
    let synced = cli(&d, &["sync"]);
    assert!(
        synced.contains("roles: 0 new, 3 gone; active role: none"),
        "{synced}"
    );
    assert_eq!(roles_json(&d).len(), 6);
    d.log_with(
        "the active role account-2.developer is no longer listed or configured; active now: none",
    );
    let creds = d.get("/latest/meta-data/iam/security-credentials/account-2.developer");
    assert_eq!(creds.status, 404);
}

/// The listing is kept in the state directory: a daemon that starts while the portal cannot
/// list serves the roles found last time, and says the listing failed.
#[test]
fn a_daemon_started_while_the_portal_cannot_list_serves_the_last_listing() {
    let center = portal();
    let sts = identity_sts();
    let first = daemon(&center, &sts);
    cli(&first, &["sync"]);
    let dir = first.stop();
    center.break_listing();
    let builder = Daemon::builder(CONFIG)
        .dir(dir)
        .sts(&sts.url)
        .file(".aws/config", SESSION_ONLY)
        .without_env("AWS_CONFIG_FILE");
    let d = center
        .endpoints()
        .iter()
        .fold(builder, |b, (name, url)| b.env(name, url))
        .start();
    assert_eq!(roles_json(&d).len(), 9, "served from the kept listing");
    let o = fintors_cli(&d, &["sync"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("SSO session \"corp\" not listed: ")
            && said.contains("the 9 roles listed before are served"),
        "{said}"
    );
    let doc = d
        .get("/latest/meta-data/iam/security-credentials/account-1.developer")
        .json();
    assert_eq!(doc["AccessKeyId"], portal_key("100000000001", "Developer"));
    let status = cli(&d, &["status"]);
    let listing = status
        .lines()
        .find(|l| l.starts_with("SSO session \"corp\": 9 roles listed"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        listing.ends_with(
            "; listing again failed: the Identity Center portal answered ListAccounts with HTTP 500"
        ),
        "{listing}"
    );
}

/// A written role wins over a discovered one of the same alias, and a template and filters
/// shape what is discovered.
#[test]
fn a_template_and_filters_shape_the_discovered_roles_and_written_roles_win() {
    let center = portal();
    let sts = identity_sts();
    let config = r#"{
      "identity_center": { "corp": { "alias": "{account_id}-{role_name}",
                                     "include": ["account-0", "account-1"],
                                     "exclude": ["*/ReadOnly"] } },
      "roles": { "100000000000-developer": "arn:aws:iam::123456789012:role/mine" }
    }"#;
    let d = daemon_with(&center, &sts, config, SESSION_ONLY, VALID);
    cli(&d, &["sync"]);
    let roles = roles_json(&d);
    let aliases: Vec<(&str, &str)> = roles
        .iter()
        .map(|r| (r["alias"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        aliases,
        [
            ("100000000000-developer", "assume"),
            ("100000000000-operator", "sso"),
            ("100000000001-developer", "sso"),
            ("100000000001-operator", "sso"),
        ]
    );
}

/// `fintors sync` with nothing to list says how to configure it.
#[test]
fn sync_without_identity_center_says_what_to_add() {
    let center = IdentityCenter::start(&["valid-token"]);
    let sts = identity_sts();
    let d = daemon_with(
        &center,
        &sts,
        r#"{"roles": {"dev": {"sso_session": "corp", "account_id": "444455556666", "role_name": "Developer"}}}"#,
        SESSION_ONLY,
        VALID,
    );
    let o = fintors_cli(&d, &["sync"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("add \"identity_center\": {\"SESSION\": {}}"),
        "{o:?}"
    );
}

/// A login made while the daemon runs lists the session's roles at once: no sync, no restart.
#[test]
fn a_new_login_lists_the_sessions_roles_within_seconds() {
    let center = portal();
    center.accept("fresh-token");
    let sts = identity_sts();
    let d = daemon_with(&center, &sts, CONFIG, SESSION_ONLY, LAPSED);
    d.log_with("cannot list the session's roles (the last listing is served)");
    assert!(roles_json(&d).is_empty());
    let in_eight_hours = chrono::Utc::now() + chrono::Duration::hours(8);
    write_token_cache(d.dir.path(), "corp", "fresh-token", in_eight_hours, false);
    d.log_with("SSO session \"corp\": the portal lists 9 roles");
    assert_eq!(roles_json(&d).len(), 9);
}

/// A reload lists again: a filter added to the file takes effect with what the portal lists
/// now.
#[test]
fn a_reload_lists_again() {
    let (center, _sts, d) = synced();
    let listed = "SSO session \"corp\": the portal lists";
    let before = d.log_with(listed).matches(listed).count();
    center.listing(accounts(1, &["Developer"]), None);
    cli(&d, &["reload"]);
    d.log_with_n(listed, before + 1);
    let aliases: Vec<String> = roles_json(&d)
        .iter()
        .map(|r| r["alias"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(aliases, ["account-0.developer"]);
}

/// The size the issue sets: 300 accounts × 5 roles. All 1,500 are listed (100 a page, at the
/// portal's pace), listed and switched to by alias, and only the role in use is ever fetched.
/// The figures (listing time, `fintors roles` time, the daemon's RSS) are printed for the
/// record (`--nocapture`), not asserted: this machine's speed is not the daemon's.
#[test]
fn fifteen_hundred_discovered_roles_are_all_listed_and_only_the_one_in_use_is_fetched() {
    let center = IdentityCenter::start(&["valid-token"]);
    let roles = ["Admin", "Billing", "Developer", "Operator", "ReadOnly"];
    center.listing(accounts(300, &roles), None);
    let sts = identity_sts();
    let d = daemon(&center, &sts);
    let timed = |args: &[&str]| {
        let started = std::time::Instant::now();
        let out = cli(&d, args);
        (out, started.elapsed())
    };
    let (synced, listing) = timed(&["sync"]);
    assert!(synced.contains("1500 roles listed"), "{synced}");
    let (table, listed) = timed(&["roles"]);
    assert_eq!(table.lines().count(), 1 + 1500);
    let (filtered, _) = timed(&["roles", "account-150", "developer"]);
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    let (_, switched) = timed(&["use", "account-150.developer"]);
    let doc = d
        .get("/latest/meta-data/iam/security-credentials/account-150.developer")
        .json();
    assert_eq!(doc["AccessKeyId"], portal_key("100000000150", "Developer"));
    assert_eq!(center.credential_calls().len(), 1, "only the role in use");
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "1500 roles: sync {listing:?}, `fintors roles` {listed:?}, `fintors use` {switched:?}, \
         daemon RSS {rss} ({build} build)"
    );
}
