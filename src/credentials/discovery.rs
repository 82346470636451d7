//! Discovery: what the access portal lists for each Identity Center session of the
//! configuration, kept for the reloader to make roles of (`config::identity_center` names them).
//!
//! A listing replaces the last one only when it is whole, and is kept on disk (in the state
//! directory, 0600), so a daemon that starts while the portal is unreachable serves the roles it
//! found last time. Listings are asked for at start, on reload, after a new login and by
//! `fintors sync`; one listing per session at a time.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::StsError;
use crate::config::Config;
use crate::model::{Assignment, Clock, Role};

pub type ListFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Assignment>, StsError>> + Send + 'a>>;

/// Lists the accounts and roles of a session's login: the portal, or a test's double.
pub trait ListAssignments: Send + Sync + 'static {
    fn assignments<'a>(&'a self, session: &'a str) -> ListFuture<'a>;
}

impl ListAssignments for super::portal::Portal {
    fn assignments<'a>(&'a self, session: &'a str) -> ListFuture<'a> {
        Box::pin(super::portal::Portal::assignments(self, session))
    }
}

/// One whole listing, as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub listed_at: DateTime<Utc>,
    pub assignments: Vec<Assignment>,
}

/// What is known of one session's listing.
#[derive(Debug, Clone, Default)]
pub struct SessionListing {
    /// The last whole listing, if any (from this run or from disk).
    pub listing: Option<Listing>,
    /// The last attempt's failure, if it failed (cleared by a success).
    pub failure: Option<(DateTime<Utc>, StsError)>,
}

pub struct Discovery {
    lister: Option<Arc<dyn ListAssignments>>,
    /// Where listings are kept; `None` keeps them in memory only.
    dir: Option<PathBuf>,
    clock: Clock,
    sessions: Mutex<BTreeMap<String, SessionListing>>,
    /// One listing at a time (a login and a `fintors sync` at once list once each, in turn).
    listing: tokio::sync::Mutex<()>,
}

impl Discovery {
    /// Discovery through `lister`, keeping listings in `dir` (read from it now, for `config`'s
    /// sessions).
    pub fn new(
        lister: Arc<dyn ListAssignments>,
        dir: Option<PathBuf>,
        clock: Clock,
        config: &Config,
    ) -> Arc<Discovery> {
        let discovery = Discovery {
            lister: Some(lister),
            dir,
            clock,
            sessions: Mutex::default(),
            listing: tokio::sync::Mutex::new(()),
        };
        for session in config.identity_center.keys() {
            if let Some(listing) = discovery.read(session) {
                discovery.session_mut(session, |s| s.listing = Some(listing));
            }
        }
        Arc::new(discovery)
    }

    /// A discovery that never lists: for a daemon whose configuration has no
    /// `identity_center` and that is built without a portal (tests).
    pub fn inert(clock: Clock) -> Arc<Discovery> {
        Arc::new(Discovery {
            lister: None,
            dir: None,
            clock,
            sessions: Mutex::default(),
            listing: tokio::sync::Mutex::new(()),
        })
    }

    fn session_mut<T>(&self, session: &str, f: impl FnOnce(&mut SessionListing) -> T) -> T {
        f(self
            .sessions
            .lock()
            .expect("poisoned")
            .entry(session.to_owned())
            .or_default())
    }

    /// What is known of `session`'s listing.
    pub fn session(&self, session: &str) -> SessionListing {
        self.sessions
            .lock()
            .expect("poisoned")
            .get(session)
            .cloned()
            .unwrap_or_default()
    }

    /// What is known of each session's listing, by session name.
    pub fn sessions(&self) -> BTreeMap<String, SessionListing> {
        self.sessions.lock().expect("poisoned").clone()
    }

    /// `config` with the roles its sessions' listings make: what the registry serves.
    pub fn with_roles(&self, config: &Config) -> Config {
        config.with_discovered(self.roles(config))
    }

    /// The roles `config`'s sessions' listings make, each named as its session says; a
    /// listed role that cannot be a role is logged (at debug: it is in every listing).
    pub fn roles(&self, config: &Config) -> Vec<Role> {
        let sessions = self.sessions.lock().expect("poisoned");
        let listings: Vec<(
            &str,
            &crate::config::identity_center::Discovery,
            &[Assignment],
        )> = config
            .identity_center
            .iter()
            .filter_map(|(name, settings)| {
                let listing = sessions.get(name)?.listing.as_ref()?;
                Some((name.as_str(), settings, listing.assignments.as_slice()))
            })
            .collect();
        let (roles, skipped) = crate::config::identity_center::discovered(&listings);
        for line in skipped {
            tracing::debug!("{line}");
        }
        roles
    }

