//! `identity_center`: the IAM Identity Center sessions whose every account and role become
//! roles, and how they are named and filtered. Keyed by the `[sso-session NAME]` of
//! `~/.aws/config`; `{}` takes every role the portal lists with the default alias.
//!
//! The listing itself is the engine's (it calls the portal); here is what is made of it: an
//! alias that is readable, legal and stable, decided by the listing alone, so the same listing
//! always gives the same aliases whatever order the portal answered in.

use serde_json::Value;

use super::RawRole;
use super::source::Checker;
use crate::model::glob::glob;
use crate::model::{Assignment, Role, RoleSource};

/// The options of one session.
pub const SESSION_FIELDS: [&str; 3] = ["alias", "include", "exclude"];

/// The alias of a discovered role unless the session says otherwise.
pub const DEFAULT_ALIAS: &str = "{account_name}.{role_name}";

/// What a template may name.
const PLACEHOLDERS: [&str; 3] = ["account_name", "account_id", "role_name"];

/// An alias is at most this long (IAM's role name limit, which aliases follow).
const MAX_ALIAS: usize = 64;

/// One session's discovery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The alias template, with `{account_name}`, `{account_id}` and `{role_name}`.
    pub alias: String,
    /// Globs (`*` for any run of characters, case-insensitive); a role is taken if any matches
    /// its account id, account name, role name, or `ACCOUNT_NAME/ROLE_NAME`. Empty: all.
    pub include: Vec<String>,
    /// The same, for roles to leave out; wins over `include`.
    pub exclude: Vec<String>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            alias: DEFAULT_ALIAS.to_owned(),
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

impl Discovery {
    /// Reads `identity_center.<session>`, reporting each mistake where it stands.
    pub(super) fn read(checker: &mut Checker, session: &str, value: &Value) -> Option<Discovery> {
        let at = ["identity_center", session];
        let object = checker.object(&at, value, &SESSION_FIELDS)?;
        let mut discovery = Discovery::default();
        if let Some(alias) = checker.field::<String>(&at, object, "alias") {
            match check_template(&alias) {
                Ok(()) => discovery.alias = alias,
                Err(why) => checker.report(&["identity_center", session, "alias"], why),
            }
        }
        for (field, list) in [
            ("include", &mut discovery.include),
            ("exclude", &mut discovery.exclude),
        ] {
            if let Some(patterns) = checker.field::<Vec<String>>(&at, object, field) {
                *list = patterns;
            }
        }
        Some(discovery)
    }

    /// The roles `session`'s listing makes, in alias order, and a line for each one that
    /// cannot be a role.
    pub fn roles(&self, session: &str, listed: &[Assignment]) -> (Vec<Role>, Vec<String>) {
        discovered(&[(session, self, listed)])
    }

    /// Whether the filters take `assignment`.
    fn takes(&self, assignment: &Assignment) -> bool {
        let names = [
            assignment.account_id.clone(),
            assignment.account_name.clone(),
            assignment.role_name.clone(),
            format!("{}/{}", assignment.account_name, assignment.role_name),
        ];
        let any = |patterns: &[String]| {
            patterns.iter().any(|p| {
                names
                    .iter()
                    .any(|name| glob(&p.to_lowercase(), &name.to_lowercase()))
            })
        };
        (self.include.is_empty() || any(&self.include)) && !any(&self.exclude)
    }
}

/// The roles that several sessions' listings make (session, its settings, its listing), in
/// alias order, their aliases distinct across all of them, and a line for each listed role
/// that cannot be a role.
pub fn discovered(listings: &[(&str, &Discovery, &[Assignment])]) -> (Vec<Role>, Vec<String>) {
    let mut taken: Vec<(&str, &Assignment, String)> = listings
        .iter()
        .flat_map(|&(session, settings, listed)| {
            listed
                .iter()
                .filter(|a| settings.takes(a))
                .map(move |a| (session, a, sanitise(&render(&settings.alias, a))))
        })
        .collect();
    // Ties are broken by what the portal says of the role, never by its order.
    taken.sort_by(|(s, a, x), (t, b, y)| {
        (x, &a.account_id, &a.role_name, s).cmp(&(y, &b.account_id, &b.role_name, t))
    });
    let mut aliases: Vec<String> = taken.iter().map(|(_, _, alias)| alias.clone()).collect();
    let accounts: Vec<&str> = taken
        .iter()
        .map(|(_, a, _)| a.account_id.as_str())
        .collect();
    disambiguate(&mut aliases, &accounts);
    let mut roles = Vec::new();
    let mut skipped = Vec::new();
    for ((session, assignment, _), alias) in taken.into_iter().zip(aliases) {
        let raw = RawRole {
            sso_session: Some(session.to_owned()),
            account_id: Some(assignment.account_id.clone()),
            role_name: Some(assignment.role_name.clone()),
            ..RawRole::default()
        };
        match raw.validate(&alias) {
            Ok(mut role) => {
                if let RoleSource::PermissionSet(set) = &mut role.source {
                    set.account_name = Some(assignment.account_name.clone());
                }
                roles.push(role);
            }
            Err(wrong) => {
                let why: Vec<String> = wrong.iter().map(|(f, e)| format!("{f}: {e}")).collect();
                skipped.push(format!(
                    "role {} of account {} listed for SSO session \"{session}\" skipped: {}",
                    assignment.role_name,
                    assignment.account_id,
                    why.join("; ")
                ));
            }
        }
    }
    roles.sort_by(|a, b| a.alias.cmp(&b.alias));
    (roles, skipped)
}

