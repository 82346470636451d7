//! Tests that cannot run here say so instead of passing in silence: `make test` lists them.

/// Says that the calling test skips, where a person running `cargo test` sees it: libtest
/// captures what a passing test prints with `eprintln!`, so this writes to stderr directly.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
    // `make test` counts them at the end (libtest itself can only say "ok"): one line each in
    // the file FINTORS_SKIPPED names, the test's name (libtest's thread) and why.
    if let Some(log) = std::env::var_os("FINTORS_SKIPPED") {
        let test = std::thread::current()
            .name()
            .unwrap_or("(unnamed)")
            .to_owned();
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            // One write of the whole line: concurrent tests' lines never interleave.
            let _ = file.write_all(format!("{test}: {why}\n").as_bytes());
        }
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether a test that needs root (to give a file to another user, say) can run with `euid`:
/// elsewhere it is skipped, saying that `what` needs root; under CI, which runs as root, not
/// being root fails it instead.
pub fn as_root(euid: u32, what: &str) -> bool {
    if euid == 0 {
        return true;
    }
    assert!(!in_ci(), "CI runs the tests as root");
    skipped(&format!("{what} needs root"));
    false
}
