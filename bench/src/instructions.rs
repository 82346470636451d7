//! Instructions per request, counted under callgrind: the measure of the hot path that a shared,
//! noisy machine does not move (wrk's ratios wander by ±0.08 from run to run; these by well under
//! 1 %).
//!
//! fintors and the ceiling (a bare hyper server answering the same bytes) each run under
//! `valgrind --tool=callgrind`. For every scenario the bench warms the server up, zeroes its
//! counters (`callgrind_control --zero`), sends a fixed number of requests one after another,
//! dumps the counters (`callgrind_control --dump`) and divides the process's instructions (every
//! thread's) by the number of requests. The results go to `DATE-instructions.md` and to
//! `instructions.json`, which the next run compares itself with.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::{Fintors, ROLE, Server, creds_path, flag, spawn_listening};

/// Requests per scenario once warm, and before.
const REQUESTS: u64 = 3000;
const WARM_UP: u64 = 300;

/// One way of asking, as a client does it.
#[derive(Clone, Copy)]
pub enum Scenario {
    /// GET the credentials with a token, on one kept-alive connection.
    CredentialsKeptAlive,
    /// The same, each request on a connection of its own (every `aws` CLI invocation).
    CredentialsNewConnection,
    /// PUT /latest/api/token on one kept-alive connection.
    TokenPut,
    /// GET the credentials listing (the role's name) with a token.
    Listing,
    /// GET /creds/ROLE on the container endpoint, with its token.
    Container,
    /// What an SDK process does on a fresh connection: PUT a token, GET the listing, GET the
    /// credentials; counted per sequence.
    SdkSequence,
}

pub const SCENARIOS: [Scenario; 6] = [
    Scenario::CredentialsKeptAlive,
    Scenario::CredentialsNewConnection,
    Scenario::TokenPut,
    Scenario::Listing,
    Scenario::Container,
    Scenario::SdkSequence,
];

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::CredentialsKeptAlive => "credential GET, kept-alive",
            Scenario::CredentialsNewConnection => "credential GET, new connection each",
            Scenario::TokenPut => "token PUT",
            Scenario::Listing => "credentials listing GET",
            Scenario::Container => "container /creds/ROLE",
            Scenario::SdkSequence => "SDK sequence (PUT, listing, GET) per new connection",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Scenario::CredentialsKeptAlive => "credentials_kept_alive",
            Scenario::CredentialsNewConnection => "credentials_new_connection",
            Scenario::TokenPut => "token_put",
            Scenario::Listing => "listing",
            Scenario::Container => "container",
            Scenario::SdkSequence => "sdk_sequence",
        }
    }
}

/// What the requests need: the IMDS token, the container endpoint's address and token.
pub struct Credentials {
    pub imds_token: String,
    pub container: SocketAddr,
    pub container_token: String,
}

/// The raw requests of one round of `scenario` against `imds` (or the container endpoint), and
/// whether each round opens its own connection.
pub fn requests(scenario: Scenario, imds: SocketAddr, c: &Credentials) -> (Vec<String>, bool) {
    let get = |path: &str| get_with_token(imds, path, c);
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {imds}\r\n\
         X-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n"
    );
    let listing = "/latest/meta-data/iam/security-credentials/";
    match scenario {
        Scenario::CredentialsKeptAlive => (vec![get(&creds_path())], false),
        Scenario::CredentialsNewConnection => (vec![get(&creds_path())], true),
        Scenario::TokenPut => (vec![put], false),
        Scenario::Listing => (vec![get(listing)], false),
        Scenario::Container => (
            vec![format!(
                "GET /creds/{ROLE} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
                c.container, c.container_token
            )],
            false,
        ),
        Scenario::SdkSequence => (vec![put, get(listing), get(&creds_path())], true),
    }
}

/// A raw GET of `path` from the IMDS at `imds`, with the IMDS token of `c`.
pub fn get_with_token(imds: SocketAddr, path: &str, c: &Credentials) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {imds}\r\nX-aws-ec2-metadata-token: {}\r\n\r\n",
        c.imds_token
    )
}

/// Reads one HTTP/1.1 response (headers, then `Content-Length` bytes) from `stream`.
fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> u16 {
    buffer.clear();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).expect("reading a response");
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            break (end + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).expect("reading a body");
        assert!(n > 0, "the server closed the connection mid-body");
        buffer.extend_from_slice(&chunk[..n]);
    }
    let status = &buffer[9..12];
    std::str::from_utf8(status).unwrap().parse().unwrap()
}

/// Sends `rounds` rounds of `requests` to `addr`, one after another, each round on a new
/// connection or all on one; every answer must be 200.
pub fn drive(addr: SocketAddr, requests: &[String], new_connection: bool, rounds: u64) {
    let connect = || {
        let s = TcpStream::connect(addr).expect("connecting");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    };
    let mut buffer = Vec::with_capacity(16 * 1024);
    let mut stream = connect();
    for round in 0..rounds {
        if new_connection && round > 0 {
            stream = connect();
        }
        for request in requests {
            stream.write_all(request.as_bytes()).expect("sending");
            let status = read_response(&mut stream, &mut buffer);
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buffer));
        }
    }
}

