//! The configured roles, their credential caches, and which one is active.
//!
//! The active role is what IMDS presents as the instance profile's role. Switching is a two-step
//! affair on purpose: the new role's credentials are obtained first and only then does it become
//! active, so a role that cannot be assumed never replaces a working one and the next SDK call
//! after a successful switch is answered from the cache.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};

use super::cache::{Attempt, Failure, Issued, RoleCache};
use super::chain::Chain;
use super::error::LoginWarnings;
use super::{RoleAssumer, StsError};
use crate::config::Config;
use crate::model::{Alias, Clock, MfaSerial};

pub struct Registry {
    /// Replaced whole on reload, so a request sees the old set or the new one, never a mix.
    /// Keyed by the alias's text, so that a request's path finds its role in O(log n) without
    /// making an [`Alias`] of it (there can be thousands of discovered roles).
    roles: RwLock<Arc<Roles>>,
    active: RwLock<Option<Arc<RoleCache>>>,
    assumer: Arc<dyn RoleAssumer>,
    clock: Clock,
    /// The expired logins warned about, once for all the roles.
    login_warnings: Arc<LoginWarnings>,
}

type Roles = BTreeMap<String, Arc<RoleCache>>;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub active: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("unknown role: {0}")]
    UnknownRole(String),
    #[error("cannot assume role {alias}: {}", .failure.error)]
    Sts { alias: Alias, failure: Arc<Failure> },
    #[error("role {0} was removed by a reload while it was being assumed")]
    Removed(Alias),
}

impl Registry {
    /// One cache per configured role; the default role, if any, starts active. Roles with a
    /// `via` are assumed with that role's credentials (`chain.rs`), which is why the registry is
    /// shared from birth.
    pub fn new(config: &Config, assumer: Arc<dyn RoleAssumer>, clock: Clock) -> Arc<Self> {
        Arc::new_cyclic(|registry| Registry::with(config, assumer, registry.clone(), clock))
    }

    fn with(
        config: &Config,
        assumer: Arc<dyn RoleAssumer>,
        registry: Weak<Registry>,
        clock: Clock,
    ) -> Self {
        let assumer: Arc<dyn RoleAssumer> = Arc::new(Chain {
            inner: assumer,
            registry,
        });
        let login_warnings = Arc::<LoginWarnings>::default();
        let roles: Roles = config
            .roles
            .iter()
            .map(|(alias, role)| {
                (
                    alias.to_string(),
                    RoleCache::sharing(
                        role.clone(),
                        assumer.clone(),
                        clock,
                        login_warnings.clone(),
                    ),
                )
            })
            .collect();
        let active = config
            .default_role
            .as_ref()
            .map(|a| roles[a.as_str()].clone());
        Registry {
            roles: RwLock::new(Arc::new(roles)),
            active: RwLock::new(active),
            assumer,
            clock,
            login_warnings,
        }
    }

    fn snapshot(&self) -> Arc<Roles> {
        self.roles.read().expect("poisoned").clone()
    }

    /// Aliases in sorted order.
    pub fn aliases(&self) -> Vec<Alias> {
        self.snapshot()
            .values()
            .map(|c| c.role().alias.clone())
            .collect()
    }

    /// Every role's cache, in alias order.
    pub fn caches(&self) -> Vec<Arc<RoleCache>> {
        self.snapshot().values().cloned().collect()
    }

    /// The cache for `alias`; looked up by string because that is what arrives in a URL.
    pub fn role(&self, alias: &str) -> Option<Arc<RoleCache>> {
        self.roles.read().expect("poisoned").get(alias).cloned()
    }

