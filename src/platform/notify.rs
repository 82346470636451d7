//! A desktop notification: how a daemon with no terminal tells its user that something needs
//! them (a login). `notify-send` on Linux, `osascript` on macOS, where they exist; nothing
//! otherwise. The text is an argument, never part of a script, and nothing waits for the
//! notifier.

/// Shows `text` under `title`, if this desktop can; never blocks, never fails.
pub fn desktop(title: &str, text: &str) {
    let mut command = notifier(title, text);
    match command.spawn() {
        // Reaped by a thread of its own: the caller does not wait for a desktop.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::debug!("no desktop notification ({e})"),
    }
}

#[cfg(target_os = "macos")]
fn notifier(title: &str, text: &str) -> std::process::Command {
    let mut c = std::process::Command::new("osascript");
    c.args([
        "-e",
        "on run argv",
        "-e",
        "display notification (item 2 of argv) with title (item 1 of argv)",
        "-e",
        "end run",
        title,
        text,
    ]);
    quiet(c)
}

#[cfg(not(target_os = "macos"))]
fn notifier(title: &str, text: &str) -> std::process::Command {
    let mut c = std::process::Command::new("notify-send");
    c.args(["--app-name=fintors", "--", title, text]);
    quiet(c)
}

fn quiet(mut c: std::process::Command) -> std::process::Command {
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}
