//! A fake IAM Identity Center on 127.0.0.1: the access portal (`GetRoleCredentials`,
//! `ListAccounts` and `ListAccountRoles`, paginated and throttled on cue, in the wire format of
//! botocore's `sso/2019-06-10/service-2.json`) and SSO OIDC (`CreateToken`), and the token cache
//! as `aws sso login` leaves it in `~/.aws/sso/cache`.
//!
//! Every test that configures an SSO profile points both `AWS_ENDPOINT_URL_SSO` and
//! `AWS_ENDPOINT_URL_SSO_OIDC` here ([`IdentityCenter::endpoints`]), so no test can reach a real
//! AWS host.

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use super::oidc::FakeOidc;
use super::{Daemon, DaemonBuilder, FakeServer, FakeSts, Request, write_private};

/// The key id the portal hands out: AssumeRole calls signed with it came through SSO.
pub const SSO_ACCESS_KEY: &str = "ASIASSOPORTAL0000001";
pub const START_URL: &str = "https://corp.awsapps.com/start";

/// `~/.aws/config` for an `sso_session` profile `identity` in session `corp`.
pub const SSO_SESSION_PROFILE: &str = "[profile identity]\n\
    sso_session = corp\n\
    sso_account_id = 111122223333\n\
    sso_role_name = Developer\n\
    region = us-east-1\n\
    [sso-session corp]\n\
    sso_start_url = https://corp.awsapps.com/start\n\
    sso_region = us-east-1\n\
    sso_registration_scopes = sso:account:access\n";

pub struct IdentityCenter {
    pub portal: FakeServer,
    pub oidc: FakeOidc,
    /// The access tokens the portal accepts; `CreateToken` adds the ones it issues.
    valid: Arc<Mutex<Vec<String>>>,
    /// What the portal lists, and how.
    listing: Arc<Mutex<Listing>>,
}

/// An account as the portal lists it: id, name and its roles' names.
pub type Account = (String, String, Vec<String>);

/// What the fake portal lists and how it pages and throttles.
#[derive(Default)]
struct Listing {
    accounts: Vec<Account>,
    /// Items per page, whatever the client asks for (`None`: its `max_result`).
    page: Option<usize>,
    /// Listing calls still to be answered with `TooManyRequestsException`.
    throttle: usize,
    /// Listing calls answered with 500 from now on.
    broken: bool,
}

/// `n` accounts (`100000000000`, `100000000001`, ... named `account-0`, ...) with the roles
/// `roles` each.
pub fn accounts(n: usize, roles: &[&str]) -> Vec<Account> {
    (0..n)
        .map(|i| {
            (
                format!("{:012}", 100_000_000_000u64 + i as u64),
                format!("account-{i}"),
                roles.iter().map(|r| r.to_string()).collect(),
            )
        })
        .collect()
}

impl IdentityCenter {
    /// A portal that accepts `tokens` and every token SSO OIDC issues (see [`FakeOidc`]).
    pub fn start(tokens: &[&str]) -> IdentityCenter {
        let valid = Arc::new(Mutex::new(
            tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        ));
        let accepted = valid.clone();
        let listing = Arc::new(Mutex::new(Listing::default()));
        let lists = listing.clone();
        let portal = FakeServer::start(move |r: &Request| {
            let token = r.header("x-amz-sso_bearer_token").unwrap_or("");
            let known = accepted.lock().unwrap().iter().any(|t| t == token);
            if r.path().starts_with("/assignment/") && known {
                return list(&mut lists.lock().unwrap(), r);
            }
            match (r.path(), known) {
                ("/federation/credentials", true) => (
                    200,
                    "application/json",
                    role_credentials(
                        r.query("account_id").unwrap_or(""),
                        r.query("role_name").unwrap_or(""),
                    ),
                ),
                ("/federation/credentials" | "/assignment/accounts" | "/assignment/roles", false) => (
                    401,
                    "application/json",
                    r#"{"message":"Session token not found or invalid","__type":"com.amazonaws.switchboard.portal#UnauthorizedException"}"#.into(),
                ),
                _ => (404, "application/json", "{}".into()),
            }
        });
        let oidc = FakeOidc::start(valid.clone());
        IdentityCenter {
            portal,
            oidc,
            valid,
            listing,
        }
    }

    /// The portal lists `accounts` from now on, `page` items a page (`None`: as asked).
    pub fn listing(&self, accounts: Vec<Account>, page: Option<usize>) {
        let mut listing = self.listing.lock().unwrap();
        listing.accounts = accounts;
        listing.page = page;
    }

