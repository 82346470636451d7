//! What STS's answers mean to fintors: its credentials in fintors's own type, and every failure
//! classified by the SDK error's type (never by its text), since the class and STS's code are
//! what IMDS clients see in the error document.

use std::error::Error as _;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::OPERATION_TIMEOUT;
use crate::credentials::{StsError, one_line};
use crate::model::{Credentials, Secret};

/// STS's credentials in fintors's own type; `operation` names the call in the error.
pub(crate) fn session_credentials(
    c: Option<&aws_sdk_sts::types::Credentials>,
    operation: &str,
) -> Result<Credentials, StsError> {
    let c = c.ok_or_else(|| {
        StsError::Malformed(format!("STS answered {operation} without credentials"))
    })?;
    let expiration =
        chrono::DateTime::from_timestamp(c.expiration().secs(), c.expiration().subsec_nanos())
            .ok_or_else(|| {
                StsError::Malformed(format!(
                    "STS returned an impossible expiration for {operation}"
                ))
            })?;
    Ok(Credentials {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: Secret::new(c.session_token()),
        expiration,
    })
}

pub(crate) use crate::model::text::{MAX_MESSAGE, innermost};

/// The endpoint STS clients made from `base` are given, as the SDK finds it
/// (`AWS_ENDPOINT_URL_STS`, the profile's `services` section, then `AWS_ENDPOINT_URL` or the
/// profile's `endpoint_url`), if any: `aws_sdk_sts::Config` has no getter for it.
pub(crate) fn endpoint_override(base: &aws_types::SdkConfig) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("STS")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("every field is set");
    base.service_config()
        .and_then(|config| config.load_config(key))
        .or_else(|| base.endpoint_url().map(str::to_owned))
}

/// Where `client` sends its calls: `endpoint_override` ([`endpoint_override`]), else its
/// region's regional endpoint. For an error that says what could not be reached.
pub(crate) fn endpoint(endpoint_override: Option<&str>, client: &aws_sdk_sts::Client) -> String {
    if let Some(url) = endpoint_override {
        return url.to_owned();
    }
    let region = client.config().region().map_or("us-east-1", |r| r.as_ref());
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{domain}")
}

/// Maps an SDK error to its class, by the error's type: STS's refusals keep STS's code and
/// message; a failure to load the base credentials is recognised by the `CredentialsError`
/// aws-config puts in the dispatch failure's source chain (aws-smithy-runtime turns an
/// identity resolver's error into `SdkError::DispatchFailure` before anything is sent).
/// `endpoint` ([`endpoint`]) is named when it could not be reached.
pub(crate) fn classify<E, R>(err: SdkError<E, R>, endpoint: &str) -> StsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    // The SDK's whole error, raw response included: for `-vv` only.
    tracing::trace!("STS call failed: {err:?}");
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match e.code() {
                Some(code) => StsError::refused(
                    code,
                    one_line(e.message().unwrap_or("(no message)"), MAX_MESSAGE),
                ),
                // Not STS speaking: a captive portal, a proxy's error page, something else.
                None => StsError::Malformed(
                    "the STS endpoint answered with something that is not an STS response (a \
                     proxy or captive portal?); check AWS_ENDPOINT_URL_STS and the proxy settings"
                        .into(),
                ),
            }
        }
        SdkError::TimeoutError(_) => StsError::Timeout(format!(
            "STS did not answer within {} s",
            OPERATION_TIMEOUT.as_secs()
        )),
        SdkError::ResponseError(_) => StsError::Malformed(format!(
            "STS sent a response fintors could not read: {}",
            innermost(&err)
        )),
        _ => match source_of::<CredentialsError>(&err) {
            // aws-config says only "not enabled" when neither file defines the profile.
            Some(e @ CredentialsError::CredentialsNotLoaded(_)) if e.source().is_none() => {
                StsError::NoBaseCredentials(
                    "the profile is in neither file, or holds no credentials".into(),
                )
            }
            Some(credentials) => StsError::NoBaseCredentials(innermost(credentials)),
            None => StsError::Unreachable(format!(
                "cannot reach STS at {endpoint}: {}",
                innermost(&err)
            )),
        },
    }
}

