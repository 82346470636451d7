//! Console sign-in as a role (`fintors console`): the AWS federation endpoint turns a role
//! session into a sign-in token (`Action=getSigninToken`), and the sign-in URL
//! (`Action=login`) carries that token to the console. This follows the IAM User Guide's
//! "Enable custom identity broker access to the AWS console":
//! - the session is the role's cached one when it was assumed from long-term keys; otherwise
//!   the federation endpoint would refuse it (it was assumed with `DurationSeconds`), so the
//!   assumer makes one for the console ([`ConsoleSession`]);
//! - `SessionDuration` (900..=43200) is sent only with a session assumed from long-term keys:
//!   with a chained one the endpoint answers 400 (aws-vault#77, joshdk/aws-console#42), so
//!   fintors refuses it up front, in one line;
//! - the endpoint and the console follow the role ARN's partition, the console the role's
//!   region.
//!
//! The sign-in token opens the console as the role for 15 minutes: it and the URL holding it
//! are [`Secret`]s, never logged, and so is the session sent to get it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use super::assumer::ConsoleSession;
use super::{Attempt, RoleCache, StsError, one_line};
use crate::api::{CONSOLE_SESSION_SECONDS, ConsoleRequest, ConsoleUrl};
use crate::model::{Credentials, Region, Secret};

/// Longest wait for the federation endpoint.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The federation endpoint's answers are a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;
/// Where the console sends the user when the session ends: fintors has no sign-in page.
const ISSUER: &str = "fintors";

/// Why no sign-in URL could be made: one variant per class, each one line with the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("no credentials for {alias}: {error}")]
    NoCredentials { alias: String, error: StsError },
    #[error(
        "--duration needs a role assumed from long-term keys; {alias} is assumed from temporary \
         ones (SSO, MFA or a role): leave it out for a one-hour console session"
    )]
    DurationNeedsLongTermKeys { alias: String },
    #[error("--duration {0} is outside the console's 900..=43200 seconds")]
    DurationOutOfRange(u32),
    #[error("--destination {0:?} is neither an https:// URL nor a service name like s3 or ec2")]
    BadDestination(String),
    #[error(
        "no AWS console is known for partition {0:?}: pass --destination URL and set \
         FINTORS_FEDERATION_ENDPOINT"
    )]
    UnknownPartition(String),
    #[error("cannot reach the federation endpoint {endpoint}: {why}")]
    Unreachable { endpoint: String, why: String },
    #[error("the federation endpoint {endpoint} refused the sign-in ({status}): {answer}")]
    Refused {
        endpoint: String,
        status: u16,
        answer: String,
    },
    #[error("the federation endpoint {endpoint} answered without a SigninToken")]
    Malformed { endpoint: String },
}

impl ConsoleError {
    /// Whether the fault is the request's (400), the role's credentials' (503), or the
    /// federation endpoint's (502).
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            ConsoleError::DurationNeedsLongTermKeys { .. }
                | ConsoleError::DurationOutOfRange(_)
                | ConsoleError::BadDestination(_)
                | ConsoleError::UnknownPartition(_)
        )
    }
}

/// `FINTORS_FEDERATION_ENDPOINT`: the federation endpoint to use instead of the partition's,
/// for tests and partitions fintors does not know. Plain `http://` only on loopback, since the
/// role's session travels in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationEndpoint(String);

