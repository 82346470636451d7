//! One role's credential cache: never stale, never a stall.
//!
//! A request is answered from the cached credentials whenever they are still good; only when there
//! are none does a request wait for STS, and then all concurrent requests for the role share one
//! AssumeRole (single flight, behind an async mutex). Once credentials exist, a background task
//! refreshes them ahead of expiry, so clients keep receiving credentials with plenty of life left,
//! and keeps serving the old ones while STS is slow or failing, retrying with jittered exponential
//! backoff. Expired credentials are never served: when the last good ones run out, the failure is
//! what clients get, at once, until STS answers again.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};

mod refresh;

use super::error::LoginWarnings;
use super::usage::{Door, Usage};
use super::{RoleAssumer, StsError};
use crate::ec2::document::{ContainerCredentials, CredentialsDocument, render};
use crate::model::{Clock, Credentials, Role, RoleSource, time};

/// Credentials with less life than this are not handed out: a client could not use them.
pub const MIN_SERVED_LIFETIME: TimeDelta = TimeDelta::seconds(60);
/// Refresh when less than this is left (or half the session, for short sessions): botocore treats
/// credentials with under ~25 minutes left as a degraded IMDS and stretches their expiry.
pub const REFRESH_LEAD: TimeDelta = TimeDelta::minutes(35);
/// The longest a request waits for STS when nothing cached can be served: longer than any healthy
/// AssumeRole, short enough that nobody would call it a hang.
pub const STS_WAIT: Duration = Duration::from_secs(5);
/// Backoff between failed STS attempts: doubles from the first value up to the cap, with jitter.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(2);
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// A request that finds nothing to serve, after an attempt that got no answer (offline, say),
/// tries again once the last attempt is this old instead of waiting out a backoff of up to
/// [`BACKOFF_CAP`]: back online, the next request is served. At most one attempt per interval
/// however many ask, and none while nobody does.
pub const NO_ANSWER_RETRY: TimeDelta = TimeDelta::seconds(3);

/// One successful AssumeRole, with the documents rendered once for the hot path.
#[derive(Debug)]
pub struct Issued {
    pub credentials: Credentials,
    /// `credentials.expiration` in seconds since the Unix epoch: what `servable()` compares.
    pub expires_at: i64,
    pub fetched_at: DateTime<Utc>,
    pub refresh_at: DateTime<Utc>,
    /// `/latest/meta-data/iam/security-credentials/<alias>`.
    pub document: Bytes,
    /// The `-extended` variant, with `AccountId`.
    pub extended_document: Bytes,
    /// The container endpoint's JSON. All three are rendered once per credential, not per
    /// request: serializing was a fifth of what a container request cost.
    pub container_document: Bytes,
}

/// A failed attempt to obtain credentials.
#[derive(Debug)]
pub struct Failure {
    pub error: StsError,
    pub at: DateTime<Utc>,
    /// When the next attempt may be made; requests before then get this failure without waiting.
    pub retry_at: DateTime<Utc>,
    /// The EC2-style error document.
    pub document: Bytes,
}

impl Failure {
    fn new(error: StsError, at: DateTime<Utc>, retry_at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Failure {
            document: render(&CredentialsDocument::error(
                error.code(),
                error.message(),
                at,
            ))
            .into(),
            error,
            at,
            retry_at,
        })
    }
}

/// Whether a fetch honours the backoff after a failure. A person switching roles on purpose
/// deserves a fresh attempt; a flood of SDK polls does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    RespectBackoff,
    Now,
}

pub struct RoleCache {
    role: Role,
    assumer: Arc<dyn RoleAssumer>,
    clock: Clock,
    current: RwLock<Option<Arc<Issued>>>,
    last_failure: RwLock<Option<Arc<Failure>>>,
    /// Held while an STS call is in flight; also holds the count of consecutive failures.
    flight: tokio::sync::Mutex<u32>,
    refresher_running: AtomicBool,
    /// The active role keeps being refreshed even when nobody asks for it.
    pinned: AtomicBool,
    /// Unix seconds of the last request, to let roles nobody uses lapse instead of calling STS;
    /// [`NEVER_ASKED`] until the first.
    last_access: AtomicI64,
    /// Every attempt to obtain credentials, and of them the calls that reached the upstream.
    attempts: AtomicU64,
    sts_calls: AtomicU64,
    usage: Usage,
    /// The expired logins already warned about, shared by the roles of a registry.
    login_warnings: Arc<LoginWarnings>,
}