/// The first error of type `T` in `err`'s source chain, `err` included.
fn source_of<'e, T: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    //! The classification of STS's answers, replayed from STS's own error bodies through the
    //! real aws-sdk-sts client (its parsing, its error types), with no network.

    use aws_credential_types::provider::error::CredentialsError;
    use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

    use super::*;
    use crate::credentials::replay::{Replay, client, sts_error};

    #[derive(Debug)]
    struct NoCredentials(fn() -> CredentialsError);

    impl ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err((self.0)()))
        }
    }

    async fn assume(client: aws_sdk_sts::Client) -> StsError {
        client
            .assume_role()
            .role_arn("arn:aws:iam::123456789012:role/example")
            .role_session_name("test")
            .send()
            .await
            .map_err(|e| classify(e, "https://sts.us-east-1.amazonaws.com"))
            .expect_err("the replay is an error")
    }

    async fn answered(status: u16, body: impl Into<String>) -> StsError {
        assume(client(Replay::answering(status, body), None)).await
    }

    #[tokio::test]
    async fn throttling_keeps_stss_code_and_message() {
        let e = answered(400, sts_error("Throttling", "Rate exceeded")).await;
        assert_eq!(e, StsError::refused("Throttling", "Rate exceeded"));
    }

    #[tokio::test]
    async fn access_denied_keeps_stss_code_and_message() {
        let message = "User: arn:aws:iam::123456789012:user/me is not authorized to perform: \
                       sts:AssumeRole on resource: arn:aws:iam::123456789012:role/example";
        let e = answered(403, sts_error("AccessDenied", message)).await;
        assert_eq!(e, StsError::refused("AccessDenied", message));
    }

    #[tokio::test]
    async fn expired_base_credentials_are_stss_expired_token() {
        let e = answered(
            403,
            sts_error(
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
        )
        .await;
        assert_eq!(e.code(), "ExpiredToken");
    }

    #[tokio::test]
    async fn unknown_base_keys_are_stss_invalid_client_token_id() {
        let e = answered(
            403,
            sts_error(
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
        )
        .await;
        assert_eq!(e.code(), "InvalidClientTokenId");
    }

    #[tokio::test]
    async fn a_disabled_region_is_stss_region_disabled() {
        let e = answered(
            403,
            sts_error(
                "RegionDisabledException",
                "STS is not activated in this region for account:123456789012.",
            ),
        )
        .await;
        assert_eq!(e.code(), "RegionDisabledException");
    }

    #[tokio::test]
    async fn a_page_that_is_not_sts_is_a_malformed_response() {
        for (status, body) in [
            (200, "<html><body>Welcome to the hotel wifi</body></html>"),
            (502, "<html><body>Bad Gateway</body></html>"),
        ] {
            let e = answered(status, body).await;
            assert!(matches!(e, StsError::Malformed(_)), "{status}: {e:?}");
            assert!(!e.message().contains("<html>"), "{e}");
        }
    }

    #[tokio::test]
    async fn no_answer_in_time_is_a_timeout() {
        let e = assume(client(Replay::never(), None)).await;
        assert!(matches!(e, StsError::Timeout(_)), "{e:?}");
    }

    #[tokio::test]
    async fn base_credentials_that_cannot_be_loaded_are_no_base_credentials_not_unreachable() {
        let failing = SharedCredentialsProvider::new(NoCredentials(|| {
            CredentialsError::provider_error("the SSO token has expired and cannot be refreshed")
        }));
        let e = assume(client(Replay::answering(200, ""), Some(failing))).await;
        assert_eq!(
            e,
            StsError::NoBaseCredentials("the SSO token has expired and cannot be refreshed".into())
        );
        let nowhere =
            SharedCredentialsProvider::new(NoCredentials(CredentialsError::not_loaded_no_source));
        let e = assume(client(Replay::answering(200, ""), Some(nowhere))).await;
        assert!(
            e.message().contains("neither file"),
            "{e}: the SDK's \"not enabled\" says nothing"
        );
    }
}