impl FederationEndpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("FINTORS_FEDERATION_ENDPOINT={url:?} {why}");
        let shape = "must be a URL like https://signin.aws.amazon.com/federation";
        let uri: hyper::Uri = url.parse().map_err(|_| bad(shape))?;
        let Some(authority) = uri.authority() else {
            return Err(bad(shape));
        };
        if authority.as_str().contains('@') {
            return Err(bad("must not carry a user name"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(bad(shape));
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") => {
                let host = authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err(bad("sends role sessions in clear text: use https://"));
                }
            }
            _ => return Err(bad("is not an https:// URL")),
        }
        Ok(FederationEndpoint(url.to_owned()))
    }

    /// A URL of the endpoint with a query to append to.
    fn query(&self) -> form_urlencoded::Serializer<'static, String> {
        let start = format!("{}?", self.0);
        let after = start.len();
        form_urlencoded::Serializer::for_suffix(start, after)
    }

    /// The partition's endpoint.
    fn of_partition(partition: &str) -> Result<Self, ConsoleError> {
        let host = match partition {
            "aws" => "signin.aws.amazon.com",
            "aws-cn" => "signin.amazonaws.cn",
            "aws-us-gov" => "signin.amazonaws-us-gov.com",
            other => return Err(ConsoleError::UnknownPartition(other.to_owned())),
        };
        Ok(FederationEndpoint(format!("https://{host}/federation")))
    }
}

/// Makes sign-in URLs; holds only the endpoint override: the HTTPS client is built per
/// sign-in, so an idle daemon keeps no TLS roots in memory.
#[derive(Debug, Clone, Default)]
pub struct Federation {
    endpoint: Option<FederationEndpoint>,
}

impl Federation {
    pub fn new(endpoint: Option<FederationEndpoint>) -> Self {
        Federation { endpoint }
    }

    /// A sign-in URL for `cache`'s role; `default_region` is the console's region when the role
    /// names none.
    pub async fn sign_in(
        &self,
        cache: &std::sync::Arc<RoleCache>,
        default_region: &Region,
        request: &ConsoleRequest,
    ) -> Result<ConsoleUrl, ConsoleError> {
        let role = cache.role();
        let alias = role.alias.to_string();
        if let Some(d) = request
            .duration
            .filter(|d| !CONSOLE_SESSION_SECONDS.contains(d))
        {
            return Err(ConsoleError::DurationOutOfRange(d));
        }
        let partition = role.arn.as_ref().map_or("aws", |arn| arn.partition());
        let region = console_region(partition, role.region.as_ref(), default_region);
        let destination = destination(partition, &region, request.destination.as_deref())?;
        let endpoint = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => FederationEndpoint::of_partition(partition)?,
        };
        let no_credentials = |error: StsError| ConsoleError::NoCredentials {
            alias: alias.clone(),
            error,
        };
        let session = match cache
            .assumer()
            .console_session(role)
            .await
            .map_err(no_credentials)?
        {
            ConsoleSession::Cached => {
                let issued = cache
                    .get(Attempt::Now)
                    .await
                    .map_err(|f| no_credentials(f.error.clone()))?;
                issued.credentials.clone()
            }
            ConsoleSession::Fresh(_) if request.duration.is_some() => {
                return Err(ConsoleError::DurationNeedsLongTermKeys { alias });
            }
            ConsoleSession::Fresh(credentials) => credentials,
        };
        let token = signin_token(&endpoint, &session, request.duration).await?;
        let url = endpoint
            .query()
            .append_pair("Action", "login")
            .append_pair("Issuer", ISSUER)
            .append_pair("Destination", &destination)
            .append_pair("SigninToken", token.expose())
            .finish();
        tracing::info!(role = %alias, %destination, "made a console sign-in URL");
        Ok(ConsoleUrl {
            url: Some(Secret::new(url)),
            handoff: None,
            destination,
            session_seconds: request.duration,
        })
    }
}

/// The console's region: the role's, else the instance's if it is in the role's partition,
/// else the partition's first (a China or GovCloud role on a machine set up for `aws`).
fn console_region(partition: &str, role: Option<&Region>, default: &Region) -> Region {
    if let Some(region) = role {
        return region.clone();
    }
    let (prefix, first) = match partition {
        "aws-cn" => ("cn-", "cn-north-1"),
        "aws-us-gov" => ("us-gov-", "us-gov-west-1"),
        _ => return default.clone(),
    };
    if default.as_str().starts_with(prefix) {
        default.clone()
    } else {
        Region::parse(first).expect("a region")
    }
}

