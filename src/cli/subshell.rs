//! `fintors exec ROLE` with no command: the user's own shell (`$SHELL`), pinned to the role as
//! aws-vault's `exec` does, with `[ROLE] ` in front of its prompt so the pin cannot be
//! forgotten; `exit` returns to the shell that ran fintors.
//!
//! The prompt is changed after the user's own start-up files have run, or they would set it
//! back: bash reads an rc file of ours (`--rcfile`) that sources `~/.bashrc` first; zsh a
//! `ZDOTDIR` of ours whose files source the user's; fish an `--init-command`, which runs after
//! its configuration. The files live in a private directory (`0700`) that the shell removes as
//! soon as it has opened them. A prompt that already calls the helpers' `fintors_prompt` shows
//! the pin already and is left alone. Any other shell gets `PS1`.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::{Alias, shell};

/// The shell the user runs: `$SHELL`, else `/bin/sh`.
pub fn users_shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

/// The shells whose prompt is set their own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bash,
    Zsh,
    Fish,
    Other,
}

impl Kind {
    fn of(program: &Path) -> Kind {
        // A login shell's name starts with `-`.
        match program
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.trim_start_matches('-'))
        {
            Some("bash") => Kind::Bash,
            Some("zsh") => Kind::Zsh,
            Some("fish") => Kind::Fish,
            _ => Kind::Other,
        }
    }
}

/// The prompt's prefix for `role`.
fn prefix(role: &Alias) -> String {
    format!("[{role}] ")
}

/// A shell to start, and the directory of start-up files it removes once it runs (to remove
/// if it cannot be started).
pub struct Subshell {
    pub command: Command,
    pub files: Option<PathBuf>,
}

/// The command that starts `program` (a shell) interactively with `role` in its prompt.
pub fn command(program: &OsString, role: &Alias) -> std::io::Result<Subshell> {
    let path = PathBuf::from(program);
    let mut command = Command::new(program);
    let mut files = None;
    match Kind::of(&path) {
        Kind::Bash => {
            let dir = private_dir_with(|dir| vec![("bashrc", bashrc(dir, role))])?;
            command.arg("--rcfile").arg(dir.join("bashrc")).arg("-i");
            files = Some(dir);
        }
        Kind::Zsh => {
            let dir = private_dir_with(|dir| {
                vec![(".zshenv", ZSHENV.to_owned()), (".zshrc", zshrc(dir, role))]
            })?;
            match std::env::var_os("ZDOTDIR") {
                Some(user) => command.env("_FINTORS_USER_ZDOTDIR", user),
                None => command.env_remove("_FINTORS_USER_ZDOTDIR"),
            };
            command.env("ZDOTDIR", &dir).arg("-i");
            files = Some(dir);
        }
        Kind::Fish => {
            command.arg("--init-command").arg(fish_init(role)).arg("-i");
        }
        Kind::Other => {
            command.env("PS1", format!("{}$ ", prefix(role))).arg("-i");
        }
    }
    Ok(Subshell { command, files })
}

/// bash: the user's `~/.bashrc`, then a `PROMPT_COMMAND` step (last, also when it is an
/// array) that puts the prefix back in front of the prompt whenever it is missing: prompts
/// such as starship's are rebuilt before each command. One that calls the helpers'
/// `fintors_prompt` shows the pin already. The directory goes first: bash has read the whole
/// file by then.
fn bashrc(dir: &Path, role: &Alias) -> String {
    format!(
        "command rm -rf -- {dir}\n\
         if [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n\
         __fintors_shell_prompt() {{\n\
         case \"${{PS1-}}\" in *fintors_prompt*|{prefix}*) ;; *) PS1={prefix}\"${{PS1-\\$ }}\" ;; esac\n\
         }}\n\
         if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) == \"declare -a\"* ]]; then\n\
         PROMPT_COMMAND+=(__fintors_shell_prompt)\n\
         else PROMPT_COMMAND=\"${{PROMPT_COMMAND:+$PROMPT_COMMAND\n}}__fintors_shell_prompt\"; fi\n",
        dir = shell::quote(&dir.to_string_lossy()),
        prefix = shell::quote(&prefix(role)),
    )
}