impl std::fmt::Debug for RoleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCache")
            .field("role", &self.role.alias)
            .finish_non_exhaustive()
    }
}

impl RoleCache {
    pub fn new(role: Role, assumer: Arc<dyn RoleAssumer>, clock: Clock) -> Arc<Self> {
        Self::sharing(role, assumer, clock, Arc::default())
    }

    /// A cache whose expired-login warnings are `login_warnings`, shared with other roles.
    pub fn sharing(
        role: Role,
        assumer: Arc<dyn RoleAssumer>,
        clock: Clock,
        login_warnings: Arc<LoginWarnings>,
    ) -> Arc<Self> {
        Arc::new(RoleCache {
            role,
            assumer,
            clock,
            current: RwLock::new(None),
            last_failure: RwLock::new(None),
            flight: tokio::sync::Mutex::new(0),
            refresher_running: AtomicBool::new(false),
            pinned: AtomicBool::new(false),
            last_access: AtomicI64::new(NEVER_ASKED),
            attempts: AtomicU64::new(0),
            sts_calls: AtomicU64::new(0),
            usage: Usage::default(),
            login_warnings,
        })
    }

    pub fn role(&self) -> &Role {
        &self.role
    }

    /// What assumes the role: for what is not the cache's business, like a console session.
    pub fn assumer(&self) -> &dyn RoleAssumer {
        self.assumer.as_ref()
    }

    /// How many calls this cache has made that reached STS (or the portal, or the command).
    pub fn sts_calls(&self) -> u64 {
        self.sts_calls.load(Ordering::Relaxed)
    }

    /// How many times this cache has tried to obtain credentials, including the attempts that
    /// never reached STS (offline, no base credentials).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Who asked for this role's credentials, through which door.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// The most recent failure, if any, even if later attempts succeeded (for status reports).
    pub fn last_failure(&self) -> Option<Arc<Failure>> {
        self.last_failure.read().expect("poisoned").clone()
    }

    /// The cached credentials if they can still be served.
    pub fn cached(&self) -> Option<Arc<Issued>> {
        self.cached_at(self.clock.seconds())
    }

    fn cached_at(&self, now: i64) -> Option<Arc<Issued>> {
        self.current
            .read()
            .expect("poisoned")
            .as_ref()
            .filter(|c| servable(c.expires_at, now))
            .cloned()
    }

    /// Marks the role as the active one (or not): the active role is refreshed even while idle.
    pub fn set_pinned(self: &Arc<Self>, pinned: bool) {
        self.pinned.store(pinned, Ordering::Relaxed);
        if pinned {
            self.ensure_refresher();
        }
    }

    /// The cached credentials, if they can be served, for a request through `door`: the hot
    /// path of every credential request. It writes shared memory only once a second (the access
    /// time) besides the door's counters, and reads the refresher flag before trying to set it,
    /// so concurrent requests on several cores do not fight over cache lines.
    pub fn serve_cached(self: &Arc<Self>, door: Door) -> Option<Arc<Issued>> {
        self.serve_cached_at(door, self.clock.seconds())
    }

    /// [`RoleCache::serve_cached`] at `now` (this cache's clock's), for a caller that has read
    /// the clock already: a fast path reads it once per request.
    pub fn serve_cached_at(self: &Arc<Self>, door: Door, now: i64) -> Option<Arc<Issued>> {
        let served = self.take_cached(now)?;
        self.usage.record(door, now);
        Some(served)
    }

    /// Credentials for a request through `door`: [`RoleCache::get`], counted.
    pub async fn serve(self: &Arc<Self>, door: Door) -> Result<Arc<Issued>, Arc<Failure>> {
        if let Some(c) = self.serve_cached(door) {
            return Ok(c);
        }
        let fetched = self.get(Attempt::RespectBackoff).await?;
        self.usage.record(door, self.clock.now().timestamp());
        Ok(fetched)
    }

    /// The cached credentials if they can be served, noting that they were asked for.
    fn take_cached(self: &Arc<Self>, now: i64) -> Option<Arc<Issued>> {
        if self.last_access.load(Ordering::Relaxed) != now {
            self.last_access.store(now, Ordering::Relaxed);
        }
        let cached = self.cached_at(now)?;
        if !self.refresher_running.load(Ordering::Acquire) {
            self.ensure_refresher();
        }
        Some(cached)
    }

