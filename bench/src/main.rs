//! `make bench`: how close fintors comes to the physical limit of its own stack, measured side by
//! side in one run, on loopback.
//!
//! `fintors-bench ceiling` is the limit: a bare hyper server answering fixed bytes (the same
//! credential document fintors serves) with no logic at all. `fintors-bench run` starts a fake STS
//! (in process, with a configurable delay and session lifetime), fintors and the ceiling, drives
//! them with wrk, and writes a Markdown table and a latency plot to bench/results/. Absolute
//! numbers on a shared machine are noise; the ratios between servers measured in the same run are
//! the result.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fintors_testkit::{FakeServer, Issued, Request as FakeRequest, StsCall, try_raw_request};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

mod instructions;
mod layout;
mod soak;

const CONCURRENCIES: [u32; 4] = [1, 16, 64, 256];
const ROLE: &str = "bench";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("ceiling") => ceiling(&args[2..]).await,
        Some("run") => run(&args[2..]).await,
        Some("soak") => soak::soak(&args[2..]).await,
        Some("compare") => compare(&args[2..]).await,
        Some("access-log") => access_log(&args[2..]).await,
        Some("instructions") => instructions::instructions(&args[2..]).await,
        Some("cold-start") => cold_start_only(&args[2..]).await,
        Some("layout") => layout::layout(&args[2..]).await,
        _ => {
            eprintln!(
                "usage: fintors-bench ceiling BODY_FILE | run --fintors PATH [--duration S] [--refresh-duration S] | soak --fintors PATH [--minutes M] | compare --fintors PATH [--duration S] [--rounds N] | access-log --fintors PATH [--duration S] | instructions --fintors PATH [--out DIR] [--dumps DIR] | cold-start --fintors PATH [--starts N] | layout --fintors PATH [--out FILE]"
            );
            std::process::exit(2);
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

// ---------------------------------------------------------------------------------------------
// The ceiling: fixed bytes, no routing, no logic.

async fn ceiling(args: &[String]) {
    let body = Bytes::from(std::fs::read(&args[0]).expect("body file"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                let body = body.clone();
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "text/plain")
                            .header("server", "EC2ws")
                            .body(Full::new(body))
                            .unwrap(),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ---------------------------------------------------------------------------------------------
// A fake STS: AssumeRole with a scripted delay and session lifetime, counting calls.

/// The shared fake server with the bench's script and record of calls.
struct FakeSts {
    addr: SocketAddr,
    _server: FakeServer,
    script: Arc<StsScript>,
}

impl std::ops::Deref for FakeSts {
    type Target = StsScript;
    fn deref(&self) -> &StsScript {
        &self.script
    }
}

struct StsScript {
    delay_ms: AtomicU64,
    lifetime_s: AtomicU64,
    calls: AtomicU64,
    /// When the latest call arrived and was answered (since the bench started).
    last_arrival_us: AtomicU64,
    last_answer_us: AtomicU64,
    /// Arrival times (µs since the bench started) of the AssumeRole calls, per role name.
    arrivals: Mutex<BTreeMap<String, Vec<u64>>>,
    epoch: Instant,
}

impl FakeSts {
    async fn start() -> Arc<FakeSts> {
        let script = Arc::new(StsScript {
            delay_ms: AtomicU64::new(0),
            lifetime_s: AtomicU64::new(3600),
            calls: AtomicU64::new(0),
            last_arrival_us: AtomicU64::new(0),
            last_answer_us: AtomicU64::new(0),
            arrivals: Mutex::default(),
            epoch: Instant::now(),
        });
        let answering = script.clone();
        let server = FakeServer::start(move |request| answering.answer(request));
        Arc::new(FakeSts {
            addr: server.addr(),
            _server: server,
            script,
        })
    }
}

impl StsScript {
    fn set(&self, delay_ms: u64, lifetime_s: u64) {
        self.delay_ms.store(delay_ms, Ordering::SeqCst);
        self.lifetime_s.store(lifetime_s, Ordering::SeqCst);
    }

    fn since_epoch_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Runs on the fake server's thread for the request, so a delay stalls this call only.
    fn answer(&self, request: &FakeRequest) -> (u16, &'static str, String) {
        let arrived = self.since_epoch_us();
        self.last_arrival_us.store(arrived, Ordering::SeqCst);
        let call = StsCall::of(request);
        let role = call.role_name().unwrap_or("?").to_owned();
        self.arrivals
            .lock()
            .unwrap()
            .entry(role)
            .or_default()
            .push(arrived);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)));
        // Real session tokens run to several hundred characters; so does this one.
        let token = "FwoGZXIvYXdzEBYaDBENCH".repeat(20) + &format!("{n:08}");
        let body = Issued {
            access_key_id: &format!("ASIABENCH{n:011}"),
            secret_access_key: &format!("wJalrXUtnFEMI/K7MDENG/bPxRfiCYBENCH{n:08}"),
            session_token: &token,
            expiration: chrono::Utc::now()
                + chrono::Duration::seconds(self.lifetime_s.load(Ordering::SeqCst) as i64),
        }
        .response("AssumeRole", n as u32);
        self.last_answer_us
            .store(self.since_epoch_us(), Ordering::SeqCst);
        (200, "text/xml", body)
    }
}