/// zsh reads `$ZDOTDIR/.zshenv` and then `$ZDOTDIR/.zshrc`; ours source the user's (from their
/// own `ZDOTDIR`, else home) and hand `ZDOTDIR` back before their `.zshrc` runs.
const ZSHENV: &str = r#"_fintors_dir=$ZDOTDIR
if [[ -n ${_FINTORS_USER_ZDOTDIR+set} ]]; then ZDOTDIR=$_FINTORS_USER_ZDOTDIR; else unset ZDOTDIR; fi
[[ -f ${ZDOTDIR:-$HOME}/.zshenv ]] && source "${ZDOTDIR:-$HOME}/.zshenv"
_fintors_user=${ZDOTDIR-}; _fintors_had=${ZDOTDIR+set}
ZDOTDIR=$_fintors_dir
"#;

/// Also moves what `/etc/zshrc` placed under our `ZDOTDIR` (macOS's puts `HISTFILE` and
/// `SHELL_SESSION_DIR` there) back to the user's, and prefixes the prompt from `precmd`, as
/// bash does, for prompts rebuilt before each command (pure, powerlevel10k, starship).
fn zshrc(dir: &Path, role: &Alias) -> String {
    format!(
        "if [[ -n $_fintors_had ]]; then ZDOTDIR=$_fintors_user; else unset ZDOTDIR; fi\n\
         unset _fintors_dir _fintors_user _fintors_had _FINTORS_USER_ZDOTDIR\n\
         [[ ${{HISTFILE-}} == {dir}/* ]] && HISTFILE=${{ZDOTDIR:-$HOME}}/${{HISTFILE#{dir}/}}\n\
         [[ ${{SHELL_SESSION_DIR-}} == {dir}/* ]] && \
         SHELL_SESSION_DIR=${{ZDOTDIR:-$HOME}}/${{SHELL_SESSION_DIR#{dir}/}}\n\
         command rm -rf -- {dir}\n\
         [[ -f ${{ZDOTDIR:-$HOME}}/.zshrc ]] && source \"${{ZDOTDIR:-$HOME}}/.zshrc\"\n\
         __fintors_shell_prompt() {{\n\
         [[ $PROMPT == *fintors_prompt* || $PROMPT == {prefix}* ]] || PROMPT={prefix}$PROMPT\n\
         }}\n\
         typeset -ga precmd_functions; precmd_functions+=(__fintors_shell_prompt)\n",
        dir = shell::quote(&dir.to_string_lossy()),
        // A role name holds no `%`; were it to, zsh would read it as a prompt escape.
        prefix = shell::quote(&prefix(role).replace('%', "%%")),
    )
}

/// fish: wraps the prompt the configuration defined, unless it shows the pin already.
fn fish_init(role: &Alias) -> String {
    format!(
        "if not string match -q '*fintors_prompt*' -- (functions fish_prompt 2>/dev/null)\n\
         functions -q fish_prompt; and functions -c fish_prompt __fintors_shell_prompt\n\
         function fish_prompt; printf '%s' {prefix}; functions -q __fintors_shell_prompt; and \
         __fintors_shell_prompt; end\n\
         end",
        prefix = shell::quote_fish(&prefix(role)),
    )
}

/// A new directory only this user can enter, holding the shell's start-up files (`files`
/// gives each one's name and contents, which may name the directory); gone again if one cannot
/// be written.
fn private_dir_with(
    files: impl FnOnce(&Path) -> Vec<(&'static str, String)>,
) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "fintors-shell.{}.{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let written = files(&dir)
        .iter()
        .try_for_each(|(name, contents)| write_new(&dir.join(name), contents));
    match written {
        Ok(()) => Ok(dir),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

fn write_new(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_is_known_by_its_file_name() {
        assert_eq!(Kind::of(Path::new("/usr/local/bin/bash")), Kind::Bash);
        assert_eq!(Kind::of(Path::new("zsh")), Kind::Zsh);
        assert_eq!(Kind::of(Path::new("/usr/bin/fish")), Kind::Fish);
        assert_eq!(Kind::of(Path::new("/bin/dash")), Kind::Other);
    }

    #[test]
    fn another_shell_gets_the_role_in_ps1() {
        let role = Alias::parse("prod").unwrap();
        let shell = command(&"/bin/dash".into(), &role).unwrap();
        assert!(shell.files.is_none());
        let ps1 = shell
            .command
            .get_envs()
            .find(|(k, _)| *k == "PS1")
            .and_then(|(_, v)| v);
        assert_eq!(ps1, Some(std::ffi::OsStr::new("[prod] $ ")));
    }
}