    /// Replaces the roles with `config`'s, atomically: unchanged roles keep their cache (no new
    /// AssumeRole), changed and new ones start empty, removed ones stop refreshing. The active
    /// role stays active if it still exists (with its new definition if it changed), else the
    /// new default role, if any, becomes active.
    pub fn reload(&self, config: &Config) -> Reloaded {
        let old = self.snapshot();
        let mut summary = Reloaded::default();
        let mut roles = BTreeMap::new();
        for (alias, role) in &config.roles {
            let cache = match old.get(alias.as_str()) {
                Some(cache) if cache.role() == role => cache.clone(),
                Some(_) => {
                    summary.changed.push(alias.to_string());
                    self.cache_for(role)
                }
                None => {
                    summary.added.push(alias.to_string());
                    self.cache_for(role)
                }
            };
            roles.insert(alias.to_string(), cache);
        }
        for (alias, cache) in old.iter() {
            if !roles.get(alias).is_some_and(|c| Arc::ptr_eq(c, cache)) {
                cache.set_pinned(false);
                if !roles.contains_key(alias) {
                    summary.removed.push(alias.to_string());
                }
            }
        }
        let mut active = self.active.write().expect("poisoned");
        let kept = active
            .as_ref()
            .and_then(|a| roles.get(a.role().alias.as_str()))
            .or_else(|| {
                config
                    .default_role
                    .as_ref()
                    .and_then(|d| roles.get(d.as_str()))
            })
            .cloned();
        if let Some(new_active) = &kept {
            new_active.set_pinned(true);
        }
        summary.active = kept.as_ref().map(|a| a.role().alias.to_string());
        *active = kept;
        *self.roles.write().expect("poisoned") = Arc::new(roles);
        summary
    }

    pub fn active(&self) -> Option<Arc<RoleCache>> {
        self.active.read().expect("poisoned").clone()
    }

    /// Obtains the active role's credentials at start-up, so the first request is answered from
    /// the cache. A failure is logged, not fatal: STS may be unreachable for a while (offline
    /// laptop) and the daemon must still come up and recover by itself.
    pub async fn prefetch_active(&self) {
        if let Some(active) = self.active() {
            active.set_pinned(true);
            match active.get(Attempt::Now).await {
                Ok(_) => {}
                // The session's own warning says it, once for every role that needs it.
                Err(f) if matches!(f.error, StsError::SsoLoginRequired(_)) => tracing::debug!(
                    "the default role {} waits for an SSO login",
                    active.role().alias
                ),
                Err(f) => tracing::error!(
                    "the default role {} could not be assumed at start-up (retrying): {}: {}",
                    active.role().alias,
                    f.error.code(),
                    f.error.message()
                ),
            }
        }
    }

    /// The MFA devices the roles use, each once.
    pub fn mfa_serials(&self) -> Vec<MfaSerial> {
        let mut serials: Vec<_> = self
            .snapshot()
            .values()
            .filter_map(|c| c.role().mfa_serial.clone())
            .collect();
        serials.sort();
        serials.dedup();
        serials
    }

    /// The clock every cache of the registry judges validity by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// A new cache for `role`, sharing the registry's STS, clock and login warnings.
    fn cache_for(&self, role: &crate::model::Role) -> Arc<RoleCache> {
        RoleCache::sharing(
            role.clone(),
            self.assumer.clone(),
            self.clock,
            self.login_warnings.clone(),
        )
    }

    /// After a new login: the next expiry of any session is news again.
    pub fn forget_login_warnings(&self) {
        self.login_warnings.forget();
    }

    /// The AWS profile whose credentials sign `role`'s AssumeRole now (see
    /// [`RoleAssumer::signing_profile`]).
    pub fn signing_profile(&self, role: &crate::model::Role) -> Option<String> {
        self.assumer.signing_profile(role)
    }

    /// Stops serving the credentials of every role `from_login` picks, and of the roles chained
    /// to one of them (their sessions were signed with its credentials): what a logout ends.
    /// The aliases of the roles whose credentials were dropped.
    pub async fn forget_credentials(
        &self,
        from_login: impl Fn(&crate::model::Role) -> bool,
    ) -> Vec<Alias> {
        let roles = self.snapshot();
        let mut gone: Vec<&Arc<RoleCache>> =
            roles.values().filter(|c| from_login(c.role())).collect();
        loop {
            let chained: Vec<&Arc<RoleCache>> = roles
                .values()
                .filter(|c| !gone.iter().any(|g| Arc::ptr_eq(g, c)))
                .filter(|c| {
                    let via = c.role().via.as_ref();
                    via.is_some_and(|via| gone.iter().any(|g| &g.role().alias == via))
                })
                .collect();
            if chained.is_empty() {
                break;
            }
            gone.extend(chained);
        }
        let mut dropped = Vec::new();
        for cache in gone {
            if cache.cached().is_some() {
                dropped.push(cache.role().alias.clone());
            }
            cache.forget().await;
        }
        dropped
    }

