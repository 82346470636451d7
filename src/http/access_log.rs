//! The HTTP access log (`--log FILE`): one line per request in Common Log Format plus the user
//! agent, appended to a 0600 file.
//!
//! It records the peer, the method, the path (never the query, never a header value: tokens and
//! credentials travel in headers and bodies) and the outcome. Lines go through a bounded queue to
//! a writer task, so a slow disk never delays a credential response; if the queue is full a line
//! is dropped and counted rather than making a request wait.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::mpsc;

const QUEUE: usize = 4096;

#[derive(Debug)]
pub struct AccessLog {
    lines: mpsc::Sender<String>,
    dropped: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open access log {path}: {reason}")]
pub struct AccessLogError {
    path: PathBuf,
    reason: std::io::Error,
}

impl AccessLog {
    /// Opens (creating 0600) `path` for appending and starts the writer task.
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
        let (lines, mut rx) = mpsc::channel::<String>(QUEUE);
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = std::io::LineWriter::new(file);
            while let Some(line) = rx.blocking_recv() {
                if let Err(e) = out.write_all(line.as_bytes()) {
                    tracing::error!("writing access log {}: {e}", path.display());
                }
            }
        });
        Ok(Arc::new(AccessLog {
            lines,
            dropped: AtomicU64::new(0),
        }))
    }

    fn record(&self, line: String) {
        if self.lines.try_send(line).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!("access log is falling behind: {n} lines dropped so far");
            }
        }
    }
}

/// Middleware: logs every request after it is answered.
pub async fn record(
    State(log): State<Arc<AccessLog>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let version = request.version();
    let agent = request
        .headers()
        .get(header::USER_AGENT)
        .map(|v| sanitize(&String::from_utf8_lossy(v.as_bytes())))
        .unwrap_or_else(|| "-".into());
    let response = next.run(request).await;
    let size = response
        .body()
        .size_hint()
        .exact()
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    log.record(format!(
        "{} - - [{}] \"{} {} {:?}\" {} {} \"{}\"\n",
        peer.ip(),
        chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S %z"),
        method,
        sanitize(&path),
        version,
        response.status().as_u16(),
        size,
        agent
    ));
    response
}

/// Keeps one request on one line and quotes unambiguous.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == '"' { '?' } else { c })
        .collect()
}
