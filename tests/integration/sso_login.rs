//! fintors's own IAM Identity Center login: `fintors login` signs in with the device code or in
//! a real browser with PKCE, against the fake SSO OIDC (`support::oidc`), with no AWS CLI on
//! PATH; the token file it leaves is the AWS CLI's, which the daemon (aws-config) and botocore
//! both use; the daemon renews the access token by itself; however many callers meet an
//! expired session, the user is told once and no token is asked for until they log in.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::clients::{chromium, headless_browser};
use crate::support::sso::{IdentityCenter, SSO_ACCESS_KEY, sso_builder, sso_daemon};
use crate::support::{Daemon, FakeSts, fintors_cli, wait_until, write_script};
use crate::{require_client, require_venv};

const CREDS: &str = "/latest/meta-data/iam/security-credentials/example";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn hours(n: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::hours(n)
}

/// The token file of the session `corp` in the daemon's home.
fn token_file(d: &Daemon) -> PathBuf {
    // sha1("corp")
    d.dir
        .path()
        .join(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json")
}

fn token(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(token_file(d)).unwrap()).unwrap()
}

/// `fintors ARGS` as the user's client: their home (the AWS config file, the token cache), the
/// fake Identity Center, and a PATH with no `aws` on it.
fn client(
    d: &Daemon,
    center: &IdentityCenter,
    args: &[&str],
    envs: &[(&str, &str)],
) -> std::process::Output {
    client_command(d, center, args, envs)
        .output()
        .expect("running fintors")
}

/// The command [`client`] runs, to be started by the caller.
fn client_command(
    d: &Daemon,
    center: &IdentityCenter,
    args: &[&str],
    envs: &[(&str, &str)],
) -> std::process::Command {
    let config = d.dir.path().join("fintorc.json");
    let home = d.dir.path().to_str().unwrap().to_owned();
    let state = d.state_dir();
    let mut all: Vec<(String, String)> = vec![
        ("HOME".into(), home),
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("FINTORS_STATE_DIR".into(), state.to_str().unwrap().into()),
    ];
    all.extend(
        center
            .endpoints()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone())),
    );
    all.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut argv = args.to_vec();
    argv.extend(["--config", config.to_str().unwrap()]);
    crate::support::fintors_cli_command(&d.url(), &argv, &borrowed)
}

#[test]
fn fintors_login_with_a_device_code_leaves_a_login_the_daemon_and_botocore_use() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let d = sso_daemon(&center, &sts, "old-token", hours(-1));
    assert_eq!(d.get(CREDS).json()["Code"], "SsoLoginRequired");
    let started = Instant::now();
    let o = client(
        &d,
        &center,
        &["login", "--device"],
        &[("PATH", "/nonexistent")],
    );
    let took = started.elapsed();
    eprintln!("device login took {took:?} (the fake asks to wait 1 s, then 1 s, then 6 s)");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stderr.contains(&format!(
            "open {}/device on any device and enter the code ABCD-EFGH",
            center.oidc.server.url
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("signed in to the SSO session \"corp\"; it renews itself"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("example: credentials until "),
        "served at once: {stdout}"
    );
    // Pending, slow down (5 s more), then the token: RFC 8628's polling, honoured.
    assert_eq!(center.oidc.token_calls(DEVICE_GRANT), 3);
    let clients = center.oidc.clients();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].grants, [DEVICE_GRANT, "refresh_token"]);
    assert_eq!(clients[0].scopes, ["sso:account:access"]);
    // The AWS CLI's token file, whole and private.
    let t = token(&d);
    assert_eq!(t["startUrl"], "https://corp.awsapps.com/start");
    assert_eq!(t["region"], "us-east-1");
    assert_eq!(t["accessToken"], "refreshed-access-token");
    assert_eq!(t["clientId"], "client-1");
    assert_eq!(t["clientSecret"], "secret-1");
    assert_eq!(t["refreshToken"], "refresh-2");
    let stamp = |v: &serde_json::Value| v.as_str().unwrap().len() == "2026-12-05T10:00:00Z".len();
    assert!(
        stamp(&t["expiresAt"]) && stamp(&t["registrationExpiresAt"]),
        "{t}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(token_file(&d))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
}