    /// The next `n` listing calls are throttled (`TooManyRequestsException`, 429).
    pub fn throttle(&self, n: usize) {
        self.listing.lock().unwrap().throttle = n;
    }

    /// Every listing call fails with 500 from now on (credentials are still served).
    pub fn break_listing(&self) {
        self.listing.lock().unwrap().broken = true;
    }

    /// The listing calls made (`ListAccounts`, `ListAccountRoles`), throttled or not.
    pub fn list_calls(&self) -> usize {
        self.portal
            .requests()
            .iter()
            .filter(|r| r.path().starts_with("/assignment/"))
            .count()
    }

    /// The variables that send aws-config's SSO and SSO OIDC clients here.
    pub fn endpoints(&self) -> [(&'static str, String); 2] {
        [
            ("AWS_ENDPOINT_URL_SSO", self.portal.url.clone()),
            ("AWS_ENDPOINT_URL_SSO_OIDC", self.oidc.server.url.clone()),
        ]
    }

    /// `GetRoleCredentials` calls made, with the bearer token each carried.
    pub fn credential_calls(&self) -> Vec<String> {
        self.portal
            .requests()
            .iter()
            .filter(|r| r.path() == "/federation/credentials")
            .map(|r| r.header("x-amz-sso_bearer_token").unwrap_or("").to_owned())
            .collect()
    }

    pub fn accept(&self, token: &str) {
        self.valid.lock().unwrap().push(token.to_owned());
    }
}

/// The access key id the portal gives for `role_name` in `account_id`: [`SSO_ACCESS_KEY`] for
/// the `identity` profile's permission set, a distinct one for every other, so a test can tell
/// whose credentials a client got.
pub fn portal_key(account_id: &str, role_name: &str) -> String {
    if (account_id, role_name) == ("111122223333", "Developer") {
        return SSO_ACCESS_KEY.to_owned();
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account_id.bytes().chain([b'/']).chain(role_name.bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("ASIA{hash:016X}")
}

/// `ListAccounts` (`GET /assignment/accounts`) or `ListAccountRoles` (`GET /assignment/roles`):
/// a page from `next_token` (an index), of `page` or `max_result` items.
fn list(listing: &mut Listing, r: &Request) -> (u16, &'static str, String) {
    if listing.throttle > 0 {
        listing.throttle -= 1;
        return (
            429,
            "application/json",
            r#"{"message":"Too many requests","__type":"com.amazonaws.switchboard.portal#TooManyRequestsException"}"#.into(),
        );
    }
    if listing.broken {
        return (
            500,
            "application/json",
            r#"{"message":"internal error"}"#.into(),
        );
    }
    let size = listing
        .page
        .or_else(|| r.query("max_result").and_then(|m| m.parse().ok()))
        .unwrap_or(10);
    let from: usize = r
        .query("next_token")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let items: Vec<serde_json::Value> = if r.path() == "/assignment/accounts" {
        listing
            .accounts
            .iter()
            .map(|(id, name, _)| {
                serde_json::json!({"accountId": id, "accountName": name, "emailAddress": "aws@example.com"})
            })
            .collect()
    } else {
        let account = r.query("account_id").unwrap_or("");
        listing
            .accounts
            .iter()
            .filter(|(id, _, _)| id == account)
            .flat_map(|(id, _, roles)| {
                roles
                    .iter()
                    .map(move |role| serde_json::json!({"roleName": role, "accountId": id}))
            })
            .collect()
    };
    let page: Vec<_> = items.iter().skip(from).take(size).cloned().collect();
    let key = if r.path() == "/assignment/accounts" {
        "accountList"
    } else {
        "roleList"
    };
    let mut answer = serde_json::json!({ key: page });
    if from + size < items.len() {
        answer["nextToken"] = (from + size).to_string().into();
    }
    (200, "application/json", answer.to_string())
}

fn role_credentials(account_id: &str, role_name: &str) -> String {
    let expiration = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp_millis();
    let key = portal_key(account_id, role_name);
    format!(
        r#"{{"roleCredentials":{{"accessKeyId":"{key}","secretAccessKey":"sso-secret","sessionToken":"sso-session-token","expiration":{expiration}}}}}"#
    )
}

/// A cached SSO token as `aws sso login` (AWS CLI v2) writes it for an `sso-session`:
/// `~/.aws/sso/cache/<sha1 of the session name>.json`, 0600. With `refresh`, it carries the
/// client registration and refresh token that let aws-config refresh it through SSO OIDC.
pub fn write_token_cache(
    home: &Path,
    session: &str,
    access_token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    refresh: bool,
) {
    use sha1::Digest;
    let dir = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&dir).unwrap();
    let key: String = sha1::Sha1::digest(session.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut token = serde_json::json!({
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": access_token,
        "expiresAt": stamp(expires_at),
    });
    if refresh {
        token["clientId"] = "client-1".into();
        token["clientSecret"] = "client-secret-1".into();
        token["registrationExpiresAt"] =
            stamp(chrono::Utc::now() + chrono::Duration::days(90)).into();
        token["refreshToken"] = "refresh-1".into();
    }
    write_private(&dir.join(format!("{key}.json")), token.to_string());
}

/// A daemon whose base profile is [`SSO_SESSION_PROFILE`]'s `identity` (in `~/.aws/config`, no
/// credentials file), with one role, `example`, the default; its SSO session's cached token is
/// `access_token`, expiring at `expires_at`; STS is `sts`, Identity Center is `center`.
pub fn sso_daemon(
    center: &IdentityCenter,
    sts: &FakeSts,
    access_token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Daemon {
    sso_daemon_with(center, sts, access_token, expires_at, false)
}

/// [`sso_daemon`] whose login ended an hour ago, with no refresh token: every role needs
/// `fintors login`.
pub fn ended_login_daemon(center: &IdentityCenter, sts: &FakeSts) -> Daemon {
    sso_daemon(
        center,
        sts,
        "expired-access-token",
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
}

/// [`sso_daemon`], the cached token carrying a refresh token (`refresh-1`) if `refresh`.
pub fn sso_daemon_with(
    center: &IdentityCenter,
    sts: &FakeSts,
    access_token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    refresh: bool,
) -> Daemon {
    sso_builder(center, sts, access_token, expires_at, refresh).start()
}

/// [`sso_daemon_with`], not started yet.
pub fn sso_builder(
    center: &IdentityCenter,
    sts: &FakeSts,
    access_token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    refresh: bool,
) -> DaemonBuilder {
    let builder = Daemon::builder(
        r#"{"credentials": {"profile": "identity"},
            "roles": {"example": "arn:aws:iam::123456789012:role/example"},
            "default_role": "example"}"#,
    )
    .sts(&sts.url)
    .file(".aws/config", SSO_SESSION_PROFILE)
    .without_env("AWS_CONFIG_FILE");
    write_token_cache(&builder.path(""), "corp", access_token, expires_at, refresh);
    let [sso, oidc] = center.endpoints();
    builder.env(sso.0, &sso.1).env(oidc.0, &oidc.1)
}

/// `~/.aws/config` with the session only: no profile, no base credentials anywhere.
pub const SESSION_ONLY: &str = "[sso-session corp]\n\
    sso_start_url = https://corp.awsapps.com/start\n\
    sso_region = us-east-1\n\
    sso_registration_scopes = sso:account:access\n";

/// Where a test's daemon finds the SSO portal and OIDC: both on loopback, always.
pub trait Endpoints {
    fn endpoints(&self) -> [(&'static str, String); 2];
}

impl Endpoints for IdentityCenter {
    fn endpoints(&self) -> [(&'static str, String); 2] {
        IdentityCenter::endpoints(self)
    }
}

/// The session `corp`'s cached login: its access token, which expires in `hours` (past if
/// negative), and whether the cache holds a refresh token for it.
pub struct Login {
    token: &'static str,
    hours: i64,
    refreshable: bool,
}

/// A login valid for eight more hours.
pub const VALID: Login = Login {
    token: "valid-token",
    hours: 8,
    refreshable: false,
};

/// A login whose access token expired an hour ago, with no refresh token.
pub const LAPSED: Login = expired("old-token", false);

/// A login whose access token expired an hour ago.
pub const fn expired(token: &'static str, refreshable: bool) -> Login {
    Login {
        token,
        hours: -1,
        refreshable,
    }
}

/// A daemon with `config` and `~/.aws/config` holding `profiles`, the session `corp` logged
/// in as `login` says, both SSO endpoints at `center`.
pub fn daemon_with(
    center: &dyn Endpoints,
    sts: &FakeSts,
    config: &str,
    profiles: &str,
    login: Login,
) -> Daemon {
    let builder = Daemon::builder(config)
        .sts(&sts.url)
        .file(".aws/config", profiles)
        .without_env("AWS_CONFIG_FILE");
    let expires = chrono::Utc::now() + chrono::Duration::hours(login.hours);
    write_token_cache(
        &builder.path(""),
        "corp",
        login.token,
        expires,
        login.refreshable,
    );
    center
        .endpoints()
        .iter()
        .fold(builder, |b, (name, url)| b.env(name, url))
        .start()
}