/// A server under callgrind, whose dumps go to `out` (one file per dump).
struct Counted {
    server: Server,
    out: PathBuf,
}

/// valgrind running callgrind, its dumps named `out.PID[.N]`, each readable alone (callgrind
/// otherwise names a function only in the first dump that mentions it).
pub fn callgrind(out: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--compress-strings=no".into(),
        format!("--callgrind-out-file={}.%p", out.display()),
    ]
}

impl Counted {
    async fn start(command: Command, out: &Path, on_stderr: bool) -> Counted {
        Counted {
            server: spawn_listening(command, on_stderr).await,
            out: out.to_owned(),
        }
    }

    fn control(&self, what: &str) {
        let pid = self.server.child.id().expect("running").to_string();
        let status = std::process::Command::new("callgrind_control")
            .arg(what)
            .arg(&pid)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("callgrind_control (valgrind)");
        assert!(status.success(), "callgrind_control {what} {pid}");
    }

    /// Instructions per round of `scenario` with `requests` (after a warm-up).
    fn per_round(&self, addr: SocketAddr, requests: &[String], new_connection: bool) -> u64 {
        drive(addr, requests, new_connection, WARM_UP);
        self.control("--zero");
        drive(addr, requests, new_connection, REQUESTS);
        let before = self.dumps();
        self.control("--dump");
        let dump = loop {
            let now = self.dumps();
            if let Some(new) = now.into_iter().find(|d| !before.contains(d)) {
                break new;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        instructions_in(&dump) / REQUESTS
    }

    fn dumps(&self) -> Vec<PathBuf> {
        let dir = self.out.parent().unwrap();
        let stem = self.out.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&stem))
            })
            .collect()
    }
}

/// The `summary:` (or `totals:`) instruction count of a callgrind dump, read once complete.
fn instructions_in(dump: &Path) -> u64 {
    for _ in 0..200 {
        let text = std::fs::read_to_string(dump).unwrap_or_default();
        if let Some(n) = text.lines().find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        }) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no instruction count in {}", dump.display())
}

/// One scenario's counts.
pub struct Count {
    pub name: &'static str,
    pub key: &'static str,
    pub fintors: u64,
    pub ceiling: u64,
}

/// Counts every scenario for the fintors at `fintors` and the ceiling (`me ceiling BODY`), in
/// `work`, leaving callgrind's dumps in `dumps` (one file per scenario and server).
pub async fn count(fintors: &Fintors, me: &Path, work: &Path, dumps: &Path) -> Vec<Count> {
    std::fs::create_dir_all(dumps).unwrap();
    let out = dumps.join("callgrind");
    let fintors_out = out.with_extension("fintors");
    let command = fintors.command_under(0, "0", &callgrind(&fintors_out));
    let daemon = Counted::start(command, &fintors_out, true).await;
    let imds = daemon.server.addr;
    let creds = credentials(fintors, imds).await;
    let (_, document) = crate::http(imds, &crate::get(imds, &creds_path()))
        .await
        .expect("the credential document");
    let container_document = {
        let raw = format!(
            "GET /creds/{ROLE} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            creds.container, creds.container_token
        );
        crate::http(creds.container, &raw).await.expect("/creds").1
    };
    let imds_token = creds.imds_token.clone();
    let mut fintors_counts = Vec::new();
    for scenario in SCENARIOS {
        eprintln!("instructions: fintors, {} ...", scenario.name());
        let addr = match scenario {
            Scenario::Container => creds.container,
            _ => imds,
        };
        let (requests, new_connection) = requests(scenario, addr, &creds);
        let n = tokio::task::block_in_place(|| daemon.per_round(addr, &requests, new_connection));
        fintors_counts.push(n);
    }
    drop(daemon);

    // The ceiling answers each scenario with the bytes fintors answered it with.
    let bodies = [
        ("document", document),
        ("token", imds_token),
        ("listing", ROLE.to_owned()),
        ("container", container_document),
    ];
    let mut counts = Vec::new();
    for (scenario, fintors_count) in SCENARIOS.into_iter().zip(fintors_counts) {
        let body = match scenario {
            Scenario::TokenPut => &bodies[1].1,
            Scenario::Listing => &bodies[2].1,
            Scenario::Container => &bodies[3].1,
            _ => &bodies[0].1,
        };
        let body_file = work.join(format!("ceiling-{}", scenario.key()));
        std::fs::write(&body_file, body).unwrap();
        let ceiling_out = out.with_extension(format!("ceiling-{}", scenario.key()));
        let wrapper = callgrind(&ceiling_out);
        let mut command = Command::new(&wrapper[0]);
        command
            .args(&wrapper[1..])
            .arg(me)
            .arg("ceiling")
            .arg(&body_file);
        let ceiling = Counted::start(command, &ceiling_out, false).await;
        eprintln!("instructions: ceiling, {} ...", scenario.name());
        let addr = ceiling.server.addr;
        let (requests, new_connection) = requests(scenario, addr, &creds);
        let n = tokio::task::block_in_place(|| ceiling.per_round(addr, &requests, new_connection));
        counts.push(Count {
            name: scenario.name(),
            key: scenario.key(),
            fintors: fintors_count,
            ceiling: n,
        });
    }
    counts
}