/// A daemon whose session had expired, and `fintors login --device` run for it.
fn logged_in() -> (IdentityCenter, FakeSts, Daemon) {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let d = sso_daemon(&center, &sts, "old-token", hours(-1));
    let o = client(&d, &center, &["login", "--device"], &[]);
    assert!(o.status.success(), "{o:?}");
    (center, sts, d)
}

#[test]
fn a_second_login_uses_the_cached_registration() {
    let (center, _sts, d) = logged_in();
    let o = client(&d, &center, &["login", "--device"], &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        center.oidc.clients().len(),
        1,
        "registered once, for 90 days"
    );
    assert_eq!(token(&d)["accessToken"], "access-token-2");
}

#[test]
fn botocores_sso_provider_uses_the_login_fintors_wrote() {
    let venv = require_venv!();
    let (center, _sts, d) = logged_in();
    let script =
        "import boto3\nprint(boto3.Session(profile_name='identity').get_credentials().access_key)";
    let mut python = std::process::Command::new(venv.join("bin/python"));
    python
        .args(["-c", script])
        .env_clear()
        .env("HOME", d.dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in center.endpoints() {
        python.env(k, v);
    }
    let o = python.output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), SSO_ACCESS_KEY);
    assert_eq!(
        center.credential_calls().last().map(String::as_str),
        Some("refreshed-access-token"),
        "botocore asked the portal with fintors's token"
    );
}

#[test]
fn fintors_login_signs_in_with_pkce_in_a_real_browser() {
    let chromium = require_client!(chromium());
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let d = sso_daemon(&center, &sts, "old-token", hours(-1));
    let dir = d.dir.path();
    // Headless and kept on this machine, as in the console test; the link it was given is
    // recorded, to show what a command line carries.
    let browser = headless_browser(dir, &chromium, Some(&dir.join("browser-arg")));
    let started = Instant::now();
    let o = client(
        &d,
        &center,
        &["login"],
        &[("BROWSER", browser.to_str().unwrap())],
    );
    eprintln!("browser login took {:?}", started.elapsed());
    assert!(o.status.success(), "{o:?}");
    // The browser is not waited for: it writes the page it ended on when it exits.
    let page = || std::fs::read_to_string(dir.join("page.html")).unwrap_or_default();
    wait_until(Duration::from_secs(20), || page().contains("</html>"), page);
    assert!(
        page().contains("Signed in to IAM Identity Center"),
        "{}",
        page()
    );
    // Only the one-use loopback link is on the browser's command line: no state, no challenge.
    let arg = std::fs::read_to_string(dir.join("browser-arg")).unwrap();
    let nonce = arg
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split_once("/start/"))
        .map(|(_, nonce)| nonce)
        .unwrap_or_default();
    assert!(
        nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "{arg}"
    );
    let clients = center.oidc.clients();
    assert_eq!(clients[0].grants, ["authorization_code", "refresh_token"]);
    assert_eq!(
        clients[0].redirect_uris,
        ["http://127.0.0.1/oauth/callback"]
    );
    assert_eq!(center.oidc.token_calls("authorization_code"), 1);
    assert_eq!(token(&d)["accessToken"], "refreshed-access-token");
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
}

#[test]
fn the_daemon_renews_the_access_token_and_serves_past_its_expiry() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    // A login whose access token expires in 4 s; its refresh token works.
    let expires = chrono::Utc::now() + chrono::Duration::seconds(4);
    let d = sso_builder(&center, &sts, "short-token", expires, true).start();
    let took = wait_until(
        Duration::from_secs(30),
        || token(&d)["accessToken"] == "refreshed-access-token",
        || format!("not renewed: {}", d.stderr()),
    );
    eprintln!("renewed {took:?} after start");
    std::thread::sleep(Duration::from_secs(5)); // past the first access token's expiry
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
    assert_eq!(
        center.oidc.token_calls("refresh_token"),
        1,
        "one CreateToken"
    );
    assert_eq!(center.credential_calls(), ["refreshed-access-token"]);
    let o = fintors_cli(&d, &["status"]);
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(
        status.contains("SSO session \"corp\": renewed by fintors until Identity Center ends"),
        "{status}"
    );
}

/// The `Code` of the credentials `callers` clients asked for at the same moment.
fn ask_at_once(d: &Daemon, callers: usize) -> Vec<String> {
    std::thread::scope(|s| {
        let asks: Vec<_> = (0..callers)
            .map(|_| s.spawn(|| d.get(CREDS).json()["Code"].as_str().unwrap().to_owned()))
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    })
}

