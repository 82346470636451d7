//! IAM Identity Center permission sets as roles: credentials from the access portal's
//! `GetRoleCredentials` for an account and a role name, asked with the access token of an
//! sso-session's login. Permission sets are the roles most organisations hand out, and their
//! `AWSReservedSSO_*` roles trust only the SAML provider, so STS `AssumeRole` cannot reach them.
//!
//! The session (its start URL and portal region) is read from the AWS config file at each call,
//! and the token from the login's cache file through `sso::usable_token`, which renews it first
//! when it is about to expire (once for every caller, and never again with a refresh token
//! Identity Center refused); so a fresh login is used at once, as it is for a base identity.
//! One call per refresh, cached and refreshed ahead like any role. Failures are classified by the SDK error's type: an expired or refused session is the
//! one-line `SsoLoginRequired` with the command that fixes it.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sso::config::http::HttpResponse;
use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sso::operation::list_account_roles::ListAccountRolesError;

use super::sso::SsoLogin;
use super::sts::{FALLBACK_REGION, MAX_MESSAGE, OPERATION_TIMEOUT, innermost, timeouts};
use super::{StsError, one_line};
use crate::config::aws_profiles;
use crate::model::{Assignment, Clock, Credentials, PermissionSet, Secret};

/// The access portal's client side, shared by every permission-set role.
pub struct Portal {
    /// The standard settings (`AWS_ENDPOINT_URL_SSO`, proxies, timeouts); the region is each
    /// session's `sso_region`.
    base: aws_config::SdkConfig,
    clock: Clock,
}

impl Portal {
    pub async fn new(clock: Clock) -> Portal {
        // A region given, so loading never asks IMDS for one (which would be fintors itself);
        // each call sets the session's.
        let base = aws_config::defaults(BehaviorVersion::latest())
            .no_credentials()
            .region(aws_config::Region::new(FALLBACK_REGION))
            .timeout_config(timeouts())
            .load()
            .await;
        Portal { base, clock }
    }

    /// A portal client for the sso-session `name` (in its region) and the session's access
    /// token, or why not (an expired login is `SsoLoginRequired`).
    async fn connect(
        &self,
        name: &str,
    ) -> Result<(Session, aws_sdk_sso::Client, String), StsError> {
        let session = self.session(name).await?;
        let config = self
            .base
            .to_builder()
            .region(aws_config::Region::new(session.sso.region.clone()))
            .build();
        let token = crate::sso::usable_token(&session.sso).await.map_err(|e| {
            tracing::debug!("SSO token for session {name:?}: {e}");
            super::error::token_failure(e, || {
                session.login_required(self.clock, "has no usable token")
            })
        })?;
        let client = aws_sdk_sso::Client::new(&config);
        Ok((session, client, token.access_token.expose().to_owned()))
    }

    /// The permission set's credentials, or why not.
    pub async fn role_credentials(&self, set: &PermissionSet) -> Result<Credentials, StsError> {
        let (session, client, token) = self.connect(&set.sso_session).await?;
        let answer = client
            .get_role_credentials()
            .account_id(&set.account_id)
            .role_name(&set.role_name)
            .access_token(&token)
            .send()
            .await
            .map_err(|e| session.classify(self.clock, "GetRoleCredentials", &e))?;
        let c = answer.role_credentials().ok_or_else(|| {
            StsError::Malformed("the Identity Center portal answered without credentials".into())
        })?;
        let expiration = chrono::DateTime::from_timestamp_millis(c.expiration())
            .filter(|&t| t > self.clock.now())
            .ok_or_else(|| {
                StsError::Malformed(format!(
                    "the Identity Center portal gave credentials that expire at {} ms",
                    c.expiration()
                ))
            })?;
        match (c.access_key_id(), c.secret_access_key(), c.session_token()) {
            (Some(key), Some(secret), Some(token)) => Ok(Credentials {
                access_key_id: key.to_owned(),
                secret_access_key: Secret::new(secret),
                session_token: Secret::new(token),
                expiration,
            }),
            _ => Err(StsError::Malformed(
                "the Identity Center portal gave credentials without a key, secret or token".into(),
            )),
        }
    }

