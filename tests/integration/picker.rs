//! The role picker, driven in a real terminal: tmux runs a shell, `send-keys` types as a person
//! would and `capture-pane` reads the screen. Also `fintors exec ROLE` with no command, the
//! user's shell pinned with the role in its prompt, in bash, zsh and fish.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::require_venv;
use crate::shell_helpers::shell_available;
use crate::support::{Daemon, fintors_cli, in_ci, skipped};

/// 250 accounts of 6 roles each, named like discovered Identity Center roles: the size the
/// picker must stay smooth at.
fn many_roles() -> String {
    let mut roles = Vec::new();
    for account in 0..250 {
        let env = ["prod", "staging", "dev", "sandbox", "audit"][account % 5];
        for role in [
            "Admin",
            "ReadOnly",
            "Developer",
            "Billing",
            "Deploy",
            "Support",
        ] {
            roles.push(format!(
                "\"{env}{account}-{}\": \"arn:aws:iam::{}:role/{role}\"",
                role.to_lowercase(),
                100_000_000_000u64 + account as u64
            ));
        }
    }
    format!(
        r#"{{
  "credentials": {{ "file": "CREDS", "profile": "identity" }},
  "roles": {{ {} }},
  "default_role": "prod0-admin"
}}"#,
        roles.join(",\n")
    )
}

/// A daemon with `config` (the two example roles if none), `active` its active role if
/// named, and bash on a terminal pointed at it; none (the test skipped, saying why) without
/// the Python venv or tmux.
fn bash_on_a_terminal(config: Option<&str>, active: Option<&str>) -> Option<(Daemon, Terminal)> {
    crate::support::venv()?;
    if !tmux_available() {
        return None;
    }
    let d = match config {
        Some(config) => Daemon::builder(config).start(),
        None => Daemon::start(),
    };
    if let Some(role) = active {
        d.switch(role);
    }
    let t = Terminal::new(&d);
    Some((d, t))
}

fn tmux_available() -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok();
    if !found {
        assert!(!in_ci(), "tmux is not installed; .ci/run must install it");
        skipped("tmux is not installed");
    }
    found
}

/// A terminal of its own (a tmux server on a socket of its own) running a shell with fintors
/// on PATH, pointed at a daemon; the server goes when the value does.
struct Terminal {
    socket: String,
    home: tempfile::TempDir,
}

impl Terminal {
    fn new(daemon: &Daemon) -> Terminal {
        Self::with_shell(daemon, "/bin/bash", &["--norc", "--noprofile"], &[])
    }

