//! SSO OIDC, the service Identity Center signs in with, through aws-sdk-ssooidc (already in the
//! tree through aws-config's SSO support): `RegisterClient`, `StartDeviceAuthorization` and
//! `CreateToken` with the authorization code, device code and refresh token grants. The region
//! is the session's `sso_region`; `AWS_ENDPOINT_URL_SSO_OIDC` (or `AWS_ENDPOINT_URL`, or a
//! profile's `endpoint_url`) moves it, as it does for the SDK, and the browser's authorize page
//! moves with it. CreateToken's refusals are told apart by their error types (RFC 8628's
//! `authorization_pending` and `slow_down` among them), never by their words.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_ssooidc::config::endpoint::{Params, ResolveEndpoint};
use aws_sdk_ssooidc::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssooidc::operation::create_token::CreateTokenError;
use chrono::{DateTime, Utc};

use super::cache::{AUTHORIZATION_CODE, Registration};
use super::{Session, SsoError};
use crate::model::Secret;
use crate::model::text::{innermost, one_line};

/// The most of Identity Center's own words (or a connection error's) an error passes on: with
/// what fintors says around them, the user's line stays within 160 characters.
pub(super) const SAID: usize = 70;

/// The device code grant's name (RFC 8628).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The redirect URI registered: the loopback callback on any port (RFC 8252, 7.3), as the AWS
/// CLI registers it; the sign-in itself names the port.
pub const REGISTERED_REDIRECT: &str = "http://127.0.0.1/oauth/callback";

/// A client of one region's SSO OIDC.
pub struct Oidc {
    client: aws_sdk_ssooidc::Client,
    region: String,
    /// `https://oidc.REGION.amazonaws.com`, or where the settings move it.
    base_url: String,
}