#[test]
fn fifty_callers_of_an_expired_session_are_told_once_and_ask_for_no_token() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let builder = sso_builder(&center, &sts, "old-token", hours(-1), false);
    let bin = builder.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let told = builder.path("told");
    write_script(
        &bin.join("notify-send"),
        &format!("printf '%s\\n' \"$*\" >> {}\n", told.display()),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let d = builder.env("PATH", &path).start();
    let ask_fifty = |d: &Daemon| ask_at_once(d, 50);
    assert!(ask_fifty(&d).iter().all(|c| c == "SsoLoginRequired"));
    std::thread::sleep(Duration::from_secs(3)); // the watcher looks every 2 s
    assert!(ask_fifty(&d).iter().all(|c| c == "SsoLoginRequired"));
    let lines = std::fs::read_to_string(&told).unwrap_or_default();
    assert_eq!(lines.lines().count(), 1, "told once: {lines}");
    assert!(
        lines.contains("the SSO session \"corp\" has expired: run `fintors login`"),
        "{lines}"
    );
    assert_eq!(
        center.oidc.all_token_calls(),
        0,
        "no token asked for without the user"
    );
    assert!(
        client(&d, &center, &["login", "--device"], &[])
            .status
            .success()
    );
    let after_login = center.oidc.all_token_calls();
    assert!(ask_fifty(&d).iter().all(|c| c == "Success"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        center.oidc.all_token_calls(),
        after_login,
        "none after the login's"
    );
    assert_eq!(std::fs::read_to_string(&told).unwrap().lines().count(), 1);
}

#[test]
fn fintors_logout_ends_the_session_and_removes_the_login() {
    let (center, _sts, d) = logged_in();
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
    let o = client(&d, &center, &["logout"], &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "SSO session \"corp\": logged out\n"
    );
    let logouts: Vec<_> = center
        .portal
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/logout")
        .collect();
    assert_eq!(logouts.len(), 1);
    assert_eq!(
        logouts[0].header("x-amz-sso_bearer_token"),
        Some("refreshed-access-token")
    );
    assert!(!token_file(&d).exists());
    let after = d.get(CREDS).json();
    assert_eq!(
        after["Code"], "SsoLoginRequired",
        "the role's cached credentials are dropped by the time logout returns: {after}"
    );
    let o = client(&d, &center, &["logout"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "SSO session \"corp\": was not logged in\n"
    );
}

#[test]
fn a_login_another_tool_removed_stops_being_served_within_seconds() {
    let (_center, _sts, d) = logged_in();
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
    // What `aws sso logout` does: the token file goes, and fintors is not told.
    std::fs::remove_file(token_file(&d)).unwrap();
    let took = wait_until(
        Duration::from_secs(10),
        || d.get(CREDS).json()["Code"] != "Success",
        || format!("still served: {}", d.stderr()),
    );
    eprintln!("dropped {took:?} after the logout");
    let refused = d.get(CREDS).json();
    assert_eq!(refused["Code"], "SsoLoginRequired", "{refused}");
    assert!(
        refused["Message"]
            .as_str()
            .unwrap()
            .contains("has no cached login on this machine: run `fintors login`"),
        "{refused}"
    );
}

#[test]
fn a_refresh_token_identity_center_refused_is_never_sent_again() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let builder = sso_builder(&center, &sts, "old-token", hours(-1), true);
    // A refresh token the fake does not know: the session was ended on Identity Center's side.
    let file = builder.path(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
    let mut cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    cached["refreshToken"] = "revoked".into();
    std::fs::write(&file, cached.to_string()).unwrap();
    let d = builder.start();
    for _ in 0..3 {
        let codes = ask_at_once(&d, 20);
        assert!(codes.iter().all(|c| c == "SsoLoginRequired"), "{codes:?}");
        std::thread::sleep(Duration::from_secs(3)); // past the first backoffs and watches
    }
    assert_eq!(
        center.oidc.token_calls("refresh_token"),
        1,
        "the daemon's renewal, the base credentials' loads and the retries: one CreateToken"
    );
}

/// `~/.aws/config` with a legacy profile `identity`: the start URL in the profile itself.
const LEGACY_PROFILE: &str = "[profile identity]\n\
    sso_start_url = https://corp.awsapps.com/start\n\
    sso_region = us-east-1\n\
    sso_account_id = 111122223333\n\
    sso_role_name = Developer\n\
    region = us-east-1\n";

#[test]
fn a_legacy_profile_is_signed_in_to_by_fintors_without_the_aws_cli_and_renewable() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let [sso, oidc] = center.endpoints();
    let d = crate::support::Daemon::builder(
        r#"{"credentials": {"profile": "identity"},
            "roles": {"example": "arn:aws:iam::123456789012:role/example"},
            "default_role": "example"}"#,
    )
    .sts(&sts.url)
    .file(".aws/config", LEGACY_PROFILE)
    .without_env("AWS_CONFIG_FILE")
    .env(sso.0, &sso.1)
    .env(oidc.0, &oidc.1)
    .start();
    let before = d.get(CREDS).json();
    assert_eq!(before["Code"], "SsoLoginRequired", "{before}");
    assert!(
        before["Message"]
            .as_str()
            .unwrap()
            .ends_with("has no cached login on this machine: run `fintors login`"),
        "{before}"
    );
    let o = client(
        &d,
        &center,
        &["login", "--device"],
        &[("PATH", "/nonexistent")],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stderr.contains("signed in to the SSO login of profile identity; it renews itself"),
        "{stderr}"
    );
    // Where aws-config's and botocore's legacy providers look: the SHA-1 of the start URL.
    let file = d
        .dir
        .path()
        .join(".aws/sso/cache/a51746d4aa793ae07b25e90c3a5db96fc7832bd7.json");
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(t["startUrl"], crate::support::sso::START_URL);
    assert!(t["refreshToken"].is_string(), "renewable: {t}");
    assert_eq!(d.get(CREDS).json()["Code"], "Success");
    assert_eq!(center.credential_calls().len(), 1, "through the portal");
}

