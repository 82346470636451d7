//! The HTTP access log (`--log FILE`): one line per request in Common Log Format plus the user
//! agent, appended to a 0600 file.
//!
//! It records the peer, the method, the path (never the query, never a header value: tokens and
//! credentials travel in headers and bodies) and the outcome. The request path only queues the
//! line's parts ([`Entry`]: a copy of the path and the agent, capped, never a reference into the
//! request's read buffer, which would keep that whole buffer alive while the line waits); a
//! writer thread formats and writes them in batches, so a slow disk never delays a credential
//! response. The queue is bounded by bytes ([`MAX_QUEUED_BYTES`]): under a flood, memory stays
//! flat and lines are dropped and counted rather than making a request wait. At a graceful
//! shutdown the daemon waits for the queue to be written ([`AccessLog::flush`]).
//!
//! The file is opened without following a link, must be this user's, and is made 0600 if it is
//! not; request data is written with control and shell-significant bytes percent-encoded, so a
//! log line pasted or appended anywhere runs nothing. `SIGHUP` reopens it (after logrotate moved
//! it), and past `--log-max-bytes` it is rotated to `FILE.1`.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::{mpsc, oneshot};

use super::throttle::{self, Throttle};
use writer::{Texts, Writer};

mod writer;

/// Lines queued at most, whatever their size.
const QUEUE: usize = 16 * 1024;
/// Bytes queued at most (entries and their text): what a flood can add to the daemon's memory.
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;
/// The most of a path, and of a user agent, a line keeps.
const MAX_PATH: usize = 1024;
const MAX_AGENT: usize = 256;

#[derive(Debug)]
pub struct AccessLog {
    lines: mpsc::Sender<Message>,
    /// Bytes of the entries queued and not yet written.
    queued: Arc<AtomicUsize>,
    dropped: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    #[error("cannot open access log {path}: {reason}")]
    Open {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error(
        "access log {path} belongs to uid {uid}, not to this user: remove it or choose another \
         --log"
    )]
    NotMine { path: PathBuf, uid: u32 },
    #[error("access log {path} is not a regular file: choose another --log")]
    NotAFile { path: PathBuf },
    #[error("access log {path} is a symbolic link, which fintors does not follow: name the file")]
    Link { path: PathBuf },
    #[error("access log {path} has {links} names (hard links): remove it or choose another --log")]
    Linked { path: PathBuf, links: u64 },
}

/// What the request path hands the writer: the parts of one line, the path and the agent
/// copied (and capped), so nothing of the request is kept. Formatting, the clock's text and the
/// write all happen on the writer's thread.
#[derive(Debug)]
pub struct Entry {
    /// Seconds since the Unix epoch: a line's time has no finer part.
    pub at: i64,
    pub peer: IpAddr,
    pub method: Method,
    pub version: Version,
    pub status: u16,
    pub size: Option<u64>,
    /// The path's bytes, then the agent's.
    text: Box<[u8]>,
    path_len: usize,
    has_agent: bool,
}

impl Entry {
    /// The parts of `request` a line needs, before it is answered.
    pub fn of<B>(request: &axum::http::Request<B>, peer: SocketAddr) -> Entry {
        let path = request.uri().path().as_bytes();
        let path = &path[..path.len().min(MAX_PATH)];
        let agent = request.headers().get(header::USER_AGENT).map(|a| {
            let a = a.as_bytes();
            &a[..a.len().min(MAX_AGENT)]
        });
        let mut text = Vec::with_capacity(path.len() + agent.map_or(0, <[u8]>::len));
        text.extend_from_slice(path);
        text.extend_from_slice(agent.unwrap_or_default());
        Entry {
            at: crate::model::Clock::system().seconds(),
            peer: peer.ip(),
            method: request.method().clone(),
            version: request.version(),
            status: 0,
            size: None,
            text: text.into_boxed_slice(),
            path_len: path.len(),
            has_agent: agent.is_some(),
        }
    }

    /// Notes how `response` answered the request.
    pub fn answered(mut self, response: &Response) -> Entry {
        self.status = response.status().as_u16();
        self.size = response.body().size_hint().exact();
        self
    }

    /// What the entry holds in memory while it waits.
    fn weight(&self) -> usize {
        std::mem::size_of::<Entry>() + self.text.len()
    }

