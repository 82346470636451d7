//! Every route's contract, in-process: the real apps (`App::call`, what the accept loop and the
//! fuzz targets call) over the state `daemon::build_state` builds, with the shared `ScriptedAssumer`,
//! so no emulator and no socket. The JSON answers are read with the wire types of
//! `fintors::api`, the ones the client subcommands use: a handler and the client cannot drift.

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};

use fintors::api::{
    ApiError, MfaStarted, ReloadReport, RoleDescription, RoleList, ServedPath, Simulate,
    SimulationReport, StatusReport, SwitchResponse, paths,
};
use fintors::config::Config;
use fintors::credentials::MfaSessions;
use fintors::credentials::discovery::Discovery;
use fintors::credentials::scripted::ScriptedAssumer;
use fintors::daemon::{Settings, build_state};
use fintors::ec2::container_tokens::{ContainerKey, Scope};
use fintors::ec2::document::CredentialsDocument;
use fintors::ec2::instance::Instance;
use fintors::ec2::tokens::Tokens;
use fintors::http::guard::Guard;
use fintors::http::{App, AppState, admin, container_app, imds_app};
use fintors::model::{Clock, Region};

use crate::support::{FakeSts, issued};

const CONFIG: &str = r#"{
  "roles": {
    "dev": "arn:aws:iam::123456789012:role/dev",
    "ops": { "arn": "arn:aws:iam::210987654321:role/team/ops", "session_name": "alice", "region": "eu-west-1" },
    "broken": "arn:aws:iam::123456789012:role/broken",
    "mfa": { "arn": "arn:aws:iam::123456789012:role/mfa", "mfa_serial": "arn:aws:iam::123456789012:mfa/me" }
  },
  "default_role": "dev",
  "instance": { "region": "us-west-2", "availability_zone": "us-west-2b" }
}"#;

const IMDS: &str = "127.0.0.1:16925";
const CONTAINER: &str = "127.0.0.1:16926";
const ADMIN: &str = "127.0.0.1:16927";
/// The container endpoint's key; each test derives the token it needs, as the client does.
fn container_key() -> ContainerKey {
    ContainerKey::from_key([7; 32])
}

struct Daemon {
    imds: App,
    container: App,
    admin: App,
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
    _sts: FakeSts,
}

