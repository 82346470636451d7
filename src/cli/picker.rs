//! Picking a role by typing, when `use`, `exec`, `console`, `creds` or `env --role` names none
//! on a terminal: every typed word must be found (case-insensitive) in a role's alias, account
//! name or id, role name, sso-session, ARN or credential command, the same match as `fintors
//! roles WORD...`; arrows and Enter pick, Esc cancels. The list is ordered by the user's
//! [`history`], most used recently first, and drawn on stderr, so
//! `eval "$(fintors env --role)"` still gets only its lines on stdout. Afterwards one line names
//! the command that skips the picker next time.
//!
//! Without a terminal there is no one to ask: the command fails with the roles (or how to find
//! one) and how to name one, with exit status 1, not the 2 of "the daemon is not running".
//!
//! The terminal UI is inquire's `Select` (see Cargo.toml for why that crate); what is matched
//! and in which order is decided here. With 1,500 roles a keystroke filters them all: each
//! role's text is lowercased once, up front, and matching is a substring search per word.

use std::fmt;
use std::io::IsTerminal;

use super::args::ClientArgs;
use super::client::Endpoint;
use super::daemon::{CommandError, printable, report, role_or_active};
use super::history::{self, History};
use super::keys;
use crate::api::RoleReport;
use crate::model::shell;

/// The command a role is picked for: what the hint afterwards and the error without a terminal
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Use,
    Exec,
    Console,
    Creds,
    EnvRole,
}

impl Purpose {
    /// How the command is written with a role named, `ROLE` standing for it.
    pub fn usage(self) -> &'static str {
        match self {
            Purpose::Use => "fintors use ROLE",
            Purpose::Exec => "fintors exec ROLE [COMMAND...]",
            Purpose::Console => "fintors console ROLE",
            Purpose::Creds => "fintors creds ROLE",
            Purpose::EnvRole => "eval \"$(fintors env --role ROLE)\"",
        }
    }

    /// The subcommand's name.
    fn command(self) -> &'static str {
        match self {
            Purpose::Use => "use",
            Purpose::Exec => "exec",
            Purpose::Console => "console",
            Purpose::Creds => "creds",
            Purpose::EnvRole => "env --role",
        }
    }

    /// The command that names `alias`, so the picker is skipped.
    pub fn direct(self, alias: &str) -> String {
        let usage = match self {
            Purpose::Exec => "fintors exec ROLE",
            other => other.usage(),
        };
        usage.replace("ROLE", &shell::word(alias))
    }

    /// Whether the active role heads the list: for the commands whose default it was (`creds`,
    /// `console`), so Enter alone does what the command did before it asked.
    fn active_first(self) -> bool {
        matches!(self, Purpose::Console | Purpose::Creds)
    }

    fn question(self) -> &'static str {
        match self {
            Purpose::Use => "Switch to which role?",
            Purpose::Exec => "Run a shell as which role?",
            Purpose::Console => "Open the console as which role?",
            Purpose::Creds => "Credentials of which role?",
            Purpose::EnvRole => "Pin this shell to which role?",
        }
    }
}

/// Whether a person is there to pick: stdin to read keys from and stderr to draw on are a
/// terminal. Stdout may be captured, as in `$(fintors creds)`.
pub fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The role a command acts on: the one named; else, on a terminal, the one the user picks; else
/// the active one where that is the command's default (`creds`, `console`), or an error that
/// says how to name one.
pub async fn named_or_picked(
    args: &ClientArgs,
    endpoint: &Endpoint,
    named: Option<&str>,
    purpose: Purpose,
) -> Result<String, CommandError> {
    match named {
        Some(alias) => Ok(alias.to_owned()),
        None if !on_a_terminal() && purpose.active_first() => {
            role_or_active(endpoint, None, purpose.command()).await
        }
        None => pick(args, endpoint, purpose).await,
    }
}

/// The role the user picks for `purpose` from the daemon's roles; without a terminal, an error
/// with how to name one.
async fn pick(
    args: &ClientArgs,
    endpoint: &Endpoint,
    purpose: Purpose,
) -> Result<String, CommandError> {
    let report = report(endpoint).await?;
    if !on_a_terminal() || report.roles.is_empty() {
        return Err(CommandError::NoRoleNamed {
            usage: purpose.usage(),
            known: report.roles.iter().map(|r| r.alias.clone()).collect(),
        });
    }
    let history = keys::state_dir(args)
        .map(|dir| History::load(&dir))
        .unwrap_or_default();
    let choices = choices(
        &report.roles,
        &history,
        purpose.active_first(),
        chrono::Utc::now().timestamp(),
    );
    let question = purpose.question();
    let picked = tokio::task::spawn_blocking(move || ask(question, choices))
        .await
        .expect("the picker does not panic")?;
    eprintln!("fintors: next time: {}", purpose.direct(&picked));
    Ok(picked)
}