    /// A terminal whose shell (and `$SHELL`) is `shell`, started with `args` in a home of its
    /// own that holds `files` (name, contents), with a temporary directory of its own too.
    fn with_shell(daemon: &Daemon, shell: &str, args: &[&str], files: &[(&str, &str)]) -> Terminal {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "fintors-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("tmp")).unwrap();
        for (name, contents) in files {
            let path = home.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_fintors")).parent().unwrap();
        let mut command = Command::new("tmux");
        command
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .arg("-c")
            .arg(home.path())
            .args(["-x", "120", "-y", "40", "--", "env", "-i"])
            .arg(format!(
                "PATH={}:/usr/local/bin:/usr/bin:/bin",
                bin.display()
            ))
            .arg(format!("HOME={}", home.path().display()))
            .arg(format!("TMPDIR={}/tmp", home.path().display()))
            .arg(format!("FINTORS_ENDPOINT={}", daemon.url()))
            .arg(format!(
                "FINTORS_STATE_DIR={}",
                daemon.state_dir().display()
            ))
            .arg("AWS_EC2_METADATA_DISABLED=true")
            .arg("TERM=xterm-256color")
            .arg("PS1=$ ")
            .arg(format!("SHELL={shell}"))
            .arg(shell)
            .args(args);
        let status = command.status().expect("starting tmux");
        assert!(status.success(), "tmux new-session: {status}");
        Terminal { socket, home }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` (no Enter).
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", "--", text]);
    }

    /// Presses keys by tmux's names: Enter, Escape, Down.
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Runs a command line in the shell.
    fn run(&self, line: &str) {
        self.type_text(line);
        self.press(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J"])
    }

    /// Waits until the screen satisfies `done` (looking every 5 ms, for at most 15 s): how
    /// long that took.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "waited 15 s for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_for_text(&self, text: &str) -> Duration {
        self.wait_for(text, |s| s.contains(text))
    }

    /// Waits for the `EXIT=N` that `echo EXIT=$?` prints (not the command line itself): N.
    fn wait_for_exit(&self) -> u8 {
        let code = |screen: &str| {
            screen.split("EXIT=").skip(1).find_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u8>().ok()
            })
        };
        self.wait_for("the exit status", |s| code(s).is_some());
        code(&self.screen()).unwrap()
    }

    /// The picker's rows: the lines under the question, up to its help line.
    fn rows(&self) -> Vec<String> {
        rows(&self.screen())
    }
}

/// The picker's rows on `screen`.
fn rows(screen: &str) -> Vec<String> {
    {
        let mut lines = screen.lines().skip_while(|l| !l.starts_with("? "));
        lines.next();
        lines
            .take_while(|l| !l.starts_with('['))
            .map(|l| l.trim_end().to_owned())
            .collect()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

fn active_role(daemon: &Daemon) -> String {
    daemon.get("/roles?status=active").body
}

#[test]
fn typed_words_filter_1500_roles_and_enter_switches_to_the_one_picked() {
    let Some((d, t)) = bash_on_a_terminal(Some(&many_roles()), None) else {
        return;
    };
    t.run("fintors use; echo EXIT=$?");
    let listed = t.wait_for_text("1500 roles: type words to filter");
    // Every typed word must be found, in any field, in any order.
    let started = Instant::now();
    t.type_text("ADMIN prod 12");
    let filtered = t.wait_for("the filtered list", |s| {
        s.contains("? Switch to which role? ADMIN prod 12") && rows(s).len() == 2
    });
    eprintln!(
        "picker with 1500 roles: listed {} ms after the command, filtered {} ms after 13 \
         keystrokes ({} ms per keystroke, each filtering all 1500), tmux polled every 5 ms",
        listed.as_millis(),
        filtered.as_millis(),
        started.elapsed().as_millis() / 13
    );
    let rows = t.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("> prod120-admin "), "{rows:?}");
    assert!(rows[1].contains("prod125-admin"), "{rows:?}");
    t.press(&["Down", "Enter"]);
    assert_eq!(t.wait_for_exit(), 0, "{}", t.screen());
    let screen = t.screen();
    assert!(
        screen.contains("fintors: next time: fintors use prod125-admin"),
        "{screen}"
    );
    assert!(screen.contains("active role: prod125-admin"), "{screen}");
    assert_eq!(active_role(&d), r#"{"roles":["prod125-admin"]}"#);
}

#[test]
fn esc_cancels_the_picker_and_switches_nothing() {
    let Some((d, t)) = bash_on_a_terminal(None, None) else {
        return;
    };
    t.run("fintors use; echo EXIT=$?");
    t.wait_for_text("2 roles: type words to filter");
    t.type_text("example2");
    t.wait_for("the filter", |s| !s.contains("> example "));
    t.press(&["Escape"]);
    assert_eq!(t.wait_for_exit(), 1, "{}", t.screen());
    let screen = t.screen();
    assert!(screen.contains("fintors: no role picked"), "{screen}");
    assert!(!screen.contains("next time"), "{screen}");
    assert_eq!(active_role(&d), r#"{"roles":["example"]}"#);
}

#[test]
fn the_roles_used_most_recently_are_listed_first() {
    let Some((d, t)) = bash_on_a_terminal(Some(&many_roles()), None) else {
        return;
    };
    // Named on a terminal, a role counts as used; twice beats once.
    for role in ["staging6-billing", "dev7-deploy", "dev7-deploy"] {
        t.run(&format!("fintors use {role}"));
        t.wait_for_text(&format!("active role: {role}"));
    }
    t.run("clear; fintors use; echo EXIT=$?");
    t.wait_for_text("1500 roles: type words to filter");
    let rows = t.rows();
    assert!(rows[0].starts_with("> dev7-deploy "), "{rows:?}");
    assert!(rows[0].ends_with("(active)"), "{rows:?}");
    assert!(rows[1].starts_with("  staging6-billing "), "{rows:?}");
    assert!(rows[2].starts_with("  audit104-admin "), "{rows:?}");
    t.press(&["Escape"]);
    assert_eq!(t.wait_for_exit(), 1);
    let history = d.state_dir().join("history.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&history).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn creds_on_a_terminal_lists_the_active_role_first_and_prints_the_one_picked() {
    let Some((_d, t)) = bash_on_a_terminal(None, Some("example2")) else {
        return;
    };
    t.run("fintors creds > creds.out; echo EXIT=$?");
    t.wait_for_text("2 roles: type words to filter");
    let rows = t.rows();
    assert!(rows[0].starts_with("> example2 "), "{rows:?}");
    t.press(&["Enter"]);
    assert_eq!(t.wait_for_exit(), 0, "{}", t.screen());
    let creds = std::fs::read_to_string(t.home().join("creds.out")).unwrap();
    assert!(creds.starts_with("export AWS_ACCESS_KEY_ID="), "{creds}");
    assert!(
        !creds.contains("roles: type"),
        "the picker is drawn on stderr"
    );
}

#[test]
fn creds_for_credential_process_never_asks_even_on_a_terminal() {
    let Some((d, t)) = bash_on_a_terminal(None, Some("example2")) else {
        return;
    };
    for format in ["credential-process", "json"] {
        // A picker here would never finish: the wait fails, showing it.
        t.run(&format!(
            "fintors creds --format {format} > {format}.out; echo {format}=$?"
        ));
        t.wait_for_text(&format!("{format}=0"));
        let creds = std::fs::read_to_string(t.home().join(format!("{format}.out"))).unwrap();
        assert!(creds.contains("\"AccessKeyId\""), "{format}: {creds}");
    }
    assert!(!t.screen().contains("roles: type"), "it asked");
    assert!(
        !d.state_dir().join("history.json").exists(),
        "a program's use is not the user's"
    );
}

#[test]
fn env_role_picks_inside_command_substitution_and_pins_the_shell() {
    let Some((_d, t)) = bash_on_a_terminal(None, None) else {
        return;
    };
    t.run(r#"eval "$(fintors env --role)"; echo "PINNED=$FINTORS_ROLE""#);
    t.wait_for_text("2 roles: type words to filter");
    t.type_text("path/example2");
    t.wait_for("the filter", |s| !s.contains("> example "));
    t.press(&["Enter"]);
    // Not "PINNED=": the command line typed above holds that too.
    t.wait_for_text("PINNED=example2");
    let screen = t.screen();
    assert!(
        screen.contains(r#"next time: eval "$(fintors env --role example2)""#),
        "{screen}"
    );
}

#[test]
fn without_a_terminal_exec_and_env_role_say_how_to_name_one() {
    require_venv!();
    let d = Daemon::start();
    for (args, usage) in [
        (&["exec"][..], "`fintors exec ROLE [COMMAND...]`"),
        (
            &["env", "--role"][..],
            r#"`eval "$(fintors env --role ROLE)"`"#,
        ),
        (
            &["env", "--role="][..],
            r#"`eval "$(fintors env --role ROLE)"`"#,
        ),
    ] {
        let o = fintors_cli(&d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err,
            format!("fintors: name a role: {usage} (configured: example, example2)\n"),
            "{args:?}"
        );
        assert_eq!(o.status.code(), Some(1), "{args:?}: not the not-running 2");
    }
    let o = fintors_cli(&d, &["exec", "example2"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "fintors: name a command: `fintors exec example2 COMMAND...` (a shell of its own needs a \
         terminal)\n"
    );
    assert_eq!(o.status.code(), Some(1));
    // Where the active role was the default, it still is.
    let o = fintors_cli(&d, &["creds"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Where `shell` is installed.
fn program(shell: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {shell}"))
        .output()
        .unwrap()
        .stdout;
    String::from_utf8(found).unwrap().trim().to_owned()
}

/// In `shell` with the helpers sourced, `fintors_use` with no role switches to the role picked,
/// and `fintors_use --here` with none pins the shell to the one picked.
fn the_helpers_pick_when_no_role_is_named(shell: &str, rc: &str, prompt: &str) {
    require_venv!();
    if !tmux_available() || !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let helpers = crate::support::repo_path(&format!("shell/fintors.{shell}"));
    let rc_text = format!("source {}\n{prompt}\n", helpers.display());
    let t = Terminal::with_shell(&d, &program(shell), &[], &[(rc, &rc_text)]);
    t.wait_for_text("mine> ");
    t.run("fintors_use");
    t.wait_for_text("? Switch to which role?");
    t.type_text("example2");
    t.wait_for("the filter", |s| !s.contains("> example "));
    t.press(&["Enter"]);
    t.wait_for_text("active role: example2");
    assert_eq!(
        d.get("/roles?status=active").body,
        r#"{"roles":["example2"]}"#
    );
    t.run("fintors_use --here");
    t.wait_for_text("? Pin this shell to which role?");
    // Only example's ARN has "role/example" (example2's is role/path/example2).
    t.type_text("role/example");
    t.wait_for("the filter", |s| !s.contains("> example2 "));
    t.press(&["Enter"]);
    t.wait_for_text("this shell: example (the active role is unchanged)");
    t.run(r#"echo "PINNED=$FINTORS_ROLE.""#);
    t.wait_for_text("PINNED=example.");
}

#[test]
fn the_bash_helpers_pick_when_no_role_is_named() {
    the_helpers_pick_when_no_role_is_named("bash", ".bashrc", "PS1='mine> '");
}

#[test]
fn the_zsh_helpers_pick_when_no_role_is_named() {
    the_helpers_pick_when_no_role_is_named("zsh", ".zshrc", "PROMPT='mine> '");
}

#[test]
fn the_fish_helpers_pick_when_no_role_is_named() {
    the_helpers_pick_when_no_role_is_named(
        "fish",
        ".config/fish/config.fish",
        "function fish_prompt; printf 'mine> '; end",
    );
}

/// `fintors exec ROLE` alone in `shell`: a shell pinned to the role, its prompt prefixed after
/// the user's start-up file set it, the start-up files of fintors's gone; `exit` comes back.
fn exec_without_a_command_opens_a_pinned_shell(shell: &str, rc: &str, rc_text: &str) {
    require_venv!();
    if !tmux_available() || !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let t = Terminal::with_shell(&d, &program(shell), &[], &[(rc, rc_text)]);
    t.wait_for_text("mine> ");
    t.run("fintors exec example2");
    t.wait_for_text("[example2] mine> ");
    t.run(r#"echo "ROLE=$FINTORS_ROLE URI=$AWS_CONTAINER_CREDENTIALS_FULL_URI""#);
    t.wait_for_text("ROLE=example2 URI=http://127.0.0.1:");
    t.wait_for("the prompt after a command", |screen| {
        let mut after = screen
            .lines()
            .skip_while(|l| !l.starts_with("ROLE=example2"));
        after
            .nth(1)
            .is_some_and(|l| l.starts_with("[example2] mine> "))
    });
    let leftovers: Vec<PathBuf> = std::fs::read_dir(t.home().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("fintors-shell."))
        .collect();
    assert!(leftovers.is_empty(), "start-up files left: {leftovers:?}");
    t.run("exit");
    t.run(r#"echo "AFTER=$FINTORS_ROLE.""#);
    t.wait_for_text("AFTER=.");
}

#[test]
fn exec_without_a_command_opens_a_pinned_bash() {
    exec_without_a_command_opens_a_pinned_shell("bash", ".bashrc", "PS1='mine> '\n");
}

#[test]
fn exec_without_a_command_opens_a_pinned_zsh() {
    exec_without_a_command_opens_a_pinned_shell("zsh", ".zshrc", "PROMPT='mine> '\n");
}

#[test]
fn a_pinned_bash_keeps_the_role_in_a_prompt_rebuilt_before_each_command() {
    exec_without_a_command_opens_a_pinned_shell(
        "bash",
        ".bashrc",
        "PROMPT_COMMAND='PS1=\"mine> \"'\n",
    );
}

#[test]
fn a_pinned_zsh_keeps_the_role_in_a_prompt_rebuilt_before_each_command() {
    exec_without_a_command_opens_a_pinned_shell("zsh", ".zshrc", "precmd() { PROMPT='mine> ' }\n");
}

#[test]
fn exec_without_a_command_opens_a_pinned_fish() {
    exec_without_a_command_opens_a_pinned_shell(
        "fish",
        ".config/fish/config.fish",
        "function fish_prompt; printf 'mine> '; end\n",
    );
}
