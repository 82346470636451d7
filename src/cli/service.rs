//! `fintors service install|uninstall|status`: the daemon as a service of the user's own session,
//! started at login and restarted if it fails, with no file copied by hand. On Linux a systemd
//! *user* unit (`~/.config/systemd/user/fintors.service`), on macOS a launchd agent
//! (`~/Library/LaunchAgents/io.github.fintors.plist`), each running this very binary (the path
//! it was started from, resolved), so what `make install` or `cargo install` put in place is
//! what runs. A system unit cannot do this: `%h` there is root's home whatever `User=` says.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::args::{ServiceAction, ServiceArgs};
use crate::config::expand_tilde;

/// The systemd user unit's name.
pub const UNIT: &str = "fintors.service";
/// The launchd agent's label.
pub const LABEL: &str = "io.github.fintors";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot tell where this fintors is ({0}); run it by its full path")]
    NoBinary(std::io::Error),
    #[error("no home directory: set HOME (or XDG_CONFIG_HOME)")]
    NoHome,
    #[error("cannot write {path}: {why}")]
    Write { path: PathBuf, why: std::io::Error },
    #[error("cannot remove {path}: {why}")]
    Remove { path: PathBuf, why: std::io::Error },
    /// The file is in place, the service manager did not take it.
    #[error("wrote {path}, but `{command}` failed: {why}; run it in your desktop session")]
    Manager {
        path: PathBuf,
        command: String,
        why: String,
    },
    #[error("{0} is not fintors's: remove it yourself if it should go")]
    NotOurs(PathBuf),
    #[error("{0} is there and not fintors's: install --force replaces it")]
    Occupied(PathBuf),
    #[error("{0:?} holds a control character (a newline?), which a service file cannot carry")]
    Unquotable(String),
    #[error("services are installed on Linux (systemd) and macOS (launchd) only")]
    Unsupported,
}

/// The service manager of this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    fn here() -> Result<Manager, ServiceError> {
        if cfg!(target_os = "linux") {
            Ok(Manager::Systemd)
        } else if cfg!(target_os = "macos") {
            Ok(Manager::Launchd)
        } else {
            Err(ServiceError::Unsupported)
        }
    }

    /// Where the service's file goes for this user.
    fn file(self) -> Result<PathBuf, ServiceError> {
        let home = || {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .ok_or(ServiceError::NoHome)
        };
        Ok(match self {
            Manager::Systemd => std::env::var_os("XDG_CONFIG_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .map_or_else(|| home().map(|h| h.join(".config")), Ok)?
                .join("systemd/user")
                .join(UNIT),
            Manager::Launchd => home()?.join(format!("Library/LaunchAgents/{LABEL}.plist")),
        })
    }

    /// The service's file, running `binary serve` with `args`: refused for a word with a
    /// control character, which would end a unit's line (and start a directive of its own).
    fn render(self, binary: &Path, args: &[String]) -> Result<String, ServiceError> {
        let words = std::iter::once(binary.display().to_string()).chain(args.iter().cloned());
        for word in words {
            if word.chars().any(char::is_control) {
                return Err(ServiceError::Unquotable(word));
            }
        }
        Ok(match self {
            Manager::Systemd => systemd_unit(binary, args),
            Manager::Launchd => launchd_plist(binary, args),
        })
    }

    /// The commands that start the service written at `file` now and at every login.
    fn enable(self, file: &Path) -> Vec<Vec<String>> {
        match self {
            Manager::Systemd => vec![
                words(&["systemctl", "--user", "daemon-reload"]),
                words(&["systemctl", "--user", "enable", "--now", UNIT]),
            ],
            Manager::Launchd => vec![vec![
                "launchctl".into(),
                "bootstrap".into(),
                gui_domain(),
                file.display().to_string(),
            ]],
        }
    }

    /// The commands that stop the service and keep it from starting again.
    fn disable(self) -> Vec<Vec<String>> {
        match self {
            Manager::Systemd => vec![words(&["systemctl", "--user", "disable", "--now", UNIT])],
            Manager::Launchd => vec![vec![
                "launchctl".into(),
                "bootout".into(),
                format!("{}/{LABEL}", gui_domain()),
            ]],
        }
    }

    /// What the manager says of the service: one line each.
    fn describe(self) -> Vec<Vec<String>> {
        match self {
            Manager::Systemd => vec![
                words(&["systemctl", "--user", "is-enabled", UNIT]),
                words(&["systemctl", "--user", "is-active", UNIT]),
            ],
            Manager::Launchd => vec![vec![
                "launchctl".into(),
                "print".into(),
                format!("{}/{LABEL}", gui_domain()),
            ]],
        }
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

fn gui_domain() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("gui/{}", unsafe { libc::getuid() })
}

/// In the first lines of every file fintors writes (the plist's second, after its XML
/// declaration): uninstall removes only a file that has it, install replaces only such a file.
const MARK: &str = "written by `fintors service install`";

fn is_ours(text: &str) -> bool {
    text.lines().take(2).any(|line| line.contains(MARK))
}

/// A systemd user unit for `binary serve ARGS`. `Type=notify`: fintors says it is ready once
/// every listener serves and the default role's credentials are in hand.
pub fn systemd_unit(binary: &Path, args: &[String]) -> String {
    let mut exec = vec![systemd_quote(&binary.display().to_string()), "serve".into()];
    exec.extend(args.iter().map(|a| systemd_quote(a)));
    format!(
        "# {MARK}; `fintors service uninstall` removes it.\n\
         [Unit]\n\
         Description=fintors instance metadata service\n\
         \n\
         [Service]\n\
         Type=notify\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec.join(" ")
    )
}

/// A word of `ExecStart=`, quoted as systemd.service(5) reads it when it needs to be: spaces,
/// quotes, backslashes; `%` and `$` are systemd's specifiers and variables, doubled to be
/// literal.
fn systemd_quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return escaped;
    }
    format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A launchd agent for `binary serve ARGS`, kept alive and started at login.