/// Where the console opens: `requested` if it is a URL, a service's console if it names one,
/// else the console's home, in `region`.
fn destination(
    partition: &str,
    region: &Region,
    requested: Option<&str>,
) -> Result<String, ConsoleError> {
    if let Some(url) = requested.filter(|d| d.starts_with("https://")) {
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConsoleError::BadDestination(url.to_owned()));
        }
        return Ok(url.to_owned());
    }
    let service = match requested {
        None => "console",
        Some(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            s
        }
        Some(other) => return Err(ConsoleError::BadDestination(other.to_owned())),
    };
    let region = region.as_str();
    let console = match partition {
        "aws" => format!("https://{region}.console.aws.amazon.com"),
        "aws-cn" => "https://console.amazonaws.cn".to_owned(),
        "aws-us-gov" => "https://console.amazonaws-us-gov.com".to_owned(),
        other => return Err(ConsoleError::UnknownPartition(other.to_owned())),
    };
    Ok(format!("{console}/{service}/home?region={region}"))
}

/// The session as `getSigninToken` wants it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Session<'a> {
    session_id: &'a str,
    session_key: &'a str,
    session_token: &'a str,
}

#[derive(serde::Deserialize)]
struct SigninToken {
    #[serde(rename = "SigninToken")]
    token: Secret,
}