    /// After the base credentials changed: assume at once every role that is failing (with
    /// nothing cached, or a refresh that failed) or is active without credentials, instead of
    /// waiting out their backoff.
    pub async fn retry_pending(&self) {
        self.retry_pending_where(|_| true).await;
    }

    /// After the network changed: [`Registry::retry_pending`] for the roles whose standing
    /// failure is that nothing answered (offline, say). A role STS refused keeps its backoff:
    /// the network was not what stopped it. (How often this runs is the caller's to limit.)
    pub async fn retry_unanswered(&self) {
        self.retry_pending_where(|cache| {
            cache
                .standing_failure()
                .is_some_and(|failure| failure.error.is_no_answer())
        })
        .await;
    }

    /// Retries, each at once and in a task of its own, the roles someone still wants that
    /// `which` picks and that are failing: nothing cached and a failure that stands (or active
    /// and nothing cached), or a refresh that failed.
    async fn retry_pending_where(&self, which: impl Fn(&RoleCache) -> bool) {
        let active = self.active();
        let now = self.clock.now();
        let pending: Vec<_> = self
            .snapshot()
            .values()
            .filter(|cache| {
                let is_active = active.as_ref().is_some_and(|a| Arc::ptr_eq(a, cache));
                let nothing_to_serve =
                    cache.cached().is_none() && (is_active || cache.standing_failure().is_some());
                (nothing_to_serve || cache.refresh_failing()) && cache.wanted(now) && which(cache)
            })
            .map(|cache| {
                let cache = cache.clone();
                // Each its own task, at once: a slow role must not hold up the others.
                tokio::spawn(async move { cache.retry().await })
            })
            .collect();
        // Answered once they are done (each waits at most STS_WAIT), so the caller's next
        // request is served from the cache rather than racing the retry into the backoff.
        for retry in pending {
            let _ = retry.await;
        }
    }

