//! Diagnostics on stderr. The default level shows fintors's own one-line messages; `-v` adds
//! fintors's debug lines, `-vv` everything, the SDKs' error chains and raw responses included.
//!
//! Logging never stops or slows the daemon. Its stderr is often a terminal that gets closed, or a
//! pipe into `tee` that is killed: a write there fails (EPIPE), and tracing-subscriber's fallback
//! `eprintln!` would panic in whatever task logged (a request's, the signal handler's). A stderr
//! that drains slowly would block the worker threads. So events are formatted where they happen
//! and handed to one writer thread over a bounded queue: a full queue or a failed write drops the
//! line and counts it ([`dropped_lines`]), and the thread says how many once it can write again.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for stderr at most (a few hundred KiB): beyond that a burst is dropped, counted.
const QUEUE: usize = 1024;

pub fn init(verbose: u8) {
    let base = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec,
        _ => match verbose {
            // fintors's own lines only, and others' errors: the SDK's warnings repeat, with a
            // Debug dump of its error chain, what fintors reports in one line.
            0 => "error,fintors=info".to_owned(),
            1 => "info,fintors=debug".to_owned(),
            _ => "debug,fintors=trace".to_owned(),
        },
    };
    // The SigV4 signer traces canonical requests, which carry a session token when the base
    // credentials have one: never let it log, whatever RUST_LOG asks for. The SDK's runtime
    // traces every request it sends with its headers, among them the SSO portal's bearer token
    // (not on its redaction list) and CreateToken's refresh token: wherever trace is asked
    // for, it is held at debug. (A directive sets a level rather than capping one, so it is
    // added only then, lest it raise the runtime's level.)
    let runtime = if base.contains("trace") {
        ",aws_smithy_runtime=debug"
    } else {
        ""
    };
    let filter = EnvFilter::new(format!("{base},aws_sigv4=warn{runtime}"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr::start(std::io::stderr()))
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Lines logged but never written: the queue was full, or stderr refused them.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued and not yet written (or dropped) by the writer thread.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Waits, a second at most, for the queued lines to be written: at exit, so the last lines
/// ("stopped") are not lost with the process.
pub fn flush() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while PENDING.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Where tracing writes: the queue to the writer thread.
#[derive(Clone)]
struct Stderr {
    lines: SyncSender<Vec<u8>>,
}

impl Stderr {
    /// Starts the thread that writes queued lines to `out`.
    fn start(out: impl Write + Send + 'static) -> Stderr {
        let (lines, queued) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        std::thread::Builder::new()
            .name("fintors-log".into())
            .spawn(move || write_all(out, queued))
            .expect("starting the log writer thread");
        Stderr { lines }
    }
}

/// The writer thread: each line once, and after a gap, how many were lost in it.
fn write_all(mut out: impl Write, queued: mpsc::Receiver<Vec<u8>>) {
    let mut reported = 0;
    for line in queued {
        let dropped = DROPPED.load(Ordering::Relaxed);
        if dropped > reported {
            let note = format!("fintors: {} log lines dropped so far\n", dropped - reported);
            if out.write_all(note.as_bytes()).is_ok() {
                reported = dropped;
            }
        }
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        PENDING.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Write for Stderr {
    /// One event, formatted: queued whole, or dropped and counted. Never fails, never waits.
    fn write(&mut self, event: &[u8]) -> std::io::Result<usize> {
        PENDING.fetch_add(1, Ordering::AcqRel);
        match self.lines.try_send(event.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                PENDING.fetch_sub(1, Ordering::AcqRel);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(event.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// A stderr that is gone: every write fails, as a closed pipe's does.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    /// A stderr that never takes a byte: every write blocks until the test ends.
    struct Stuck(Mutex<std::sync::mpsc::Receiver<()>>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.lock().unwrap().recv();
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_closed_stderr_drops_and_counts_lines_without_failing_the_logger() {
        let before = dropped_lines();
        let mut stderr = Stderr::start(Closed);
        for _ in 0..3 {
            assert_eq!(stderr.write(b"line\n").unwrap(), 5);
        }
        wait_for(|| dropped_lines() >= before + 3);
    }

    #[test]
    fn a_stuck_stderr_never_makes_the_logger_wait_it_drops_past_the_queue() {
        let (_release, stuck) = std::sync::mpsc::channel();
        let mut stderr = Stderr::start(Stuck(Mutex::new(stuck)));
        let before = dropped_lines();
        // Were a write to wait for stderr, this would never return.
        for _ in 0..(QUEUE + 100) {
            stderr.write_all(b"line\n").unwrap();
        }
        assert!(dropped_lines() >= before + 99);
    }
}