/// How a token is asked for.
pub enum Grant<'a> {
    /// The browser's code, with this sign-in's verifier and redirect URI.
    Code {
        code: &'a str,
        verifier: &'a Secret,
        redirect_uri: &'a str,
    },
    /// A device code the user is approving.
    Device(&'a str),
    Refresh(&'a Secret),
}

/// A token CreateToken issued.
pub struct Issued {
    pub access_token: Secret,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: Option<Secret>,
}

/// Why CreateToken gave no token, by the error's type.
#[derive(Debug)]
pub enum Refusal {
    /// The device code is not approved yet: ask again after the interval.
    Pending,
    /// Asked too often: ask again 5 s later than before (RFC 8628, 3.5).
    SlowDown,
    /// The device code, or the refresh token, has expired.
    Expired,
    /// The grant is no good (a spent or revoked refresh token, a wrong code or verifier).
    InvalidGrant(String),
    /// The user refused.
    Denied(String),
    /// The client registration is no longer accepted (revoked, or not allowed this grant):
    /// its error type and words. A refresh through it cannot work again.
    ClientRefused { code: &'static str, said: String },
    /// Anything else, with its one-line explanation.
    Failed(SsoError),
}

/// A device sign-in under way.
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub interval: Duration,
}

impl Oidc {
    pub async fn new(region: &str) -> Oidc {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .no_credentials()
            .region(aws_config::Region::new(region.to_owned()))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            )
            .load()
            .await;
        Oidc {
            base_url: base_url(&sdk, region).await,
            client: aws_sdk_ssooidc::Client::new(&sdk),
            region: region.to_owned(),
        }
    }

    /// Where the browser signs in: `{base}/authorize`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A new client registration for `session`: for the browser (authorization code and
    /// refresh token grants, the loopback redirect) or for the device code.
    pub async fn register(
        &self,
        session: &Session,
        browser: bool,
        now: DateTime<Utc>,
    ) -> Result<Registration, SsoError> {
        let grants: Vec<String> = if browser {
            vec![AUTHORIZATION_CODE.into(), REFRESH_TOKEN.into()]
        } else {
            vec![DEVICE_CODE.into(), REFRESH_TOKEN.into()]
        };
        let mut call = self
            .client
            .register_client()
            .client_name(format!("fintors-{}", session.name))
            .client_type("public")
            .set_scopes(Some(session.scopes()))
            .set_grant_types(Some(grants.clone()));
        if browser {
            call = call
                .redirect_uris(REGISTERED_REDIRECT)
                .issuer_url(&session.start_url);
        }
        let answer = call
            .send()
            .await
            .map_err(|e| self.failed("RegisterClient", &e))?;
        let (Some(id), Some(secret)) = (answer.client_id(), answer.client_secret()) else {
            return Err(self.malformed("RegisterClient", "no client id or secret"));
        };
        let expires_at = DateTime::from_timestamp(answer.client_secret_expires_at(), 0)
            .filter(|t| *t > now)
            .ok_or_else(|| self.malformed("RegisterClient", "a registration already expired"))?;
        Ok(Registration {
            client_id: id.to_owned(),
            client_secret: Secret::new(secret),
            expires_at,
            scopes: Some(session.scopes()),
            grant_types: Some(grants),
        })
    }

    /// Starts a device sign-in for `start_url`.
    pub async fn start_device(
        &self,
        registration: &Registration,
        start_url: &str,
        now: DateTime<Utc>,
    ) -> Result<DeviceAuthorization, SsoError> {
        let answer = self
            .client
            .start_device_authorization()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose())
            .start_url(start_url)
            .send()
            .await
            .map_err(|e| self.failed("StartDeviceAuthorization", &e))?;
        let (Some(device_code), Some(user_code), Some(uri)) = (
            answer.device_code(),
            answer.user_code(),
            answer.verification_uri(),
        ) else {
            return Err(self.malformed(
                "StartDeviceAuthorization",
                "no device code, user code or verification URI",
            ));
        };
        Ok(DeviceAuthorization {
            device_code: device_code.to_owned(),
            user_code: user_code.to_owned(),
            verification_uri: uri.to_owned(),
            verification_uri_complete: answer.verification_uri_complete().map(str::to_owned),
            expires_at: now + chrono::TimeDelta::seconds(answer.expires_in().max(0).into()),
            interval: Duration::from_secs(match answer.interval() {
                n if n > 0 => n as u64,
                _ => 5,
            }),
        })
    }

    /// A token for `grant`, or why not.
    pub async fn create_token(
        &self,
        registration: &Registration,
        grant: Grant<'_>,
        now: DateTime<Utc>,
    ) -> Result<Issued, Refusal> {
        let call = self
            .client
            .create_token()
            .client_id(&registration.client_id)
            .client_secret(registration.client_secret.expose());
        let call = match grant {
            Grant::Code {
                code,
                verifier,
                redirect_uri,
            } => call
                .grant_type(AUTHORIZATION_CODE)
                .code(code)
                .code_verifier(verifier.expose())
                .redirect_uri(redirect_uri),
            Grant::Device(code) => call.grant_type(DEVICE_CODE).device_code(code),
            Grant::Refresh(token) => call.grant_type(REFRESH_TOKEN).refresh_token(token.expose()),
        };
        let answer = call.send().await.map_err(|e| self.refusal(&e))?;
        let Some(access_token) = answer.access_token() else {
            return Err(Refusal::Failed(
                self.malformed("CreateToken", "no access token"),
            ));
        };
        Ok(Issued {
            access_token: Secret::new(access_token),
            expires_at: now + chrono::TimeDelta::seconds(answer.expires_in().max(0).into()),
            refresh_token: answer.refresh_token().map(Secret::new),
        })
    }

    fn refusal(
        &self,
        err: &SdkError<CreateTokenError, aws_sdk_ssooidc::config::http::HttpResponse>,
    ) -> Refusal {
        let SdkError::ServiceError(service) = err else {
            return Refusal::Failed(self.failed("CreateToken", err));
        };
        let e = service.err();
        let said = || one_line(e.message().or(e.code()).unwrap_or("refused"), SAID);
        match e {
            CreateTokenError::AuthorizationPendingException(_) => Refusal::Pending,
            CreateTokenError::SlowDownException(_) => Refusal::SlowDown,
            CreateTokenError::ExpiredTokenException(_) => Refusal::Expired,
            CreateTokenError::InvalidGrantException(_) => Refusal::InvalidGrant(said()),
            CreateTokenError::AccessDeniedException(_) => Refusal::Denied(said()),
            CreateTokenError::InvalidClientException(_) => Refusal::ClientRefused {
                code: "InvalidClientException",
                said: said(),
            },
            CreateTokenError::UnauthorizedClientException(_) => Refusal::ClientRefused {
                code: "UnauthorizedClientException",
                said: said(),
            },
            _ => Refusal::Failed(self.failed("CreateToken", err)),
        }
    }

    /// A failed call, one line: the service's error type and words, or why it was not reached.
    fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        operation: &'static str,
        err: &SdkError<E, aws_sdk_ssooidc::config::http::HttpResponse>,
    ) -> SsoError {
        match err {
            SdkError::ServiceError(service) => SsoError::Refused {
                operation,
                code: service.err().code().unwrap_or("an error").to_owned(),
                message: one_line(service.err().message().unwrap_or("no reason given"), SAID),
            },
            SdkError::ResponseError(_) => {
                self.malformed(operation, &one_line(&innermost(err), SAID))
            }
            _ => SsoError::Unreachable {
                region: self.region.clone(),
                why: one_line(&innermost(err), SAID),
            },
        }
    }

    fn malformed(&self, operation: &'static str, why: &str) -> SsoError {
        SsoError::Refused {
            operation,
            code: "MalformedResponse".into(),
            message: format!("SSO OIDC's answer could not be used: {why}"),
        }
    }
}

/// The scheme and authority SSO OIDC is reached at, as the SDK resolves it: a configured
/// endpoint (service-specific first) or the region's.
async fn base_url(sdk: &aws_config::SdkConfig, region: &str) -> String {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("SSO OIDC")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("every part given");
    let configured = sdk
        .service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_owned));
    let resolved = match Params::builder()
        .region(region)
        .set_endpoint(configured.clone())
        .build()
    {
        Ok(params) => aws_sdk_ssooidc::config::endpoint::DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .ok()
            .map(|e| e.url().to_owned()),
        Err(_) => None,
    };
    let url = resolved
        .or(configured)
        .unwrap_or_else(|| format!("https://oidc.{region}.amazonaws.com"));
    origin(&url)
}

/// `scheme://authority` of `url`: the authorize page is at its root whatever path an endpoint
/// has, as for the AWS CLI.
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        }
        None => url.trim_end_matches('/').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_origin_drops_any_path() {
        assert_eq!(origin("http://127.0.0.1:4000/x/y"), "http://127.0.0.1:4000");
        assert_eq!(
            origin("https://oidc.eu-west-1.amazonaws.com"),
            "https://oidc.eu-west-1.amazonaws.com"
        );
    }
}
