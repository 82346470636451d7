//! What the fuzz targets share: a daemon's worth of state built in-process, with no network.
//!
//! The apps are the real ones (`fintors::http::imds_app`, `fintors::http::admin::app`), over the
//! state `fintors::daemon::build_state` builds for the daemon, with a fixed
//! configuration with four roles. AssumeRole is the shared double
//! (`fintors::credentials::scripted::ScriptedAssumer`); the MFA sessions' STS
//! client has a connector that answers every call with an STS error and counts it. So no target
//! opens a socket, and nothing asks 169.254.169.254.
//!
//! The state is built once per process and shared by every input: the active role and the caches
//! carry over from one input to the next, as they do between requests to a running daemon.
//! (Building it per input would leak the credential caches' refresh tasks.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, response};
use http_body_util::BodyExt;

use fintors::config::Config;
use fintors::credentials::scripted::ScriptedAssumer;
use fintors::credentials::{Bootstrap, MfaSessions};
use fintors::daemon::{Settings, build_state};
use fintors::ec2::instance::Instance;
use fintors::ec2::tokens::Tokens;
use fintors::http::access_log::AccessLog;
use fintors::http::guard::Guard;
use fintors::http::{App, AppState, imds_app};
use fintors::model::{Clock, Region};

/// Every target calls this first.
pub fn no_imds() {
    // SAFETY: called from the targets' `init`, before this process has started any other thread
    // of its own; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
}

/// Where the fuzzed daemon is "bound"; no socket is ever opened.
pub const BOUND: &str = "127.0.0.1:16925";
pub const ADMIN_BOUND: &str = "127.0.0.1:16926";

/// The `Host` values a daemon bound to [`BOUND`] must accept: the guard's allow-list written out
/// again here, so the targets check the guard against an independent statement of it.
const ALLOWED_HOSTS: [&str; 8] = [
    "169.254.169.254",
    "169.254.169.254:80",
    "[fd00:ec2::254]",
    "[fd00:ec2::254]:80",
    "127.0.0.1",
    "127.0.0.1:16925",
    "localhost:16925",
    "[::1]:16925",
];

pub fn host_allowed(host: &[u8]) -> bool {
    ALLOWED_HOSTS
        .iter()
        .any(|h| h.as_bytes().eq_ignore_ascii_case(host))
}

/// Peers a daemon without `--allow-remote` answers: this machine only.
pub fn peer_allowed(peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    peer.is_loopback()
        || peer == IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))
        || peer == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

/// The harness's configuration: a plain role (the default), one with every option, one behind
/// MFA, and one STS always refuses; an instance with the optional metadata filled in.
pub const CONFIG: &str = r#"{
  "roles": {
    "dev": "arn:aws:iam::123456789012:role/dev",
    "prod": { "arn": "arn:aws:iam::210987654321:role/team/prod", "session_name": "fuzz",
              "duration_seconds": 7200, "external_id": "ext-123", "region": "eu-west-1" },
    "mfa": { "arn": "arn:aws:iam::123456789012:role/mfa",
             "mfa_serial": "arn:aws:iam::123456789012:mfa/fuzz" },
    "broken": "arn:aws:iam::123456789012:role/broken"
  },
  "default_role": "dev",
  "instance": { "region": "us-west-2", "availability_zone": "us-west-2c",
                "public_ipv4": "203.0.113.7", "security_groups": ["default", "ssh"],
                "public_hostname": "ec2-203-0-113-7.us-west-2.compute.amazonaws.com" }
}"#;
pub const ALIASES: [&str; 4] = ["broken", "dev", "mfa", "prod"];
pub const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/fuzz";

/// What every secret the fake AssumeRole hands out starts with: a response carrying it
/// carries credentials.
pub use fintors::credentials::scripted::SECRET_PREFIX as FAKE_SECRET;

const STS_DENIED: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code>
  <Message>MultiFactorAuthentication failed with invalid MFA one time pass code.</Message></Error>
  <RequestId>00000000-0000-0000-0000-000000000000</RequestId>
</ErrorResponse>"#;

/// The MFA client's "network": every call is answered in-process with a 403 and counted.
#[derive(Debug)]
struct RefusingSts {
    calls: Arc<AtomicU64>,
}

