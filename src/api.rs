//! The wire protocol of fintors's own API: the role API (finto's `/roles`), the status, reload
//! and MFA routes, and the admin listener's bootstrap body. Each route path and each message is
//! defined once here; the daemon's handlers serialize these types and the client subcommands
//! parse the same ones, so the two cannot drift apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Secret;

/// Route paths, in axum's syntax where they take a parameter.
pub mod paths {
    pub const ROLES: &str = "/roles";
    pub const ROLE: &str = "/roles/{alias}";
    pub const ROLE_CREDENTIALS: &str = "/roles/{alias}/credentials";
    pub const MFA: &str = "/mfa";
    pub const STATUS: &str = "/fintors/status";
    pub const RELOAD: &str = "/fintors/reload";
    /// What `fintors login` sends once the user has logged in: retry every failing role now.
    pub const RETRY: &str = "/fintors/retry";
    /// `fintors sync`: list the Identity Center sessions' accounts and roles again now.
    pub const SYNC: &str = "/fintors/sync";
    /// The certificate of the key that signs the identity document (PEM).
    pub const IDENTITY_CERTIFICATE: &str = "/fintors/identity-certificate";
    /// `fintors simulate`: start or clear a simulated instance event.
    pub const SIMULATE: &str = "/fintors/simulate";
    /// A console sign-in URL for a role's session.
    pub const ROLE_CONSOLE: &str = "/roles/{alias}/console";
    /// A console sign-in handed to the browser: one use, a minute at most.
    pub const CONSOLE_HANDOFF: &str = "/fintors/console/{nonce}";
    /// The container credentials endpoint: the active role, and a named one.
    pub const CONTAINER_ACTIVE: &str = "/creds";
    pub const CONTAINER_ROLE: &str = "/creds/{alias}";
    /// The admin listener.
    pub const HEALTH: &str = "/healthz";
    pub const READY: &str = "/status";
    pub const BOOTSTRAP: &str = "/bootstrap/creds";

    /// `GET /roles?status=active`: the active role, as a one-element list.
    pub fn active_role() -> String {
        format!("{ROLES}?status=active")
    }

    pub fn role_credentials(alias: &str) -> String {
        format!("{ROLES}/{alias}/credentials")
    }

    pub fn role_console(alias: &str) -> String {
        format!("{ROLES}/{alias}/console")
    }

    pub fn console_handoff(nonce: &str) -> String {
        format!("/fintors/console/{nonce}")
    }

    /// Whether `path` is fintors's own API on the IMDS listener, which under
    /// `--imdsv2-required` needs an IMDS session like everything under `/latest/`: its GETs show
    /// role ARNs and account ids that a server-side request forgery could otherwise read. Not the
    /// console handoff, which a browser opens (it cannot send the header; its nonce is its
    /// secret).
    pub fn in_api(path: &str) -> bool {
        let api = path == ROLES
            || path.starts_with("/roles/")
            || path == MFA
            || path.starts_with("/fintors/");
        api && !path.starts_with("/fintors/console/")
    }

    /// Whether `path` hands out a role's powers: its credentials (`/roles/ALIAS/credentials`)
    /// or a console sign-in as it (`/roles/ALIAS/console`), which need an IMDS session under
    /// `--imdsv2-required` like the IMDS credential paths.
    pub fn grants_a_role(path: &str) -> bool {
        path.strip_prefix("/roles/")
            .and_then(|rest| {
                rest.strip_suffix("/credentials")
                    .or_else(|| rest.strip_suffix("/console"))
            })
            .is_some_and(|alias| !alias.is_empty() && !alias.contains('/'))
    }
}

/// What EC2 does to a Spot Instance it interrupts (`spot/instance-action`'s `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotAction {
    Terminate,
    Stop,
    Hibernate,
}

/// A scheduled event's `Code`, as EC2 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceCode {
    SystemReboot,
    InstanceReboot,
    SystemMaintenance,
    InstanceRetirement,
    InstanceStop,
}

/// `POST /fintors/simulate`: an instance event to simulate, or `clear` to end them all. Times
/// are counted from when the daemon receives the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Simulate {
    /// A Spot interruption notice: the instance is `action`ed `in_seconds` from now.
    SpotInterruption { action: SpotAction, in_seconds: u32 },
    /// A rebalance recommendation, noticed now.
    Rebalance,
    /// A scheduled event whose window opens `in_seconds` from now.
    Maintenance {
        code: MaintenanceCode,
        in_seconds: u32,
    },
    /// Auto Scaling's lifecycle target becomes `Terminated`.
    AsgTermination,
    /// No events: the instance as it was.
    Clear,
}

/// The answer to `POST /fintors/simulate`: each metadata path an event now adds or changes, and
/// its body, so the user sees what an application polling the instance will read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SimulationReport {
    pub served: Vec<ServedPath>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedPath {
    pub path: String,
    pub body: String,
}

/// `GET /roles`, `GET /roles?status=active`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleList {
    pub roles: Vec<String>,
}