pub fn launchd_plist(binary: &Path, args: &[String]) -> String {
    let mut program = vec![binary.display().to_string(), "serve".into()];
    program.extend(args.iter().cloned());
    let arguments: String = program
        .iter()
        .map(|a| format!("    <string>{}</string>\n", xml_escape(a)))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- {MARK}; `fintors service uninstall` removes it. -->\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \x20 <key>Label</key>\n\
         \x20 <string>{LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n\
         \x20 <array>\n\
         {arguments}\
         \x20 </array>\n\
         \x20 <key>RunAtLoad</key>\n\
         \x20 <true/>\n\
         \x20 <key>KeepAlive</key>\n\
         \x20 <dict>\n\
         \x20   <key>SuccessfulExit</key>\n\
         \x20   <false/>\n\
         \x20 </dict>\n\
         </dict>\n\
         </plist>\n"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs one command of the service manager: its first line of output, or why it failed.
fn run(argv: &[String]) -> Result<String, String> {
    match Command::new(&argv[0]).args(&argv[1..]).output() {
        Ok(out) if out.status.success() => Ok(first_line(&out.stdout)),
        Ok(out) => {
            let why = first_line(&out.stderr);
            Err(if why.is_empty() {
                first_line(&out.stdout)
            } else {
                why
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// `fintors service install|uninstall|status`: what was done, for stdout.
pub fn service(args: &ServiceArgs) -> Result<String, ServiceError> {
    let manager = Manager::here()?;
    let file = manager.file()?;
    match args.action {
        ServiceAction::Install => install(manager, &file, args),
        ServiceAction::Uninstall => uninstall(manager, &file, args.no_start),
        ServiceAction::Status => Ok(status(manager, &file)),
    }
}

fn install(manager: Manager, file: &Path, args: &ServiceArgs) -> Result<String, ServiceError> {
    let binary = std::env::current_exe()
        .and_then(|b| b.canonicalize())
        .map_err(ServiceError::NoBinary)?;
    let mut serve = Vec::new();
    if let Some(config) = &args.config {
        let config = expand_tilde(config);
        let config = std::path::absolute(&config).unwrap_or(config);
        serve.extend(["--config".to_owned(), config.display().to_string()]);
    }
    let text = manager.render(&binary, &serve)?;
    match std::fs::read_to_string(file) {
        Ok(existing) if !is_ours(&existing) && !args.force => {
            return Err(ServiceError::Occupied(file.to_owned()));
        }
        _ => {}
    }
    let write = |why| ServiceError::Write {
        path: file.to_owned(),
        why,
    };
    std::fs::create_dir_all(file.parent().expect("a file in a directory")).map_err(write)?;
    write_readable(file, &text).map_err(write)?;
    let mut out = format!(
        "wrote {} (runs {} serve)\n",
        file.display(),
        binary.display()
    );
    if args.no_start {
        return Ok(out);
    }
    for command in manager.enable(file) {
        run(&command).map_err(|why| ServiceError::Manager {
            path: file.to_owned(),
            command: command.join(" "),
            why,
        })?;
    }
    out.push_str("started, and started at every login from now on\n");
    Ok(out)
}

/// Writes `text` to `file` as a new file, mode 0644 whatever the umask (a unit others could
/// write would run their commands as this user), renamed over what was there: a symbolic link
/// at `file` (`systemctl --user link`) is replaced, its target left alone.
fn write_readable(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fresh = file.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_file(&fresh);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&fresh)?;
    out.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&fresh, file)
}

fn uninstall(manager: Manager, file: &Path, keep_running: bool) -> Result<String, ServiceError> {
    match std::fs::read_to_string(file) {
        Ok(text) if !is_ours(&text) => return Err(ServiceError::NotOurs(file.to_owned())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(format!(
                "nothing to do: {} does not exist\n",
                file.display()
            ));
        }
        Err(why) => {
            return Err(ServiceError::Remove {
                path: file.to_owned(),
                why,
            });
        }
    }
    let mut out = String::new();
    if !keep_running {
        for command in manager.disable() {
            // Already stopped, or no session manager: removing the file is what matters.
            if let Err(why) = run(&command) {
                out.push_str(&format!("`{}`: {why}\n", command.join(" ")));
            }
        }
    }
    std::fs::remove_file(file).map_err(|why| ServiceError::Remove {
        path: file.to_owned(),
        why,
    })?;
    if manager == Manager::Systemd && !keep_running {
        let _ = run(&words(&["systemctl", "--user", "daemon-reload"]));
    }
    out.push_str(&format!("removed {}\n", file.display()));
    Ok(out)
}

fn status(manager: Manager, file: &Path) -> String {
    let installed = match std::fs::read_to_string(file) {
        Ok(text) if is_ours(&text) => format!("{}: written by fintors", file.display()),
        Ok(_) => format!("{}: present, not written by fintors", file.display()),
        Err(_) => format!(
            "{}: absent (`fintors service install` writes it)",
            file.display()
        ),
    };
    let mut out = installed + "\n";
    for command in manager.describe() {
        let said = run(&command).unwrap_or_else(|why| why);
        out.push_str(&format!(
            "{}: {}\n",
            command.join(" "),
            if said.is_empty() {
                "(no answer)"
            } else {
                &said
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_this_binary_with_the_config_given() {
        let unit = systemd_unit(
            Path::new("/home/me/.cargo/bin/fintors"),
            &["--config".into(), "/home/me/.fintorc".into()],
        );
        assert!(unit.contains(
            "\nExecStart=/home/me/.cargo/bin/fintors serve --config /home/me/.fintorc\n"
        ));
        assert!(unit.contains("\nType=notify\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
        assert!(unit.starts_with(&format!("# {MARK}")));
    }

    #[test]
    fn spaces_and_specifiers_in_a_path_are_quoted_for_systemd() {
        let unit = systemd_unit(Path::new("/opt/my tools/fintors"), &["/a%b$c".into()]);
        assert!(
            unit.contains("\nExecStart=\"/opt/my tools/fintors\" serve /a%%b$$c\n"),
            "{unit}"
        );
    }

    #[test]
    fn the_agent_runs_this_binary_at_login_and_again_if_it_fails() {
        let plist = launchd_plist(Path::new("/usr/local/bin/fintors"), &[]);
        assert!(plist.contains("<string>io.github.fintors</string>"));
        assert!(
            plist.contains(
                "    <string>/usr/local/bin/fintors</string>\n    <string>serve</string>\n"
            )
        );
        assert!(plist.contains("<key>RunAtLoad</key>\n  <true/>"));
        assert!(plist.contains(MARK));
    }

    #[test]
    fn markup_in_an_argument_is_escaped_in_the_plist() {
        let plist = launchd_plist(Path::new("/bin/fintors"), &["a<b&\"c\"".into()]);
        assert!(plist.contains("<string>a&lt;b&amp;&quot;c&quot;</string>"));
    }
}