impl HttpConnector for RefusingSts {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(
            !request.uri().contains("169.254.169.254"),
            "an STS call went to the metadata address: {}",
            request.uri()
        );
        let status = 403.try_into().expect("a valid status");
        HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(STS_DENIED))))
    }
}

fn refusing_sts_client(calls: Arc<AtomicU64>) -> aws_sdk_sts::Client {
    use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let connector = SharedHttpConnector::new(RefusingSts { calls });
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDFUZZ",
            "fuzz",
            None,
            None,
            "fintors-fuzz",
        ))
        .http_client(http_client_fn(move |_, _| connector.clone()))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

pub struct Daemon {
    runtime: tokio::runtime::Runtime,
    /// The main listener's service, IMDSv1 allowed.
    pub app: App,
    /// The same service under `--imdsv2-required`.
    pub app_v2: App,
    /// The admin listener's service (no token).
    pub admin: App,
    pub state: Arc<AppState>,
    /// Calls that reached the MFA client's (refusing) STS.
    pub sts_http_calls: Arc<AtomicU64>,
}

static DAEMON: LazyLock<Daemon> = LazyLock::new(build);

/// The shared daemon, built on first use.
pub fn daemon() -> &'static Daemon {
    &DAEMON
}

fn build() -> Daemon {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let _entered = runtime.enter();
    // `POST /fintors/reload` re-reads this file; it holds the same configuration.
    let config_path = write_config_file();
    let config = Config::parse(&config_path, CONFIG).expect("the harness config is valid");
    let sts_http_calls = Arc::new(AtomicU64::new(0));
    let mfa = MfaSessions::new(
        config.mfa.clone(),
        "https://sts.us-east-1.amazonaws.com".into(),
        refusing_sts_client(sts_http_calls.clone()),
        Clock::system(),
    );
    assert!(
        config.mfa.process.is_none(),
        "no mfa_process: it would run a shell command"
    );
    let instance = Instance::from_config(
        &config.instance,
        b"fintors-fuzz",
        &Region::parse("us-east-1").expect("a region"),
        chrono::DateTime::UNIX_EPOCH,
    );
    let settings = Settings {
        listening: Default::default(),
        sts_clock: None,
        config_path,
        aws_profiles: false,
        imdsv2_required: false,
        socket_activated: false,
        federation_endpoint: None,
    };
    let v1 = build_state(
        config,
        &settings,
        // AssumeRole without STS: `broken` is refused, `mfa` needs an MFA session first (which
        // the refusing STS never grants), every other role gets one-hour credentials.
        Arc::new(
            ScriptedAssumer::new(Clock::system())
                .refusing("broken")
                .with_mfa(mfa.clone()),
        ),
        mfa,
        instance,
        Arc::new(Tokens::from_key([7; 32])),
        Clock::system(),
        None,
        fintors::credentials::discovery::Discovery::inert(Clock::system()),
        Arc::new(fintors::ec2::identity_signing::LazySigner::in_memory()),
    );
    // The same daemon under `--imdsv2-required`: the same registry and caches.
    let v2 = Arc::new(AppState {
        imdsv2_required: true,
        ..(*v1).clone()
    });
    let guard = Arc::new(Guard::new(BOUND.parse().expect("an address"), false));
    // The access log runs too (its writer thread appends to /dev/null), for its path handling.
    let log = AccessLog::open(Path::new("/dev/null"), u64::MAX).ok();
    // Both apps take the fast path for tokens, the listing and cached credentials and route the
    // rest: both paths get fuzzed, logged (v1) and not (v2).
    let app = imds_app(v1.clone(), guard.clone(), log);
    let app_v2 = imds_app(v2, guard, None);
    let admin = App::new(
        fintors::http::admin::app(
            v1.clone(),
            Arc::new(Guard::new(ADMIN_BOUND.parse().expect("an address"), false)),
            Arc::new(Bootstrap::default()),
            None,
        ),
        fintors::http::admin::refused,
    );
    Daemon {
        runtime,
        app,
        app_v2,
        admin,
        state: v1,
        sts_http_calls,
    }
}

