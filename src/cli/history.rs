//! Which roles this user picks, and how recently: the picker's order (most used recently
//! first), kept in `history.json` in the state directory.
//!
//! The ranking is "frecency" as zoxide and Firefox keep it: every use adds one to a role's rank,
//! and a rank counts four times while its last use is under an hour old, twice under a day, half
//! after a week and a quarter after a month, so last week's favourite gives way to today's. When
//! the ranks add up to more than [`MAX_TOTAL`] they are all scaled down and the ones that fall
//! below one are forgotten, so the file stays small however long it is kept.
//!
//! Only uses from a terminal count (a person's): a script calling `fintors creds ROLE` every
//! minute would otherwise bury what the person picks. The file is written whole, `0600`, then
//! renamed into place, so a reader never sees half of it; two writers at once lose one update,
//! which a ranking can afford. A file that cannot be read or parsed is an empty history, never
//! an error: it only orders a list.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::platform::files::{Own, create_private_dir, read_own, replace_private};

/// The file's name in the state directory.
pub const FILE: &str = "history.json";

/// The most of the file that is read: some thousands of roles' entries.
pub const MAX_LEN: u64 = 256 * 1024;

/// The ranks' total above which they are all scaled down (zoxide's default `_ZO_MAXAGE`).
pub const MAX_TOTAL: f64 = 10_000.0;

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

/// One role's uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Uses {
    rank: f64,
    /// The last use, in seconds since the Unix epoch.
    last: i64,
}

impl Uses {
    fn frecency(&self, now: i64) -> f64 {
        let age = now.saturating_sub(self.last);
        let weight = match age {
            a if a < HOUR => 4.0,
            a if a < DAY => 2.0,
            a if a < WEEK => 0.5,
            _ => 0.25,
        };
        self.rank * weight
    }
}

/// The roles used, by alias.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    roles: BTreeMap<String, Uses>,
}

impl History {
    /// The history in `dir`, or an empty one when there is none or it cannot be read. Only a
    /// plain file of this user's counts (not a link, not another user's, which could order the
    /// list to put their pick under the cursor), and only its first [`MAX_LEN`] bytes.
    pub fn load(dir: &Path) -> History {
        match read_own(&dir.join(FILE), MAX_LEN) {
            Ok(Own::Bytes(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => History::default(),
        }
    }

    /// Counts one use of `alias` at `now` (seconds since the epoch).
    pub fn record(&mut self, alias: &str, now: i64) {
        let uses = self.roles.entry(alias.to_owned()).or_insert(Uses {
            rank: 0.0,
            last: now,
        });
        uses.rank += 1.0;
        // Not the later of the two: a clock once set ahead would keep a role "recent" forever.
        uses.last = now;
        self.age();
    }

    /// Scales every rank down when they add up to more than [`MAX_TOTAL`], forgetting the roles
    /// whose rank falls below one.
    fn age(&mut self) {
        let total: f64 = self.roles.values().map(|u| u.rank).sum();
        if total <= MAX_TOTAL {
            return;
        }
        let factor = 0.9 * MAX_TOTAL / total;
        self.roles.retain(|_, uses| {
            uses.rank *= factor;
            uses.rank >= 1.0
        });
    }

    /// How strongly `alias` is wanted at `now`: 0 when it was never used.
    pub fn frecency(&self, alias: &str, now: i64) -> f64 {
        self.roles.get(alias).map_or(0.0, |u| u.frecency(now))
    }

    /// Sorts `items` most wanted first; items used alike keep their order.
    pub fn order<T>(&self, items: &mut [T], alias: impl Fn(&T) -> &str, now: i64) {
        items.sort_by(|a, b| {
            self.frecency(alias(b), now)
                .total_cmp(&self.frecency(alias(a), now))
        });
    }

    /// Writes the history into `dir` (created `0700` if missing) as a `0600` file; not into a
    /// directory of another user's.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        create_private_dir(dir)?;
        let owner = std::fs::metadata(dir)?.uid();
        if owner != crate::platform::users::effective_uid() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("the directory belongs to uid {owner}"),
            ));
        }
        replace_private(
            &dir.join(FILE),
            &serde_json::to_vec(self).expect("a history serializes"),
        )
    }
}