/// `GET endpoint?Action=getSigninToken[&SessionDuration=N]&Session=...`, as the IAM guide's
/// examples make it.
async fn signin_token(
    endpoint: &FederationEndpoint,
    session: &Credentials,
    duration: Option<u32>,
) -> Result<Secret, ConsoleError> {
    let json = serde_json::to_string(&Session {
        session_id: &session.access_key_id,
        session_key: session.secret_access_key.expose(),
        session_token: session.session_token.expose(),
    })
    .expect("serializes");
    let uri = {
        let mut query = endpoint.query();
        query.append_pair("Action", "getSigninToken");
        if let Some(d) = duration {
            query.append_pair("SessionDuration", &d.to_string());
        }
        query.append_pair("Session", &json).finish()
    };
    let unreachable = |why: String| ConsoleError::Unreachable {
        endpoint: endpoint.0.clone(),
        why,
    };
    let provider = || rustls::crypto::aws_lc_rs::default_provider();
    let builder = match hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider())
    {
        Ok(builder) => builder,
        // A clear-text override (loopback) needs no roots; HTTPS does.
        Err(_) if endpoint.0.starts_with("http://") => {
            let config = rustls::ClientConfig::builder_with_provider(provider().into())
                .with_safe_default_protocol_versions()
                .expect("the provider's defaults")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
        Err(e) => {
            return Err(unreachable(format!(
                "no TLS root certificates on this machine: {e}"
            )));
        }
    };
    let https = builder.https_or_http().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(https);
    let request = hyper::Request::get(uri)
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .map_err(|_| unreachable("not a URL fintors can send a request to".into()))?;
    let answer = tokio::time::timeout(TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| {
            // The innermost cause (DNS, refused, TLS); the URI, which holds the session, never.
            let mut deepest: &dyn std::error::Error = &e;
            while let Some(next) = deepest.source() {
                deepest = next;
            }
            unreachable(one_line(&deepest.to_string(), 200))
        })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok::<_, ConsoleError>((status, body))
    })
    .await
    .map_err(|_| unreachable(format!("no answer in {}s", TIMEOUT.as_secs())))??;
    let (status, body) = answer;
    if status != 200 {
        return Err(ConsoleError::Refused {
            endpoint: endpoint.0.clone(),
            status,
            answer: one_line(&String::from_utf8_lossy(&body), 160),
        });
    }
    serde_json::from_slice::<SigninToken>(&body)
        .map(|t| t.token)
        .map_err(|_| ConsoleError::Malformed {
            endpoint: endpoint.0.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(r: &str) -> Region {
        Region::parse(r).unwrap()
    }

    #[test]
    fn the_federation_endpoint_follows_the_partition() {
        for (partition, url) in [
            ("aws", "https://signin.aws.amazon.com/federation"),
            ("aws-cn", "https://signin.amazonaws.cn/federation"),
            (
                "aws-us-gov",
                "https://signin.amazonaws-us-gov.com/federation",
            ),
        ] {
            assert_eq!(FederationEndpoint::of_partition(partition).unwrap().0, url);
        }
        assert!(matches!(
            FederationEndpoint::of_partition("aws-iso"),
            Err(ConsoleError::UnknownPartition(_))
        ));
    }

    #[test]
    fn the_console_opens_in_the_roles_region_at_home_or_a_named_service() {
        let eu = region("eu-west-1");
        assert_eq!(
            destination("aws", &eu, None).unwrap(),
            "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
        );
        assert_eq!(
            destination("aws", &eu, Some("s3")).unwrap(),
            "https://eu-west-1.console.aws.amazon.com/s3/home?region=eu-west-1"
        );
        assert_eq!(
            destination("aws-cn", &region("cn-north-1"), None).unwrap(),
            "https://console.amazonaws.cn/console/home?region=cn-north-1"
        );
        assert_eq!(
            destination("aws-us-gov", &region("us-gov-west-1"), Some("ec2")).unwrap(),
            "https://console.amazonaws-us-gov.com/ec2/home?region=us-gov-west-1"
        );
        let url = "https://console.aws.amazon.com/cloudwatch/home#logs";
        assert_eq!(destination("aws", &eu, Some(url)).unwrap(), url);
    }

    #[test]
    fn a_role_without_a_region_opens_in_its_own_partition() {
        let us = region("us-east-1");
        assert_eq!(console_region("aws", None, &us), us);
        assert_eq!(
            console_region("aws-cn", None, &us),
            region("cn-north-1"),
            "not us-east-1 on the China console"
        );
        assert_eq!(
            console_region("aws-cn", None, &region("cn-northwest-1")),
            region("cn-northwest-1")
        );
        assert_eq!(
            console_region("aws-us-gov", None, &us),
            region("us-gov-west-1")
        );
        let eu = region("eu-west-1");
        assert_eq!(console_region("aws", Some(&eu), &us), eu);
    }

    #[test]
    fn a_destination_is_a_url_or_a_service_name_and_nothing_else() {
        let eu = region("eu-west-1");
        for bad in ["S3", "s3/../x", "http://example.com", "", "https://a b"] {
            assert!(
                matches!(
                    destination("aws", &eu, Some(bad)),
                    Err(ConsoleError::BadDestination(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_override_is_https_or_clear_text_on_loopback_only() {
        for good in [
            "https://signin.example.com/federation",
            "http://127.0.0.1:8080/federation",
            "http://[::1]:9/federation",
            "http://[::1]/federation",
            "http://localhost:8080/federation",
        ] {
            assert!(FederationEndpoint::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "http://signin.example.com/federation",
            "ftp://x",
            "https://",
            "https://x/federation?Action=login",
            // Loopback in looks only: a name that resolves anywhere, and user names before
            // the real host.
            "http://127.0.0.1.example.com/federation",
            "http://127.0.0.1@example.com/federation",
            "http://localhost:1@example.com/",
            "http://[::1]:80@example.com/",
            "https://a\tb/federation",
        ] {
            assert!(FederationEndpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_refusal_is_one_short_line() {
        let errors = [
            ConsoleError::DurationNeedsLongTermKeys {
                alias: "example".into(),
            },
            ConsoleError::DurationOutOfRange(60),
            ConsoleError::BadDestination("S3".into()),
            ConsoleError::UnknownPartition("aws-iso".into()),
        ];
        for e in errors {
            let line = e.to_string();
            assert!(line.len() <= 200 && !line.contains('\n'), "{line}");
            assert!(e.is_request_error());
        }
    }
}
