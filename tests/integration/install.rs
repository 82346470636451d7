//! Installed like a real tool: `make install-files` (what `make install` does after building)
//! puts manual pages `man` reads, completions and the shell helpers under a prefix, and
//! `make uninstall-files` takes every one of them away; `fintors service` writes a systemd user
//! unit that systemd accepts, running this very binary, and removes only its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{in_ci, repo_path};

fn tool_available(tool: &str, package: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        assert!(
            !in_ci(),
            "{tool} is missing; .ci/run must install {package}"
        );
        crate::support::skipped(&format!("{tool} is not installed"));
    }
    found
}

fn make(target: &str, prefix: &Path) -> Output {
    Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(repo_path(""))
        .arg(target)
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("BIN={}", env!("CARGO_BIN_EXE_fintors")))
        .output()
        .unwrap()
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn man(prefix: &Path, page: &str) -> Output {
    Command::new("man")
        .arg("-M")
        .arg(prefix.join("share/man"))
        .args(["-P", "cat", page])
        .env("MANWIDTH", "100")
        .output()
        .unwrap()
}

#[test]
fn make_install_files_gives_man_pages_completions_and_helpers_and_uninstall_takes_them_all() {
    if !tool_available("make", "make") || !tool_available("man", "man-db") {
        return;
    }
    let prefix = tempfile::tempdir().unwrap();
    let o = make("install-files", prefix.path());
    assert!(o.status.success(), "{o:?}");
    let share = prefix.path().join("share");
    for file in [
        "fintors/shell/fintors.bash",
        "fintors/shell/fintors.zsh",
        "fintors/shell/fintors.fish",
        "bash-completion/completions/fintors",
        "zsh/site-functions/_fintors",
        "fish/vendor_completions.d/fintors.fish",
        "man/man1/fintors.1",
        "man/man1/fintors-use.1",
        "man/man1/fintors-service.1",
    ] {
        let len = std::fs::metadata(share.join(file)).map_or(0, |m| m.len());
        assert!(len > 0, "{file} missing or empty");
    }

    let page = man(prefix.path(), "fintors");
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(page.status.success(), "{page:?}");
    assert!(
        text.contains("fintors") && text.contains("Switch the active role"),
        "the subcommands are in fintors(1): {text}"
    );
    let page = man(prefix.path(), "fintors-use");
    assert!(page.status.success(), "{page:?}");

    let o = make("uninstall-files", prefix.path());
    assert!(o.status.success(), "{o:?}");
    let left = files(prefix.path());
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn fintors(config_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fintors"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .output()
        .unwrap()
}

#[test]
fn service_install_writes_a_user_unit_systemd_accepts_that_runs_this_binary() {
    if !cfg!(target_os = "linux") || !tool_available("systemd-analyze", "systemd") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let o = fintors(
        home.path(),
        &[
            "service",
            "install",
            "--no-start",
            "--config",
            "/etc/fintorc",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let unit = home.path().join("systemd/user/fintors.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_fintors"))
        .canonicalize()
        .unwrap();
    assert!(
        text.contains(&format!(
            "\nExecStart={} serve --config /etc/fintorc\n",
            binary.display()
        )),
        "{text}"
    );
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let status = fintors(home.path(), &["service", "status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .ends_with("fintors.service: written by fintors"),
        "{status:?}"
    );
}

/// Where no user session manager answers (a container, SSH without lingering), install still
/// leaves the unit in place and says, in one line, what to run where.
#[test]
fn service_install_without_a_session_manager_says_what_to_run() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fintors"))
        .args(["service", "install"])
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("XDG_RUNTIME_DIR", home.path().join("no-runtime"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        err.starts_with("fintors: wrote ")
            && err.contains("`systemctl --user daemon-reload` failed: ")
            && err.trim_end().ends_with("run it in your desktop session")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(home.path().join("systemd/user/fintors.service").exists());
}

#[test]
fn service_install_leaves_a_unit_fintors_did_not_write_unless_forced() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let unit = home.path().join("systemd/user/fintors.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(&unit, "[Service]\nExecStart=/usr/local/bin/fintors serve\n").unwrap();
    let o = fintors(home.path(), &["service", "install", "--no-start"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("install --force replaces it"),
        "{o:?}"
    );
    let o = fintors(
        home.path(),
        &["service", "install", "--no-start", "--force"],
    );
    assert!(o.status.success(), "{o:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&unit).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "nobody else may write a unit this user runs");
}

#[test]
fn service_install_refuses_a_path_with_a_newline() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let o = fintors(
        home.path(),
        &[
            "service",
            "install",
            "--no-start",
            "--config",
            "/tmp/x\nExecStartPre=/bin/evil",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds a control character"),
        "{o:?}"
    );
    assert!(!home.path().join("systemd/user/fintors.service").exists());
}

#[test]
fn service_uninstall_removes_its_unit_and_leaves_anyone_elses() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let o = fintors(home.path(), &["service", "install", "--no-start"]);
    assert!(o.status.success(), "{o:?}");
    let unit = home.path().join("systemd/user/fintors.service");
    let o = fintors(home.path(), &["service", "uninstall", "--no-start"]);
    assert!(o.status.success(), "{o:?}");
    assert!(!unit.exists());
    let o = fintors(home.path(), &["service", "uninstall", "--no-start"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("nothing to do: {} does not exist\n", unit.display())
    );

    std::fs::write(&unit, "[Service]\nExecStart=/usr/bin/someone-elses\n").unwrap();
    let o = fintors(home.path(), &["service", "uninstall", "--no-start"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not fintors's"),
        "{o:?}"
    );
    assert!(unit.exists(), "a unit fintors did not write is left alone");
}