    /// Credentials for the role: cached ones at once, otherwise from STS (one call however many
    /// ask), or the failure that stands in for them. Waits at most [`STS_WAIT`] for STS.
    pub async fn get(self: &Arc<Self>, attempt: Attempt) -> Result<Arc<Issued>, Arc<Failure>> {
        match tokio::time::timeout(STS_WAIT, self.get_to_the_end(attempt)).await {
            Ok(result) => result,
            Err(_) => Err(self.still_waiting()),
        }
    }

    /// [`RoleCache::get`] without its limit: waits as long as the upstream call takes. For a
    /// role chained to this one, whose own fetch is a task that answers nobody directly.
    pub async fn get_to_the_end(
        self: &Arc<Self>,
        attempt: Attempt,
    ) -> Result<Arc<Issued>, Arc<Failure>> {
        if let Some(c) = self.take_cached(self.clock.seconds()) {
            return Ok(c);
        }
        // The fetch runs as its own task: a client that gives up (SDKs wait about a second) must
        // not cancel an AssumeRole whose result its retry, or the next client, will need.
        match tokio::spawn(self.clone().fetch(attempt)).await {
            Ok(result) => result,
            Err(crashed) => std::panic::resume_unwind(crashed.into_panic()),
        }
    }

    /// Stops serving the cached credentials, because the login they came from has ended (a
    /// logout): the next request asks again, and gets the reason it cannot have them. A call in
    /// flight finishes first, so what it brings back is dropped too.
    pub async fn forget(&self) {
        let mut failures = self.flight.lock().await;
        *self.current.write().expect("poisoned") = None;
        // What failed before the credentials now dropped was overcome by them: not the reason
        // the next request gets.
        *self.last_failure.write().expect("poisoned") = None;
        // The next request asks at once, rather than being answered with an older failure
        // (an unreachable portal, say) until its backoff ends.
        *failures = 0;
    }

    /// The most recent failure unless credentials were issued after it: what still stands
    /// between the role and its next credentials (an MFA code since entered, a login since
    /// done, an outage since over are not).
    pub fn standing_failure(&self) -> Option<Arc<Failure>> {
        let issued_at = self
            .current
            .read()
            .expect("poisoned")
            .as_ref()
            .map(|c| c.fetched_at);
        self.last_failure()
            .filter(|f| issued_at.is_none_or(|issued| f.at > issued))
    }

    /// Whether the cached credentials' latest refresh failed (they are still served).
    pub fn refresh_failing(&self) -> bool {
        let current = self.current.read().expect("poisoned").clone();
        matches!((current, self.last_failure()), (Some(c), Some(f)) if f.at > c.fetched_at)
    }

    /// Tries again now, whatever the backoff, for a reason that is not a request (a login, an
    /// MFA code, the network back): a failed refresh while the cached credentials are served,
    /// else a fetch. Not counted as a request, so a role nobody asks for does not become
    /// wanted. Waits at most [`STS_WAIT`]; the call itself runs on.
    pub async fn retry(self: &Arc<Self>) {
        if self.cached().is_some() {
            self.retry_refresh().await;
        } else {
            let fetch = tokio::spawn(self.clone().fetch(Attempt::Now));
            let _ = tokio::time::timeout(STS_WAIT, fetch).await;
        }
    }

    /// A failed refresh tried again now rather than at its backoff (after a login, an MFA code):
    /// the cached credentials are served meanwhile. Waits at most [`STS_WAIT`]; the call itself
    /// runs on, as for [`RoleCache::get`].
    pub async fn retry_refresh(self: &Arc<Self>) {
        let this = self.clone();
        let retry = tokio::spawn(async move {
            let mut failures = this.flight.lock().await;
            if this.refresh_failing() {
                let _ = this.call_sts(&mut failures).await;
            }
        });
        let _ = tokio::time::timeout(STS_WAIT, retry).await;
    }

    /// Obtains credentials under the flight lock: whoever comes second finds the first one's.
    async fn fetch(self: Arc<Self>, attempt: Attempt) -> Result<Arc<Issued>, Arc<Failure>> {
        let mut failures = self.flight.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        if attempt == Attempt::RespectBackoff
            && *failures > 0
            && let Some(f) = self.last_failure().filter(|f| self.backing_off(f))
        {
            return Err(f);
        }
        let result = self.call_sts(&mut failures).await;
        drop(failures);
        if result.is_ok() {
            self.ensure_refresher();
        }
        result
    }