/// Counts a use of `alias` in the picker's history, when a person made it (stderr is a
/// terminal): a script's uses would bury theirs.
pub fn remember(args: &ClientArgs, alias: &str) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    if let Some(dir) = keys::state_dir(args) {
        history::remember(&dir, alias);
    }
}

/// Runs the picker on the terminal; blocks until the user picks or cancels.
fn ask(question: &str, choices: Vec<Choice>) -> Result<String, CommandError> {
    use inquire::InquireError;
    let scorer = |typed: &str, choice: &Choice, _: &str, _: usize| -> Option<i64> {
        let typed = typed.to_lowercase();
        every_word_in(&choice.haystack, typed.split_whitespace()).then_some(0)
    };
    let help = format!(
        "{} roles: type words to filter, ↑↓ to move, Enter to pick, Esc to cancel",
        choices.len()
    );
    let answer = inquire::Select::new(question, choices)
        .with_scorer(&scorer)
        // The choices come in frecency order; a filter keeps that order.
        .with_sorter(&|_| {})
        .with_page_size(PAGE)
        // What stays on the terminal afterwards: the question and the role picked.
        .with_formatter(&|picked| picked.value.alias.clone())
        .with_help_message(&help)
        .prompt_skippable();
    match answer {
        Ok(Some(choice)) => Ok(choice.alias),
        Ok(None) => Err(CommandError::NothingPicked),
        Err(InquireError::OperationInterrupted) => Err(CommandError::PickInterrupted),
        Err(e) => Err(CommandError::NoPicker(e.to_string())),
    }
}

/// Rows of roles shown at once: a screenful on an 80×24 terminal with room for the command
/// line above.
const PAGE: usize = 15;

