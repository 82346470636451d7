//! The access log's writer thread: it takes queued entries in batches, formats and writes them,
//! and reopens or rotates the file, so no request ever waits on the disk.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::{Message, open_private};
use crate::http::throttle::{self, Throttle};

/// How long the writer lets lines gather after a batch: while it sleeps, requests queue their
/// lines without waking it, so under load it wakes once per batch rather than once per line,
/// and an idle daemon's writer sleeps in `recv` with no wake-ups at all.
const BATCH_GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// The writer thread's side: the file, its size, and where to rotate it.
pub(super) struct Writer {
    pub(super) path: PathBuf,
    pub(super) max_bytes: u64,
    pub(super) written: u64,
    pub(super) out: std::io::BufWriter<std::fs::File>,
    pub(super) queued: Arc<AtomicUsize>,
}

impl Writer {
    /// Takes the queue in batches, formats into a buffer and writes each batch at once, so a
    /// quiet log is on disk within [`BATCH_GATHER`] and a busy one costs one write per batch.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut texts = Texts::default();
        let mut line = Vec::with_capacity(512);
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            loop {
                while let Some(message) = next.take().or_else(|| rx.try_recv().ok()) {
                    match message {
                        Message::Entry(entry) => {
                            line.clear();
                            entry.line(&mut line, &mut texts);
                            let wrote = self.out.write_all(&line);
                            if wrote.is_ok() {
                                self.written += line.len() as u64;
                            }
                            self.report(wrote);
                            self.queued.fetch_sub(entry.weight(), Ordering::AcqRel);
                        }
                        Message::Flush(done) => {
                            let flushed = self.out.flush();
                            self.report(flushed);
                            let _ = done.send(());
                        }
                        Message::Reopen => self.reopen(false),
                    }
                }
                let flushed = self.out.flush();
                self.report(flushed);
                if self.written >= self.max_bytes {
                    self.reopen(true);
                }
                std::thread::sleep(BATCH_GATHER);
                if rx.is_empty() {
                    break;
                }
            }
        }
    }

    /// Opens the path again; first moves the full file to `FILE.1` when `rotate`.
    fn reopen(&mut self, rotate: bool) {
        let flushed = self.out.flush();
        self.report(flushed);
        if rotate {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            let renamed = std::fs::rename(&self.path, old);
            self.report(renamed);
        }
        match open_private(&self.path) {
            Ok(file) => {
                self.written = file.metadata().map_or(0, |m| m.len());
                self.out = std::io::BufWriter::with_capacity(64 * 1024, file);
            }
            Err(e) => {
                // Go on with the file already open, and try again only after as much again.
                self.written = 0;
                static REOPEN: Throttle = Throttle::new();
                if let Some(unsaid) = REOPEN.due() {
                    tracing::error!(
                        "{e}; logging on to the file already open{}",
                        throttle::more(unsaid)
                    );
                }
            }
        }
    }

    fn report(&self, result: std::io::Result<()>) {
        if let Err(e) = result {
            static FAILED: Throttle = Throttle::new();
            if let Some(unsaid) = FAILED.due() {
                tracing::error!(
                    "writing access log {}: {e}{}",
                    self.path.display(),
                    throttle::more(unsaid)
                );
            }
        }
    }
}

/// Text the lines repeat, made once rather than once per line: the timestamp, once per second,
/// and the peer's address, once per change of peer (nearly every line's is loopback).
#[derive(Default)]
pub(super) struct Texts {
    second: i64,
    stamp: String,
    peer: Option<IpAddr>,
    peer_text: String,
}

impl Texts {
    /// The time `at` (seconds since the Unix epoch) as a line shows it.
    pub(super) fn stamp(&mut self, at: i64) -> &str {
        if self.stamp.is_empty() || at != self.second {
            self.second = at;
            self.stamp = chrono::DateTime::from_timestamp(at, 0)
                .unwrap_or_default()
                .format("%d/%b/%Y:%H:%M:%S %z")
                .to_string();
        }
        &self.stamp
    }

    pub(super) fn peer(&mut self, peer: IpAddr) -> &str {
        if self.peer != Some(peer) {
            self.peer = Some(peer);
            self.peer_text = peer.to_string();
        }
        &self.peer_text
    }
}
