//! For the engine's unit tests: a real aws-sdk-sts client whose "network" answers every request
//! with one recorded STS response, so STS's own bodies go through the SDK's parsing and error
//! types with no socket.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::{BehaviorVersion, Region, retry::RetryConfig};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_types::body::SdkBody;

/// Answers every request with one recorded response, or never.
#[derive(Debug, Clone)]
pub struct Replay(Option<(u16, String)>);

impl Replay {
    pub fn answering(status: u16, body: impl Into<String>) -> Self {
        Replay(Some((status, body.into())))
    }

    pub fn never() -> Self {
        Replay(None)
    }
}

impl HttpConnector for Replay {
    fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
        match &self.0 {
            Some((status, body)) => HttpConnectorFuture::ready(Ok(HttpResponse::new(
                (*status).try_into().expect("a status"),
                SdkBody::from(body.clone()),
            ))),
            None => HttpConnectorFuture::new(std::future::pending()),
        }
    }
}

/// An STS client over `replay`, signing with `credentials` (test keys if `None`), with no
/// retries and a 200 ms operation timeout.
pub fn client(
    replay: Replay,
    credentials: Option<SharedCredentialsProvider>,
) -> aws_sdk_sts::Client {
    let connector = SharedHttpConnector::new(replay);
    let credentials = credentials.unwrap_or_else(|| {
        SharedCredentialsProvider::new(aws_credential_types::Credentials::for_tests())
    });
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .http_client(http_client_fn(move |_, _| connector.clone()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(200))
                .build(),
        )
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// STS's error body, as STS writes it.
pub fn sts_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
         <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  \
         </Error>\n  <RequestId>9e5b2c1e-6f0b-4a1e-8d3c-1f2e3d4c5b6a</RequestId>\n\
         </ErrorResponse>\n"
    )
}

/// STS's answer to GetSessionToken: a session that expires at `expiration`.
pub fn session_token_response(expiration: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<GetSessionTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
         <GetSessionTokenResult>\n    <Credentials>\n      \
         <AccessKeyId>ASIAMFASESSION000001</AccessKeyId>\n      \
         <SecretAccessKey>mfa-session-secret</SecretAccessKey>\n      \
         <SessionToken>mfa-session-token</SessionToken>\n      \
         <Expiration>{}</Expiration>\n    </Credentials>\n  </GetSessionTokenResult>\n  \
         <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>\n\
         </GetSessionTokenResponse>\n",
        crate::model::time::format(expiration)
    )
}