    /// Makes `alias` the active role once its credentials are in hand.
    pub async fn switch(&self, alias: &str) -> Result<Arc<Issued>, SwitchError> {
        let cache = self
            .role(alias)
            .ok_or_else(|| SwitchError::UnknownRole(alias.to_owned()))?;
        let issued = cache
            .get(Attempt::Now)
            .await
            .map_err(|failure| SwitchError::Sts {
                alias: cache.role().alias.clone(),
                failure,
            })?;
        // A reload may have removed (or redefined) the role during the STS call; it swaps the
        // roles while holding `active`, so checking under that lock leaves no gap.
        let mut active = self.active.write().expect("poisoned");
        let current = self.snapshot();
        if !current
            .get(cache.role().alias.as_str())
            .is_some_and(|c| Arc::ptr_eq(c, &cache))
        {
            return Err(SwitchError::Removed(cache.role().alias.clone()));
        }
        cache.set_pinned(true);
        let previous = active.replace(cache.clone());
        drop(active);
        if let Some(previous) = previous.filter(|p| !Arc::ptr_eq(p, &cache)) {
            previous.set_pinned(false);
        }
        tracing::info!(role = %cache.role().alias, "active role is now {}", cache.role().describe());
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::credentials::scripted::ScriptedAssumer;

    fn config(roles: &str) -> Config {
        Config::parse(
            Path::new("/test/fintorc"),
            &format!(r#"{{"roles": {{{roles}}}, "default_role": "a"}}"#),
        )
        .unwrap()
    }

    const A: &str = r#""a": "arn:aws:iam::123456789012:role/a""#;
    const B: &str = r#""b": "arn:aws:iam::123456789012:role/b""#;

    /// The registry over an STS whose answers the test lets through one by one.
    fn registry(roles: &str) -> (Arc<Registry>, Arc<ScriptedAssumer>) {
        let sts = Arc::new(ScriptedAssumer::new(Clock::system()).gated());
        let registry = Registry::new(&config(roles), sts.clone(), Clock::system());
        (registry, sts)
    }

    #[tokio::test]
    async fn a_switch_that_races_a_reload_removing_its_role_activates_nothing_removed() {
        let (registry, sts) = registry(&format!("{A}, {B}"));
        let switching = tokio::spawn({
            let registry = registry.clone();
            async move { registry.switch("b").await.map(|_| ()) }
        });
        sts.asked(1).await;
        let summary = registry.reload(&config(A));
        assert_eq!(summary.removed, ["b"]);
        sts.answer(1);
        match switching.await.unwrap() {
            Err(SwitchError::Removed(alias)) => assert_eq!(alias.as_str(), "b"),
            other => panic!("the switch should have failed: {other:?}"),
        }
        assert_eq!(registry.active().unwrap().role().alias.as_str(), "a");
        assert!(registry.role("b").is_none());
    }

    #[tokio::test]
    async fn a_switch_to_a_role_a_reload_kept_goes_through() {
        let (registry, sts) = registry(&format!("{A}, {B}"));
        let switching = tokio::spawn({
            let registry = registry.clone();
            async move { registry.switch("b").await.map(|_| ()) }
        });
        sts.asked(1).await;
        registry.reload(&config(&format!("{A}, {B}")));
        sts.answer(1);
        switching.await.unwrap().unwrap();
        assert_eq!(registry.active().unwrap().role().alias.as_str(), "b");
    }

    #[tokio::test]
    async fn an_unknown_role_is_refused_without_asking_sts() {
        let (registry, sts) = registry(A);
        assert!(matches!(
            registry.switch("nope").await,
            Err(SwitchError::UnknownRole(_))
        ));
        assert_eq!(sts.calls(), 0);
    }

    fn offline() -> Result<(), StsError> {
        Err(StsError::Unreachable("dispatch failure: no route".into()))
    }

    /// The roles of `roles` (JSON members), none of them active: nothing is refreshed or
    /// fetched but what a test asks for.
    fn inactive(roles: &str) -> Config {
        Config::parse(
            Path::new("/test/fintorc"),
            &format!(r#"{{"roles": {{{roles}}}}}"#),
        )
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_network_change_retries_the_roles_nothing_answered_and_leaves_refusals_alone() {
        let clock = Clock::following_tokio("2030-01-01T00:00:00Z".parse().unwrap());
        let sts = Arc::new(
            ScriptedAssumer::new(clock)
                .refusing("c")
                .scripted([offline(), offline()]),
        );
        let c = r#""c": "arn:aws:iam::123456789012:role/c""#;
        let registry = Registry::new(&inactive(&format!("{A}, {B}, {c}")), sts.clone(), clock);
        for alias in ["a", "b", "c"] {
            let role = registry.role(alias).unwrap();
            assert!(role.get(Attempt::RespectBackoff).await.is_err());
        }
        assert_eq!(sts.calls(), 3);
        registry.retry_unanswered().await;
        assert_eq!(sts.calls(), 5, "a and b again, not c");
        assert!(registry.role("a").unwrap().cached().is_some());
        assert!(registry.role("b").unwrap().cached().is_some());
        assert!(registry.role("c").unwrap().cached().is_none());
        // Nothing left failing for want of an answer: a second change asks nothing.
        registry.retry_unanswered().await;
        assert_eq!(sts.calls(), 5);
    }

    /// A role that failed offline once, then had credentials, then went unused until they
    /// lapsed: routine network changes (DHCP renewals, router advertisements) must not bring it
    /// back to life.
    #[tokio::test(start_paused = true)]
    async fn a_network_change_leaves_a_role_nobody_uses_alone() {
        let clock = Clock::following_tokio("2030-01-01T00:00:00Z".parse().unwrap());
        let sts = Arc::new(ScriptedAssumer::new(clock).scripted([offline()]));
        let registry = Registry::new(&inactive(&format!("{A}, {B}")), sts.clone(), clock);
        let b = registry.role("b").unwrap();
        assert!(b.get(Attempt::RespectBackoff).await.is_err());
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert!(b.get(Attempt::RespectBackoff).await.is_ok());
        tokio::time::sleep(std::time::Duration::from_secs(3 * 3600)).await;
        assert!(b.cached().is_none(), "lapsed");
        let before = b.sts_calls();
        registry.retry_unanswered().await;
        registry.retry_pending().await;
        assert_eq!(b.sts_calls(), before, "nobody wants b");
    }

    /// `a`, then `deploy` assumed with `a`'s credentials, then `ci` with `deploy`'s.
    const CHAIN: &str = r#""a": "arn:aws:iam::123456789012:role/a",
        "deploy": {"arn": "arn:aws:iam::444455556666:role/deploy", "via": "a"},
        "ci": {"arn": "arn:aws:iam::777788889999:role/ci", "via": "deploy"}"#;

    #[tokio::test]
    async fn a_chained_role_is_assumed_with_its_via_roles_cached_credentials() {
        let sts = Arc::new(ScriptedAssumer::new(Clock::system()));
        let registry = Registry::new(&config(CHAIN), sts.clone(), Clock::system());
        let a = registry.switch("a").await.unwrap();
        let ci = registry.switch("ci").await.unwrap();
        let deploy = registry.role("deploy").unwrap().cached().unwrap();
        assert_eq!(
            sts.chained(),
            [
                ("deploy".to_owned(), a.credentials.access_key_id.clone()),
                ("ci".to_owned(), deploy.credentials.access_key_id.clone()),
            ]
        );
        assert_ne!(
            ci.credentials.access_key_id,
            deploy.credentials.access_key_id
        );
        assert_eq!(
            sts.calls(),
            3,
            "one call per hop, a's cached session reused"
        );
        registry.switch("deploy").await.unwrap();
        assert_eq!(sts.calls(), 3, "deploy was cached on the way to ci");
    }

    #[tokio::test]
    async fn a_chained_role_whose_via_role_is_refused_says_which_hop_failed() {
        let sts = Arc::new(ScriptedAssumer::new(Clock::system()).refusing("a"));
        let registry = Registry::new(&config(CHAIN), sts.clone(), Clock::system());
        let Err(SwitchError::Sts { failure, .. }) = registry.switch("ci").await else {
            panic!("ci cannot be had without a");
        };
        assert_eq!(failure.error.code(), "AccessDenied");
        assert_eq!(
            failure.error.message(),
            "via role deploy: via role a: not authorized to perform: sts:AssumeRole"
        );
        assert!(sts.chained().is_empty(), "no hop after a was tried");
    }

    /// The sequence that overflowed a never-asked role's access time: a reload changes the
    /// active role (a new cache, pinned, fetched ahead, never asked for), then the user switches
    /// away. The old role lapses: no panic, and no refresh for hours after.
    #[tokio::test(start_paused = true)]
    async fn a_role_a_reload_renewed_then_switched_away_from_unasked_lapses() {
        let clock = Clock::following_tokio("2030-01-01T00:00:00Z".parse().unwrap());
        let sts = Arc::new(ScriptedAssumer::new(clock));
        let registry = Registry::new(&config(&format!("{A}, {B}")), sts.clone(), clock);
        let renewed_a =
            r#""a": {"arn": "arn:aws:iam::123456789012:role/a", "session_name": "new-a"}"#;
        let summary = registry.reload(&config(&format!("{renewed_a}, {B}")));
        assert_eq!(summary.changed, ["a"]);
        assert_eq!(summary.active.as_deref(), Some("a"));
        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
        let a = registry.role("a").unwrap();
        assert_eq!(a.sts_calls(), 1, "the active role is fetched ahead");
        registry.switch("b").await.unwrap();
        assert!(!a.wanted(clock.now()), "a is neither active nor asked for");
        tokio::time::sleep(std::time::Duration::from_secs(6 * 3600)).await;
        assert_eq!(a.sts_calls(), 1, "nobody asked for a: no refresh");
        assert!(
            registry.role("b").unwrap().sts_calls() > 1,
            "b, active, is kept fresh"
        );
    }
}