/// One role in the picker: the line shown and the lowercased text it is found by.
#[derive(Debug, Clone)]
pub struct Choice {
    pub alias: String,
    line: String,
    haystack: String,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// The roles as the picker lists them: aligned lines, most wanted first (the active role
/// first if `active_first`), then in the daemon's order.
pub fn choices(
    roles: &[RoleReport],
    history: &History,
    active_first: bool,
    now: i64,
) -> Vec<Choice> {
    let mut roles: Vec<&RoleReport> = roles.iter().collect();
    history.order(&mut roles, |r| &r.alias, now);
    if active_first && let Some(i) = roles.iter().position(|r| r.active) {
        let active = roles.remove(i);
        roles.insert(0, active);
    }
    let alias_width = roles.iter().map(|r| width(&r.alias)).max().unwrap_or(0);
    let accounts: Vec<String> = roles.iter().map(|r| account(r)).collect();
    let account_width = accounts.iter().map(|a| width(a)).max().unwrap_or(0);
    roles
        .iter()
        .zip(accounts)
        .map(|(role, account)| {
            let line = format!(
                "{:alias_width$}  {:account_width$}  {}{}",
                printable(&role.alias),
                printable(&account),
                printable(&what(role)),
                if role.active { "  (active)" } else { "" },
            );
            Choice {
                alias: role.alias.clone(),
                line: line.trim_end().to_owned(),
                haystack: haystack(role),
            }
        })
        .collect()
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// The account column: "name (id)", or the id.
fn account(role: &RoleReport) -> String {
    match &role.account_name {
        Some(name) => format!("{name} ({})", role.account_id),
        None => role.account_id.clone(),
    }
}

/// The role column: the role or permission set, how it is chained, or its command.
fn what(role: &RoleReport) -> String {
    match (&role.via, &role.program) {
        (_, Some(program)) => format!("command {program}"),
        (Some(via), None) => format!("{} via {via}", role.role_name),
        (None, None) => role.role_name.clone(),
    }
}

/// What a role is found by, lowercased: its alias, account id and name, role name,
/// sso-session, ARN and credential command.
pub fn haystack(role: &RoleReport) -> String {
    [
        role.alias.as_str(),
        &role.account_id,
        role.account_name.as_deref().unwrap_or(""),
        &role.role_name,
        role.sso_session.as_deref().unwrap_or(""),
        &role.arn,
        role.program.as_deref().unwrap_or(""),
    ]
    .join(" ")
    .to_lowercase()
}

/// Whether every one of `words` (lowercased) is somewhere in `haystack`.
pub fn every_word_in<'a>(haystack: &str, mut words: impl Iterator<Item = &'a str>) -> bool {
    words.all(|word| haystack.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DoorReport, ServedReport};

    fn role(alias: &str, account_name: Option<&str>, role_name: &str) -> RoleReport {
        RoleReport {
            alias: alias.to_owned(),
            kind: "sso".to_owned(),
            arn: format!("arn:aws:iam::111122223333:role/{role_name}"),
            account_id: "111122223333".to_owned(),
            role_name: role_name.to_owned(),
            sso_session: Some("corp".to_owned()),
            account_name: account_name.map(str::to_owned),
            via: None,
            program: None,
            session_name: "me".to_owned(),
            region: None,
            active: false,
            credentials: None,
            last_error: None,
            sts_calls: 0,
            attempts: 0,
            served: ServedReport {
                imds: DoorReport::default(),
                container: DoorReport::default(),
            },
        }
    }

    fn found(roles: &[RoleReport], typed: &str) -> Vec<String> {
        choices(roles, &History::default(), false, 0)
            .into_iter()
            .filter(|c| every_word_in(&c.haystack, typed.to_lowercase().split_whitespace()))
            .map(|c| c.alias)
            .collect()
    }

    #[test]
    fn every_typed_word_must_match_somewhere() {
        let roles = [
            role("prod-admin", Some("Production"), "AdministratorAccess"),
            role("prod-ro", Some("Production"), "ReadOnly"),
            role("dev-admin", Some("Development"), "AdministratorAccess"),
        ];
        assert_eq!(found(&roles, "PROD admin"), ["prod-admin"]);
        assert_eq!(found(&roles, "administrator"), ["prod-admin", "dev-admin"]);
        assert_eq!(found(&roles, "development readonly"), Vec::<String>::new());
    }

    #[test]
    fn the_account_id_sso_session_and_arn_are_matched_too() {
        let roles = [role("a", None, "Dev")];
        assert_eq!(found(&roles, "1111222"), ["a"]);
        assert_eq!(found(&roles, "corp"), ["a"]);
        assert_eq!(found(&roles, "role/dev"), ["a"]);
    }

    #[test]
    fn nothing_typed_lists_every_role() {
        let roles = [role("a", None, "A"), role("b", None, "B")];
        assert_eq!(found(&roles, "  "), ["a", "b"]);
    }

    #[test]
    fn the_most_used_recently_come_first() {
        let roles = [
            role("a", None, "A"),
            role("b", None, "B"),
            role("c", None, "C"),
        ];
        let mut history = History::default();
        history.record("c", 100);
        let order: Vec<String> = choices(&roles, &history, false, 200)
            .into_iter()
            .map(|c| c.alias)
            .collect();
        assert_eq!(order, ["c", "a", "b"]);
    }

    #[test]
    fn the_active_role_comes_first_where_it_was_the_default() {
        let mut roles = [role("a", None, "A"), role("b", None, "B")];
        roles[1].active = true;
        let mut history = History::default();
        history.record("a", 100);
        let first = |active_first| {
            choices(&roles, &history, active_first, 200)[0]
                .alias
                .clone()
        };
        assert_eq!(first(true), "b");
        assert_eq!(first(false), "a");
    }

    #[test]
    fn lines_are_aligned_and_name_the_account_and_role() {
        let mut roles = [
            role("prod", Some("Production"), "Admin"),
            role("sandbox-dev", None, "Dev"),
        ];
        roles[0].active = true;
        let lines: Vec<String> = choices(&roles, &History::default(), false, 0)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "prod         Production (111122223333)  Admin  (active)",
                "sandbox-dev  111122223333               Dev",
            ]
        );
    }

    #[test]
    fn escape_sequences_from_the_daemon_do_not_reach_the_terminal() {
        let roles = [role("a\u{1b}[2Jb", None, "R")];
        let line = choices(&roles, &History::default(), false, 0)[0].to_string();
        assert!(!line.contains('\u{1b}'), "{line:?}");
    }

    #[test]
    fn the_hint_names_the_role_directly() {
        assert_eq!(Purpose::Use.direct("prod"), "fintors use prod");
        assert_eq!(Purpose::Exec.direct("prod"), "fintors exec prod");
        assert_eq!(
            Purpose::EnvRole.direct("a b"),
            "eval \"$(fintors env --role 'a b')\""
        );
    }
}
