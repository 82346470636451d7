//! The HTTP access log (`--log FILE`): one line per request in Common Log Format plus the user
//! agent, appended to a 0600 file.
//!
//! It records the peer, the method, the path (never the query, never a header value: tokens and
//! credentials travel in headers and bodies) and the outcome. The request path only queues the
//! line's parts ([`Entry`], no copying, no formatting) on a bounded queue; a writer thread formats
//! and writes them in batches, so a slow disk never delays a credential response, and the fast
//! path for cached credentials stays fast with a log. If the queue is full a line is dropped and
//! counted rather than making a request wait; at a graceful shutdown the daemon waits for the
//! queue to be written ([`AccessLog::flush`]).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, Uri, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{mpsc, oneshot};

/// Lines queued at most: a second of a busy daemon's requests, which the writer drains every
/// [`BATCH_GATHER`]; about 2 MiB at worst.
const QUEUE: usize = 16 * 1024;

#[derive(Debug)]
pub struct AccessLog {
    lines: mpsc::Sender<Message>,
    dropped: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open access log {path}: {reason}")]
pub struct AccessLogError {
    path: PathBuf,
    reason: std::io::Error,
}

/// What the request path hands the writer: the parts of one line, taken without copying (the
/// URI and the user agent share the request's buffer). Formatting, the clock's text and the
/// write all happen on the writer's thread.
#[derive(Debug)]
pub struct Entry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub peer: IpAddr,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub status: u16,
    pub size: Option<u64>,
    pub agent: Option<HeaderValue>,
}

impl Entry {
    /// The parts of `request` a line needs, before it is answered.
    pub fn of<B>(request: &axum::http::Request<B>, peer: SocketAddr) -> Entry {
        Entry {
            at: chrono::Utc::now(),
            peer: peer.ip(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            status: 0,
            size: None,
            agent: request.headers().get(header::USER_AGENT).cloned(),
        }
    }

    /// Notes how `response` answered the request.
    pub fn answered(mut self, response: &Response) -> Entry {
        self.status = response.status().as_u16();
        self.size = response.body().size_hint().exact();
        self
    }

    /// Writes the Common Log Format line plus the user agent; the path only, never the query.
    fn write(&self, out: &mut impl Write, clock: &mut Stamp) -> std::io::Result<()> {
        write!(
            out,
            "{} - - [{}] \"{} {} {:?}\" {} ",
            self.peer,
            clock.of(self.at),
            self.method,
            Clean(self.uri.path().as_bytes()),
            self.version,
            self.status,
        )?;
        match self.size {
            Some(n) => write!(out, "{n}")?,
            None => out.write_all(b"-")?,
        }
        match &self.agent {
            Some(agent) => writeln!(out, " \"{}\"", Clean(agent.as_bytes())),
            None => out.write_all(b" \"-\"\n"),
        }
    }
}

/// Text as one line can hold it: control characters and quotes become `?`, so a request stays
/// on its line and the quoting unambiguous; what is not UTF-8 is replaced.
struct Clean<'a>(&'a [u8]);

impl std::fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in String::from_utf8_lossy(self.0).chars() {
            if c.is_control() || c == '"' {
                f.write_str("?")?;
            } else {
                std::fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Message {
    Entry(Box<Entry>),
    /// Write out and flush everything queued before this, then say so.
    Flush(oneshot::Sender<()>),
}

impl AccessLog {
    /// Opens (creating 0600) `path` for appending and starts the writer thread.
    pub fn open(path: &Path) -> Result<Arc<Self>, AccessLogError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|reason| AccessLogError {
                path: path.to_owned(),
                reason,
            })?;
        let (lines, rx) = mpsc::channel::<Message>(QUEUE);
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("fintors-access-log".into())
            .spawn(move || write_lines(file, rx, &path))
            .map_err(|reason| AccessLogError {
                path: PathBuf::from("(writer thread)"),
                reason,
            })?;
        Ok(Arc::new(AccessLog {
            lines,
            dropped: AtomicU64::new(0),
        }))
    }

