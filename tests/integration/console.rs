//! `fintors console`: a console sign-in URL for a role's session, through a fake federation
//! endpoint on 127.0.0.1 (`FINTORS_FEDERATION_ENDPOINT`), as the IAM User Guide's "Enable custom
//! identity broker access to the AWS console" describes the exchange.

use std::collections::HashMap;

use crate::require_client;
use crate::support::clients::{chromium, headless_browser};
use crate::support::sso::{IdentityCenter, SSO_ACCESS_KEY, sso_builder};
use crate::support::{
    Daemon, DaemonBuilder, FakeServer, FakeSts, fintors_cli_with, http, write_script,
};

const CREDS: &str = "/latest/meta-data/iam/security-credentials/example";
const SIGNIN_TOKEN: &str = "signin-token-not-for-logs";

/// A federation endpoint that hands out [`SIGNIN_TOKEN`] for any session.
fn federation() -> FakeServer {
    FakeServer::start(|r| match r.query("Action") {
        Some("getSigninToken") => (
            200,
            "application/json",
            format!(r#"{{"SigninToken":"{SIGNIN_TOKEN}"}}"#),
        ),
        _ => (400, "text/plain", "bad request".into()),
    })
}

/// The daemon with static base keys (profile `identity`), STS `sts`, federation `fed`.
fn daemon(config: &str, sts: &FakeSts, fed: &FakeServer) -> Daemon {
    builder(config, sts, fed).start()
}

/// [`daemon`], not started yet.
fn builder(config: &str, sts: &FakeSts, fed: &FakeServer) -> DaemonBuilder {
    Daemon::builder(config).sts(&sts.url).env(
        "FINTORS_FEDERATION_ENDPOINT",
        &format!("{}/federation", fed.url),
    )
}

const ONE_ROLE: &str = r#"{"credentials": {"file": "CREDS", "profile": "identity"},
    "roles": {"example": "arn:aws:iam::123456789012:role/example"},
    "default_role": "example"}"#;

/// The query of `url`, decoded.
fn query(url: &str) -> HashMap<String, String> {
    let (_, query) = url.split_once('?').unwrap_or_else(|| panic!("{url}"));
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The getSigninToken requests the fake saw, each as its decoded query.
fn signin_requests(fed: &FakeServer) -> Vec<HashMap<String, String>> {
    fed.requests()
        .iter()
        .map(|r| query(&r.target))
        .filter(|q| q.get("Action").map(String::as_str) == Some("getSigninToken"))
        .collect()
}

fn console(d: &Daemon, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut argv = vec!["console"];
    argv.extend_from_slice(args);
    fintors_cli_with(&d.url(), &argv, envs)
}

#[test]
fn console_print_gives_a_sign_in_url_whose_token_came_from_the_roles_cached_session() {
    let (sts, fed) = (FakeSts::issuing(), federation());
    let d = daemon(ONE_ROLE, &sts, &fed);
    let served = d.get(CREDS).json();
    let o = console(&d, &["example", "--print"], &[]);
    assert!(o.status.success(), "{o:?}");
    let stdout = String::from_utf8(o.stdout).unwrap();
    let url = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        url.starts_with(&format!("{}/federation?", fed.url)),
        "{url}"
    );
    let login = query(url);
    assert_eq!(login["Action"], "login");
    assert_eq!(login["Issuer"], "fintors");
    assert_eq!(login["SigninToken"], SIGNIN_TOKEN);
    assert_eq!(
        login["Destination"],
        "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"
    );
    let calls = signin_requests(&fed);
    assert_eq!(calls.len(), 1);
    assert!(
        fed.requests()[0]
            .target
            .starts_with("/federation?Action=getSigninToken&"),
        "{}",
        fed.requests()[0].target
    );
    let session: serde_json::Value = serde_json::from_str(&calls[0]["Session"]).unwrap();
    assert_eq!(session["sessionId"], served["AccessKeyId"]);
    assert_eq!(session["sessionKey"], served["SecretAccessKey"]);
    assert_eq!(session["sessionToken"], served["Token"]);
    assert!(!calls[0].contains_key("SessionDuration"));
    assert_eq!(
        sts.calls().len(),
        1,
        "the cached session, no second AssumeRole"
    );
    let log = d.stderr();
    assert!(
        !log.contains(SIGNIN_TOKEN) && !log.contains(served["SecretAccessKey"].as_str().unwrap()),
        "{log}"
    );
}