/// Counts one use of `alias` now in the history in `dir`. A history that cannot be written
/// costs the ordering, not the command: the reason goes to stderr.
pub fn remember(dir: &Path, alias: &str) {
    let mut history = History::load(dir);
    history.record(alias, chrono::Utc::now().timestamp());
    if let Err(e) = history.save(dir) {
        eprintln!(
            "fintors: warning: cannot keep the picker's history in {}: {e}",
            dir.join(FILE).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn ordered(history: &History, aliases: &[&'static str], now: i64) -> Vec<&'static str> {
        let mut items = aliases.to_vec();
        history.order(&mut items, |a| a, now);
        items
    }

    #[test]
    fn roles_never_used_keep_the_order_they_came_in() {
        let history = History::default();
        assert_eq!(ordered(&history, &["b", "a", "c"], NOW), ["b", "a", "c"]);
    }

    #[test]
    fn a_role_used_comes_before_roles_never_used() {
        let mut history = History::default();
        history.record("c", NOW - 10 * DAY);
        assert_eq!(ordered(&history, &["a", "b", "c"], NOW), ["c", "a", "b"]);
    }

    #[test]
    fn more_uses_rank_higher_at_the_same_age() {
        let mut history = History::default();
        history.record("a", NOW - 60);
        history.record("b", NOW - 60);
        history.record("b", NOW - 60);
        assert_eq!(ordered(&history, &["a", "b"], NOW), ["b", "a"]);
    }

    #[test]
    fn a_use_this_hour_beats_three_uses_last_week() {
        let mut history = History::default();
        for _ in 0..3 {
            history.record("old", NOW - 2 * DAY);
        }
        history.record("new", NOW - 60);
        assert_eq!(ordered(&history, &["old", "new"], NOW), ["new", "old"]);
    }

    #[test]
    fn ranks_past_the_total_are_scaled_down_and_the_rare_forgotten() {
        let mut history = History::default();
        history.record("rare", NOW);
        for _ in 0..MAX_TOTAL as usize {
            history.record("daily", NOW);
        }
        let total: f64 = history.roles.values().map(|u| u.rank).sum();
        assert!(total <= MAX_TOTAL, "{total}");
        assert!(history.frecency("daily", NOW) > 0.0);
        assert_eq!(history.frecency("rare", NOW), 0.0, "{history:?}");
    }

    #[test]
    fn the_history_is_saved_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut history = History::default();
        history.record("prod", NOW);
        history.save(&state).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state.join(FILE)), 0o600);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(History::load(&state), history);
        assert_eq!(
            std::fs::read_dir(&state).unwrap().count(),
            1,
            "no temporary file is left behind"
        );
    }

    #[test]
    fn an_unreadable_history_is_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        assert_eq!(History::load(dir.path()), History::default());
        assert_eq!(History::load(&dir.path().join("none")), History::default());
    }

    #[test]
    fn a_history_that_is_a_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let mut history = History::default();
        history.record("prod", NOW);
        history.save(&elsewhere).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::symlink(elsewhere.join(FILE), state.join(FILE)).unwrap();
        assert_eq!(History::load(&state), History::default());
    }

    #[test]
    fn a_history_past_the_size_limit_is_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = History::default();
        let mut n = 0;
        while serde_json::to_vec(&history).unwrap().len() as u64 <= MAX_LEN {
            history.record(&format!("account{n}.AdministratorAccess"), NOW);
            n += 1;
        }
        history.save(dir.path()).unwrap();
        assert_eq!(History::load(dir.path()), History::default());
    }
}