    /// Whether a request must be answered with `failure` rather than try again: within its
    /// backoff, unless nothing answered and that was [`NO_ANSWER_RETRY`] ago.
    fn backing_off(&self, failure: &Failure) -> bool {
        let now = self.clock.now();
        now < failure.retry_at
            && !(failure.error.is_no_answer() && now - failure.at >= NO_ANSWER_RETRY)
    }

    /// What a request gets when STS is slower than [`STS_WAIT`]. Not a failure of STS (that is
    /// still pending), so it is neither recorded nor a reason to back off.
    fn still_waiting(&self) -> Arc<Failure> {
        let now = self.clock.now();
        let error = StsError::Timeout(format!(
            "no answer to {} for {} within {} s; fintors keeps waiting for it in the \
             background, ask again in a moment",
            self.role.operation(),
            self.role.describe(),
            STS_WAIT.as_secs()
        ));
        Failure::new(error, now, now)
    }

    /// Makes one AssumeRole call; the caller holds the flight lock.
    async fn call_sts(&self, failures: &mut u32) -> Result<Arc<Issued>, Arc<Failure>> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = self.assumer.assume_role(&self.role).await;
        if outcome
            .as_ref()
            .err()
            .is_none_or(StsError::reached_upstream)
        {
            self.sts_calls.fetch_add(1, Ordering::Relaxed);
        }
        let now = self.clock.now();
        match outcome {
            Ok(credentials) if servable(credentials.expiration.timestamp(), now.timestamp()) => {
                *failures = 0;
                let issued = Arc::new(self.issue(credentials, now));
                tracing::info!(
                    role = %self.role.alias,
                    expires = %time::format(issued.credentials.expiration),
                    "{} {}",
                    match self.role.source {
                        RoleSource::Assume => "assumed role",
                        RoleSource::PermissionSet(_) => "got the credentials of",
                        RoleSource::Process(_) => "got credentials from",
                    },
                    self.role.describe()
                );
                *self.current.write().expect("poisoned") = Some(issued.clone());
                Ok(issued)
            }
            Ok(credentials) => Err(self.fail(
                failures,
                StsError::Malformed(format!(
                    "STS returned credentials that expire at {}, which is too soon to serve (is \
                     this machine's clock right?)",
                    time::format(credentials.expiration)
                )),
                now,
            )),
            Err(error) => Err(self.fail(failures, error, now)),
        }
    }

    fn issue(&self, credentials: Credentials, now: DateTime<Utc>) -> Issued {
        let lifetime = credentials.expiration - now;
        let refresh_at = credentials.expiration - REFRESH_LEAD.min(lifetime / 2);
        Issued {
            document: render(&CredentialsDocument::success(&credentials, now, None)).into(),
            extended_document: render(&CredentialsDocument::success(
                &credentials,
                now,
                self.role.arn.as_ref().map(|arn| arn.account_id()),
            ))
            .into(),
            container_document: serde_json::to_string(&ContainerCredentials::new(
                &credentials,
                self.role.arn.as_ref(),
            ))
            .expect("a credential document serializes")
            .into(),
            expires_at: credentials.expiration.timestamp(),
            credentials,
            fetched_at: now,
            refresh_at,
        }
    }

    fn fail(&self, failures: &mut u32, error: StsError, now: DateTime<Utc>) -> Arc<Failure> {
        *failures = failures.saturating_add(1);
        let delay = backoff(*failures);
        // Once per cause: retries that fail the same way (an expired SSO session, say, for
        // hours) are debug lines, not a warning every backoff step.
        let again = self
            .last_failure()
            .is_some_and(|last| *failures > 1 && last.error == error);
        if matches!(error, StsError::SsoLoginRequired(_)) {
            // The session's, not the role's: one short line for every role it stops, with the
            // login command, and the rest at debug.
            if self.login_warnings.first_report(&error) {
                tracing::warn!("{}", error.message());
            } else {
                tracing::debug!(role = %self.role.alias, "{}", error.message());
            }
        } else if again {
            tracing::debug!(
                role = %self.role.alias,
                code = %error.code(),
                attempt = *failures,
                retry_in_ms = delay.as_millis() as u64,
                "{} {} failed again: {}",
                self.role.operation(),
                self.role.describe(),
                error.message()
            );
        } else {
            tracing::warn!(
                role = %self.role.alias,
                code = %error.code(),
                attempt = *failures,
                retry_in_ms = delay.as_millis() as u64,
                "{} {} failed: {}",
                self.role.operation(),
                self.role.describe(),
                error.message()
            );
        }
        let failure = Failure::new(
            error,
            now,
            now + TimeDelta::from_std(delay).expect("backoff fits"),
        );
        *self.last_failure.write().expect("poisoned") = Some(failure.clone());
        failure
    }
}