/// Whether `template` names only what a template may, and at least one of them.
fn check_template(template: &str) -> Result<(), String> {
    let mut named = 0;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("\"{template}\" opens a `{{` it does not close"));
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "\"{{{name}}}\" is not something an alias can name: use {{account_name}}, \
                 {{account_id}} and {{role_name}}"
            ));
        }
        named += 1;
        rest = &rest[open + close + 1..];
    }
    if named == 0 {
        return Err(format!(
            "\"{template}\" names nothing, so every role would get the same alias: use \
             {{account_name}}, {{account_id}} and {{role_name}}"
        ));
    }
    Ok(())
}

/// `template` with the assignment's values put in.
fn render(template: &str, a: &Assignment) -> String {
    template
        .replace("{account_name}", &a.account_name)
        .replace("{account_id}", &a.account_id)
        .replace("{role_name}", &a.role_name)
}

/// `text` as a legal alias that reads the same: lower case (it is typed), every character an
/// alias cannot hold, and every run of them, as one `-` (none beside a `.`), no `-` at either
/// end, at most 64.
fn sanitise(text: &str) -> String {
    let mut alias = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let legal = c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        if legal {
            alias.push(c);
        } else if !alias.ends_with('-') {
            alias.push('-');
        }
    }
    // A separator the template wrote stands alone: no `-` beside it.
    let alias = alias.replace("-.", ".").replace(".-", ".");
    let alias = alias.trim_matches('-');
    let alias: String = alias.chars().take(MAX_ALIAS).collect();
    if alias.is_empty() {
        "role".to_owned()
    } else {
        alias
    }
}