// ---------------------------------------------------------------------------------------------
// Processes under test.

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Server {
    /// User plus system CPU time the process has used, in microseconds.
    fn cpu_us(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks: u64 = fields
            .get(11..13)
            .map_or(0, |f| f.iter().map(|v| v.parse::<u64>().unwrap_or(0)).sum());
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        ticks * 1_000_000 / per_second.max(1)
    }

    /// Stops the process with SIGTERM, as a service manager does, and waits for it.
    async fn terminate(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let _ = self.child.wait().await;
    }

    /// Context switches of all the process's threads so far, voluntary or not: each is a
    /// thread that woke up (or was made to yield).
    fn context_switches(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Spawns `command` and waits for its stderr/stdout line naming the address it listens on.
async fn spawn_listening(mut command: Command, on_stderr: bool) -> Server {
    command.kill_on_drop(true).stdin(Stdio::null());
    if on_stderr {
        command.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    }
    let mut child = command.spawn().expect("spawn");
    let pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if on_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let mut lines = tokio::io::BufReader::new(pipe).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("server exited before listening");
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr = rest.trim_start_matches("http://");
            break addr.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, addr }
}

struct Fintors {
    binary: PathBuf,
    dir: PathBuf,
    sts: SocketAddr,
    /// Role names (alias = role name); the first is the default role.
    roles: Vec<String>,
}

impl Fintors {
    fn command(&self, port: u16) -> Command {
        self.command_under(port, "off", &[])
    }

    /// The daemon on `port` with the container endpoint on `ecs_port` (`off`: none), run by
    /// `wrapper` (e.g. valgrind and its flags) when that is not empty.
    fn command_under(&self, port: u16, ecs_port: &str, wrapper: &[String]) -> Command {
        let config = self.dir.join("fintorc.json");
        let roles: Vec<String> = self
            .roles
            .iter()
            .map(|r| format!(r#""{r}": "arn:aws:iam::123456789012:role/{r}""#))
            .collect();
        std::fs::write(
            &config,
            format!(
                r#"{{"roles": {{{}}}, "default_role": "{}"}}"#,
                roles.join(", "),
                self.roles[0]
            ),
        )
        .unwrap();
        let mut c = match wrapper.split_first() {
            Some((program, flags)) => {
                let mut c = Command::new(program);
                c.args(flags).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        // No container endpoint unless asked: daemons started side by side would contend for its
        // port.
        c.args([
            "--addr",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--ecs-port",
            ecs_port,
            "--config",
        ])
        .arg(&config)
        .arg("--state-dir")
        .arg(self.dir.join("state"))
        .env_clear()
        .env("HOME", &self.dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", self.dir.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("none"))
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_STS", format!("http://{}", self.sts));
        c
    }

    async fn start(&self) -> Server {
        spawn_listening(self.command(0), true).await
    }

    /// For a quick subcommand: `--fintors PATH`, a fresh work directory and a fake STS (kept
    /// alive by the caller).
    async fn for_subcommand(args: &[String], name: &str) -> (Fintors, PathBuf, Arc<FakeSts>) {
        let binary = PathBuf::from(flag(args, "--fintors").expect("--fintors PATH"));
        let work = std::env::temp_dir().join(format!("fintors-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let sts = FakeSts::start().await;
        let fintors = Fintors {
            binary,
            dir: work.clone(),
            sts: sts.addr,
            roles: vec![ROLE.to_owned()],
        };
        (fintors, work, sts)
    }

    /// The daemon with an access log in the work directory, never rotated (the run writes a few
    /// hundred MB), so that every line written is counted.
    async fn start_logged(&self) -> Server {
        let mut command = self.command(0);
        command.arg("--log").arg(self.dir.join("access.log"));
        command
            .arg("--log-max-bytes")
            .arg((16u64 << 30).to_string());
        spawn_listening(command, true).await
    }
}

/// Credential GETs with a token at 64 connections, with and without `--log`, alternating for
/// three rounds so that both see the same machine: the access log's cost, as one ratio.
async fn access_log_run(fintors: &Fintors, seconds: u64) -> AccessLogRun {
    let plain = fintors.start().await;
    let logged = fintors.start_logged().await;
    let mut run = AccessLogRun::default();
    for _ in 0..3 {
        for (daemon, total) in [(&plain, &mut run.plain), (&logged, &mut run.logged)] {
            let header = format!("X-aws-ec2-metadata-token: {}", token(daemon.addr).await);
            let url = format!("http://{}{}", daemon.addr, creds_path());
            let load = wrk(&url, 64, seconds, &[&header], None).await;
            total.0 += load.requests;
            total.1 += load.duration_us;
        }
    }
    // What the log's queue holds on to under the flood, against the same daemon without it.
    run.rss_kib = (plain.rss_kib(), logged.rss_kib());
    // A graceful stop writes out every line still queued.
    logged.terminate().await;
    run.lines = std::fs::read_to_string(fintors.dir.join("access.log"))
        .map(|log| log.lines().count() as u64)
        .unwrap_or(0);
    run
}

/// `fintors-bench access-log`: the access log's part of `run` alone, for working on it.
async fn access_log(args: &[String]) {
    let seconds: u64 = flag(args, "--duration").map_or(10, |s| s.parse().unwrap());
    let (fintors, work, _sts) = Fintors::for_subcommand(args, "access-log").await;
    let run = access_log_run(&fintors, seconds).await;
    println!(
        "without --log {:.0} req/s, with {:.0} req/s ({} requests, {} lines): ratio {:.2}; \
         RSS {:.1} / {:.1} MiB",
        AccessLogRun::rps(run.plain),
        AccessLogRun::rps(run.logged),
        run.logged.0,
        run.lines,
        AccessLogRun::rps(run.logged) / AccessLogRun::rps(run.plain),
        run.rss_kib.0 as f64 / 1024.0,
        run.rss_kib.1 as f64 / 1024.0,
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Requests and microseconds summed over the rounds, and the lines the log got.
#[derive(Default)]
struct AccessLogRun {
    plain: (u64, u64),
    logged: (u64, u64),
    lines: u64,
    /// RSS after the rounds, without and with the log.
    rss_kib: (u64, u64),
}

impl AccessLogRun {
    fn rps(total: (u64, u64)) -> f64 {
        total.0 as f64 / (total.1 as f64 / 1e6)
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
/// One request of raw bytes, off the async workers; `None` when it fails.
async fn http(addr: SocketAddr, raw: &str) -> Option<(u16, String)> {
    let raw = raw.as_bytes().to_vec();
    tokio::task::spawn_blocking(move || try_raw_request(addr, &raw, Duration::from_secs(30)))
        .await
        .ok()?
        .ok()
        .map(|reply| (reply.status, reply.body))
}

fn get(addr: SocketAddr, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

async fn token(addr: SocketAddr) -> String {
    let raw = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {addr}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    http(addr, &raw).await.expect("token").1
}

fn creds_path() -> String {
    format!("/latest/meta-data/iam/security-credentials/{ROLE}")
}

// ---------------------------------------------------------------------------------------------
// wrk.

#[derive(Debug, Clone, Copy, Default)]
struct Load {
    requests: u64,
    duration_us: u64,
    errors: u64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

async fn wrk(
    url: &str,
    connections: u32,
    seconds: u64,
    headers: &[&str],
    method: Option<&str>,
) -> Load {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("wrk/report.lua");
    let mut c = Command::new("wrk");
    c.args([
        "-t1",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--timeout",
        "10s",
        "-s",
    ])
    .arg(&script);
    for h in headers {
        c.args(["-H", h]);
    }
    if let Some(m) = method {
        c.env("WRK_METHOD", m);
    }
    let out = c.arg(url).output().await.expect("wrk (apt install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .unwrap_or_else(|| panic!("wrk said: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap();
    Load {
        requests: n("requests"),
        duration_us: n("duration_us"),
        errors: n("errors"),
        p50_us: n("p50_us"),
        p99_us: n("p99_us"),
        p999_us: n("p999_us"),
        max_us: n("max_us"),
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

struct Row {
    concurrency: u32,
    ceiling: Load,
    v2: Load,
    v1: Load,
}

async fn run(args: &[String]) {
    let binary = PathBuf::from(flag(args, "--fintors").expect("--fintors PATH"));
    let seconds: u64 = flag(args, "--duration").map_or(10, |s| s.parse().unwrap());
    let refresh_seconds: u64 = flag(args, "--refresh-duration").map_or(140, |s| s.parse().unwrap());
    let out_dir = PathBuf::from(flag(args, "--out").unwrap_or_else(|| "bench/results".into()));
    let work = std::env::temp_dir().join(format!("fintors-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let me = std::env::current_exe().unwrap();

    let sts = FakeSts::start().await;
    let fintors = Fintors {
        binary: binary.clone(),
        dir: work.clone(),
        sts: sts.addr,
        roles: vec![ROLE.to_owned()],
    };

    // 4. Cold start, first (nothing warm): process start -> port accepts / first credential.
    eprintln!("cold start ...");
    let cold = cold_starts(&fintors, &sts, &work, 21).await;

    // 5. Footprint, first part: the wake-ups of a daemon nothing asks, beside the whole run.
    let idle = fintors.start().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_since = (Instant::now(), idle.context_switches());

    // 1. and 2. Throughput and latency against the ceiling.
    let daemon = fintors.start().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = daemon.rss_kib();
    let tok = token(daemon.addr).await;
    let (status, document) = http(daemon.addr, &get(daemon.addr, &creds_path()))
        .await
        .unwrap();
    assert_eq!(status, 200, "{document}");
    let body_file = work.join("document");
    std::fs::write(&body_file, &document).unwrap();
    std::fs::write(work.join("token"), &tok).unwrap();
    let mut ceiling_cmd = Command::new(&me);
    ceiling_cmd.arg("ceiling").arg(&body_file);
    let ceiling = spawn_listening(ceiling_cmd, false).await;
    let mut token_ceiling_cmd = Command::new(&me);
    token_ceiling_cmd.arg("ceiling").arg(work.join("token"));
    let token_ceiling = spawn_listening(token_ceiling_cmd, false).await;

    let token_header = format!("X-aws-ec2-metadata-token: {tok}");
    let ttl_header = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
    let ceiling_url = format!("http://{}{}", ceiling.addr, creds_path());
    let fintors_url = format!("http://{}{}", daemon.addr, creds_path());
    let mut rows = Vec::new();
    let mut served = 0;
    for c in CONCURRENCIES {
        eprintln!("credential GET at {c} connections ...");
        let row = Row {
            concurrency: c,
            ceiling: wrk(&ceiling_url, c, seconds, &[], None).await,
            v2: wrk(&fintors_url, c, seconds, &[&token_header], None).await,
            v1: wrk(&fintors_url, c, seconds, &[], None).await,
        };
        served += row.v2.requests + row.v1.requests;
        rows.push(row);
    }
    eprintln!("token PUT at 64 connections ...");
    let token_ceiling_load = wrk(
        &format!("http://{}/latest/api/token", token_ceiling.addr),
        64,
        seconds,
        &[ttl_header],
        Some("PUT"),
    )
    .await;
    let token_load = wrk(
        &format!("http://{}/latest/api/token", daemon.addr),
        64,
        seconds,
        &[ttl_header],
        Some("PUT"),
    )
    .await;
    served += token_load.requests;
    let loaded_rss = daemon.rss_kib();
    drop(daemon);
    drop(ceiling);
    drop(token_ceiling);

    eprintln!("credential GET with and without an access log, 3 rounds ...");
    let access_log = access_log_run(&fintors, seconds).await;

    // 3. Refresh under load: a slow STS; the same run with and without refreshes.
    eprintln!("refresh under load: {refresh_seconds} s without refreshes ...");
    let steady = refresh_run(&fintors, &sts, 3600, refresh_seconds).await;
    eprintln!("refresh under load: {refresh_seconds} s with a refresh every ~65 s ...");
    let refreshing = refresh_run(&fintors, &sts, 130, refresh_seconds).await;

    // 5. Footprint.
    let binary_size = std::fs::metadata(&binary).unwrap().len();
    let wakeups = Wakeups {
        switches: idle.context_switches() - idle_since.1,
        seconds: idle_since.0.elapsed().as_secs_f64(),
    };
    drop(idle);

    // 6. Instructions per request under callgrind, which noise does not move.
    eprintln!("instructions per request under callgrind ...");
    let counts = instructions::count(&fintors, &me, &work, &work.join("dumps")).await;

    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    std::fs::create_dir_all(&out_dir).unwrap();
    let plot = out_dir.join(format!("{date}-latency.png"));
    draw(&rows, &plot);
    let report = markdown(
        &date,
        seconds,
        &rows,
        &token_ceiling_load,
        &token_load,
        &access_log,
        &steady,
        &refreshing,
        &cold,
        &wakeups,
        idle_rss,
        loaded_rss,
        served,
        binary_size,
        &plot,
    );
    let report = format!("{report}\n{}", instructions::write(&counts, &out_dir));
    let md = out_dir.join(format!("{date}.md"));
    std::fs::write(&md, &report).unwrap();
    print!("{report}");
    eprintln!("wrote {} and {}", md.display(), plot.display());
    let _ = std::fs::remove_dir_all(&work);
}

/// A quick A/B for working on the hot path: credential GET with a token at 64 connections,
/// fintors and the ceiling alternating for a few rounds, one ratio per round.
async fn compare(args: &[String]) {
    let seconds: u64 = flag(args, "--duration").map_or(5, |s| s.parse().unwrap());
    let rounds: u32 = flag(args, "--rounds").map_or(3, |s| s.parse().unwrap());
    let (fintors, work, _sts) = Fintors::for_subcommand(args, "compare").await;
    let daemon = fintors.start().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("idle RSS after start: {} KiB", daemon.rss_kib());
    let tok = token(daemon.addr).await;
    let (_, document) = http(daemon.addr, &get(daemon.addr, &creds_path()))
        .await
        .unwrap();
    let body_file = work.join("document");
    std::fs::write(&body_file, &document).unwrap();
    let me = std::env::current_exe().unwrap();
    let mut ceiling_cmd = Command::new(&me);
    ceiling_cmd.arg("ceiling").arg(&body_file);
    let ceiling = spawn_listening(ceiling_cmd, false).await;
    let header = format!("X-aws-ec2-metadata-token: {tok}");
    let ceiling_url = format!("http://{}{}", ceiling.addr, creds_path());
    let fintors_url = format!("http://{}{}", daemon.addr, creds_path());
    for round in 1..=rounds {
        let cpu = ceiling.cpu_us();
        let limit = wrk(&ceiling_url, 64, seconds, &[], None).await;
        let limit_cpu = (ceiling.cpu_us() - cpu) as f64 / limit.requests as f64;
        let cpu = daemon.cpu_us();
        let ours = wrk(&fintors_url, 64, seconds, &[&header], None).await;
        let our_cpu = (daemon.cpu_us() - cpu) as f64 / ours.requests as f64;
        // CPU time per request is the steadier figure when other work shares the machine.
        println!(
            "round {round}: ceiling {:.0} req/s, fintors {:.0} req/s, ratio {:.2}; p99 {} vs {} µs; \
             CPU per request {limit_cpu:.1} vs {our_cpu:.1} µs (ratio {:.2})",
            limit.rps(),
            ours.rps(),
            ours.rps() / limit.rps(),
            limit.p99_us,
            ours.p99_us,
            limit_cpu / our_cpu,
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}

struct RefreshRun {
    load: Load,
    sts_calls: u64,
    expected_refreshes: u64,
}

async fn refresh_run(
    fintors: &Fintors,
    sts: &FakeSts,
    lifetime_s: u64,
    seconds: u64,
) -> RefreshRun {
    sts.set(800, lifetime_s);
    let before = sts.calls.load(Ordering::SeqCst);
    let daemon = fintors.start().await;
    let tok = token(daemon.addr).await;
    let url = format!("http://{}{}", daemon.addr, creds_path());
    let load = wrk(
        &url,
        64,
        seconds,
        &[&format!("X-aws-ec2-metadata-token: {tok}")],
        None,
    )
    .await;
    let sts_calls = sts.calls.load(Ordering::SeqCst) - before;
    // fintors refreshes when min(35 min, half the lifetime) is left.
    let lead = (lifetime_s / 2).min(35 * 60);
    let period = lifetime_s - lead;
    // One AssumeRole at start-up, then one per refresh period (plus STS's 800 ms each).
    let expected_refreshes = 1 + seconds / (period + 1);
    drop(daemon);
    sts.set(0, 3600);
    RefreshRun {
        load,
        sts_calls,
        expected_refreshes,
    }
}

/// Context switches of a daemon nobody asks, over `seconds`: the target is what the
/// credential refresh needs, no timer of its own.
struct Wakeups {
    switches: u64,
    seconds: f64,
}

impl Wakeups {
    fn per_minute(&self) -> f64 {
        self.switches as f64 * 60.0 / self.seconds
    }
}

struct ColdStart {
    accept_ms: f64,
    first_credential_ms: f64,
    sts_ms: f64,
}

impl ColdStart {
    fn own_ms(&self) -> f64 {
        self.first_credential_ms - self.sts_ms
    }
}

/// The start-up table: with the system's trust store, and where a system bundle is found, the
/// same starts with a trust store of one certificate of it (`SSL_CERT_FILE`), alternating.
///
/// The difference is what the AWS SDK's HTTPS client spends reading the trust store before
/// fintors's first STS call: it reads every file of the certificate directory as well as the
/// bundle (rustls-native-certs), and fintors cannot hand it certificates read some other way.
/// Real STS is https, so the one-certificate start is not a way to start: it only shows where
/// the time goes.
struct ColdStarts {
    system: ColdStart,
    /// `None` when no system bundle was found to take a certificate from.
    one_certificate: Option<ColdStart>,
}

impl ColdStarts {
    /// The system trust store's share of the first credential, in ms.
    fn trust_store_ms(&self) -> Option<f64> {
        self.one_certificate
            .as_ref()
            .map(|one| self.system.first_credential_ms - one.first_credential_ms)
    }
}

/// Where the system's CA bundle usually is (openssl-probe's first choices, Debian's first).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A file in `dir` holding the first certificate of the system's bundle, if one is found.
fn one_certificate(dir: &Path) -> Option<PathBuf> {
    const END: &str = "-----END CERTIFICATE-----";
    let bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())?;
    let begin = bundle.find("-----BEGIN CERTIFICATE-----")?;
    let end = begin + bundle[begin..].find(END)? + END.len();
    let path = dir.join("one-certificate.pem");
    std::fs::write(&path, format!("{}\n", &bundle[begin..end])).unwrap();
    Some(path)
}

/// `cold-start`: the start-up table alone, the median of `--starts` (default 21) starts of each
/// kind, for changes to what runs before the first credential.
async fn cold_start_only(args: &[String]) {
    let starts: usize = flag(args, "--starts").map_or(21, |s| s.parse().unwrap());
    let (fintors, work, sts) = Fintors::for_subcommand(args, "cold-start").await;
    let cold = cold_starts(&fintors, &sts, &work, starts).await;
    println!(
        "median of {starts} starts: accepts {:.1} ms, first credential {:.1} ms, of which STS {:.1} ms, fintors's own {:.1} ms",
        cold.system.accept_ms,
        cold.system.first_credential_ms,
        cold.system.sts_ms,
        cold.system.own_ms()
    );
    match (&cold.one_certificate, cold.trust_store_ms()) {
        (Some(one), Some(trust)) => println!(
            "with a trust store of one certificate: first credential {:.1} ms, fintors's own {:.1} ms; \
             the system trust store {trust:.1} ms",
            one.first_credential_ms,
            one.own_ms()
        ),
        _ => println!("no system CA bundle found: the trust store's share is not measured"),
    }
    let _ = std::fs::remove_dir_all(work);
}

/// The median over `starts` starts of each kind, alternating so that both see the same machine.
async fn cold_starts(fintors: &Fintors, sts: &FakeSts, work: &Path, starts: usize) -> ColdStarts {
    let one = one_certificate(work);
    let mut system = Vec::new();
    let mut one_certificate = Vec::new();
    for _ in 0..starts {
        system.push(start_once(fintors, sts, None).await);
        if let Some(one) = &one {
            one_certificate.push(start_once(fintors, sts, Some(one)).await);
        }
    }
    ColdStarts {
        system: medians(&system),
        one_certificate: one.map(|_| medians(&one_certificate)),
    }
}

/// One start: (port accepts, first credential served, STS's own time), from process start.
async fn start_once(
    fintors: &Fintors,
    sts: &FakeSts,
    trust_store: Option<&Path>,
) -> (Duration, Duration, Duration) {
    sts.set(0, 3600);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut command = fintors.command(port);
    if let Some(file) = trust_store {
        command.env("SSL_CERT_FILE", file);
    }
    command
        .kill_on_drop(true)
        .stderr(Stdio::null())
        .stdout(Stdio::null());
    let start_us = sts.since_epoch_us();
    let started = Instant::now();
    let _child = command.spawn().unwrap();
    let mut accept = None;
    let first = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "fintors did not start"
        );
        if accept.is_none() && TcpStream::connect(addr).await.is_ok() {
            accept = Some(started.elapsed());
        }
        if accept.is_some()
            && let Some((200, body)) = http(addr, &get(addr, &creds_path())).await
            && body.contains("\"Success\"")
        {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let sts_us = sts
        .last_answer_us
        .load(Ordering::SeqCst)
        .saturating_sub(sts.last_arrival_us.load(Ordering::SeqCst));
    assert!(sts.last_arrival_us.load(Ordering::SeqCst) >= start_us);
    (accept.unwrap(), first, Duration::from_micros(sts_us))
}

fn medians(samples: &[(Duration, Duration, Duration)]) -> ColdStart {
    let median = |f: &dyn Fn(&(Duration, Duration, Duration)) -> Duration| {
        let mut v: Vec<f64> = samples.iter().map(|s| f(s).as_secs_f64() * 1e3).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    ColdStart {
        accept_ms: median(&|s| s.0),
        first_credential_ms: median(&|s| s.1),
        sts_ms: median(&|s| s.2),
    }
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    date: &str,
    seconds: u64,
    rows: &[Row],
    token_ceiling: &Load,
    token: &Load,
    access_log: &AccessLogRun,
    steady: &RefreshRun,
    refreshing: &RefreshRun,
    cold: &ColdStarts,
    wakeups: &Wakeups,
    idle_rss: u64,
    loaded_rss: u64,
    served: u64,
    binary_size: u64,
    plot: &Path,
) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut s = format!(
        "# fintors benchmark, {date}\n\n\
         One run of `make bench` on {cpus} cores, loopback only; wrk with one thread, {seconds} s per \
         cell. `ceiling` is a bare hyper server answering the same credential document with no \
         logic; `v2` is fintors with an IMDSv2 token, `v1` without. Latencies in ms.\n\n\
         ## Credential GET\n\n\
         | conns | ceiling req/s | v2 req/s | v2/ceiling | v1 req/s | v1/ceiling | ceiling p50/p99/p99.9 | v2 p50/p99/p99.9 | v1 p50/p99/p99.9 | errors |\n\
         |---:|---:|---:|---:|---:|---:|---|---|---|---:|\n"
    );
    for r in rows {
        s += &format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {} / {} / {} | {} / {} / {} | {} / {} / {} | {} |\n",
            r.concurrency,
            r.ceiling.rps(),
            r.v2.rps(),
            r.v2.rps() / r.ceiling.rps(),
            r.v1.rps(),
            r.v1.rps() / r.ceiling.rps(),
            ms(r.ceiling.p50_us),
            ms(r.ceiling.p99_us),
            ms(r.ceiling.p999_us),
            ms(r.v2.p50_us),
            ms(r.v2.p99_us),
            ms(r.v2.p999_us),
            ms(r.v1.p50_us),
            ms(r.v1.p99_us),
            ms(r.v1.p999_us),
            r.ceiling.errors + r.v2.errors + r.v1.errors,
        );
    }
    s += &format!(
        "\n## Token PUT (64 connections)\n\n\
         | | req/s | p50 / p99 / p99.9 | errors |\n|---|---:|---|---:|\n\
         | ceiling | {:.0} | {} / {} / {} | {} |\n| fintors | {:.0} | {} / {} / {} | {} |\n\n\
         fintors/ceiling: **{:.2}**\n",
        token_ceiling.rps(),
        ms(token_ceiling.p50_us),
        ms(token_ceiling.p99_us),
        ms(token_ceiling.p999_us),
        token_ceiling.errors,
        token.rps(),
        ms(token.p50_us),
        ms(token.p99_us),
        ms(token.p999_us),
        token.errors,
        token.rps() / token_ceiling.rps(),
    );
    s += &format!(
        "\n## Access log (credential GET with a token, 64 connections, 3 alternating rounds)\n\n\
         | | req/s | requests | RSS after |\n|---|---:|---:|---:|\n\
         | without `--log` | {:.0} | {} | {:.1} MiB |\n\
         | with `--log` | {:.0} | {} (log lines: {}) | {:.1} MiB |\n\n\
         logged/unlogged: **{:.2}**\n",
        AccessLogRun::rps(access_log.plain),
        access_log.plain.0,
        access_log.rss_kib.0 as f64 / 1024.0,
        AccessLogRun::rps(access_log.logged),
        access_log.logged.0,
        access_log.lines,
        access_log.rss_kib.1 as f64 / 1024.0,
        AccessLogRun::rps(access_log.logged) / AccessLogRun::rps(access_log.plain),
    );
    s += &format!(
        "\n## Refresh under load (STS takes 800 ms; 64 connections, {} s each)\n\n\
         | session lifetime | AssumeRole calls expected | made | req/s | p99.9 | max | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|\n\
         | 3600 s (no refresh) | {} | {} | {:.0} | {} | {} | {} |\n\
         | 130 s (refresh every ~65 s) | {} | {} | {:.0} | {} | {} | {} |\n\n\
         max with refreshes / max without: **{:.2}**\n",
        steady.load.duration_us / 1_000_000,
        steady.expected_refreshes,
        steady.sts_calls,
        steady.load.rps(),
        ms(steady.load.p999_us),
        ms(steady.load.max_us),
        steady.load.errors,
        refreshing.expected_refreshes,
        refreshing.sts_calls,
        refreshing.load.rps(),
        ms(refreshing.load.p999_us),
        ms(refreshing.load.max_us),
        refreshing.load.errors,
        refreshing.load.max_us as f64 / steady.load.max_us.max(1) as f64,
    );
    s += &format!(
        "\nExpected calls: the start-up fetch of the default role, plus one per refresh.\n\n\
         ## Cold start (median of 21)\n\n\
         | process start -> port accepts | -> first credential served | of which STS | fintors's own | of which the system trust store |\n|---:|---:|---:|---:|---:|\n\
         | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} |\n\n\
         The trust store's share is the difference to the same starts, alternating, with \
         `SSL_CERT_FILE` naming a file of one certificate: what the AWS SDK's HTTPS client spends \
         reading the bundle and every file of the certificate directory before the first STS call.\n\n\
         ## Footprint\n\n\
         | idle RSS | RSS after {} requests | stripped release binary | idle wake-ups |\n|---:|---:|---:|---:|\n\
         | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} a minute ({} context switches in {:.0} s) |\n\n\
         ![latency]({})\n",
        cold.system.accept_ms,
        cold.system.first_credential_ms,
        cold.system.sts_ms,
        cold.system.own_ms(),
        cold.trust_store_ms().map_or(
            "not measured (no system CA bundle)".to_owned(),
            |ms| format!("{ms:.1} ms")
        ),
        served,
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0,
        binary_size as f64 / 1048576.0,
        wakeups.per_minute(),
        wakeups.switches,
        wakeups.seconds,
        plot.file_name().unwrap().to_string_lossy(),
    );
    s
}

/// p50 and p99 per concurrency, ceiling and fintors side by side (log scale).
fn draw(rows: &[Row], path: &Path) {
    use plotters::prelude::*;
    let font = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .expect("a TrueType font (apt install fonts-dejavu-core)");
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| ())
        .expect("font");
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let max = rows
        .iter()
        .map(|r| r.ceiling.p99_us.max(r.v2.p99_us).max(r.v1.p99_us))
        .max()
        .unwrap_or(1) as f64
        / 1000.0;
    let min = rows
        .iter()
        .map(|r| r.ceiling.p50_us.min(r.v2.p50_us))
        .min()
        .unwrap_or(1)
        .max(1) as f64
        / 1000.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Credential GET latency: fintors vs. the bare-hyper ceiling",
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            0f64..(rows.len() - 1) as f64,
            (min / 2.0..max * 2.0).log_scale(),
        )
        .unwrap();
    chart
        .configure_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&|x| {
            rows.get(x.round() as usize)
                .map_or(String::new(), |r| format!("{} conns", r.concurrency))
        })
        .y_desc("latency (ms, log)")
        .draw()
        .unwrap();
    type Pick = fn(&Row) -> u64;
    let series: [(&str, RGBColor, Pick); 6] = [
        ("ceiling p50", BLUE, |r| r.ceiling.p50_us),
        ("ceiling p99", CYAN, |r| r.ceiling.p99_us),
        ("fintors v2 p50", RED, |r| r.v2.p50_us),
        ("fintors v2 p99", MAGENTA, |r| r.v2.p99_us),
        ("fintors v1 p50", GREEN, |r| r.v1.p50_us),
        ("fintors v1 p99", BLACK, |r| r.v1.p99_us),
    ];
    for (name, color, pick) in series {
        chart
            .draw_series(LineSeries::new(
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| (i as f64, pick(r) as f64 / 1000.0)),
                color.stroke_width(2),
            ))
            .unwrap()
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .unwrap();
    root.present().unwrap();
}