/// `GET /roles?status=...`: the only filter.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleFilter {
    pub status: Option<String>,
}

/// The kind of a role reported by a daemon from before kinds: assumed.
fn assume() -> String {
    "assume".to_owned()
}

/// `GET /roles/<alias>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDescription {
    /// As in [`RoleReport::kind`].
    #[serde(default = "assume")]
    pub kind: String,
    pub arn: String,
    pub session_name: String,
}

/// `PUT /roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    pub alias: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchResponse {
    pub active_role: String,
}

/// `PUT /mfa`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaStarted {
    pub serial: String,
    #[serde(with = "crate::model::time")]
    pub expires: DateTime<Utc>,
}

/// Every refusal of the role, MFA and admin APIs: one line in `error`; when STS refused, also
/// its `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            code: None,
            message: None,
        }
    }
}

/// `POST /fintors/reload`: what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub config: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub active_role: Option<String>,
    /// Settings that changed but apply only after a restart.
    pub need_restart: Vec<String>,
}

/// `GET /fintors/status`: what `fintors status` and `fintors roles` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    /// The daemon's process id, for `fintors stop` (0 from a daemon too old to say).
    #[serde(default)]
    pub pid: u32,
    /// When that process started (Linux: `/proc/PID/stat`'s clock ticks after boot; `None`
    /// elsewhere and from older daemons). With `pid` it names the daemon's process even after
    /// the pid is used again, so `fintors stop` signals that process or none.
    #[serde(default)]
    pub process_started: Option<u64>,
    /// The configuration file it reads (and re-reads on reload).
    #[serde(default)]
    pub config: String,
    /// It serves on a socket systemd passed in (`LISTEN_FDS`): stopping the process does not
    /// stop the serving, since systemd starts it again at the next connection.
    #[serde(default)]
    pub socket_activated: bool,
    /// How far this machine's clock was from STS's at STS's last answer (`None`: no answer
    /// since the daemon started).
    #[serde(default)]
    pub clock_skew: Option<SkewReport>,
    pub active_role: Option<String>,
    pub imdsv2_required: bool,
    /// The container credentials endpoint's URL, when it is served. (Its tokens are never in
    /// a report: a client derives them from its own user's state directory.)
    pub container_endpoint: Option<String>,
    /// Each MFA device the roles use, and when its session expires (`None`: no session yet).
    #[serde(default)]
    pub mfa: Vec<MfaReport>,
    /// The IAM Identity Center sessions the credentials depend on: the base profile's, then
    /// those of imported roles' source profiles.
    #[serde(default)]
    pub sso: Vec<SsoReport>,
    /// The Identity Center sessions whose roles are discovered, and their listings.
    #[serde(default)]
    pub identity_center: Vec<DiscoveryReport>,
    pub roles: Vec<RoleReport>,
}

/// STS's clock against this machine's, from the `Date` of STS's last answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkewReport {
    /// STS's time minus this machine's, in seconds: positive when this clock is behind.
    pub seconds: i64,
    /// When that answer arrived.
    pub at: DateTime<Utc>,
}

/// One Identity Center session's listing (`identity_center` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryReport {
    /// The `[sso-session NAME]`.
    pub sso_session: String,
    /// The account-and-role pairs the last whole listing holds (0 before any).
    pub listed: usize,
    /// When that listing was made (`None`: never, here).
    pub listed_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, if it did (the last whole listing is still served).
    pub last_error: Option<ErrorReport>,
}