/// What the scenarios' requests carry, from the daemon at `imds`: an IMDS token, and the
/// container endpoint's address and token for `ROLE`.
pub async fn credentials(fintors: &Fintors, imds: SocketAddr) -> Credentials {
    let imds_token = crate::token(imds).await;
    let (container_token, container) = container_credentials(fintors, imds).await;
    Credentials {
        imds_token,
        container,
        container_token,
    }
}

/// The container endpoint's token for `ROLE` and its address, as `fintors env --role` prints
/// them for a command pinned to the role.
async fn container_credentials(fintors: &Fintors, imds: SocketAddr) -> (String, SocketAddr) {
    let out = Command::new(&fintors.binary)
        .args(["env", "--role", ROLE])
        .env_clear()
        .env("HOME", &fintors.dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FINTORS_ENDPOINT", format!("http://{imds}"))
        .env("FINTORS_STATE_DIR", fintors.dir.join("state"))
        .output()
        .await
        .expect("fintors env");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "fintors env --role printed no {name}: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    let uri = value("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let addr = uri
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (value("AWS_CONTAINER_AUTHORIZATION_TOKEN"), addr)
}

/// The table, each ratio to the ceiling, and the change since `previous` (the last committed
/// `instructions.json`), if there was one.
pub fn markdown(counts: &[Count], previous: Option<&serde_json::Value>) -> String {
    let mut out = String::from(
        "## Instructions per request (callgrind, all threads, 3,000 requests after a warm-up)\n\n\
         | scenario | fintors | ceiling | fintors/ceiling | fintors before | change |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for c in counts {
        let before = previous.and_then(|p| p[c.key]["fintors"].as_u64());
        let (before_text, change) = match before {
            Some(b) if b > 0 => (
                format!("{b}"),
                format!("{:+.1} %", (c.fintors as f64 / b as f64 - 1.0) * 100.0),
            ),
            _ => ("".into(), "".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {before_text} | {change} |\n",
            c.name,
            c.fintors,
            c.ceiling,
            c.fintors as f64 / c.ceiling.max(1) as f64
        ));
    }
    let worst = counts
        .iter()
        .map(|c| c.fintors as f64 / c.ceiling.max(1) as f64)
        .fold(0.0, f64::max);
    out.push_str(&format!(
        "\nTarget: every scenario at most {TARGET:.1}x the ceiling's instructions; the worst is \
         {worst:.2}x: **{}**.\n",
        if worst <= TARGET { "met" } else { "missed" }
    ));
    out
}

/// Instructions per request, as a multiple of the ceiling's, that every scenario must stay within.
const TARGET: f64 = 1.5;

/// The counts as `instructions.json`, for the next run to compare with.
pub fn json(counts: &[Count], date: &str) -> String {
    let mut map = serde_json::Map::new();
    map.insert("date".into(), date.into());
    for c in counts {
        map.insert(
            c.key.into(),
            serde_json::json!({"fintors": c.fintors, "ceiling": c.ceiling}),
        );
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(map)).unwrap() + "\n"
}

/// `fintors-bench instructions --fintors PATH [--out DIR] [--dumps DIR]`: the count alone (a
/// minute or two), for working on the hot path; `run` includes it. `--dumps` keeps callgrind's
/// files for `callgrind_annotate` (build fintors with symbols for them to name functions).
pub async fn instructions(args: &[String]) {
    let (fintors, work, _sts) = Fintors::for_subcommand(args, "instructions").await;
    let out_dir = PathBuf::from(flag(args, "--out").unwrap_or_else(|| "bench/results".into()));
    let dumps = flag(args, "--dumps").map_or_else(|| work.join("dumps"), PathBuf::from);
    let me = std::env::current_exe().unwrap();
    let counts = count(&fintors, &me, &work, &dumps).await;
    let report = write(&counts, &out_dir);
    print!("{report}");
    let _ = std::fs::remove_dir_all(&work);
}

/// Writes `DATE-instructions.md` and `instructions.json` to `out_dir` (comparing with the
/// `instructions.json` there before) and returns the table.
pub fn write(counts: &[Count], out_dir: &Path) -> String {
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let latest = out_dir.join("instructions.json");
    let previous: Option<serde_json::Value> = std::fs::read_to_string(&latest)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let report = markdown(counts, previous.as_ref());
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(out_dir.join(format!("{date}-instructions.md")), &report).unwrap();
    std::fs::write(&latest, json(counts, &date)).unwrap();
    report
}