fn write_config_file() -> PathBuf {
    let dir = std::env::temp_dir().join("fintors-fuzz");
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("fintorc.json");
    // Several fuzzing processes may start at once: write aside, then rename into place.
    let partial = dir.join(format!("fintorc.json.{}", std::process::id()));
    std::fs::write(&partial, CONFIG).expect("writing the harness config");
    std::fs::rename(&partial, &path).expect("renaming the harness config");
    path
}

impl Daemon {
    /// Runs a future on the shared runtime (which also runs the tasks the daemon spawned).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Sends `request` from `peer` through `app`, as the accept loop does, and reads the answer.
    pub fn send(
        &self,
        app: &App,
        request: Request<Body>,
        peer: SocketAddr,
    ) -> (response::Parts, Bytes) {
        self.block_on(async {
            let response = app.call(request, peer).await;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .expect("response bodies are in memory")
                .to_bytes();
            (parts, body)
        })
    }

    /// A valid IMDSv2 token for `ttl` seconds from now.
    pub fn token(&self, ttl: u32) -> String {
        self.state
            .tokens
            .issue(ttl, self.state.clock.now().timestamp())
    }

    /// Whether `token` is one the daemon accepts right now.
    pub fn token_valid(&self, token: &[u8]) -> bool {
        std::str::from_utf8(token).is_ok_and(|t| {
            self.state
                .tokens
                .verify(t, self.state.clock.now().timestamp())
                .is_ok()
        })
    }

    pub fn active_alias(&self) -> Option<String> {
        self.state
            .registry
            .active()
            .map(|a| a.role().alias.to_string())
    }
}

/// A request written as text, roughly as it arrives on the wire:
///
/// ```text
/// METHOD TARGET [VERSION]
/// name: value
/// :peer 192.0.2.1
/// :imdsv2
///
/// body
/// ```
///
/// `:peer` (the client's address, default 127.0.0.1) and `:imdsv2` (send it to the
/// `--imdsv2-required` service) are instructions to the harness, not headers. A header value
/// `@token` becomes a valid IMDSv2 token and `@expired` one that has expired, which a fuzzer could
/// not forge. Lines may end in CRLF or LF.
pub struct WireRequest {
    pub request: Request<Body>,
    pub peer: SocketAddr,
    pub imdsv2_required: bool,
}

/// Parses [`WireRequest`] text; `None` for what hyper would refuse before the service sees it
/// (a bad method, target or header).
pub fn parse_wire(data: &[u8], daemon: &Daemon) -> Option<WireRequest> {
    let (head, body) = split_head(data);
    let mut lines = head.into_iter();
    let request_line = lines.next()?;
    let mut parts = request_line.split(|&b| b == b' ');
    let method = Method::from_bytes(parts.next()?).ok()?;
    let uri = Uri::try_from(parts.next()?).ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    let mut peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut imdsv2_required = false;
    for line in lines {
        if let Some(instruction) = line.strip_prefix(b":") {
            if instruction == b"imdsv2" {
                imdsv2_required = true;
            } else if let Some(ip) = instruction.strip_prefix(b"peer ") {
                peer = std::str::from_utf8(ip).ok()?.trim().parse().ok()?;
            }
            continue;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = line[colon + 1..].trim_ascii();
        let value = match value {
            b"@token" => HeaderValue::from_str(&daemon.token(21_600)).ok()?,
            b"@expired" => HeaderValue::from_str(&expired_token(daemon)).ok()?,
            v => HeaderValue::from_bytes(v).ok()?,
        };
        builder = builder.header(name, value);
    }
    let request = builder.body(Body::from(body.to_vec())).ok()?;
    Some(WireRequest {
        request,
        peer: SocketAddr::new(peer, 40_000),
        imdsv2_required,
    })
}

fn expired_token(daemon: &Daemon) -> String {
    let now = daemon.state.clock.now().timestamp();
    daemon.state.tokens.issue(1, now - 10)
}

/// The header lines (CR stripped) up to the first empty one, and the body after it.
fn split_head(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut lines = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    (lines, rest)
}

/// A JSON request as the client subcommands send it: right host, JSON content type.
pub fn json_request(method: Method, path: &str, host: &str, body: &[u8]) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Body::from(body.to_vec()))
        .expect("a valid request")
}

pub fn loopback_peer() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000)
}
