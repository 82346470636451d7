//! Talking to a running daemon, for the client subcommands: finding it, and one HTTP request at a
//! time over plain HTTP/1.1.
//!
//! The daemon is found via `--endpoint`, then `FINTORS_ENDPOINT` (both through clap), then the
//! config file's `addr`/`port`, then the default `http://127.0.0.1:16925`, where a daemon started
//! with no flags listens. A daemon that is
//! not there is one error, [`ClientError::NotRunning`], which the commands turn into one line and
//! exit code 2, never a stack of errors.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::args::ClientArgs;
use crate::config::{Config, DEFAULT_ADDR, DEFAULT_PORT, expand_tilde};
use crate::ec2::{TOKEN_HEADER, TOKEN_PATH, TTL_HEADER};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Switching roles waits for STS, which fintors itself gives 20 seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the daemon listens: `http://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "fintors is not running at {endpoint}: start it with `fintors serve` \
         (or point --endpoint / FINTORS_ENDPOINT at it)"
    )]
    NotRunning { endpoint: Endpoint },
    #[error("invalid endpoint {0:?}: expected http://HOST[:PORT], e.g. http://127.0.0.1:16925")]
    BadEndpoint(String),
    #[error("talking to fintors at {endpoint}: {why}")]
    Http { endpoint: Endpoint, why: String },
    #[error("{endpoint} is not known to be your fintors: {why}")]
    Impostor { endpoint: Endpoint, why: Unverified },
}

/// Why the server at an endpoint of this machine is not taken for the user's own fintors.
#[derive(Debug, thiserror::Error)]
pub enum Unverified {
    #[error(
        "it runs as uid {0} (stop it, use another --port, or trust it with FINTORS_DAEMON_UID={0})"
    )]
    OtherUser(u32),
    #[error(
        "a redirected metadata address hides who serves it (set FINTORS_ENDPOINT to the \
         daemon's own address)"
    )]
    ThroughRedirect,
    #[error("no socket of its side of the connection can be found")]
    NotFound,
    #[error("its owner cannot be read ({0})")]
    Unreadable(std::io::Error),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.authority())
    }
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadEndpoint(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                (host, port.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }

    /// The endpoint to use, in the documented order of precedence.
    pub fn discover(args: &ClientArgs) -> Result<Self, ClientError> {
        if let Some(url) = &args.endpoint {
            return Endpoint::parse(url);
        }
        let config = Config::load(&expand_tilde(&args.config)).ok();
        let addr = config.as_ref().and_then(|c| c.addr).unwrap_or(DEFAULT_ADDR);
        // A daemon listening on every address is reached on loopback.
        let addr = if addr.is_unspecified() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            addr
        };
        let port = config.as_ref().and_then(|c| c.port).unwrap_or(DEFAULT_PORT);
        Ok(Endpoint {
            host: addr.to_string(),
            port,
        })
    }

    /// The endpoint as SDKs should be given it (`AWS_EC2_METADATA_SERVICE_ENDPOINT`): with the
    /// trailing `/` that AWS CLI v2.9 and botocore of its age need, since they append
    /// `latest/api/token` with no separator (Java v2, which adds its own `/`, sends `//latest/...`,
    /// which the daemon reads as `/latest/...`).
    pub fn imds_url(&self) -> String {
        format!("{self}/")
    }

    /// `host:port` as it goes in the `Host` header and the URL (port 80 left implicit).
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn http_error(&self, why: impl std::fmt::Display) -> ClientError {
        ClientError::Http {
            endpoint: self.clone(),
            why: why.to_string(),
        }
    }

    /// Sends one request; `body`, if any, is JSON. A 401 means the daemon runs with
    /// `--imdsv2-required`, where its API too needs an IMDS session: then it is sent again
    /// within one.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let answer = self.send(method.clone(), path, body.clone(), None).await?;
        if answer.0 == StatusCode::UNAUTHORIZED {
            return self.request_in_session(method, path, body).await;
        }
        Ok(answer)
    }

    /// A GET with `Authorization: token`, as the SDKs send the container endpoint's token.
    pub async fn get_authorized(
        &self,
        path: &str,
        token: &str,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(Method::GET, path, None, Some(("authorization", token)))
            .await
    }

    /// A request within an IMDSv2 session: fetches a short-lived token first, so the request
    /// works whether or not the daemon runs with `--imdsv2-required`.
    pub async fn request_in_session(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let (status, token) = self
            .send(Method::PUT, TOKEN_PATH, None, Some((TTL_HEADER, "60")))
            .await?;
        if status != StatusCode::OK {
            return Err(self.http_error(format!("no IMDS session token: HTTP {status}")));
        }
        let token = String::from_utf8_lossy(&token).into_owned();
        self.send(method, path, body, Some((TOKEN_HEADER, &token)))
            .await
    }

    /// Whether this endpoint is a loopback address, the only kind a container token is sent to.
    pub fn is_loopback(&self) -> bool {
        self.host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
    }

    /// The mirror of the daemon's owner check: a server on this machine must run as this user,
    /// root, or the uid in `FINTORS_DAEMON_UID` (a daemon of another user that names this one in
    /// its allow_users), before it is told anything or believed. Whoever binds the daemon's port
    /// while it is down would otherwise be sent tokens and handed the user's role switches. The
    /// server's socket has its listener's owner even before it is accepted; a closed one (a
    /// minisock) is never established, so it never passes. A daemon on another host cannot be
    /// asked.
    #[cfg(target_os = "linux")]
    async fn verify_server(&self, stream: &TcpStream) -> Result<(), ClientError> {
        use crate::platform::sockets;
        let impostor = |why| ClientError::Impostor {
            endpoint: self.clone(),
            why,
        };
        let (local, server) = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(local), Ok(server)) => (local, server),
            (Err(e), _) | (_, Err(e)) => return Err(impostor(Unverified::Unreadable(e))),
        };
        if !server.ip().to_canonical().is_loopback() && !sockets::is_this_hosts(server) {
            return Ok(());
        }
        let me = crate::platform::users::effective_uid();
        let trusted = std::env::var("FINTORS_DAEMON_UID")
            .ok()
            .and_then(|uid| uid.trim().parse::<u32>().ok());
        // Right after connect the server's side may still be half-open, or wait for room in a
        // full accept queue: ask again for a second at most.
        for attempt in 0..100 {
            match sockets::find(server, local) {
                Ok(Some(socket)) => match socket.serving_user() {
                    Some(uid) if uid == me || uid == 0 || Some(uid) == trusted => return Ok(()),
                    Some(uid) => return Err(impostor(Unverified::OtherUser(uid))),
                    None => {}
                },
                // Through `network up`'s redirect the server's socket has other addresses.
                Ok(None) if is_metadata_address(server) => {
                    return Err(impostor(Unverified::ThroughRedirect));
                }
                Ok(None) => {}
                Err(e) => return Err(impostor(Unverified::Unreadable(e))),
            }
            tokio::time::sleep(Duration::from_millis(2 + attempt / 10)).await;
        }
        Err(impostor(Unverified::NotFound))
    }

    #[cfg(not(target_os = "linux"))]
    async fn verify_server(&self, _: &TcpStream) -> Result<(), ClientError> {
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        extra: Option<(&'static str, &str)>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let not_running = || ClientError::NotRunning {
            endpoint: self.clone(),
        };
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| not_running())?
        .map_err(|_| not_running())?;
        self.verify_server(&stream).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.http_error(e))?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.authority())
            .header(
                header::USER_AGENT,
                concat!("fintors/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some((name, value)) = extra {
            request = request.header(header::HeaderName::from_static(name), value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.http_error(e))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
            .await
            .map_err(|_| self.http_error("no answer within 30 s"))?
            .map_err(|e| self.http_error(e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_error(e))?
            .to_bytes();
        Ok((status, body))
    }
}

/// 169.254.169.254 or fd00:ec2::254, on port 80: where `network up` redirects to the daemon.
#[cfg(target_os = "linux")]
fn is_metadata_address(addr: std::net::SocketAddr) -> bool {
    let metadata: [std::net::IpAddr; 2] = [
        std::net::Ipv4Addr::new(169, 254, 169, 254).into(),
        std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254).into(),
    ];
    addr.port() == 80 && metadata.contains(&addr.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    #[test]
    fn parses_host_and_port() {
        assert_eq!(
            endpoint("http://127.0.0.1:16925").to_string(),
            "http://127.0.0.1:16925"
        );
        assert_eq!(endpoint("http://127.0.0.1:16925/").port, 16925);
        assert_eq!(endpoint("http://169.254.169.254").port, 80);
        assert_eq!(endpoint("http://[::1]:8080").host, "::1");
        assert_eq!(
            endpoint("http://[::1]:8080").to_string(),
            "http://[::1]:8080"
        );
        assert_eq!(endpoint("http://localhost:1").authority(), "localhost:1");
    }

    #[test]
    fn the_url_for_sdks_ends_with_a_slash() {
        assert_eq!(
            endpoint("http://127.0.0.1:16925").imds_url(),
            "http://127.0.0.1:16925/"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:16925/").imds_url(),
            "http://127.0.0.1:16925/"
        );
    }

    #[test]
    fn rejects_what_is_not_a_plain_http_endpoint() {
        for url in [
            "https://x:1",
            "127.0.0.1:16925",
            "http://",
            "http://h:port",
            "http://h:1/path",
        ] {
            assert!(Endpoint::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn explicit_endpoint_wins_over_config() {
        let args = ClientArgs {
            endpoint: Some("http://127.0.0.9:9".into()),
            config: "/nonexistent".into(),
            state_dir: None,
        };
        assert_eq!(
            Endpoint::discover(&args).unwrap(),
            endpoint("http://127.0.0.9:9")
        );
    }

    #[test]
    fn config_addr_and_port_come_next_then_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fintorc");
        std::fs::write(
            &path,
            r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a"}, "addr": "0.0.0.0", "port": 1234}"#,
        )
        .unwrap();
        let args = ClientArgs {
            endpoint: None,
            config: path.to_str().unwrap().into(),
            state_dir: None,
        };
        assert_eq!(
            Endpoint::discover(&args).unwrap(),
            endpoint("http://127.0.0.1:1234")
        );
        let args = ClientArgs {
            endpoint: None,
            config: "/nonexistent".into(),
            state_dir: None,
        };
        assert_eq!(
            Endpoint::discover(&args).unwrap(),
            endpoint("http://127.0.0.1:16925")
        );
    }
}