/// `last_access` of a role nobody has asked for yet.
const NEVER_ASKED: i64 = i64::MIN;

/// Whether credentials expiring at `expires_at` may be served at `now` (both in seconds since
/// the epoch, `now` rounded down, as the hot path reads the clock): they must have more than
/// [`MIN_SERVED_LIFETIME`] left. Strictly more, in whole seconds, so that whatever fraction of
/// a second `now` lost, what is served always has the full minute: at most a second stricter
/// than judging to the nanosecond, never more lenient.
fn servable(expires_at: i64, now: i64) -> bool {
    expires_at - now > MIN_SERVED_LIFETIME.num_seconds()
}

/// Exponential backoff with jitter in [half, full] of the step, so many daemons behind one
/// failing STS endpoint do not retry in lockstep.
pub fn backoff(failures: u32) -> Duration {
    let step = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let half = step / 2;
    half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::scripted::ScriptedAssumer;
    use crate::model::{Alias, RoleArn, SessionName};

    /// The shared STS double, issuing sessions of `lifetime`.
    fn sts(clock: Clock, lifetime: TimeDelta) -> ScriptedAssumer {
        ScriptedAssumer::new(clock).lasting(lifetime)
    }

    fn role(duration_seconds: u32) -> Role {
        let alias = Alias::parse("dev").unwrap();
        Role {
            source: RoleSource::Assume,
            arn: RoleArn::parse("arn:aws:iam::123456789012:role/dev").ok(),
            session_name: SessionName::default_for(&alias),
            alias,
            duration_seconds,
            external_id: None,
            region: None,
            source_profile: None,
            via: None,
            mfa_serial: None,
        }
    }

    fn start() -> Clock {
        Clock::following_tokio("2030-01-01T00:00:00Z".parse().unwrap())
    }

    fn throttled() -> StsError {
        StsError::refused("Throttling", "Rate exceeded")
    }

    async fn advance(d: TimeDelta) {
        tokio::time::sleep(d.to_std().unwrap()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_assume_role() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).delayed(Duration::from_millis(800)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        let requests: Vec<_> = (0..100)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get(Attempt::RespectBackoff).await })
            })
            .collect();
        let mut keys = std::collections::HashSet::new();
        for r in requests {
            keys.insert(r.await.unwrap().unwrap().credentials.access_key_id.clone());
        }
        assert_eq!(sts.calls(), 1);
        assert_eq!(keys.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cached_credentials_are_served_without_calling_sts() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        let first = cache.get(Attempt::RespectBackoff).await.unwrap();
        advance(TimeDelta::minutes(10)).await;
        let again = cache.get(Attempt::RespectBackoff).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(sts.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn long_sessions_refresh_thirty_five_minutes_before_expiry() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(12)));
        let cache = RoleCache::new(role(43_200), sts.clone(), clock);
        cache.set_pinned(true);
        let first = cache.get(Attempt::RespectBackoff).await.unwrap();
        advance(TimeDelta::hours(11) + TimeDelta::minutes(24)).await;
        assert_eq!(sts.calls(), 1, "too early to refresh");
        advance(TimeDelta::minutes(2)).await;
        assert_eq!(sts.calls(), 2, "refresh due 35 minutes before expiry");
        let now = cache.get(Attempt::RespectBackoff).await.unwrap();
        assert_ne!(
            now.credentials.access_key_id,
            first.credentials.access_key_id
        );
        assert!(now.credentials.expiration - clock.now() >= TimeDelta::hours(11));
    }

    #[tokio::test(start_paused = true)]
    async fn one_hour_sessions_refresh_at_half_life() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        cache.set_pinned(true);
        cache.get(Attempt::RespectBackoff).await.unwrap();
        advance(TimeDelta::minutes(29)).await;
        assert_eq!(sts.calls(), 1);
        advance(TimeDelta::minutes(2)).await;
        assert_eq!(sts.calls(), 2);
        let served = cache.get(Attempt::RespectBackoff).await.unwrap();
        assert!(served.credentials.expiration - clock.now() >= TimeDelta::minutes(55));
    }

    #[tokio::test(start_paused = true)]
    async fn short_sessions_refresh_at_half_life() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::minutes(15)));
        let cache = RoleCache::new(role(900), sts.clone(), clock);
        cache.set_pinned(true);
        cache.get(Attempt::RespectBackoff).await.unwrap();
        advance(TimeDelta::seconds(449)).await;
        assert_eq!(sts.calls(), 1);
        advance(TimeDelta::seconds(2)).await;
        assert_eq!(sts.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_never_wait_for_a_slow_refresh() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        cache.set_pinned(true);
        let first = cache.get(Attempt::RespectBackoff).await.unwrap();
        sts.slow_down(Duration::from_secs(30));
        // Past the refresh point (30 minutes); the refresh is now stuck in STS for 30 s.
        advance(TimeDelta::minutes(30) + TimeDelta::seconds(10)).await;
        assert_eq!(sts.calls(), 2);
        let before = tokio::time::Instant::now();
        let served = cache.get(Attempt::RespectBackoff).await.unwrap();
        assert_eq!(tokio::time::Instant::now(), before, "the request waited");
        assert!(Arc::ptr_eq(&first, &served));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_giving_up_does_not_cancel_its_assume_role() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).delayed(Duration::from_secs(3)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        // An SDK client times out after about a second and drops its request.
        let gave_up = tokio::time::timeout(Duration::from_secs(1), cache.get(Attempt::Now)).await;
        assert!(gave_up.is_err());
        advance(TimeDelta::seconds(3)).await;
        let before = tokio::time::Instant::now();
        assert!(cache.get(Attempt::RespectBackoff).await.is_ok());
        assert_eq!(tokio::time::Instant::now(), before, "the retry waited");
        assert_eq!(sts.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_sts_holds_a_request_no_longer_than_the_wait_bound() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).delayed(Duration::from_secs(60)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        let before = tokio::time::Instant::now();
        let failure = cache.get(Attempt::RespectBackoff).await.unwrap_err();
        assert_eq!(tokio::time::Instant::now() - before, STS_WAIT);
        assert_eq!(failure.error.code(), "StsTimeout");
        assert!(cache.last_failure().is_none(), "STS has not failed yet");
        advance(TimeDelta::minutes(1)).await;
        assert!(
            cache.cached().is_some(),
            "the call completed in the background"
        );
        assert_eq!(sts.calls(), 1);
    }

    /// A pinned one-hour role with credentials in hand, and STS throttling the next 100 calls.
    async fn refreshes_will_fail() -> (Clock, Arc<ScriptedAssumer>, Arc<RoleCache>, Arc<Issued>) {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        cache.set_pinned(true);
        let first = cache.get(Attempt::RespectBackoff).await.unwrap();
        for _ in 0..100 {
            sts.push(Err(throttled()));
        }
        (clock, sts, cache, first)
    }

    #[tokio::test(start_paused = true)]
    async fn failing_refresh_keeps_serving_valid_credentials_and_backs_off() {
        let (_, sts, cache, first) = refreshes_will_fail().await;
        // From the refresh point (30 min) to 5 minutes before expiry: every answer is the cached one.
        advance(TimeDelta::minutes(30)).await;
        for _ in 0..25 {
            advance(TimeDelta::minutes(1)).await;
            let served = cache.get(Attempt::RespectBackoff).await.unwrap();
            assert!(Arc::ptr_eq(&first, &served));
        }
        let calls = sts.calls() - 1;
        // Backoff doubles from ~2 s to the 5-minute cap: about a dozen attempts in 25 minutes,
        // not thousands.
        assert!((5..=20).contains(&calls), "{calls} refresh attempts");
        assert_eq!(cache.last_failure().unwrap().error.code(), "Throttling");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_retried_now_replaces_the_credentials_without_waiting_out_its_backoff()
    {
        let (_, sts, cache, first) = refreshes_will_fail().await;
        advance(TimeDelta::minutes(31)).await;
        assert!(cache.refresh_failing(), "the refresh at 30 minutes failed");
        let calls = sts.calls();
        // The cause is fixed (a login, say); the retry does not wait for the backoff.
        sts.clear();
        cache.retry_refresh().await;
        assert_eq!(sts.calls(), calls + 1);
        assert!(!cache.refresh_failing());
        let served = cache.get(Attempt::RespectBackoff).await.unwrap();
        assert_ne!(
            served.credentials.access_key_id,
            first.credentials.access_key_id
        );
    }

    #[test]
    fn what_is_served_has_the_full_minimum_whatever_fraction_of_a_second_the_clock_dropped() {
        let minimum = MIN_SERVED_LIFETIME.num_seconds();
        let expires_at = 1_800_000_000;
        // Read as this second, the clock may be up to a second later: 59.x s left at worst.
        assert!(!servable(expires_at, expires_at - minimum));
        // A second earlier, at least the full minimum is left.
        assert!(servable(expires_at, expires_at - minimum - 1));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_credentials_are_never_served() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        cache.get(Attempt::RespectBackoff).await.unwrap();
        for _ in 0..1000 {
            sts.push(Err(StsError::refused("AccessDenied", "not authorized")));
        }
        // Every refresh since 30 minutes failed; now the credentials are in their last minute.
        advance(TimeDelta::minutes(59) + TimeDelta::seconds(1)).await;
        let failure = cache.get(Attempt::RespectBackoff).await.unwrap_err();
        assert_eq!(failure.error.code(), "AccessDenied");
        let doc = std::str::from_utf8(&failure.document).unwrap();
        assert!(doc.contains("\"Code\" : \"AccessDenied\""), "{doc}");
        assert!(cache.cached().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_during_backoff_fail_at_once_without_calling_sts() {
        let clock = start();
        let sts = Arc::new(
            sts(clock, TimeDelta::hours(1)).scripted([Err(throttled()), Err(throttled())]),
        );
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        assert!(cache.get(Attempt::RespectBackoff).await.is_err());
        for _ in 0..50 {
            assert!(cache.get(Attempt::RespectBackoff).await.is_err());
        }
        assert_eq!(sts.calls(), 1);
        // An explicit switch tries again regardless.
        assert!(cache.get(Attempt::Now).await.is_err());
        assert_eq!(sts.calls(), 2);
        // After the backoff, an ordinary request tries again and succeeds.
        advance(TimeDelta::minutes(1)).await;
        assert!(cache.get(Attempt::RespectBackoff).await.is_ok());
    }

    fn offline() -> StsError {
        StsError::Unreachable("dispatch failure: connection refused".into())
    }

    #[tokio::test(start_paused = true)]
    async fn after_no_answer_at_the_backoff_cap_a_request_three_seconds_later_is_served() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        for _ in 0..9 {
            sts.push(Err(offline()));
        }
        for _ in 0..8 {
            assert!(cache.get(Attempt::RespectBackoff).await.is_err());
            advance(TimeDelta::seconds(301)).await;
        }
        assert!(cache.get(Attempt::RespectBackoff).await.is_err());
        let last = cache.last_failure().unwrap();
        assert!(
            last.retry_at - last.at >= TimeDelta::seconds(150),
            "at the cap"
        );
        assert_eq!(sts.calls(), 9);

        // The network is back. Within three seconds of the last attempt, nobody asks STS again.
        advance(TimeDelta::seconds(2)).await;
        let failure = cache.get(Attempt::RespectBackoff).await.unwrap_err();
        assert_eq!(failure.error.code(), "StsUnreachable");
        assert_eq!(sts.calls(), 9);
        // After them, the next request tries and is served, minutes before the backoff ends.
        advance(TimeDelta::seconds(1)).await;
        assert!(cache.get(Attempt::RespectBackoff).await.is_ok());
        assert_eq!(sts.calls(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_while_nothing_answers_try_at_most_once_every_three_seconds() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).scripted(vec![Err(offline()); 1000]));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        // An SDK polling ten times a second for a minute of being offline.
        for _ in 0..600 {
            assert!(cache.get(Attempt::RespectBackoff).await.is_err());
            advance(TimeDelta::milliseconds(100)).await;
        }
        let calls = sts.calls();
        assert!(
            (19..=21).contains(&calls),
            "{calls} attempts in 60 s: one per request would be 600, the backoff alone 5"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_attempts_that_reached_sts_count_as_calls() {
        let clock = start();
        let no_keys = StsError::NoBaseCredentials("no profile \"identiy\"".into());
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).scripted([
            Err(offline()),
            Err(no_keys),
            Err(throttled()),
        ]));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        for _ in 0..3 {
            assert!(cache.get(Attempt::Now).await.is_err());
        }
        assert!(cache.get(Attempt::Now).await.is_ok());
        assert_eq!(cache.attempts(), 4);
        assert_eq!(cache.sts_calls(), 2, "the throttled call and the good one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_stands_until_credentials_are_issued_after_it() {
        let clock = start();
        let mfa = StsError::MfaRequired("role dev needs an MFA code: run `fintors mfa`".into());
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).scripted([Err(mfa)]));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        assert!(cache.get(Attempt::Now).await.is_err());
        assert_eq!(
            cache.standing_failure().unwrap().error.code(),
            "MfaRequired"
        );
        advance(TimeDelta::seconds(1)).await;
        assert!(cache.get(Attempt::Now).await.is_ok());
        assert!(cache.standing_failure().is_none(), "the code was entered");
        assert!(cache.last_failure().is_some(), "still known, for the log");
        // Unused, the credentials lapse: the old failure does not come back.
        advance(TimeDelta::hours(2)).await;
        assert!(cache.cached().is_none());
        assert!(cache.standing_failure().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_still_waits_out_its_backoff() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).scripted(vec![Err(throttled()); 5]));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        for _ in 0..4 {
            assert!(cache.get(Attempt::RespectBackoff).await.is_err());
            advance(TimeDelta::seconds(301)).await;
        }
        assert!(cache.get(Attempt::RespectBackoff).await.is_err());
        let last = cache.last_failure().unwrap();
        assert!(last.retry_at - last.at >= TimeDelta::seconds(16));
        advance(TimeDelta::seconds(5)).await;
        let failure = cache.get(Attempt::RespectBackoff).await.unwrap_err();
        assert_eq!(failure.error.code(), "Throttling");
        assert_eq!(
            sts.calls(),
            5,
            "Throttling is an answer: no attempt before its backoff"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn service_resumes_after_sts_recovers_without_requests() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)).scripted([
            Err(throttled()),
            Err(throttled()),
            Err(throttled()),
        ]));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        assert!(cache.get(Attempt::RespectBackoff).await.is_err());
        cache.set_pinned(true);
        advance(TimeDelta::minutes(2)).await;
        assert_eq!(sts.calls(), 4, "three failures, then success");
        assert!(cache.cached().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_roles_lapse_instead_of_refreshing_forever() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        cache.get(Attempt::RespectBackoff).await.unwrap();
        advance(TimeDelta::hours(6)).await;
        // One refresh while it was recently used (within one session length), then none.
        assert!(sts.calls() <= 3, "{} calls", sts.calls());
        let calls = sts.calls();
        advance(TimeDelta::hours(6)).await;
        assert_eq!(sts.calls(), calls);
    }

    /// What a reload that changes the active role, followed by a switch away before any request,
    /// does to a role: pinned, refreshed, unpinned, never asked for. It used to overflow (a
    /// panic in debug builds, a role refreshed forever in release builds).
    #[tokio::test(start_paused = true)]
    async fn a_role_active_for_a_while_but_never_asked_for_lapses_once_unpinned() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::hours(1)));
        let cache = RoleCache::new(role(3600), sts.clone(), clock);
        cache.set_pinned(true);
        advance(TimeDelta::minutes(5)).await;
        assert_eq!(sts.calls(), 1, "the active role is fetched ahead");
        cache.set_pinned(false);
        assert!(!cache.wanted(clock.now()));
        advance(TimeDelta::hours(6)).await;
        assert_eq!(sts.calls(), 1, "nobody asked for it: no refresh");
    }

    #[tokio::test(start_paused = true)]
    async fn too_short_lived_credentials_are_refused() {
        let clock = start();
        let sts = Arc::new(sts(clock, TimeDelta::seconds(30)));
        let cache = RoleCache::new(role(900), sts.clone(), clock);
        let failure = cache.get(Attempt::RespectBackoff).await.unwrap_err();
        assert_eq!(failure.error.code(), "MalformedResponse");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for failures in 1..40 {
            let step = BACKOFF_FIRST
                .saturating_mul(1 << (failures - 1).min(16))
                .min(BACKOFF_CAP);
            let d = backoff(failures);
            assert!(d >= step / 2 && d <= step, "{failures}: {d:?}");
        }
        assert!(backoff(100) <= BACKOFF_CAP);
    }
}