    /// Every account of the sso-session `name`'s login and every role in each
    /// (`ListAccounts`, then `ListAccountRoles` per account, every page), within the portal's
    /// throttle: [`LIST_RATE`] calls a second at most, and a `TooManyRequestsException` waited
    /// out (1 s, doubling) up to [`LIST_ATTEMPTS`] times. Any other failure fails the listing:
    /// a part of one is never taken for the whole.
    pub async fn assignments(&self, name: &str) -> Result<Vec<Assignment>, StsError> {
        let (session, client, token) = self.connect(name).await?;
        let pace = Arc::new(Pace::new(Duration::from_secs(1) / LIST_RATE));
        let mut accounts = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = paced(&pace, || {
                client
                    .list_accounts()
                    .access_token(&token)
                    .max_results(PAGE_SIZE)
                    .set_next_token(next.clone())
                    .send()
            })
            .await
            .map_err(|e| session.classify(self.clock, "ListAccounts", &e))?;
            accounts.extend(page.account_list().iter().filter_map(|a| {
                Some((
                    a.account_id()?.to_owned(),
                    a.account_name().unwrap_or_default().to_owned(),
                ))
            }));
            next = next_page(&next, page.next_token())?;
            if next.is_none() {
                break;
            }
        }
        // Several accounts' roles in flight at once, to overlap the portal's latency; the pace
        // keeps the rate.
        let in_flight = Arc::new(tokio::sync::Semaphore::new(LIST_IN_FLIGHT));
        let mut listing = tokio::task::JoinSet::new();
        for (account_id, account_name) in accounts {
            let (client, token, pace, in_flight) = (
                client.clone(),
                token.clone(),
                pace.clone(),
                in_flight.clone(),
            );
            listing.spawn(async move {
                let _slot = in_flight.acquire_owned().await;
                let mut roles = Vec::new();
                let mut next: Option<String> = None;
                loop {
                    let page = paced(&pace, || {
                        client
                            .list_account_roles()
                            .access_token(&token)
                            .account_id(&account_id)
                            .max_results(PAGE_SIZE)
                            .set_next_token(next.clone())
                            .send()
                    })
                    .await
                    .map_err(|e| Listed::Failed(Box::new(e)))?;
                    roles.extend(page.role_list().iter().filter_map(|r| {
                        Some(Assignment {
                            account_id: account_id.clone(),
                            account_name: account_name.clone(),
                            role_name: r.role_name()?.to_owned(),
                        })
                    }));
                    next = match next_page(&next, page.next_token()) {
                        Ok(None) => return Ok(roles),
                        Ok(next) => next,
                        Err(repeated) => return Err(Listed::Repeated(repeated)),
                    };
                }
            });
        }
        let mut assignments = Vec::new();
        while let Some(done) = listing.join_next().await {
            let roles = done
                .map_err(|e| {
                    StsError::Malformed(format!("listing an account's roles failed: {e}"))
                })?
                .map_err(|e| match e {
                    Listed::Repeated(error) => error,
                    Listed::Failed(e) => session.classify(self.clock, "ListAccountRoles", &e),
                })?;
            assignments.extend(roles);
        }
        assignments
            .sort_by(|a, b| (&a.account_id, &a.role_name).cmp(&(&b.account_id, &b.role_name)));
        Ok(assignments)
    }

    /// The sso-session named `name` in the AWS config file.
    async fn session(&self, name: &str) -> Result<Session, StsError> {
        let profiles = aws_profiles::load()
            .await
            .map_err(StsError::NoBaseCredentials)?;
        let sso = crate::sso::Session::of(&profiles, name)
            .map_err(|e| StsError::NoBaseCredentials(e.to_string()))?;
        let login = SsoLogin::of_session(&profiles, name).ok_or_else(|| {
            StsError::NoBaseCredentials(format!("[sso-session {name}] has no sso_start_url"))
        })?;
        Ok(Session { login, sso })
    }
}

/// The portal's documented throttle is about 20 calls a second per login: listing keeps to it.
pub const LIST_RATE: u32 = 20;
/// How many times a throttled call is made in all before the listing gives up.
pub const LIST_ATTEMPTS: u32 = 6;
/// Accounts whose roles are being listed at once.
const LIST_IN_FLIGHT: usize = 8;
/// The most a page may hold (the portal's own maximum for both calls).
const PAGE_SIZE: i32 = 100;

