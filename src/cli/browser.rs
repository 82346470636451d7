//! Opening a link in the user's browser, for `fintors console` and `fintors login`: `$BROWSER`,
//! else the desktop's opener (`xdg-open`, `open` on macOS); none without a display (an SSH
//! session), where the caller prints or falls back instead. The link is the one argument of
//! the opener: never a shell, so nothing in it runs.

/// What opens a URL in the user's browser: `$BROWSER`, else the desktop's opener; `None`
/// without a display, where a browser cannot open.
pub fn opener() -> Option<String> {
    if let Some(browser) = first_browser(&std::env::var("BROWSER").unwrap_or_default()) {
        return Some(browser);
    }
    if cfg!(target_os = "macos") {
        return Some("open".into());
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    display.then(|| "xdg-open".into())
}

/// Runs `opener` on `link` with nothing on its standard streams: whether it says it did.
pub fn open_with(opener: &str, link: &str) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new(opener)
        .arg(link)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
}

/// Starts `opener` on `link` and does not wait for it (a browser may not return until the page
/// it opened has loaded, and that page may need this process): whether it started. It is
/// reaped by a thread of its own.
pub fn start(opener: &str, link: &str) -> bool {
    let started = std::process::Command::new(opener)
        .arg(link)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

/// `$BROWSER` may list several programs, `:`-separated, to try in order; the first will do.
fn first_browser(list: &str) -> Option<String> {
    list.split(':')
        .map(str::trim)
        .find(|b| !b.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_browser_list_is_used() {
        assert_eq!(first_browser("firefox").as_deref(), Some("firefox"));
        assert_eq!(
            first_browser(":firefox:chromium").as_deref(),
            Some("firefox")
        );
        assert_eq!(first_browser(""), None);
    }
}
