//! Slow and idle clients: bounded, and never in the way of others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::require_venv;
use crate::support::Daemon;

/// Waits for the server to close the connection; what it sent first (if anything) is returned.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<String, String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&seen).into_owned());
            }
            Err(e) => return Err(format!("still open after {:?}: {e}", started.elapsed())),
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    require_venv!();
    let d = Daemon::start();
    let mut slow = TcpStream::connect(d.addr).unwrap();
    write!(slow, "GET /roles HTTP/1.1\r\nHost: {}\r\nX-Slow: 1", d.addr).unwrap();
    let sent = closed_within(&mut slow, Duration::from_secs(30)).unwrap();
    assert!(
        sent.is_empty() || sent.starts_with("HTTP/1.1 408"),
        "{sent}"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    require_venv!();
    let d = Daemon::start();
    let mut idle = TcpStream::connect(d.addr).unwrap();
    write!(idle, "GET /roles HTTP/1.1\r\nHost: {}\r\n\r\n", d.addr).unwrap();
    let sent = closed_within(&mut idle, Duration::from_secs(30)).unwrap();
    assert!(
        sent.starts_with("HTTP/1.1 200"),
        "the request itself was answered: {sent}"
    );
}

#[test]
fn hundreds_of_idle_connections_do_not_stop_others_being_served() {
    require_venv!();
    let d = Daemon::start();
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(d.addr).unwrap())
        .collect();
    for _ in 0..20 {
        assert_eq!(d.get("/roles").status, 200);
    }
    drop(idle);
}

#[test]
fn an_oversized_request_head_is_refused_and_others_still_served() {
    require_venv!();
    let d = Daemon::start();
    let mut stream = TcpStream::connect(d.addr).unwrap();
    let filler = "a".repeat(64 * 1024);
    let head = format!(
        "GET /latest/meta-data/ HTTP/1.1\r\nHost: {}\r\nX-Filler: {filler}\r\n\r\n",
        d.addr
    );
    // The server may close before taking it all; what it answered is what counts.
    let _ = stream.write_all(head.as_bytes());
    let answer = closed_within(&mut stream, Duration::from_secs(5)).unwrap_or_default();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert_eq!(d.get("/roles").status, 200);
}