/// Spaces calls `interval` apart, whoever makes them.
struct Pace {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    fn new(interval: Duration) -> Pace {
        Pace {
            interval,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for this call's turn.
    async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// A listing call that is the portal's to throttle: made in its turn, and again after a
/// doubling wait while the portal says `TooManyRequestsException`.
async fn paced<T, E, F, Fut>(pace: &Pace, mut send: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: PortalError,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut wait = Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        pace.turn().await;
        match send().await {
            Err(SdkError::ServiceError(e)) if e.err().throttled() && attempt < LIST_ATTEMPTS => {
                tracing::debug!(
                    "the Identity Center portal throttles the listing: waiting {wait:?}"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The page after one whose token was `previous`, given the portal's `next` token: `None` at
/// the end (no token, or an empty one); an error if the portal gives the same token again,
/// which would list the same page forever.
fn next_page(previous: &Option<String>, next: Option<&str>) -> Result<Option<String>, StsError> {
    match next.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if previous.as_deref() == Some(t) => Err(StsError::Malformed(
            "the Identity Center portal gave the same page token twice".into(),
        )),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// Why one account's roles could not be listed.
enum Listed {
    Failed(Box<SdkError<ListAccountRolesError, HttpResponse>>),
    Repeated(StsError),
}

/// What the portal's operations refuse with, by the error's type: the token (every operation's
/// `UnauthorizedException`) and the rate (`TooManyRequestsException`).
trait PortalError: ProvideErrorMetadata + std::error::Error + 'static {
    fn unauthorized(&self) -> bool;
    fn throttled(&self) -> bool;
}

macro_rules! portal_error {
    ($($error:ty),*) => {$(
        impl PortalError for $error {
            fn unauthorized(&self) -> bool {
                self.is_unauthorized_exception()
            }
            fn throttled(&self) -> bool {
                self.is_too_many_requests_exception()
            }
        }
    )*};
}

portal_error!(
    aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsError,
    aws_sdk_sso::operation::list_accounts::ListAccountsError,
    ListAccountRolesError
);

/// An sso-session as the portal needs it.
struct Session {
    login: SsoLogin,
    sso: crate::sso::Session,
}

impl Session {
    /// The one-line error that says to log in again: why the token cache says so if it does,
    /// else `why`.
    fn login_required(&self, clock: Clock, why: &str) -> StsError {
        self.login
            .explain(clock.now())
            .unwrap_or_else(|| self.login.login_required(why))
    }

    /// A failed portal call, by the SDK error's type (and a 401 of no known type as the
    /// refusal of the token it is).
    fn classify<E: PortalError>(
        &self,
        clock: Clock,
        operation: &str,
        err: &SdkError<E, HttpResponse>,
    ) -> StsError {
        tracing::trace!("{operation} failed: {err:?}");
        match err {
            SdkError::ServiceError(service) => match service.err() {
                e if e.unauthorized() || service.raw().status().as_u16() == 401 => {
                    self.login_required(clock, "was refused by the portal")
                }
                e => StsError::refused(
                    e.code().unwrap_or("PortalError"),
                    match e.message() {
                        Some(message) => one_line(message, MAX_MESSAGE),
                        None => format!(
                            "the Identity Center portal answered {operation} with HTTP {}",
                            service.raw().status().as_u16()
                        ),
                    },
                ),
            },
            SdkError::TimeoutError(_) => StsError::Timeout(format!(
                "the Identity Center portal did not answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            )),
            SdkError::ResponseError(_) => StsError::Malformed(format!(
                "the Identity Center portal sent a response fintors could not read: {}",
                innermost(err)
            )),
            _ => StsError::Unreachable(format!(
                "cannot reach the Identity Center portal: {}",
                innermost(err)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_ends_the_listing_when_absent_or_empty_and_fails_it_when_repeated() {
        assert_eq!(next_page(&None, None).unwrap(), None);
        assert_eq!(next_page(&None, Some("")).unwrap(), None);
        assert_eq!(next_page(&None, Some("2")).unwrap().as_deref(), Some("2"));
        let repeated = next_page(&Some("2".into()), Some("2")).unwrap_err();
        assert_eq!(repeated.code(), "MalformedResponse");
    }
}