    /// Lists `session` now: the number of roles the portal listed, or why not (the last
    /// listing is kept). A whole listing that ended after this was asked for (one that was under
    /// way, say the one at start) is the answer: the portal is not asked twice in a row. One
    /// listing at a time, whatever the session.
    pub async fn list(&self, session: &str) -> Result<usize, StsError> {
        let Some(lister) = &self.lister else {
            return Ok(0);
        };
        let asked = self.clock.now();
        let _one_at_a_time = self.listing.lock().await;
        // A failure is never taken over: the login that asked for this listing may be what
        // the one under way lacked.
        if let Some(listing) = self
            .session(session)
            .listing
            .filter(|l| l.listed_at >= asked)
        {
            return Ok(listing.assignments.len());
        }
        match lister.assignments(session).await {
            Ok(assignments) => {
                let listing = Listing {
                    listed_at: self.clock.now(),
                    assignments,
                };
                let count = listing.assignments.len();
                self.write(session, &listing);
                self.session_mut(session, |s| {
                    s.listing = Some(listing);
                    s.failure = None;
                });
                Ok(count)
            }
            Err(error) => {
                let now = self.clock.now();
                self.session_mut(session, |s| s.failure = Some((now, error.clone())));
                Err(error)
            }
        }
    }

    /// The file `session`'s listing is kept in: named by a digest of the session's name, as
    /// aws-config names token caches, so any name is a safe file name.
    fn file(&self, session: &str) -> Option<PathBuf> {
        use sha1::Digest;
        let digest: String = sha1::Sha1::digest(session.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(
            self.dir
                .as_ref()?
                .join(format!("identity-center-{digest}.json")),
        )
    }

    fn read(&self, session: &str) -> Option<Listing> {
        let file = self.file(session)?;
        let bytes = std::fs::read(&file).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(listing) => Some(listing),
            Err(e) => {
                tracing::warn!(
                    "ignoring the kept listing of SSO session \"{session}\" ({}): {e}",
                    file.display()
                );
                None
            }
        }
    }

    /// Keeps `listing` on disk: written beside the file and renamed over it, 0600, so a
    /// reader never sees half of one.
    fn write(&self, session: &str, listing: &Listing) {
        let Some(file) = self.file(session) else {
            return;
        };
        let bytes = serde_json::to_vec(listing).expect("serialisable");
        let written = crate::platform::files::replace_private(&file, &bytes);
        if let Err(e) = written {
            tracing::warn!(
                "cannot keep the listing of SSO session \"{session}\" in {}: {e}",
                file.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Listed(Mutex<Vec<Result<Vec<Assignment>, StsError>>>);

    impl ListAssignments for Listed {
        fn assignments<'a>(&'a self, _session: &'a str) -> ListFuture<'a> {
            let next = self.0.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
    }

    fn assignment(account_id: &str, role_name: &str) -> Assignment {
        Assignment {
            account_id: account_id.into(),
            account_name: "payments".into(),
            role_name: role_name.into(),
        }
    }

    fn config() -> Config {
        Config::parse(
            std::path::Path::new("/test/fintorc"),
            r#"{"identity_center": {"corp": {}}}"#,
        )
        .unwrap()
    }

    fn discovery(
        answers: Vec<Result<Vec<Assignment>, StsError>>,
        dir: &std::path::Path,
    ) -> Arc<Discovery> {
        Discovery::new(
            Arc::new(Listed(Mutex::new(answers))),
            Some(dir.to_owned()),
            Clock::system(),
            &config(),
        )
    }

    #[tokio::test]
    async fn a_listing_is_kept_on_disk_privately_and_read_back_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let first = discovery(
            vec![Ok(vec![assignment("111122223333", "Dev")])],
            dir.path(),
        );
        assert_eq!(first.list("corp").await.unwrap(), 1);
        let kept = first.file("corp").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let restarted = discovery(vec![], dir.path());
        let roles = restarted.roles(&config());
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].alias.as_str(), "payments.dev");
    }

    #[tokio::test]
    async fn a_failed_listing_keeps_the_last_whole_one_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let d = discovery(
            vec![
                Ok(vec![assignment("111122223333", "Dev")]),
                Err(StsError::Unreachable("offline".into())),
            ],
            dir.path(),
        );
        d.list("corp").await.unwrap();
        assert!(d.list("corp").await.is_err());
        assert_eq!(d.roles(&config()).len(), 1, "the last whole listing");
        let corp = &d.sessions()["corp"];
        assert_eq!(corp.failure.as_ref().unwrap().1.code(), "StsUnreachable");
    }

    #[tokio::test]
    async fn a_listing_asked_for_while_one_is_under_way_is_that_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = discovery(
            vec![Ok(vec![assignment("111122223333", "Dev")])],
            dir.path(),
        );
        let under_way = d.listing.lock().await;
        let asked = tokio::spawn({
            let d = d.clone();
            async move { d.list("corp").await }
        });
        tokio::task::yield_now().await;
        // The listing under way ends (as `list` would end it) after the second was asked for.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        d.session_mut("corp", |s| {
            s.listing = Some(Listing {
                listed_at: Utc::now(),
                assignments: vec![assignment("111122223333", "Dev"); 2],
            });
        });
        drop(under_way);
        assert_eq!(
            asked.await.unwrap().unwrap(),
            2,
            "the portal was not asked again"
        );
    }

    #[tokio::test]
    async fn a_damaged_kept_listing_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let d = discovery(vec![], dir.path());
        std::fs::write(d.file("corp").unwrap(), "{ not json").unwrap();
        let restarted = discovery(vec![], dir.path());
        assert!(restarted.roles(&config()).is_empty());
    }
}
