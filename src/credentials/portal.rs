//! IAM Identity Center permission sets as roles: credentials from the access portal's
//! `GetRoleCredentials` for an account and a role name, asked with the access token of an
//! sso-session's login. Permission sets are the roles most organisations hand out, and their
//! `AWSReservedSSO_*` roles trust only the SAML provider, so STS `AssumeRole` cannot reach them.
//!
//! The session (its start URL and portal region) is read from the AWS config file at each call,
//! and the token through aws-config's `SsoTokenProvider`, which reads the cache `aws sso login`
//! writes and refreshes it with its refresh token when it can; so a fresh login is used at once,
//! as it is for a base identity. One call per refresh, cached and refreshed ahead like any role.
//! Failures are classified by the SDK error's type: an expired or refused session is the
//! one-line `SsoLoginRequired` with the command that fixes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::token::ProvideToken;
use aws_sdk_sso::config::http::HttpResponse;
use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsError;

use super::sso::SsoLogin;
use super::sts::{FALLBACK_REGION, MAX_MESSAGE, OPERATION_TIMEOUT, innermost, timeouts};
use super::{StsError, one_line};
use crate::config::aws_profiles;
use crate::model::{Clock, Credentials, PermissionSet, Secret};

/// The access portal's client side, shared by every permission-set role.
pub struct Portal {
    /// The standard settings (`AWS_ENDPOINT_URL_SSO`, proxies, timeouts); the region is each
    /// session's `sso_region`.
    base: aws_config::SdkConfig,
    clock: Clock,
    /// One token read (and refresh) at a time per session: roles of one session refreshing
    /// together would each spend the same refresh token and rewrite the same cache file.
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
        Portal {
            base,
            clock,
            tokens: Mutex::default(),
        }
    }

    /// The permission set's credentials, or why not.
    pub async fn role_credentials(&self, set: &PermissionSet) -> Result<Credentials, StsError> {
        let session = self.session(&set.sso_session).await?;
        let config = self
            .base
            .to_builder()
            .region(aws_config::Region::new(session.region.clone()))
            .build();
        let one_at_a_time = self
            .tokens
            .lock()
            .expect("poisoned")
            .entry(set.sso_session.clone())
            .or_default()
            .clone();
        let reading = one_at_a_time.lock().await;
        let token = aws_config::sso::SsoTokenProvider::builder()
            .configure(&config)
            .session_name(&set.sso_session)
            .start_url(&session.login.start_url)
            .region(aws_config::Region::new(session.region.clone()))
            .build()
            .await
            .provide_token()
            .await
            .map_err(|e| {
                tracing::debug!("SSO token for session {:?}: {e:?}", set.sso_session);
                session.login_required(self.clock, "has no usable token")
            })?;
        drop(reading);
        let answer = aws_sdk_sso::Client::new(&config)
            .get_role_credentials()
            .account_id(&set.account_id)
            .role_name(&set.role_name)
            .access_token(token.token())
            .send()
            .await
            .map_err(|e| session.classify(self.clock, &e))?;
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

    /// The sso-session named `name` in the AWS config file.
    async fn session(&self, name: &str) -> Result<Session, StsError> {
        let profiles = aws_profiles::load()
            .await
            .map_err(StsError::NoBaseCredentials)?;
        let missing = |what: &str| {
            StsError::NoBaseCredentials(format!(
                "the AWS config file has no {what} for [sso-session {name}]: add it (as `aws \
                 configure sso-session` writes it)"
            ))
        };
        let section = profiles
            .sso_session(name)
            .ok_or_else(|| missing("section"))?;
        let region = section
            .get("sso_region")
            .ok_or_else(|| missing("sso_region"))?
            .to_owned();
        let login =
            SsoLogin::of_session(&profiles, name).ok_or_else(|| missing("sso_start_url"))?;
        Ok(Session { login, region })
    }
}

/// An sso-session as the portal needs it.
struct Session {
    login: SsoLogin,
    region: String,
}

impl Session {
    /// The one-line error that says to log in again: why the token cache says so if it does,
    /// else `why`.
    fn login_required(&self, clock: Clock, why: &str) -> StsError {
        self.login
            .explain(clock.now())
            .unwrap_or_else(|| self.login.login_required(why))
    }

    /// A failed `GetRoleCredentials`, by the SDK error's type (and a 401 of no known type as
    /// the refusal it is).
    fn classify(
        &self,
        clock: Clock,
        err: &SdkError<GetRoleCredentialsError, HttpResponse>,
    ) -> StsError {
        tracing::trace!("GetRoleCredentials failed: {err:?}");
        match err {
            SdkError::ServiceError(service) => match service.err() {
                e if e.is_unauthorized_exception() || service.raw().status().as_u16() == 401 => {
                    self.login_required(clock, "was refused by the portal")
                }
                e => StsError::refused(
                    e.code().unwrap_or("PortalError"),
                    one_line(e.message().unwrap_or("(no message)"), MAX_MESSAGE),
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
