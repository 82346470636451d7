//! Scriptable servers on 127.0.0.1 standing in for AWS endpoints: [`FakeServer`] answers what
//! its handler says and records every request; [`FakeSts`] speaks STS's query protocol on top of
//! it, for what an emulator cannot do (scripted failures, stalls, a record of who signed what).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a [`FakeServer`] received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, as sent (the fakes' clients send plain names and digits).
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
}

/// A handler's status that makes a fake server close the connection without answering.
pub const HANG_UP: u16 = 0;

type Handler = dyn Fn(&Request) -> (u16, &'static str, String) + Send + Sync;

/// A scriptable HTTP server on 127.0.0.1 standing in for an AWS endpoint (STS, IAM Identity
/// Center, SSO OIDC, the federation endpoint): it answers what the handler says (status, content
/// type, body; for a 3xx status, the body is the `Location`) and records every request, in
/// order.
pub struct FakeServer {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    pub fn start(
        handler: impl Fn(&Request) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer::dated(chrono::Duration::zero(), handler)
    }

    /// [`FakeServer::start`], its answers' `Date` header `offset` from this machine's clock (a
    /// server whose clock, or ours, is off).
    pub fn dated(
        offset: chrono::Duration,
        handler: impl Fn(&Request) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let record = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (handler, record) = (handler.clone(), record.clone());
                // A thread per request, so a handler that stalls one does not stall the others.
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    record.lock().unwrap().push(request.clone());
                    let (status, content_type, body) = handler(&request);
                    if status == HANG_UP {
                        return;
                    }
                    // Dated, as every AWS endpoint's answers are.
                    let date = (chrono::Utc::now() + offset).format("%a, %d %b %Y %H:%M:%S GMT");
                    // A redirect's body is where it goes.
                    let reply = if (300..400).contains(&status) {
                        format!(
                            "HTTP/1.1 {status} X\r\nDate: {date}\r\nLocation: {body}\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                    } else {
                        format!(
                            "HTTP/1.1 {status} X\r\nDate: {date}\r\n\
                             Content-Type: {content_type}\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        FakeServer { url, requests }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("a loopback address")
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    Some(Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One request a [`FakeSts`] received.
#[derive(Debug, Clone)]
pub struct StsCall {
    /// The form body's `Action`, e.g. `AssumeRole`.
    pub action: String,
    /// The access key id that signed the request (from the SigV4 `Credential=`).
    pub access_key: String,
    pub body: String,
}

impl StsCall {
    /// The call a request to STS makes.
    pub fn of(request: &Request) -> StsCall {
        let access_key = request
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
            .to_owned();
        let action = request
            .body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("")
            .to_owned();
        StsCall {
            action,
            access_key,
            body: request.body.clone(),
        }
    }

    /// The name of the role an AssumeRole asks for (`dev` for `...:role/dev`).
    pub fn role_name(&self) -> Option<&str> {
        let arn = self
            .body
            .split('&')
            .find_map(|kv| kv.strip_prefix("RoleArn="))?;
        arn.rsplit("%2F").next()
    }
}

/// A fake STS endpoint for what the emulator cannot do: scripted failures (AccessDenied), and a
/// record of who called what, in order (GetSessionToken before AssumeRole, signed by whom).
pub struct FakeSts {
    server: FakeServer,
    pub url: String,
}

impl FakeSts {
    pub fn start(handler: impl Fn(&StsCall) -> (u16, String) + Send + Sync + 'static) -> FakeSts {
        FakeSts::dated(chrono::Duration::zero(), handler)
    }

    /// [`FakeSts::start`], its answers dated `offset` from this machine's clock.
    pub fn dated(
        offset: chrono::Duration,
        handler: impl Fn(&StsCall) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeSts {
        let server = FakeServer::dated(offset, move |request| {
            let (status, body) = handler(&StsCall::of(request));
            (status, "text/xml", body)
        });
        FakeSts {
            url: server.url.clone(),
            server,
        }
    }

    /// STS's own AccessDenied answer.
    pub fn access_denied() -> FakeSts {
        FakeSts::start(|_| {
            sts_error(
                403,
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/me is not authorized to perform: \
                 sts:AssumeRole on resource: arn:aws:iam::123456789012:role/example",
            )
        })
    }

    /// Answers GetSessionToken and AssumeRole with fresh credentials whose key id says which call
    /// made them (`ASIASESSION...`, `ASIAROLE...`).
    pub fn issuing() -> FakeSts {
        let n = std::sync::atomic::AtomicU32::new(0);
        FakeSts::start(move |call| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            issued(call, n, chrono::Duration::hours(1))
        })
    }

    pub fn calls(&self) -> Vec<StsCall> {
        self.server.requests().iter().map(StsCall::of).collect()
    }

    pub fn request_count(&self) -> u32 {
        self.server.requests().len() as u32
    }
}

/// STS's answer to `call` (GetSessionToken or AssumeRole): credentials numbered `n` that live for
/// `lifetime`, with key ids saying which call made them (`ASIASESSION...`, `ASIAROLE...`).
pub fn issued(call: &StsCall, n: u32, lifetime: chrono::Duration) -> (u16, String) {
    let kind = match call.action.as_str() {
        "GetSessionToken" => "SESSION",
        "AssumeRole" => "ROLE",
        other => return sts_error(400, "InvalidAction", other),
    };
    let credentials = Issued {
        access_key_id: &format!("ASIA{kind}{n:08}"),
        secret_access_key: &format!("secret{kind}{n:08}"),
        session_token: &format!("token{kind}{n:08}"),
        expiration: chrono::Utc::now() + lifetime,
    };
    (200, credentials.response(&call.action, n))
}

/// Credentials as an STS response carries them.
pub struct Issued<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: &'a str,
    pub expiration: chrono::DateTime<chrono::Utc>,
}

impl Issued<'_> {
    /// STS's answer to `action` (`AssumeRole` or `GetSessionToken`) with these credentials.
    pub fn response(&self, action: &str, request_id: u32) -> String {
        let user = if action == "AssumeRole" {
            "<AssumedRoleUser><AssumedRoleId>AROA:x</AssumedRoleId>\
             <Arn>arn:aws:sts::123456789012:assumed-role/r/x</Arn></AssumedRoleUser>"
        } else {
            ""
        };
        format!(
            "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
             <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>{user}\
             </{action}Result><ResponseMetadata><RequestId>{request_id}</RequestId>\
             </ResponseMetadata></{action}Response>",
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            self.expiration.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// An STS error response, as STS words them.
pub fn sts_error(status: u16, code: &str, message: &str) -> (u16, String) {
    (
        status,
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>1</RequestId></ErrorResponse>"
        ),
    )
}