#[test]
fn a_duration_and_a_service_reach_the_federation_endpoint_in_the_roles_region() {
    let (sts, fed) = (FakeSts::issuing(), federation());
    let d = daemon(
        r#"{"credentials": {"file": "CREDS", "profile": "identity"},
            "roles": {"ops": {"arn": "arn:aws:iam::123456789012:role/ops",
                              "region": "eu-west-1"}}}"#,
        &sts,
        &fed,
    );
    let o = console(
        &d,
        &[
            "ops",
            "--print",
            "--duration",
            "3600",
            "--destination",
            "s3",
        ],
        &[],
    );
    assert!(o.status.success(), "{o:?}");
    let login = query(String::from_utf8(o.stdout).unwrap().trim());
    assert_eq!(
        login["Destination"],
        "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1"
    );
    assert_eq!(signin_requests(&fed)[0]["SessionDuration"], "3600");
}

#[test]
fn a_role_assumed_from_sso_signs_in_with_a_session_of_its_own_assumed_without_duration_seconds() {
    let center = IdentityCenter::start(&["valid-token"]);
    let (sts, fed) = (FakeSts::issuing(), federation());
    let expires = chrono::Utc::now() + chrono::Duration::hours(8);
    let d = sso_builder(&center, &sts, "valid-token", expires, false)
        .env(
            "FINTORS_FEDERATION_ENDPOINT",
            &format!("{}/federation", fed.url),
        )
        .start();
    let served = d.get(CREDS).json();
    assert_eq!(served["Code"], "Success", "{served}");
    let o = console(&d, &["--print"], &[]);
    assert!(o.status.success(), "{o:?}");
    let calls = sts.calls();
    assert_eq!(
        calls.len(),
        2,
        "the served session, and one for the console"
    );
    assert!(calls[0].body.contains("DurationSeconds="));
    assert!(
        !calls[1].body.contains("DurationSeconds"),
        "the federation endpoint refuses a session assumed from temporary credentials with \
         DurationSeconds: {}",
        calls[1].body
    );
    assert_eq!(calls[1].access_key, SSO_ACCESS_KEY);
    let session: serde_json::Value =
        serde_json::from_str(&signin_requests(&fed)[0]["Session"]).unwrap();
    assert_ne!(session["sessionId"], served["AccessKeyId"]);
    assert!(
        session["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("ASIAROLE")
    );

    let o = console(&d, &["--print", "--duration", "3600"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--duration needs a role assumed from long-term keys")
            && stderr.len() <= 200,
        "{stderr}"
    );
}

/// `fintors console` with a `$BROWSER` that records the URL it was given: the CLI's output
/// and that URL.
fn open_in_browser(d: &Daemon) -> (std::process::Output, String) {
    let opened = d.dir.path().join("opened");
    let browser = d.dir.path().join("browser");
    write_script(
        &browser,
        &format!("printf '%s' \"$1\" > {}\n", opened.display()),
    );
    let o = console(d, &[], &[("BROWSER", browser.to_str().unwrap())]);
    assert!(o.status.success(), "{o:?}");
    (o, std::fs::read_to_string(&opened).unwrap())
}

#[test]
fn the_browser_gets_a_one_use_link_and_without_a_display_the_url_goes_to_stdout() {
    let (sts, fed) = (FakeSts::issuing(), federation());
    let log = tempfile::tempdir().unwrap();
    let access_log = log.path().join("access.log");
    let d = builder(ONE_ROLE, &sts, &fed)
        .arg("--log")
        .arg(access_log.to_str().unwrap())
        .start();
    let (o, link) = open_in_browser(&d);
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(
        stdout.starts_with("opened the AWS console as example at https://us-east-1.console")
            && !stdout.contains(SIGNIN_TOKEN),
        "{stdout}"
    );
    // What the opener's command line held (readable by every user): no sign-in token, only
    // the daemon's link, which redirects to the sign-in URL once.
    assert!(!link.contains(SIGNIN_TOKEN), "{link}");
    let path = link
        .strip_prefix(&d.url())
        .unwrap_or_else(|| panic!("{link}"));
    assert!(path.starts_with("/fintors/console/"), "{path}");
    let redirect = http(d.addr, "GET", path, &[("Sec-Fetch-Site", "none")], "");
    assert_eq!(redirect.status, 302, "{redirect:?}");
    assert_eq!(redirect.header("cache-control"), Some("no-store"));
    assert_eq!(redirect.header("referrer-policy"), Some("no-referrer"));
    let signin = redirect.header("location").unwrap();
    assert!(signin.starts_with(&format!("{}/federation?", fed.url)));
    assert_eq!(query(signin)["SigninToken"], SIGNIN_TOKEN);
    let again = http(d.addr, "GET", path, &[], "");
    assert_eq!(again.status, 404, "one use: {again:?}");
    assert!(!d.stderr().contains(SIGNIN_TOKEN));
    let logged = crate::support::access_log(&access_log);
    assert!(
        logged.contains("POST /roles/example/console") && !logged.contains(SIGNIN_TOKEN),
        "{logged}"
    );

    // No $BROWSER, no DISPLAY (as over SSH): printed, for the user to open elsewhere.
    let o = console(&d, &[], &[]);
    assert!(o.status.success(), "{o:?}");
    let printed = String::from_utf8(o.stdout).unwrap();
    assert_eq!(query(printed.trim())["SigninToken"], SIGNIN_TOKEN);
}

#[test]
fn a_web_page_cannot_redeem_a_console_link() {
    let (sts, fed) = (FakeSts::issuing(), federation());
    let d = daemon(ONE_ROLE, &sts, &fed);
    let (_, link) = open_in_browser(&d);
    let path = link.strip_prefix(&d.url()).unwrap();
    let cross_site = http(d.addr, "GET", path, &[("Sec-Fetch-Site", "cross-site")], "");
    assert_eq!(cross_site.status, 403, "{cross_site:?}");
    assert!(cross_site.header("location").is_none());
}

#[test]
fn a_federation_refusal_is_one_line_naming_the_endpoint() {
    let sts = FakeSts::issuing();
    let fed = FakeServer::start(|_| {
        (
            400,
            "text/html",
            "<html>\n<body>Invalid credentials parameter</body>\n</html>".into(),
        )
    });
    let d = daemon(ONE_ROLE, &sts, &fed);
    let o = console(&d, &["--print"], &[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the federation endpoint {}/federation refused the sign-in (400)",
            fed.url
        )) && stderr.contains("Invalid credentials parameter"),
        "{stderr}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn with_imdsv2_required_a_console_sign_in_needs_a_session_token_as_credentials_do() {
    let (sts, fed) = (FakeSts::issuing(), federation());
    let d = builder(ONE_ROLE, &sts, &fed)
        .arg("--imdsv2-required")
        .start();
    let without = http(
        d.addr,
        "POST",
        "/roles/example/console",
        &[("Content-Type", "application/json")],
        "{}",
    );
    assert_eq!(without.status, 401, "{without:?}");
    assert!(signin_requests(&fed).is_empty());
    let o = console(&d, &["--print"], &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(signin_requests(&fed).len(), 1);
}

#[test]
fn a_real_browser_follows_the_console_link_to_the_sign_in_url() {
    let chromium = require_client!(chromium());
    let sts = FakeSts::issuing();
    let fed = FakeServer::start(|r| match r.query("Action") {
        Some("getSigninToken") => (
            200,
            "application/json",
            format!(r#"{{"SigninToken":"{SIGNIN_TOKEN}"}}"#),
        ),
        Some("login") => (
            200,
            "text/html",
            "<html><body>signed in</body></html>".into(),
        ),
        _ => (404, "text/plain", "".into()),
    });
    let d = daemon(ONE_ROLE, &sts, &fed);
    let dir = d.dir.path();
    let browser = headless_browser(dir, &chromium, None);
    let o = console(&d, &[], &[("BROWSER", browser.to_str().unwrap())]);
    assert!(o.status.success(), "{o:?}");
    let page = std::fs::read_to_string(dir.join("page.html")).unwrap();
    assert!(page.contains("signed in"), "{page}");
    let login = fed
        .requests()
        .into_iter()
        .find(|r| r.query("Action") == Some("login"))
        .expect("the browser reached the sign-in URL");
    assert_eq!(query(&login.target)["SigninToken"], SIGNIN_TOKEN);
    assert_eq!(login.header("sec-fetch-site"), Some("none"));
}