    /// Appends the Common Log Format line plus the user agent to `line`; the path only, never
    /// the query. Built as bytes rather than through `fmt`: this runs for every request, on a
    /// thread that shares the cores with the requests.
    fn line(&self, line: &mut Vec<u8>, texts: &mut Texts) {
        let (path, agent) = self.text.split_at(self.path_len);
        line.extend_from_slice(texts.peer(self.peer).as_bytes());
        line.extend_from_slice(b" - - [");
        line.extend_from_slice(texts.stamp(self.at).as_bytes());
        line.extend_from_slice(b"] \"");
        clean(self.method.as_str().as_bytes(), line);
        line.push(b' ');
        clean(path, line);
        line.push(b' ');
        version(self.version, line);
        line.extend_from_slice(b"\" ");
        line.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        line.push(b' ');
        match self.size {
            Some(n) => line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            None => line.push(b'-'),
        }
        line.extend_from_slice(b" \"");
        if self.has_agent {
            clean(agent, line);
        } else {
            line.push(b'-');
        }
        line.extend_from_slice(b"\"\n");
    }
}

/// The request line's protocol, as `Version`'s `Debug` words it.
fn version(version: Version, line: &mut Vec<u8>) {
    let text = [
        (Version::HTTP_11, "HTTP/1.1"),
        (Version::HTTP_10, "HTTP/1.0"),
        (Version::HTTP_09, "HTTP/0.9"),
        (Version::HTTP_2, "HTTP/2.0"),
        (Version::HTTP_3, "HTTP/3.0"),
    ]
    .into_iter()
    .find_map(|(v, text)| (v == version).then_some(text));
    match text {
        Some(text) => line.extend_from_slice(text.as_bytes()),
        None => line.extend_from_slice(format!("{version:?}").as_bytes()),
    }
}

/// The characters [`clean`] encodes besides control characters.
const ENCODED: &str = "\"$`\\!';&|<>%";

/// The bytes [`clean`] keeps as they are: printable ASCII, but for [`ENCODED`].
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = b' ';
    while b < 0x7f {
        plain[b as usize] = true;
        b += 1;
    }
    let encoded = ENCODED.as_bytes();
    let mut i = 0;
    while i < encoded.len() {
        plain[encoded[i] as usize] = false;
        i += 1;
    }
    plain
};

/// Appends request data to `line` as a line can hold it harmlessly: control characters (a line
/// break would forge a line), the quote (it would end the field), what a shell reads inside
/// double quotes or between words (`$`, `` ` ``, `\\`, `!`, `'`, `;`, `&`, `|`, `<`, `>`), and
/// `%` itself (so an encoded byte is never taken for one the client sent) are percent-encoded,
/// so the line runs nothing wherever it ends up; what is not UTF-8 is replaced.
///
/// Nearly every path and agent is printable ASCII: it is copied in runs, and only data with
/// other bytes is decoded character by character ([`clean_chars`]), from the first of them.
fn clean(bytes: &[u8], line: &mut Vec<u8>) {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| !PLAIN[usize::from(b)]) {
        line.extend_from_slice(&rest[..at]);
        if !rest[at].is_ascii() {
            return clean_chars(&rest[at..], line);
        }
        percent(rest[at], line);
        rest = &rest[at + 1..];
    }
    line.extend_from_slice(rest);
}