/// A daemon's apps over `build_state`; the MFA sessions' STS is a fake that issues sessions.
fn daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fintorc.json");
    crate::support::write_private(&path, CONFIG);
    let config = Config::parse(&path, CONFIG).unwrap();
    let sts = FakeSts::start(|call| issued(call, 1, chrono::Duration::hours(12)));
    let sts_client = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(&sts.url)
            .credentials_provider(aws_sdk_sts::config::Credentials::for_tests())
            .build(),
    );
    let mfa = MfaSessions::new(
        config.mfa.clone(),
        sts.url.clone(),
        sts_client,
        Clock::system(),
    );
    let instance = Instance::from_config(
        &config.instance,
        b"contract",
        &Region::parse("us-east-1").unwrap(),
        chrono::DateTime::UNIX_EPOCH,
    );
    let settings = Settings {
        listening: Default::default(),
        sts_clock: None,
        config_path: path,
        aws_profiles: false,
        imdsv2_required: false,
        socket_activated: false,
        federation_endpoint: None,
    };
    // AssumeRole without STS: `broken` is refused, `mfa` waits for its session.
    let assumer = Arc::new(
        ScriptedAssumer::new(Clock::system())
            .refusing("broken")
            .with_mfa(mfa.clone()),
    );
    let state = build_state(
        config,
        &settings,
        assumer,
        mfa,
        instance,
        Arc::new(Tokens::from_key([9; 32])),
        Clock::system(),
        None,
        Discovery::inert(Clock::system()),
        Arc::new(fintors::ec2::identity_signing::LazySigner::in_memory()),
    );
    let guard = |addr: &str| Arc::new(Guard::new(addr.parse().unwrap(), false));
    Daemon {
        imds: imds_app(state.clone(), guard(IMDS), None),
        container: container_app(
            state.clone(),
            Arc::new(Guard::for_containers(CONTAINER.parse().unwrap())),
            container_key(),
        ),
        admin: App::new(
            admin::app(
                state.clone(),
                guard(ADMIN),
                Arc::new(fintors::credentials::Bootstrap::default()),
                None,
            ),
            admin::refused,
        ),
        state,
        _dir: dir,
        _sts: sts,
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

const PEER: &str = "127.0.0.1:40000";

/// The request `call` sends.
fn request(
    addr: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request = request.header("host", addr);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    request
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap()
}

/// `method path` to `app` (bound at `addr`) from loopback, with `headers` and a JSON `body`.
async fn call(
    app: &App,
    addr: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let request = request(addr, method, path, headers, body);
    let response = app.call(request, PEER.parse().unwrap()).await;
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        content_type: parts
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

async fn imds(d: &Daemon, method: Method, path: &str) -> Answer {
    call(&d.imds, IMDS, method, path, &[], None).await
}

#[tokio::test]
async fn the_token_route_issues_tokens_and_refuses_other_methods() {
    let d = daemon();
    let ttl = [("x-aws-ec2-metadata-token-ttl-seconds", "60")];
    let token = call(&d.imds, IMDS, Method::PUT, "/latest/api/token", &ttl, None).await;
    assert_eq!(token.status, StatusCode::OK);
    assert!(!token.text().is_empty());
    let get = imds(&d, Method::GET, "/latest/api/token").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let options = imds(&d, Method::OPTIONS, "/latest/api/token").await;
    assert_eq!(options.status, StatusCode::OK);
}

#[tokio::test]
async fn the_credential_routes_list_the_active_role_and_serve_any_role() {
    let d = daemon();
    for listing in [
        "/latest/meta-data/iam/security-credentials/",
        "/latest/meta-data/iam/security-credentials-extended/",
    ] {
        assert_eq!(imds(&d, Method::GET, listing).await.text(), "dev");
    }
    let doc: CredentialsDocument = imds(
        &d,
        Method::GET,
        "/latest/meta-data/iam/security-credentials/ops",
    )
    .await
    .json();
    assert!(doc.credentials().is_some(), "{doc:?}");
    let extended: CredentialsDocument = imds(
        &d,
        Method::GET,
        "/latest/meta-data/iam/security-credentials-extended/ops",
    )
    .await
    .json();
    assert_eq!(extended.account_id.as_deref(), Some("210987654321"));
    let refused: CredentialsDocument = imds(
        &d,
        Method::GET,
        "/latest/meta-data/iam/security-credentials/broken",
    )
    .await
    .json();
    assert_eq!(refused.code, "AccessDenied");
    let info = imds(&d, Method::GET, "/latest/meta-data/iam/info").await;
    assert!(
        info.text().contains("instance-profile/dev"),
        "{}",
        info.text()
    );
}

#[tokio::test]
async fn the_metadata_tree_answers_with_the_instance_and_the_active_role() {
    let d = daemon();
    assert_eq!(
        imds(&d, Method::GET, "/latest/").await.text(),
        "dynamic\nmeta-data"
    );
    assert!(
        imds(&d, Method::GET, "/latest/meta-data/")
            .await
            .text()
            .contains("placement/")
    );
    assert_eq!(
        imds(
            &d,
            Method::GET,
            "/latest/meta-data/placement/availability-zone"
        )
        .await
        .text(),
        "us-west-2b"
    );
    assert_eq!(
        imds(&d, Method::GET, "/latest/dynamic/").await.text(),
        "fws/\ninstance-identity/"
    );
    assert_eq!(
        imds(&d, Method::GET, "/latest/dynamic/instance-identity/")
            .await
            .text(),
        "document\npkcs7\nrsa2048\nsignature"
    );
    let identity: serde_json::Value = imds(
        &d,
        Method::GET,
        "/latest/dynamic/instance-identity/document",
    )
    .await
    .json();
    assert_eq!(identity["accountId"], "123456789012");
    assert_eq!(identity["region"], "us-west-2");
    assert_eq!(
        imds(&d, Method::GET, "/latest/user-data").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_role_api_lists_describes_serves_and_switches() {
    let d = daemon();
    let all: RoleList = imds(&d, Method::GET, paths::ROLES).await.json();
    assert_eq!(all.roles, ["broken", "dev", "mfa", "ops"]);
    let active: RoleList = imds(&d, Method::GET, &paths::active_role()).await.json();
    assert_eq!(active.roles, ["dev"]);
    let ops: RoleDescription = imds(&d, Method::GET, "/roles/ops").await.json();
    assert_eq!(ops.session_name, "alice");
    let creds = imds(&d, Method::GET, &paths::role_credentials("ops")).await;
    assert_eq!(creds.content_type, "application/json");
    assert!(creds.json::<CredentialsDocument>().credentials().is_some());
    let switched = call(
        &d.imds,
        IMDS,
        Method::PUT,
        paths::ROLES,
        &[],
        Some(r#"{"alias":"ops"}"#),
    )
    .await;
    assert_eq!(switched.json::<SwitchResponse>().active_role, "ops");
    let refused = call(
        &d.imds,
        IMDS,
        Method::PUT,
        paths::ROLES,
        &[],
        Some(r#"{"alias":"broken"}"#),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        refused.json::<ApiError>().code.as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(
        d.state.registry.active().unwrap().role().alias.as_str(),
        "ops"
    );
    let unknown = imds(&d, Method::GET, "/roles/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json::<ApiError>().error, "unknown role: nope");
}

#[tokio::test]
async fn status_reports_every_role_in_the_wire_type() {
    let d = daemon();
    imds(
        &d,
        Method::GET,
        "/latest/meta-data/iam/security-credentials/dev",
    )
    .await;
    let report: StatusReport = imds(&d, Method::GET, paths::STATUS).await.json();
    assert_eq!(report.active_role.as_deref(), Some("dev"));
    assert_eq!(report.roles.len(), 4);
    assert_eq!(report.mfa.len(), 1);
    let dev = report.roles.iter().find(|r| r.alias == "dev").unwrap();
    assert!(dev.credentials.is_some() && dev.active);
}

#[tokio::test]
async fn reload_rereads_the_file_and_says_what_changed() {
    let d = daemon();
    let report: ReloadReport = call(&d.imds, IMDS, Method::POST, paths::RELOAD, &[], Some("{}"))
        .await
        .json();
    assert!(
        report.added.is_empty() && report.removed.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.active_role.as_deref(), Some("dev"));
}

#[tokio::test]
async fn simulate_starts_an_event_and_reports_what_is_served_in_the_wire_type() {
    let d = daemon();
    let body = serde_json::to_string(&Simulate::AsgTermination).unwrap();
    let report: SimulationReport = call(
        &d.imds,
        IMDS,
        Method::POST,
        paths::SIMULATE,
        &[],
        Some(&body),
    )
    .await
    .json();
    assert_eq!(
        report.served,
        [ServedPath {
            path: "/latest/meta-data/autoscaling/target-lifecycle-state".into(),
            body: "Terminated".into(),
        }]
    );
    let clear = serde_json::to_string(&Simulate::Clear).unwrap();
    let report: SimulationReport = call(
        &d.imds,
        IMDS,
        Method::POST,
        paths::SIMULATE,
        &[],
        Some(&clear),
    )
    .await
    .json();
    assert!(report.served.is_empty());
}

#[tokio::test]
async fn the_identity_certificate_is_served_as_pem() {
    let d = daemon();
    let answer = imds(&d, Method::GET, paths::IDENTITY_CERTIFICATE).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.text().starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn an_unknown_api_path_is_a_line_of_text_and_an_unknown_metadata_path_ec2s_page() {
    let d = daemon();
    let api = imds(&d, Method::GET, "/fintors/nothing").await;
    assert_eq!(
        (api.status, api.content_type.as_str()),
        (StatusCode::NOT_FOUND, "text/plain")
    );
    let metadata = imds(&d, Method::GET, "/latest/meta-data/nothing").await;
    assert_eq!(
        (metadata.status, metadata.content_type.as_str()),
        (StatusCode::NOT_FOUND, "text/html")
    );
}

#[tokio::test]
async fn an_mfa_code_starts_the_session_the_mfa_role_waits_for() {
    let d = daemon();
    let waiting: CredentialsDocument = imds(
        &d,
        Method::GET,
        "/latest/meta-data/iam/security-credentials/mfa",
    )
    .await
    .json();
    assert_eq!(waiting.code, "MfaRequired");
    let bad = call(
        &d.imds,
        IMDS,
        Method::PUT,
        paths::MFA,
        &[],
        Some(r#"{"code":"12"}"#),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let started: MfaStarted = call(
        &d.imds,
        IMDS,
        Method::PUT,
        paths::MFA,
        &[],
        Some(r#"{"code":"123456"}"#),
    )
    .await
    .json();
    assert_eq!(started.serial, "arn:aws:iam::123456789012:mfa/me");
    let served: CredentialsDocument = imds(
        &d,
        Method::GET,
        "/latest/meta-data/iam/security-credentials/mfa",
    )
    .await
    .json();
    assert!(served.credentials().is_some(), "{served:?}");
}

#[tokio::test]
async fn the_container_endpoint_serves_with_its_token_and_refuses_in_json() {
    let d = daemon();
    let key = container_key();
    for (path, scope) in [
        (paths::CONTAINER_ACTIVE, Scope::Active),
        ("/creds/ops", Scope::Role("ops")),
    ] {
        let token = key.token(scope);
        let auth = [("authorization", token.expose())];
        let ok = call(&d.container, CONTAINER, Method::GET, path, &auth, None).await;
        assert_eq!(ok.status, StatusCode::OK, "{path}");
        let doc: serde_json::Value = ok.json();
        assert!(doc["AccessKeyId"].is_string() && doc["RoleArn"].is_string());
    }
    let none = call(&d.container, CONTAINER, Method::GET, "/creds", &[], None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json::<serde_json::Value>()["Code"], "Unauthorized");
    let foreign = call(
        &d.container,
        CONTAINER,
        Method::GET,
        "/creds",
        &[("host", "evil.example")],
        None,
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(foreign.content_type, "application/json");
}

/// The fast paths answer what SDKs ask over and over without the router; each must answer
/// exactly as the routes do (status, every header, body) for every request it takes, and leave
/// the rest, refusals included, to them.
#[tokio::test]
async fn the_fast_paths_answer_exactly_as_the_routes_do() {
    let d = daemon();
    let token = d.state.tokens.issue(600, chrono::Utc::now().timestamp());
    let with_token = [("x-aws-ec2-metadata-token", token.as_str())];
    let bad_token = [("x-aws-ec2-metadata-token", "AAAA")];
    let ttl = |seconds| ("x-aws-ec2-metadata-token-ttl-seconds", seconds);
    let creds = "/latest/meta-data/iam/security-credentials";
    let token_path = "/latest/api/token".to_owned();
    let imds_requests: Vec<(Method, String, Headers, Taken)> = vec![
        (Method::PUT, token_path.clone(), vec![ttl("60")], FAST),
        (Method::PUT, token_path.clone(), vec![ttl("0")], FAST),
        (Method::PUT, token_path.clone(), vec![], FAST),
        (
            Method::PUT,
            token_path.clone(),
            vec![ttl("60"), ("x-forwarded-for", "10.0.0.1")],
            FAST,
        ),
        (
            Method::PUT,
            token_path.clone(),
            vec![ttl("60"), ("origin", "https://example.com")],
            ROUTED,
        ),
        (Method::GET, creds.into(), vec![], FAST),
        (Method::GET, format!("{creds}/"), with_token.to_vec(), FAST),
        (Method::GET, format!("{creds}/"), bad_token.to_vec(), ROUTED),
        (Method::GET, format!("{creds}-extended/"), vec![], ROUTED),
        (Method::GET, format!("{creds}/dev"), vec![], FAST),
        (Method::GET, format!("{creds}/dev?x=1"), vec![], FAST),
        (
            Method::GET,
            format!("{creds}/dev"),
            with_token.to_vec(),
            FAST,
        ),
        (
            Method::HEAD,
            format!("{creds}/dev"),
            with_token.to_vec(),
            ROUTED,
        ),
        (
            Method::GET,
            format!("{creds}-extended/ops"),
            with_token.to_vec(),
            FAST,
        ),
        (
            Method::GET,
            format!("{creds}/ops"),
            bad_token.to_vec(),
            ROUTED,
        ),
        (
            Method::GET,
            format!("{creds}/nope"),
            with_token.to_vec(),
            ROUTED,
        ),
        (
            Method::GET,
            format!("{creds}/broken"),
            with_token.to_vec(),
            ROUTED,
        ),
        (
            Method::GET,
            format!("{creds}/dev"),
            vec![("sec-fetch-site", "cross-site")],
            ROUTED,
        ),
        (
            Method::GET,
            format!("{creds}/dev"),
            vec![("host", "evil.example")],
            ROUTED,
        ),
    ];
    for (method, path, headers, taken) in &imds_requests {
        assert_same_answers(&d.imds, IMDS, method, path, headers, *taken).await;
    }

    // Under --imdsv2-required a request without a token is the router's 401.
    let v2 = Arc::new(AppState {
        imdsv2_required: true,
        ..(*d.state).clone()
    });
    let v2 = imds_app(v2, Arc::new(Guard::new(IMDS.parse().unwrap(), false)), None);
    let v2_requests: Vec<(Method, String, Headers, Taken)> = vec![
        (Method::PUT, token_path.clone(), vec![ttl("60")], FAST),
        (Method::GET, format!("{creds}/"), vec![], ROUTED),
        (Method::GET, format!("{creds}/dev"), vec![], ROUTED),
        (
            Method::GET,
            format!("{creds}/dev"),
            with_token.to_vec(),
            FAST,
        ),
    ];
    for (method, path, headers, taken) in &v2_requests {
        assert_same_answers(&v2, IMDS, method, path, headers, *taken).await;
    }

    let key = container_key();
    let ops = key.token(Scope::Role("ops"));
    let active = key.token(Scope::Active);
    let container_requests: Vec<(&str, Headers, Taken)> = vec![
        ("/creds/ops", vec![("authorization", ops.expose())], FAST),
        (
            paths::CONTAINER_ACTIVE,
            vec![("authorization", active.expose())],
            FAST,
        ),
        ("/creds/dev", vec![("authorization", ops.expose())], ROUTED),
        (
            paths::CONTAINER_ACTIVE,
            vec![("authorization", ops.expose())],
            ROUTED,
        ),
        ("/creds/ops", vec![], ROUTED),
        (
            "/creds/ops",
            vec![("authorization", ops.expose()), ("host", "evil.example")],
            ROUTED,
        ),
    ];
    for (path, headers, taken) in &container_requests {
        assert_same_answers(&d.container, CONTAINER, &Method::GET, path, headers, *taken).await;
    }
}

type Headers<'a> = Vec<(&'a str, &'a str)>;

/// Whether the fast path should take a request (`FAST`) or leave it to the router (`ROUTED`).
type Taken = bool;
const FAST: Taken = true;
const ROUTED: Taken = false;

/// `app` and `app` without its fast path answer `method path` alike, and the fast path takes it
/// or not as `taken` says. The router answers first, so that credentials it fetches are cached
/// for the fast path; an answer that differs is asked again once, in case a second ended between
/// the two (a new token, a token's TTL one less). `Content-Length` is compared as hyper writes
/// it: axum's layers set the header, the fast path leaves it to hyper, which writes it from the
/// body's exact size.
async fn assert_same_answers(
    app: &App,
    addr: &str,
    method: &Method,
    path: &str,
    headers: &[(&str, &str)],
    taken: Taken,
) {
    let routed_only = app.routed_only();
    let mut last = None;
    for _ in 0..2 {
        let mut routed = call(&routed_only, addr, method.clone(), path, headers, None).await;
        let fast_taken = app
            .fast_answer(
                &request(addr, method.clone(), path, headers, None),
                PEER.parse().unwrap(),
            )
            .is_some();
        assert_eq!(
            fast_taken, taken,
            "{method} {path} {headers:?}: fast path taken"
        );
        let mut fast = call(app, addr, method.clone(), path, headers, None).await;
        for answer in [&mut routed, &mut fast] {
            if let Some(length) = answer.headers.remove("content-length")
                && method != Method::HEAD
            {
                assert_eq!(length.to_str().unwrap(), answer.body.len().to_string());
            }
        }
        let same = routed.status == fast.status
            && routed.headers == fast.headers
            && routed.body == fast.body;
        if same {
            return;
        }
        last = Some((routed, fast));
    }
    let (routed, fast) = last.unwrap();
    panic!(
        "{method} {path} {headers:?}: routed {} {:?} {:?}, fast {} {:?} {:?}",
        routed.status,
        routed.headers,
        routed.text(),
        fast.status,
        fast.headers,
        fast.text()
    );
}

#[tokio::test]
async fn the_admin_listener_answers_health_readiness_and_bootstrap() {
    let d = daemon();
    let health = call(&d.admin, ADMIN, Method::GET, paths::HEALTH, &[], None).await;
    assert_eq!(health.text(), "ok");
    let ready = call(&d.admin, ADMIN, Method::GET, paths::READY, &[], None).await;
    assert!(!ready.json::<bool>(), "nothing fetched yet");
    let bootstrap = call(
        &d.admin,
        ADMIN,
        Method::POST,
        paths::BOOTSTRAP,
        &[],
        Some(r#"{"AccessKeyId": "AKIA", "SecretAccessKey": "s"}"#),
    )
    .await;
    assert_eq!(bootstrap.status, StatusCode::NO_CONTENT);
    let foreign = call(
        &d.admin,
        ADMIN,
        Method::GET,
        paths::HEALTH,
        &[("host", "evil.example")],
        None,
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.json::<ApiError>().error.contains("Host"));
}