/// Makes the aliases of a sorted list distinct: each alias that several roles share gets its
/// account id appended (two accounts of the same name), then, if still shared (two roles of
/// one account whose names sanitise alike, or one account listed by two sessions), its rank
/// among them; a rank is skipped if it would make an alias another role has.
fn disambiguate(aliases: &mut [String], accounts: &[&str]) {
    let suffix = |alias: &str, tail: &str| {
        let keep = MAX_ALIAS.saturating_sub(tail.len() + 1);
        format!("{}-{tail}", alias.chars().take(keep).collect::<String>())
    };
    let shared = |aliases: &[String]| -> Vec<bool> {
        let mut count = std::collections::HashMap::<&str, usize>::new();
        for alias in aliases {
            *count.entry(alias).or_default() += 1;
        }
        aliases.iter().map(|a| count[a.as_str()] > 1).collect()
    };
    for (i, clash) in shared(aliases).into_iter().enumerate() {
        if clash {
            aliases[i] = suffix(&aliases[i], accounts[i]);
        }
    }
    let clashes = shared(aliases);
    let mut taken: std::collections::HashSet<String> = aliases
        .iter()
        .zip(&clashes)
        .filter(|(_, clash)| !**clash)
        .map(|(alias, _)| alias.clone())
        .collect();
    for (i, clash) in clashes.into_iter().enumerate() {
        if clash {
            let base = aliases[i].clone();
            let unique = (1..)
                .map(|n| suffix(&base, &n.to_string()))
                .find(|candidate| !taken.contains(candidate))
                .expect("some rank is free");
            taken.insert(unique.clone());
            aliases[i] = unique;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(account_id: &str, account_name: &str, role_name: &str) -> Assignment {
        Assignment {
            account_id: account_id.into(),
            account_name: account_name.into(),
            role_name: role_name.into(),
        }
    }

    fn aliases(discovery: &Discovery, listing: &[Assignment]) -> Vec<String> {
        let (roles, skipped) = discovery.roles("corp", listing);
        assert!(skipped.is_empty(), "{skipped:?}");
        roles.iter().map(|r| r.alias.to_string()).collect()
    }

    #[test]
    fn a_discovered_role_is_a_permission_set_named_by_account_and_role_in_lower_case() {
        let (roles, _) = Discovery::default().roles(
            "corp",
            &[listed(
                "111122223333",
                "Payments Dev",
                "AdministratorAccess",
            )],
        );
        let role = &roles[0];
        assert_eq!(role.alias.as_str(), "payments-dev.administratoraccess");
        let RoleSource::PermissionSet(set) = &role.source else {
            panic!("{:?}", role.source);
        };
        assert_eq!(set.sso_session, "corp");
        assert_eq!(set.account_id, "111122223333");
        assert_eq!(set.role_name, "AdministratorAccess");
        assert_eq!(set.account_name.as_deref(), Some("Payments Dev"));
    }

    #[test]
    fn what_an_alias_cannot_hold_becomes_one_dash_and_long_names_are_cut() {
        let long = "x".repeat(80);
        let listing = [
            listed("111122223333", "  Ünïcode & (spaces)  ", "Read/Only"),
            listed("444455556666", &long, "Dev"),
        ];
        assert_eq!(
            aliases(&Discovery::default(), &listing),
            ["n-code-spaces.read-only", &"x".repeat(64)]
        );
    }

    #[test]
    fn the_same_listing_gives_the_same_aliases_in_any_order_with_clashes_told_apart() {
        let listing = vec![
            listed("444455556666", "shared", "Dev"),
            listed("111122223333", "shared", "Dev"),
            listed("111122223333", "shared", "dev"),
            listed("777788889999", "solo", "Dev"),
        ];
        let mut reversed = listing.clone();
        reversed.reverse();
        let expected = [
            "shared.dev-111122223333-1",
            "shared.dev-111122223333-2",
            "shared.dev-444455556666",
            "solo.dev",
        ];
        assert_eq!(aliases(&Discovery::default(), &listing), expected);
        assert_eq!(aliases(&Discovery::default(), &reversed), expected);
    }

    #[test]
    fn an_account_two_sessions_list_gets_two_distinct_aliases() {
        let both = [listed("111122223333", "shared", "Dev")];
        let settings = Discovery::default();
        let (roles, _) = discovered(&[("corp", &settings, &both), ("lab", &settings, &both)]);
        let aliases: Vec<&str> = roles.iter().map(|r| r.alias.as_str()).collect();
        assert_eq!(
            aliases,
            ["shared.dev-111122223333-1", "shared.dev-111122223333-2"]
        );
        let sessions: Vec<&str> = roles
            .iter()
            .map(|r| r.permission_set().unwrap().sso_session.as_str())
            .collect();
        assert_eq!(sessions, ["corp", "lab"]);
    }

    #[test]
    fn a_rank_that_would_repeat_another_roles_alias_is_skipped() {
        let mut aliases = vec!["a-1".to_owned(), "a".to_owned(), "a".to_owned()];
        disambiguate(&mut aliases, &["9", "7", "7"]);
        assert_eq!(aliases, ["a-1", "a-7-1", "a-7-2"]);
        let mut aliases = vec!["x-7-1".to_owned(), "x".to_owned(), "x".to_owned()];
        disambiguate(&mut aliases, &["9", "7", "7"]);
        assert_eq!(aliases, ["x-7-1", "x-7-2", "x-7-3"]);
    }

    #[test]
    fn a_template_names_the_alias_and_filters_choose_the_roles() {
        let discovery = Discovery {
            alias: "{account_id}-{role_name}".into(),
            include: vec!["payments-*".into(), "999900001111".into()],
            exclude: vec!["*/ReadOnly".into()],
        };
        let listing = [
            listed("111122223333", "payments-dev", "Developer"),
            listed("111122223333", "payments-dev", "ReadOnly"),
            listed("444455556666", "marketing", "Developer"),
            listed("999900001111", "sandbox", "Admin"),
        ];
        assert_eq!(
            aliases(&discovery, &listing),
            ["111122223333-developer", "999900001111-admin"]
        );
    }

    #[test]
    fn a_template_naming_nothing_or_something_unknown_is_refused() {
        assert!(check_template("{account_name}.{role_name}").is_ok());
        assert!(check_template("dev").unwrap_err().contains("names nothing"));
        assert!(
            check_template("{account}.{role_name}")
                .unwrap_err()
                .contains("\"{account}\" is not something an alias can name")
        );
        assert!(
            check_template("{role_name")
                .unwrap_err()
                .contains("does not close")
        );
    }
}