/// `POST /fintors/sync`: each session listed again, and what that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub identity_center: Vec<DiscoveryReport>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub active_role: Option<String>,
    /// The listing took longer than the answer waits: it goes on, and the roles follow.
    #[serde(default)]
    pub still_listing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoReport {
    /// `SSO session "corp"`.
    pub session: String,
    /// The `sso-session` section's name; `None` for a legacy profile (`sso_start_url`).
    #[serde(default)]
    pub sso_session: Option<String>,
    /// The profile that uses it.
    #[serde(default)]
    pub profile: String,
    /// When the cached access token expires or expired; `None`: no login cached on this
    /// machine.
    pub expires: Option<DateTime<Utc>>,
    /// When the login carries a refresh token, the daemon renews the access token ahead of its
    /// expiry until Identity Center ends the session, at the latest when the client
    /// registration ends: this time. `None`: the login ends at `expires`.
    #[serde(default)]
    pub renews_until: Option<DateTime<Utc>>,
    /// What logs in again: `aws sso login --sso-session corp`.
    pub login_command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaReport {
    pub serial: String,
    pub session_expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleReport {
    pub alias: String,
    /// Where its credentials come from: `assume` (STS AssumeRole of `arn`), `sso` (an IAM
    /// Identity Center permission set, whose `arn` is the role as the portal names it) or
    /// `process` (a credential command, whose `arn`, `account_id` and `role_name` are empty).
    #[serde(default = "assume")]
    pub kind: String,
    pub arn: String,
    /// The account and role name (of the ARN, or of the permission set).
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub role_name: String,
    /// The sso-session a permission set is asked with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_session: Option<String>,
    /// The account's name, for a discovered permission set (as the portal lists it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The role whose credentials assume this one (`"via"`), for a chained role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The program a credential-command role runs (its first word: the arguments may hold
    /// secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    pub session_name: String,
    /// The role's own region, if it names one: what `fintors exec` gives the command.
    #[serde(default)]
    pub region: Option<String>,
    pub active: bool,
    /// The cached credentials, if any can still be served.
    pub credentials: Option<CachedReport>,
    /// The last failure, unless credentials were issued after it (it no longer stands).
    pub last_error: Option<ErrorReport>,
    /// Calls that reached STS (or the portal, or the command).
    pub sts_calls: u64,
    /// Every attempt, including those that never reached STS (offline, no base credentials).
    #[serde(default)]
    pub attempts: u64,
    /// The credential requests answered for the role, per listener.
    pub served: ServedReport,
}

/// Who uses a role: its credential requests answered by each listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedReport {
    pub imds: DoorReport,
    pub container: DoorReport,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorReport {
    pub total: u64,
    /// In the last 15 minutes.
    pub last_15_minutes: u64,
    pub last_request: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedReport {
    pub last_updated: DateTime<Utc>,
    pub expiration: DateTime<Utc>,
    pub refresh_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// STS's error code, or fintors's own ([`SSO_LOGIN_REQUIRED`]).
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// The code of a role's error (and of its IMDS error document) while an IAM Identity Center
/// session it depends on has expired; the session itself is reported in [`StatusReport`]'s `sso`.
pub const SSO_LOGIN_REQUIRED: &str = "SsoLoginRequired";

/// The console session lengths the federation endpoint's `SessionDuration` allows, in seconds.
pub const CONSOLE_SESSION_SECONDS: std::ops::RangeInclusive<u32> = 900..=43200;

/// `POST /roles/<alias>/console`: what `fintors console` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleRequest {
    /// A console URL (`https://...`), or a service's console name (`s3`, `ec2`); `None`: the
    /// console's home page in the role's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The console session's length in seconds (900..=43200), as the federation endpoint's
    /// `SessionDuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    /// For a browser: answer with [`ConsoleUrl::handoff`], not the URL itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handoff: bool,
}

/// The answer to [`ConsoleRequest`]. The sign-in URL carries a sign-in token that opens the
/// console as the role for 15 minutes, so it is a [`Secret`]; a browser is given instead a
/// handoff path on the daemon that redirects to it once (an opener's and a browser's command
/// lines are readable by every user of the machine; the daemon refuses other users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleUrl {
    /// The sign-in URL, unless a handoff was asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::model::secret::serialize_exposed"
    )]
    pub url: Option<Secret>,
    /// `/fintors/console/<nonce>`, when a handoff was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
    /// Where the URL leads once signed in.
    pub destination: String,
    /// When the console session ends, if the federation endpoint was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_seconds: Option<u32>,
}

/// `POST /bootstrap/creds` on the admin listener: base credentials handed over at run time.
/// Write-only, so no `Serialize`, and its `Debug` shows no secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: Secret,
    #[serde(rename = "Token", default)]
    pub token: Option<Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_grant_a_role_are_recognised_by_shape() {
        assert!(paths::grants_a_role("/roles/dev/credentials"));
        assert!(paths::grants_a_role("/roles/d%65v/credentials"));
        assert!(paths::grants_a_role("/roles/dev/console"));
        for path in [
            "/roles",
            "/roles/dev",
            "/roles//credentials",
            "/roles/a/b/credentials",
            "/roles//console",
        ] {
            assert!(!paths::grants_a_role(path), "{path}");
        }
        assert_eq!(paths::role_credentials("dev"), "/roles/dev/credentials");
    }

    #[test]
    fn an_mfa_session_expiry_travels_in_ec2_form() {
        let started = MfaStarted {
            serial: "s".into(),
            expires: "2026-11-26T09:00:00Z".parse().unwrap(),
        };
        let json = serde_json::to_string(&started).unwrap();
        assert_eq!(json, r#"{"serial":"s","expires":"2026-11-26T09:00:00Z"}"#);
        assert_eq!(serde_json::from_str::<MfaStarted>(&json).unwrap(), started);
    }

    #[test]
    fn api_errors_carry_sts_codes_only_when_sts_refused() {
        let plain = serde_json::to_string(&ApiError::new("unknown role: x")).unwrap();
        assert_eq!(plain, r#"{"error":"unknown role: x"}"#);
    }

    #[test]
    fn a_bootstrap_body_debugs_without_its_secrets() {
        let body: BootstrapRequest = serde_json::from_str(
            r#"{"AccessKeyId": "AKIA", "SecretAccessKey": "s3cr3t", "Token": "t0k3n"}"#,
        )
        .unwrap();
        let debug = format!("{body:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("t0k3n"),
            "{debug}"
        );
    }
}
