//! `make soak`: fintors under sustained and hostile load, bounded in time, on loopback.
//!
//! Three parts, each with a verdict: a flood of a million token PUTs (tokens are stateless, so
//! memory must stay flat), ten thousand idle connections (descriptors and memory bounded by the
//! connection cap, other clients still served), and minutes of mixed traffic with role switches
//! and refreshes forced by short sessions (no failed request, nothing within its last minute ever
//! served, RSS stable, one AssumeRole per role per refresh). Figures go to
//! `bench/results/<date>-soak.md`; the exit status says whether every verdict held.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{FakeSts, Fintors, Server, flag, token, wrk};

const ROLES: [&str; 3] = ["soak-a", "soak-b", "soak-c"];
/// Session lifetime the fake STS grants: fintors refreshes at half of it.
const LIFETIME_S: u64 = 150;
const FLOOD_REQUESTS: u64 = 1_000_000;
const IDLE_CONNECTIONS: usize = 10_000;
const CLIENTS: usize = 16;
const SWITCH_EVERY: Duration = Duration::from_secs(3);

pub async fn soak(args: &[String]) {
    let binary = PathBuf::from(flag(args, "--fintors").expect("--fintors PATH"));
    let minutes: u64 = flag(args, "--minutes").map_or(5, |m| m.parse().unwrap());
    let out_dir = PathBuf::from(flag(args, "--out").unwrap_or_else(|| "bench/results".into()));
    let work = std::env::temp_dir().join(format!("fintors-soak-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    raise_descriptor_limit();

    let sts = FakeSts::start().await;
    let fintors = Fintors {
        binary,
        dir: work.clone(),
        sts: sts.addr,
        roles: ROLES.iter().map(|r| r.to_string()).collect(),
    };
    let mut report = format!(
        "# fintors soak, {}\n\nAll on loopback; fintors is the release build; the STS is an \
         in-process fake.\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let mut verdicts = Vec::new();

    eprintln!("flood: {FLOOD_REQUESTS} token PUTs ...");
    verdicts.push(flood(&fintors, &mut report).await);
    eprintln!("idle: {IDLE_CONNECTIONS} idle connections ...");
    verdicts.push(idle(&fintors, &mut report).await);
    eprintln!("mixed traffic for {minutes} min ...");
    verdicts.push(
        mixed(
            &fintors,
            &sts,
            Duration::from_secs(minutes * 60),
            &mut report,
        )
        .await,
    );

    let date = chrono::Utc::now().format("%Y-%m-%d");
    std::fs::create_dir_all(&out_dir).unwrap();
    let path = out_dir.join(format!("{date}-soak.md"));
    std::fs::write(&path, &report).unwrap();
    print!("{report}");
    eprintln!("wrote {}", path.display());
    let _ = std::fs::remove_dir_all(&work);
    if verdicts.contains(&false) {
        eprintln!("soak FAILED");
        std::process::exit(1);
    }
}

fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    assert!(
        limit.rlim_cur as usize > IDLE_CONNECTIONS + 1024,
        "the soak needs {} file descriptors; the hard limit is {}",
        IDLE_CONNECTIONS + 1024,
        limit.rlim_max
    );
}

fn descriptors(server: &Server) -> usize {
    let pid = server.child.id().expect("running");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**held**" } else { "**FAILED**" }
}

// ---------------------------------------------------------------------------------------------

/// A million token PUTs in 5-second wrk rounds, RSS after each round.
async fn flood(fintors: &Fintors, report: &mut String) -> bool {
    let daemon = fintors.start().await;
    let url = format!("http://{}/latest/api/token", daemon.addr);
    let ttl = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
    let started_rss = daemon.rss_kib();
    let (mut requests, mut errors, mut rounds) = (0u64, 0u64, Vec::new());
    let started = Instant::now();
    while requests < FLOOD_REQUESTS {
        let load = wrk(&url, 64, 5, &[ttl], Some("PUT")).await;
        requests += load.requests;
        errors += load.errors;
        rounds.push((requests, daemon.rss_kib()));
    }
    let seconds = started.elapsed().as_secs_f64();
    // Flat: after the first round warmed the allocator, later rounds add nothing that lasts.
    let warm = rounds[0].1;
    let last = rounds.last().unwrap().1;
    let peak = rounds.iter().map(|r| r.1).max().unwrap();
    let ok = errors == 0 && last <= warm + warm / 10 + 1024;
    let _ = writeln!(
        report,
        "## 1. Token flood — {}\n\n{requests} token PUTs in {seconds:.0} s ({:.0}/s) at 64 \
         connections, {errors} errors.\n\n| after | RSS |\n|---|---|\n| start | {} |",
        verdict(ok),
        requests as f64 / seconds,
        mib(started_rss)
    );
    for (n, rss) in &rounds {
        let _ = writeln!(report, "| {n} PUTs | {} |", mib(*rss));
    }
    let _ = writeln!(
        report,
        "\nPeak {}; end vs. after the first round: {:+.1} MiB (limit: +10 % + 1 MiB).\n",
        mib(peak),
        (last as f64 - warm as f64) / 1024.0
    );
    ok
}

// ---------------------------------------------------------------------------------------------

/// Ten thousand connections that never send a byte, held while fresh clients ask for
/// credentials.
async fn idle(fintors: &Fintors, report: &mut String) -> bool {
    let daemon = fintors.start().await;
    let addr = daemon.addr;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (fds_before, rss_before) = (descriptors(&daemon), daemon.rss_kib());

    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let pid = daemon.child.id().unwrap();
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
                peak.fetch_max(n as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    let mut refused = 0;
    for chunk in 0..IDLE_CONNECTIONS / 500 {
        let batch: Vec<_> = (0..500)
            .map(|_| tokio::spawn(TcpStream::connect(addr)))
            .collect();
        for b in batch {
            match b.await.unwrap() {
                Ok(s) => idle.push(s),
                Err(_) => refused += 1,
            }
        }
        let _ = chunk;
    }
    let connect_time = started.elapsed();
    let rss_during = daemon.rss_kib();
    let fds_during = descriptors(&daemon);
    // Fresh clients, while the flood is held.
    let tok = token(addr).await;
    let mut latencies = Vec::new();
    let mut failures = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let raw = format!(
            "GET /latest/meta-data/iam/security-credentials/{} HTTP/1.1\r\nHost: {addr}\r\n\
             X-aws-ec2-metadata-token: {tok}\r\nConnection: close\r\n\r\n",
            ROLES[0]
        );
        match tokio::time::timeout(Duration::from_secs(5), crate::http(addr, &raw)).await {
            Ok(Some((200, body))) if body.contains("\"Success\"") => latencies.push(t.elapsed()),
            _ => failures += 1,
        }
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    drop(idle);
    // Connections the kernel completed late (SYN retries) are accepted and closed after ours;
    // within the header timeout everything must be back to where it started.
    let closing = Instant::now();
    while descriptors(&daemon) > fds_before + 8 && closing.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled = closing.elapsed();
    let (fds_after, rss_after) = (descriptors(&daemon), daemon.rss_kib());
    latencies.sort();
    let fds_peak = peak.load(Ordering::Relaxed) as usize;
    // fintors::server::MAX_CONNECTIONS.
    let cap = 1024;
    let ok = failures == 0 && fds_peak <= fds_before + cap + 8 && fds_after <= fds_before + 8;
    let _ = writeln!(
        report,
        "## 2. {IDLE_CONNECTIONS} idle connections — {}\n\n{} connected in {:.1} s ({refused} \
         refused); the connection cap is {cap}, past it the oldest idle connection makes room.\n\n\
         | | before | holding the flood | after closing |\n|---|---|---|---|\n\
         | descriptors | {fds_before} | {fds_during} (peak {fds_peak}) | {fds_after} (after {:.1} s) |\n\
         | RSS | {} | {} | {} |\n\n\
         20 fresh credential GETs during the flood: {failures} failed; median {:.2} ms, max {:.2} ms.\n",
        verdict(ok),
        IDLE_CONNECTIONS - refused,
        connect_time.as_secs_f64(),
        settled.as_secs_f64(),
        mib(rss_before),
        mib(rss_during),
        mib(rss_after),
        latencies
            .get(latencies.len() / 2)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
        latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
    );
    ok
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    token_puts: AtomicU64,
    credential_gets: AtomicU64,
    switches: AtomicU64,
    errors: AtomicU64,
    /// Credentials served with under a minute of life (fintors must never do that).
    stale: AtomicU64,
    keys: std::sync::Mutex<BTreeMap<String, BTreeSet<String>>>,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().unwrap().get_or_insert(what);
    }
}

/// A kept-alive HTTP/1.1 connection; reconnects when the server closes it.
struct Client {
    addr: SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Client {
    async fn send(&mut self, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().unwrap();
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

fn request(addr: SocketAddr, method: &str, path: &str) -> hyper::http::request::Builder {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
}

/// One client's loop: mostly credential GETs (IMDSv2 and v1, every role), some token PUTs.
async fn client(addr: SocketAddr, seed: u64, until: Instant, tally: Arc<Tally>) {
    let mut c = Client { addr, sender: None };
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut tok = String::new();
    while Instant::now() < until {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if tok.is_empty() || rng.is_multiple_of(10) {
            let r = request(addr, "PUT", "/latest/api/token")
                .header("x-aws-ec2-metadata-token-ttl-seconds", "300")
                .body(Full::default())
                .unwrap();
            match c.send(r).await {
                Ok((200, body)) => tok = String::from_utf8_lossy(&body).into_owned(),
                other => tally.error(format!("token PUT: {other:?}")),
            }
            tally.token_puts.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let role = ROLES[(rng >> 8) as usize % ROLES.len()];
        let mut r = request(
            addr,
            "GET",
            &format!("/latest/meta-data/iam/security-credentials/{role}"),
        );
        if !rng.is_multiple_of(3) {
            r = r.header("x-aws-ec2-metadata-token", &tok);
        }
        tally.credential_gets.fetch_add(1, Ordering::Relaxed);
        match c.send(r.body(Full::default()).unwrap()).await {
            Ok((200, body)) => check_document(role, &body, &tally),
            other => tally.error(format!("GET {role}: {other:?}")),
        }
    }
}

fn check_document(role: &str, body: &[u8], tally: &Tally) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return tally.error(format!("not JSON: {}", String::from_utf8_lossy(body)));
    };
    if doc["Code"] != "Success" {
        return tally.error(format!("{role}: {doc}"));
    }
    let expiration = doc["Expiration"]
        .as_str()
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok());
    match expiration {
        Some(e)
            if e.with_timezone(&chrono::Utc) - chrono::Utc::now()
                >= chrono::TimeDelta::seconds(59) => {}
        _ => {
            tally.stale.fetch_add(1, Ordering::Relaxed);
        }
    }
    let key = doc["AccessKeyId"].as_str().unwrap_or_default().to_owned();
    tally
        .keys
        .lock()
        .unwrap()
        .entry(role.to_owned())
        .or_default()
        .insert(key);
}

/// Switches the active role every few seconds, round robin.
async fn switcher(addr: SocketAddr, until: Instant, tally: Arc<Tally>) {
    let mut c = Client { addr, sender: None };
    for n in 1.. {
        tokio::time::sleep(SWITCH_EVERY).await;
        if Instant::now() >= until {
            break;
        }
        let role = ROLES[n % ROLES.len()];
        let r = request(addr, "PUT", "/roles")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(r#"{{"alias":"{role}"}}"#))))
            .unwrap();
        match c.send(r).await {
            Ok((200, _)) => tally.switches.fetch_add(1, Ordering::Relaxed),
            other => {
                tally.error(format!("switch to {role}: {other:?}"));
                0
            }
        };
    }
}

async fn mixed(fintors: &Fintors, sts: &FakeSts, length: Duration, report: &mut String) -> bool {
    sts.set(200, LIFETIME_S);
    sts.arrivals.lock().unwrap().clear();
    let daemon = fintors.start().await;
    let addr = daemon.addr;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + length;
    let mut tasks: Vec<_> = (0..CLIENTS as u64)
        .map(|seed| tokio::spawn(client(addr, seed + 1, until, tally.clone())))
        .collect();
    tasks.push(tokio::spawn(switcher(addr, until, tally.clone())));
    // RSS once the clients are warm, then every 30 s.
    let mut rss = Vec::new();
    tokio::time::sleep(Duration::from_secs(10)).await;
    while Instant::now() < until {
        rss.push((started.elapsed().as_secs(), daemon.rss_kib()));
        tokio::time::sleep(Duration::from_secs(30).min(until - Instant::now())).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A refresh due in the last moments is answered after the clients stopped asking; only calls
    // answered while traffic ran can have had their credentials served.
    let traffic_end_us = sts.since_epoch_us().saturating_sub(1_000_000);
    rss.push((started.elapsed().as_secs(), daemon.rss_kib()));
    let elapsed = started.elapsed().as_secs_f64();
    drop(daemon);
    sts.set(0, 3600);

    let keys = tally.keys.lock().unwrap();
    let arrivals = sts.arrivals.lock().unwrap();
    let mut single_flight = true;
    let mut rows = String::new();
    for role in ROLES {
        let calls = arrivals.get(role).map_or(&[][..], Vec::as_slice);
        let answered = calls.iter().filter(|&&t| t < traffic_end_us).count();
        let served = keys.get(role).map_or(0, BTreeSet::len);
        // A refresh is due every LIFETIME_S / 2; two calls closer than that are a duplicate.
        let min_gap = calls.windows(2).map(|w| w[1] - w[0]).min();
        let spaced = min_gap.is_none_or(|g| g >= (LIFETIME_S / 2 - 5) * 1_000_000);
        single_flight &= answered == served && spaced;
        let _ = writeln!(
            rows,
            "| {role} | {} ({answered} while traffic ran) | {served} | {} |",
            calls.len(),
            min_gap.map_or("-".into(), |g| format!("{:.1} s", g as f64 / 1e6))
        );
    }
    let (errors, stale) = (
        tally.errors.load(Ordering::Relaxed),
        tally.stale.load(Ordering::Relaxed),
    );
    let (warm, end) = (rss[0].1, rss.last().unwrap().1);
    let rss_stable = end <= warm + warm / 10 + 1024;
    let ok = errors == 0 && stale == 0 && single_flight && rss_stable;
    let gets = tally.credential_gets.load(Ordering::Relaxed);
    let puts = tally.token_puts.load(Ordering::Relaxed);
    let _ = writeln!(
        report,
        "## 3. Mixed traffic — {}\n\n{elapsed:.0} s, {CLIENTS} kept-alive clients: {gets} credential \
         GETs (IMDSv2 and v1, {n} roles), {puts} token PUTs, {} role switches (every {} s); \
         {:.0} requests/s. STS: {} ms per AssumeRole, sessions of {LIFETIME_S} s (a refresh \
         every {} s per role).\n\n\
         - failed requests: {errors}{}\n\
         - credentials served with under a minute left: {stale}\n\
         - RSS: {} after warm-up, {} at the end ({})\n\n\
         | role | AssumeRole calls | distinct credentials served | closest two calls |\n\
         |---|---|---|---|\n{rows}\n\
         One call per role per refresh: {}.\n\nRSS over time: {}\n",
        verdict(ok),
        tally.switches.load(Ordering::Relaxed),
        SWITCH_EVERY.as_secs(),
        (gets + puts) as f64 / elapsed,
        200,
        LIFETIME_S / 2,
        tally
            .first_error
            .lock()
            .unwrap()
            .as_ref()
            .map_or(String::new(), |e| format!(" (first: {e})")),
        mib(warm),
        mib(end),
        if rss_stable { "stable" } else { "GREW" },
        if single_flight { "yes" } else { "NO" },
        rss.iter()
            .map(|(s, k)| format!("{s} s: {}", mib(*k)))
            .collect::<Vec<_>>()
            .join(", "),
        n = ROLES.len(),
    );
    ok
}
