//! A plan's steps, how they are printed (for `--dry-run`, and for root to paste: quoted as a
//! POSIX shell reads them) and run, and reading what is in place (`iptables -S`).

use std::fmt;
use std::process::Command;

use super::NetworkError;
use crate::cli::args::NetworkAction;
use crate::model::shell;

/// One step of a plan: a command to run, or a value to write to a file (a setting under
/// `/proc/sys`, written directly rather than through `sh -c 'echo ... >'` as root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Run(Vec<String>),
    Write { path: String, value: String },
}

impl Cmd {
    pub(super) fn new(args: &[&str]) -> Self {
        Cmd::Run(args.iter().map(|a| a.to_string()).collect())
    }

    pub(super) fn write(path: String, value: &str) -> Self {
        Cmd::Write {
            path,
            value: value.to_owned(),
        }
    }
}

/// The shell line that does what the step does, each word quoted where a shell would read it
/// otherwise.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmd::Run(args) => {
                let words: Vec<String> = args.iter().map(|a| shell::word(a)).collect();
                f.write_str(&words.join(" "))
            }
            Cmd::Write { path, value } => {
                write!(f, "echo {} > {}", shell::word(value), shell::word(path))
            }
        }
    }
}

pub(super) fn iptables(table: &str, rule: &str) -> Cmd {
    let mut args = vec!["iptables", "-w", "-t", table];
    args.extend(rule.split(' '));
    Cmd::new(&args)
}

pub(super) fn ip6tables(table: &str, rule: &str) -> Cmd {
    let mut args = vec!["ip6tables", "-w", "-t", table];
    args.extend(rule.split(' '));
    Cmd::new(&args)
}

/// The rules of `chain` in `table` (`iptables -S` form) that carry one of our `comments`.
pub(super) fn our_rules(
    program: &str,
    table: &str,
    chain: &str,
    comments: &[&str],
) -> Result<Vec<String>, NetworkError> {
    let rules = output(&Cmd::new(&[program, "-w", "-t", table, "-S", chain]))?;
    Ok(rules
        .lines()
        .filter(|l| {
            comments
                .iter()
                .any(|c| l.contains(&format!("--comment {c} ")))
        })
        .map(str::to_owned)
        .collect())
}

/// Runs one step; a command's standard output.
pub(super) fn output(cmd: &Cmd) -> Result<String, NetworkError> {
    let failed = |stderr: String| NetworkError::Failed {
        command: cmd.to_string(),
        stderr,
    };
    let args = match cmd {
        Cmd::Run(args) => args,
        Cmd::Write { path, value } => {
            return std::fs::write(path, format!("{value}\n"))
                .map(|()| String::new())
                .map_err(|e| failed(e.to_string()));
        }
    };
    let out = Command::new(&args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| missing_or_failed(cmd, &args[0], e))?;
    if !out.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn missing_or_failed(cmd: &Cmd, program: &str, e: std::io::Error) -> NetworkError {
    if e.kind() == std::io::ErrorKind::NotFound {
        NetworkError::Missing {
            program: program.to_owned(),
            hint: "install iproute2 and iptables (Debian/Ubuntu: apt install iproute2 iptables)",
        }
    } else {
        NetworkError::Failed {
            command: cmd.to_string(),
            stderr: e.to_string(),
        }
    }
}

/// Runs (or, for a dry run, prints) `plan`, the commands `action` takes; an empty plan says why
/// there is nothing to do.
pub(super) fn execute(
    plan: &[Cmd],
    action: NetworkAction,
    dry_run: bool,
) -> Result<(), NetworkError> {
    if plan.is_empty() {
        println!(
            "nothing to do: {}",
            match action {
                NetworkAction::Down => "nothing of fintors's is in place",
                NetworkAction::Up | NetworkAction::Status => "already in place",
            }
        );
    }
    for cmd in plan {
        println!("{}{cmd}", if dry_run { "" } else { "+ " });
        if !dry_run {
            output(cmd)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_a_shell_would_read_otherwise_is_quoted_so_root_can_paste_it() {
        let cmd = Cmd::new(&["iptables", "!", "-d", "[::1]:80", "it's"]);
        assert_eq!(cmd.to_string(), r"iptables '!' -d '[::1]:80' 'it'\''s'");
        let write = Cmd::write("/proc/sys/x".into(), "1");
        assert_eq!(write.to_string(), "echo 1 > /proc/sys/x");
    }

    #[test]
    fn a_write_step_writes_the_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("route_localnet");
        std::fs::write(&path, "0\n").unwrap();
        output(&Cmd::write(path.to_str().unwrap().into(), "1")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
    }
}
