//! The access log's writer thread: it takes queued entries in batches, formats and writes them,
//! and reopens or rotates the file, so no request ever waits on the disk.

use std::io::Write;
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
        let mut clock = Stamp::default();
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            loop {
                while let Some(message) = next.take().or_else(|| rx.try_recv().ok()) {
                    match message {
                        Message::Entry(entry) => {
                            let mut counted = Counted(&mut self.out, 0);
                            let wrote = entry.write(&mut counted, &mut clock);
                            self.written += counted.1;
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

/// A writer that counts what goes through it.
struct Counted<'a, W>(&'a mut W, u64);

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The log's timestamp text, formatted once per second rather than once per line.
#[derive(Default)]
pub(super) struct Stamp {
    second: i64,
    text: String,
}

impl Stamp {
    pub(super) fn of(&mut self, at: chrono::DateTime<chrono::Utc>) -> &str {
        if self.text.is_empty() || at.timestamp() != self.second {
            self.second = at.timestamp();
            self.text = at.format("%d/%b/%Y:%H:%M:%S %z").to_string();
        }
        &self.text
    }
}