/// The browser's link is on its command line, which every user of the machine can read
/// (`/proc/PID/cmdline`), and the callback's port is anyone's to connect to. Another user who
/// tries the link, or answers for the browser, gets no answer at all: not the authorize URL
/// (the state, the challenge), not the link spent, not the sign-in ended.
#[test]
fn another_user_can_neither_follow_the_sign_in_link_nor_answer_for_the_browser() {
    if !crate::other_users::can_switch_users() {
        return;
    }
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let d = sso_daemon(&center, &sts, "old-token", hours(-1));
    let dir = d.dir.path();
    let link_file = dir.join("link");
    let browser = dir.join("record-link");
    write_script(
        &browser,
        &format!(
            "printf '%s' \"$1\" > {0}.part && mv {0}.part {0}\n",
            link_file.display()
        ),
    );
    let envs = [("BROWSER", browser.to_str().unwrap())];
    // A process, killed if the test fails: a spent link would leave it waiting 10 minutes.
    let login = client_command(&d, &center, &["login"], &envs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let login = KillOnDrop(Some(login));
    wait_until(
        Duration::from_secs(20),
        || link_file.exists(),
        || "no link given".into(),
    );
    let link = std::fs::read_to_string(&link_file).unwrap();
    let port = link
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split_once('/'))
        .map(|(port, _)| port.to_owned())
        .unwrap();
    let attack = crate::other_users::attacker_output(&format!(
        "for url in '{link}' \
             'http://127.0.0.1:{port}/oauth/callback?code=evil&state=guess' \
             'http://127.0.0.1:{port}/oauth/callback?error=access_denied'; do \
           curl -sS -D - --max-time 5 \"$url\"; echo \" curl=$?\"; \
         done"
    ));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&attack.stdout),
        String::from_utf8_lossy(&attack.stderr)
    );
    assert!(
        !said.contains("HTTP/") && !said.contains("curl=0"),
        "another user was answered: {said}"
    );
    assert_eq!(said.matches(" curl=").count(), 3, "{said}");
    // The user's own browser, after all that: the link still works, the sign-in completes.
    let owner = std::process::Command::new("curl")
        .args(["-sS", "-L", "--max-time", "20", &link])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&owner.stdout).contains("Signed in to IAM Identity Center"),
        "{owner:?}"
    );
    let login = login.wait_with_output();
    assert!(login.status.success(), "{login:?}");
    assert_eq!(center.oidc.token_calls("authorization_code"), 1);
    assert_eq!(token(&d)["accessToken"], "refreshed-access-token");
}

/// A child process killed when dropped, unless waited for.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn wait_with_output(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