    /// Queues one line; never waits. A full queue drops the line and counts it.
    pub fn record(&self, entry: Entry) {
        if self
            .lines
            .try_send(Message::Entry(Box::new(entry)))
            .is_err()
        {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!("access log is falling behind: {n} lines dropped so far");
            }
        }
    }

    /// Waits until every line queued so far is in the file: at shutdown, so a graceful stop
    /// loses none.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.lines.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

/// How long the writer lets lines gather after a batch: while it sleeps, requests queue their
/// lines without waking it, so under load it wakes once per batch rather than once per line,
/// and an idle daemon's writer sleeps in `recv` with no wake-ups at all.
const BATCH_GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// The writer: takes the queue in batches, formats into a buffer and writes each batch at once,
/// so a quiet log is on disk within [`BATCH_GATHER`] and a busy one costs one write per batch.
fn write_lines(file: std::fs::File, mut rx: mpsc::Receiver<Message>, path: &Path) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    let mut clock = Stamp::default();
    let report = |result: std::io::Result<()>| {
        if let Err(e) = result {
            tracing::error!("writing access log {}: {e}", path.display());
        }
    };
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        loop {
            while let Some(message) = next.take().or_else(|| rx.try_recv().ok()) {
                match message {
                    Message::Entry(entry) => report(entry.write(&mut out, &mut clock)),
                    Message::Flush(done) => {
                        report(out.flush());
                        let _ = done.send(());
                    }
                }
            }
            report(out.flush());
            std::thread::sleep(BATCH_GATHER);
            if rx.is_empty() {
                break;
            }
        }
    }
}

/// The log's timestamp text, formatted once per second rather than once per line.
#[derive(Default)]
struct Stamp {
    second: i64,
    text: String,
}

impl Stamp {
    fn of(&mut self, at: chrono::DateTime<chrono::Utc>) -> &str {
        if self.text.is_empty() || at.timestamp() != self.second {
            self.second = at.timestamp();
            self.text = at.format("%d/%b/%Y:%H:%M:%S %z").to_string();
        }
        &self.text
    }
}

/// Middleware: logs every request the router answers (the fast path logs its own).
pub async fn record(
    State(log): State<Arc<AccessLog>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let entry = Entry::of(&request, peer);
    let response = next.run(request).await;
    log.record(entry.answered(&response));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_common_log_format_with_the_agent_and_without_the_query() {
        let request = axum::http::Request::get("/latest/meta-data/iam/x?token=secret")
            .header(header::USER_AGENT, "aws-sdk-go-v2/1.17 \"quoted\"")
            .body(())
            .unwrap();
        let mut entry = Entry::of(&request, "127.0.0.1:5000".parse().unwrap());
        entry.at = "2026-12-02T10:11:12Z".parse().unwrap();
        entry.status = 200;
        entry.size = Some(42);
        let mut line = Vec::new();
        entry.write(&mut line, &mut Stamp::default()).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "127.0.0.1 - - [02/Dec/2026:10:11:12 +0000] \"GET /latest/meta-data/iam/x HTTP/1.1\" \
             200 42 \"aws-sdk-go-v2/1.17 ?quoted?\"\n"
        );
    }

    #[test]
    fn a_request_without_agent_or_size_gets_dashes() {
        let request = axum::http::Request::put("/latest/api/token")
            .body(())
            .unwrap();
        let mut line = Vec::new();
        Entry::of(&request, "[::1]:5000".parse().unwrap())
            .write(&mut line, &mut Stamp::default())
            .unwrap();
        let line = String::from_utf8(line).unwrap();
        assert!(line.starts_with("::1 - - ["), "{line}");
        assert!(line.ends_with("\" 0 - \"-\"\n"), "{line}");
    }
}