/// [`clean`], one character at a time: `bytes` as UTF-8, what is not replaced.
fn clean_chars(bytes: &[u8], line: &mut Vec<u8>) {
    for c in String::from_utf8_lossy(bytes).chars() {
        match u8::try_from(c) {
            // Every control character (C0, DEL, C1) and every encoded one is below U+00A0.
            Ok(b) if c.is_control() || ENCODED.contains(c) => percent(b, line),
            _ => line.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
}

/// `%XX`, the code in two upper-case hex digits.
fn percent(code: u8, line: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    line.extend_from_slice(&[
        b'%',
        HEX[usize::from(code >> 4)],
        HEX[usize::from(code & 0xf)],
    ]);
}

#[derive(Debug)]
enum Message {
    Entry(Entry),
    /// Write out and flush everything queued before this, then say so.
    Flush(oneshot::Sender<()>),
    /// Close the file and open the path again (`SIGHUP`, after logrotate moved it).
    Reopen,
}

/// Opens `path` for appending as the log must be: created 0600, not through a link, this
/// user's (a file another user planted is refused), made 0600 if others could read it. A
/// character device (`/dev/null`) is accepted as it is.
fn open_private(path: &Path) -> Result<std::fs::File, AccessLogError> {
    let open = |reason| AccessLogError::Open {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        // Not through a link; and a FIFO planted at the path must not block the open.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|reason| match reason.raw_os_error() {
            Some(libc::ELOOP) => AccessLogError::Link {
                path: path.to_owned(),
            },
            _ => open(reason),
        })?;
    let meta = file.metadata().map_err(open)?;
    if std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()) {
        return Ok(file);
    }
    if !meta.is_file() {
        return Err(AccessLogError::NotAFile {
            path: path.to_owned(),
        });
    }
    if meta.uid() != crate::platform::users::effective_uid() {
        return Err(AccessLogError::NotMine {
            path: path.to_owned(),
            uid: meta.uid(),
        });
    }
    // A second name for the file: a hard link someone planted to one of this user's own files.
    if meta.nlink() > 1 {
        return Err(AccessLogError::Linked {
            path: path.to_owned(),
            links: meta.nlink(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(open)?;
        tracing::warn!(
            "access log {} was mode {mode:03o}; set to 600",
            path.display()
        );
    }
    Ok(file)
}

impl AccessLog {
    /// Opens `path` (see `open_private`) and starts the writer thread, which rotates the file
    /// to `FILE.1` once it reaches `max_bytes`.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Arc<Self>, AccessLogError> {
        let file = open_private(path)?;
        let (lines, rx) = mpsc::channel::<Message>(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            path: path.to_owned(),
            max_bytes,
            written: file.metadata().map_or(0, |m| m.len()),
            out: std::io::BufWriter::with_capacity(64 * 1024, file),
            queued: queued.clone(),
        };
        std::thread::Builder::new()
            .name("fintors-access-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|reason| AccessLogError::Open {
                path: PathBuf::from("(writer thread)"),
                reason,
            })?;
        Ok(Arc::new(AccessLog {
            lines,
            queued,
            dropped: AtomicU64::new(0),
        }))
    }

    /// Queues one line; never waits. A full queue (by lines or by bytes) drops the line and
    /// counts it.
    pub fn record(&self, entry: Entry) {
        let weight = entry.weight();
        let queued = self.queued.fetch_add(weight, Ordering::AcqRel);
        if queued + weight > MAX_QUEUED_BYTES || self.lines.try_send(Message::Entry(entry)).is_err()
        {
            self.queued.fetch_sub(weight, Ordering::AcqRel);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            static BEHIND: Throttle = Throttle::new();
            if let Some(unsaid) = BEHIND.due() {
                tracing::warn!(
                    "access log is falling behind: {n} lines dropped so far{}",
                    throttle::more(unsaid)
                );
            }
        }
    }

    /// Has the writer reopen the file, for logrotate (`SIGHUP`).
    pub async fn reopen(&self) {
        let _ = self.lines.send(Message::Reopen).await;
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

    /// The line `request` from `peer` is logged as.
    fn logged(request: &axum::http::Request<()>, peer: &str) -> String {
        let mut line = Vec::new();
        Entry::of(request, peer.parse().unwrap()).line(&mut line, &mut Texts::default());
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn a_line_is_common_log_format_with_the_agent_and_without_the_query() {
        let request = axum::http::Request::get("/latest/meta-data/iam/x?token=secret")
            .header(header::USER_AGENT, "aws-sdk-go-v2/1.17 \"quoted\"")
            .body(())
            .unwrap();
        let mut entry = Entry::of(&request, "127.0.0.1:5000".parse().unwrap());
        entry.at = "2026-12-02T10:11:12Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp();
        entry.status = 200;
        entry.size = Some(42);
        let mut line = Vec::new();
        entry.line(&mut line, &mut Texts::default());
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "127.0.0.1 - - [02/Dec/2026:10:11:12 +0000] \"GET /latest/meta-data/iam/x HTTP/1.1\" \
             200 42 \"aws-sdk-go-v2/1.17 %22quoted%22\"\n"
        );
    }

    #[test]
    fn a_request_without_agent_or_size_gets_dashes() {
        let request = axum::http::Request::put("/latest/api/token")
            .body(())
            .unwrap();
        let line = logged(&request, "[::1]:5000");
        assert!(line.starts_with("::1 - - ["), "{line}");
        assert!(line.ends_with("\" 0 - \"-\"\n"), "{line}");
    }

    #[test]
    fn request_data_that_a_shell_would_run_is_percent_encoded() {
        let request = axum::http::Request::get("/$(touch$IFS/tmp/x);id&'!")
            .header(header::USER_AGENT, "a\\b`id`|c<d>")
            .body(())
            .unwrap();
        let line = logged(&request, "127.0.0.1:5000");
        for c in ['$', '`', ';', '|', '&', '\\', '\'', '!', '<', '>'] {
            assert!(!line.contains(c), "{c} in {line}");
        }
        assert!(
            line.contains("/%24(touch%24IFS/tmp/x)%3Bid%26%27%21 "),
            "{line}"
        );
        assert!(line.contains("\"a%5Cb%60id%60%7Cc%3Cd%3E\""), "{line}");
    }

    /// A tab, or a C1 control that a terminal takes for an escape sequence (CSI), is written
    /// as its code, not as itself.
    #[test]
    fn control_characters_in_request_data_are_percent_encoded() {
        let agent = header::HeaderValue::from_bytes("a\tb\u{9b}2Jc".as_bytes()).unwrap();
        let request = axum::http::Request::get("/x")
            .header(header::USER_AGENT, agent)
            .body(())
            .unwrap();
        let line = logged(&request, "127.0.0.1:5000");
        assert!(line.ends_with(" \"a%09b%9B2Jc\"\n"), "{line:?}");
    }

    /// The runs of plain ASCII are a shortcut, not another rule: every byte, alone or around
    /// text in other scripts and bytes that are not UTF-8, is written as the character-by-
    /// character encoding writes it.
    #[test]
    fn plain_ascii_runs_are_encoded_as_each_character_would_be() {
        let cleaned = |bytes: &[u8], each: fn(&[u8], &mut Vec<u8>)| {
            let mut line = Vec::new();
            each(bytes, &mut line);
            String::from_utf8(line).unwrap()
        };
        let mut samples: Vec<Vec<u8>> = (0..=255u8)
            .map(|b| [b"/a".as_slice(), &[b], b"b%"].concat())
            .collect();
        samples.push("/caf\u{e9}/$x/\u{1F600}|y\u{9b}".as_bytes().to_vec());
        samples.push(b"ok\xff\xfe$x\xc3".to_vec());
        samples.push(b"\xe2\x82".to_vec());
        samples.push(Vec::new());
        for sample in samples {
            assert_eq!(
                cleaned(&sample, clean),
                cleaned(&sample, clean_chars),
                "{sample:?}"
            );
        }
        assert_eq!(cleaned(b"ok\xff$x", clean), "ok\u{FFFD}%24x");
        assert_eq!(cleaned(b"\x7f\x1b", clean), "%7F%1B");
    }

    /// Every protocol version hyper hands over is written as `Version`'s `Debug` words it.
    #[test]
    fn the_protocol_is_written_as_http_words_it() {
        for v in [
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ] {
            let mut line = Vec::new();
            version(v, &mut line);
            assert_eq!(String::from_utf8(line).unwrap(), format!("{v:?}"));
        }
    }

    /// A writer that has fallen behind: the queue holds at most [`MAX_QUEUED_BYTES`] of
    /// entries, and what does not fit is dropped and counted, never waited for.
    #[test]
    fn a_queue_full_of_bytes_drops_and_counts_what_does_not_fit() {
        let (lines, _stalled_writer) = mpsc::channel::<Message>(QUEUE);
        let log = AccessLog {
            lines,
            queued: Arc::default(),
            dropped: AtomicU64::new(0),
        };
        let long = format!("/{}", "a".repeat(MAX_PATH));
        let request = axum::http::Request::get(long.as_str())
            .header(header::USER_AGENT, "b".repeat(MAX_AGENT))
            .body(())
            .unwrap();
        let entry = || Entry::of(&request, "127.0.0.1:5000".parse().unwrap());
        let weight = entry().weight();
        let fits = MAX_QUEUED_BYTES / weight;
        assert!(fits < QUEUE, "the byte bound is the one that binds here");
        for _ in 0..fits + 100 {
            log.record(entry());
        }
        assert!(log.queued.load(Ordering::Acquire) <= MAX_QUEUED_BYTES);
        assert_eq!(log.dropped.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn an_entry_keeps_a_capped_copy_not_the_request() {
        let long = format!("/{}", "a".repeat(10_000));
        let request = axum::http::Request::get(long.as_str())
            .header(header::USER_AGENT, "b".repeat(10_000))
            .body(())
            .unwrap();
        let entry = Entry::of(&request, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(entry.text.len(), MAX_PATH + MAX_AGENT);
    }

    #[test]
    fn a_log_file_behind_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victims-bashrc");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("access.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            open_private(&link),
            Err(AccessLogError::Link { .. })
        ));
    }

    /// A file another user planted where the log goes is theirs to read: refused. Giving a
    /// file away takes root, which CI has.
    #[test]
    fn a_log_file_owned_by_another_user_is_refused() {
        if !fintors_testkit::as_root(
            crate::platform::users::effective_uid(),
            "giving a file to another user",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs.log");
        std::fs::write(&theirs, "").unwrap();
        std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
        assert!(matches!(
            open_private(&theirs),
            Err(AccessLogError::NotMine { uid: 4242, .. })
        ));
    }

    #[test]
    fn a_hard_link_or_a_fifo_in_place_of_the_log_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("bashrc");
        std::fs::write(&mine, "").unwrap();
        let planted = dir.path().join("access.log");
        std::fs::hard_link(&mine, &planted).unwrap();
        assert!(matches!(
            open_private(&planted),
            Err(AccessLogError::Linked { links: 2, .. })
        ));
        let fifo = dir.path().join("fifo.log");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `name` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // With no reader, a blocking open would wait forever.
        assert!(open_private(&fifo).is_err());
    }

    #[test]
    fn a_percent_in_a_path_is_encoded_too() {
        let request = axum::http::Request::get("/a%2Fb").body(()).unwrap();
        assert!(logged(&request, "127.0.0.1:5000").contains("/a%252Fb "));
    }

    #[test]
    fn a_log_file_others_can_read_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
