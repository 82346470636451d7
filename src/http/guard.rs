//! Who may talk to fintors: the checks that keep credentials out of other hosts' and web pages'
//! reach, applied to every route before anything else runs.
//!
//! Three independent checks. The peer must be this machine (loopback, or the bound link-local
//! address when fintors listens on 169.254.169.254 itself) unless `--allow-remote` is given: a
//! neighbour on the LAN must not read credentials. The request must not come from a browser:
//! SDKs, the CLI and curl never send `Origin` or `Sec-Fetch-*`, browsers always do, so a page
//! that makes the browser send a cross-origin GET gets nothing to probe or time. And the
//! authority the request names (its absolute-form target's, else its one `Host` header, RFC 9112
//! §3.2) must be the metadata service: a DNS-rebinding web page reaches the daemon under its own
//! host name, so refusing unknown names is what stops a browser from reading credentials as
//! same-origin.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::{self, HeaderName, HeaderValue};

use super::throttle::{self, Throttle};
use crate::ec2::CONTAINER_ADDR;

/// The addresses real clients use for IMDS; a browser sends these as `Host` only for a page whose
/// origin is the metadata service itself, so they are always safe to accept.
const METADATA_HOSTS: [&str; 4] = [
    "169.254.169.254",
    "169.254.169.254:80",
    "[fd00:ec2::254]",
    "[fd00:ec2::254]:80",
];

/// Source addresses of local clients once `fintors network up` has put the metadata address on lo.
const METADATA_PEERS: [IpAddr; 2] = [
    IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

#[derive(Debug)]
pub struct Guard {
    allowed_hosts: Vec<String>,
    bound: SocketAddr,
    allow_remote: bool,
}

impl Guard {
    pub fn new(bound: SocketAddr, allow_remote: bool) -> Self {
        let port = bound.port();
        let ip = match bound.ip() {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        // The names clients use most come first: every request is checked against the list.
        let mut allowed_hosts = vec![format!("{ip}:{port}"), format!("127.0.0.1:{port}")];
        allowed_hosts.extend(METADATA_HOSTS.iter().map(|h| h.to_string()));
        allowed_hosts.extend([
            ip.clone(),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]);
        allowed_hosts.dedup();
        if port == 80 {
            allowed_hosts.extend(["localhost".into(), "127.0.0.1".into(), "[::1]".into()]);
        }
        Guard {
            allowed_hosts,
            bound,
            allow_remote,
        }
    }

    /// The container endpoint's guard. It listens on 127.0.0.1, where the kernel delivers
    /// nothing from another host, and what comes from a container bridge got there only through
    /// the redirect `fintors network up --containers` installs (its guard rule drops the rest), so
    /// every peer that reaches it is this machine or one of its containers: all are let through
    /// to the token check, which every request must pass. Containers name it as ECS's address.
    pub fn for_containers(bound: SocketAddr) -> Self {
        let mut guard = Guard::new(bound, true);
        guard
            .allowed_hosts
            .extend([CONTAINER_ADDR.to_owned(), format!("{CONTAINER_ADDR}:80")]);
        guard
    }

    pub fn host_allowed(&self, host: &str) -> bool {
        // Clients send the names as listed; the exact comparison answers them at once.
        if self.allowed_hosts.iter().any(|h| h == host)
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
        {
            return true;
        }
        // Listening on every address: any IP literal with our port is fine, because a rebinding
        // attack always arrives under a DNS name.
        self.bound.ip().is_unspecified() && is_ip_literal_with_port(host, self.bound.port())
    }

    pub fn peer_allowed(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.allow_remote
            || peer.is_loopback()
            || peer == self.bound.ip().to_canonical()
            // With the address on lo and port 80 redirected to a loopback listener, local
            // clients arrive from 169.254.169.254 itself. A remote host could only forge that
            // source blindly: the answer goes to the local address, never back to it.
            || METADATA_PEERS.contains(&peer)
    }
}

fn is_ip_literal_with_port(host: &str, port: u16) -> bool {
    match host.parse::<SocketAddr>() {
        Ok(sa) => sa.port() == port,
        Err(_) => false,
    }
}

/// Why the guard turned a request away. Each listener answers it with a 403 in its own format
/// (IMDS text, the container endpoint's and the admin API's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    OtherHost,
    UnknownHostHeader,
    /// `Origin`, or `Sec-Fetch-Site` other than `none`: a web page's request.
    FromBrowser,
    /// Two `Host` headers (or none): a malformed request, RFC 9112 §3.2.
    BadHostHeader,
    /// The connection comes from a process of another local user ([`super::owner`]).
    OtherUser,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::OtherHost => "requests from other hosts are refused",
            Refusal::UnknownHostHeader => "the Host header does not name this metadata service",
            Refusal::FromBrowser => "requests from web browsers are refused",
            Refusal::BadHostHeader => "a request needs exactly one Host header",
            Refusal::OtherUser => {
                "connections from other users of this machine are refused (see allow_users)"
            }
        }
    }

    /// 400 for a malformed request, as RFC 9112 asks; 403 for every other refusal.
    pub fn status(self) -> axum::http::StatusCode {
        match self {
            Refusal::BadHostHeader => axum::http::StatusCode::BAD_REQUEST,
            _ => axum::http::StatusCode::FORBIDDEN,
        }
    }
}

impl Guard {
    /// Lets the request through, or says why not.
    pub fn admit<B>(
        &self,
        peer: SocketAddr,
        request: &axum::http::Request<B>,
    ) -> Result<(), Refusal> {
        let refusal = self.check(peer, request);
        static OTHER_HOST: Throttle = Throttle::new();
        static UNKNOWN_HOST: Throttle = Throttle::new();
        static BROWSER: Throttle = Throttle::new();
        // One line per cause per interval: a page or a scanner can make thousands a second.
        match refusal {
            Err(Refusal::OtherHost) => {
                if let Some(unsaid) = OTHER_HOST.due() {
                    tracing::warn!(
                        "refused a request from another host, {peer} (use --allow-remote to \
                         permit){}",
                        throttle::more(unsaid)
                    );
                }
            }
            Err(Refusal::UnknownHostHeader) => {
                if let Some(unsaid) = UNKNOWN_HOST.due() {
                    tracing::warn!(
                        "refused a request from {peer} for an unknown Host, {:?} (DNS \
                         rebinding?){}",
                        authority(request, &Seen::in_headers(request.headers()))
                            .ok()
                            .flatten()
                            .unwrap_or("<none>"),
                        throttle::more(unsaid)
                    );
                }
            }
            Err(Refusal::FromBrowser) => {
                if let Some(unsaid) = BROWSER.due() {
                    tracing::warn!(
                        "refused a request from a web browser at {peer}, origin {:?}{}",
                        header(request, header::ORIGIN).unwrap_or("<none>"),
                        throttle::more(unsaid)
                    );
                }
            }
            Err(Refusal::BadHostHeader) => {
                tracing::debug!(%peer, "refused a request without exactly one Host header")
            }
            // Logged once per connection, by the listener.
            Err(Refusal::OtherUser) => {}
            Ok(()) => {}
        }
        refusal
    }

    /// [`Guard::admit`] without the log line, for a fast path that leaves refusals to the
    /// regular one.
    pub fn check<B>(
        &self,
        peer: SocketAddr,
        request: &axum::http::Request<B>,
    ) -> Result<(), Refusal> {
        if !self.peer_allowed(peer.ip()) {
            return Err(Refusal::OtherHost);
        }
        let seen = Seen::in_headers(request.headers());
        if seen.browser {
            return Err(Refusal::FromBrowser);
        }
        match authority(request, &seen)? {
            Some(h) if self.host_allowed(h) => Ok(()),
            _ => Err(Refusal::UnknownHostHeader),
        }
    }
}

/// What the guard reads of a request's headers, found in one pass over them. Looked up one
/// name at a time, each name was hashed and probed for, on every request: ~240 of the ~600
/// instructions the guard cost a cached credential GET (callgrind).
struct Seen<'a> {
    /// What browsers send and no SDK does: `Origin` (on every cross-origin request, and on
    /// same-origin ones but GET and HEAD), or a `Sec-Fetch-Site` other than `none` (which is
    /// sent only for a request the user typed or bookmarked, no page's doing). Every
    /// `Sec-Fetch-Site` counts, not only the first: a second one saying `cross-site` is still
    /// a page's request.
    browser: bool,
    /// The first `Host` header, and how many there are.
    host: Option<&'a HeaderValue>,
    hosts: usize,
}

impl<'a> Seen<'a> {
    fn in_headers(headers: &'a HeaderMap) -> Self {
        let mut seen = Seen {
            browser: false,
            host: None,
            hosts: 0,
        };
        // Every value, repeated names included.
        for (name, value) in headers {
            if name == header::HOST {
                seen.hosts += 1;
                seen.host.get_or_insert(value);
            } else if name == header::ORIGIN
                || (name == SEC_FETCH_SITE && value.as_bytes() != b"none")
            {
                seen.browser = true;
            }
        }
        seen
    }
}

/// Not in `http`'s standard names, so compared by its bytes.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The authority the request is for: an absolute-form target's own (whose `Host` header a
/// server must ignore, RFC 9112 §3.2.2), else the one `Host` header's. None, or two, is a
/// malformed request (400, RFC 9112 §3.2).
fn authority<'a, B>(
    request: &'a axum::http::Request<B>,
    seen: &Seen<'a>,
) -> Result<Option<&'a str>, Refusal> {
    if seen.hosts > 1 {
        return Err(Refusal::BadHostHeader);
    }
    if let Some(target) = request.uri().authority() {
        return Ok(Some(target.as_str()));
    }
    match seen.host {
        Some(host) => Ok(host.to_str().ok()),
        None => Err(Refusal::BadHostHeader),
    }
}

fn header<B>(request: &axum::http::Request<B>, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|h| h.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(addr: &str, allow_remote: bool) -> Guard {
        Guard::new(addr.parse().unwrap(), allow_remote)
    }

    fn request(target: &str, headers: &[(&str, &str)]) -> axum::http::Request<()> {
        let mut builder = axum::http::Request::get(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    const LOCAL: &str = "127.0.0.1:40000";

    fn check(target: &str, headers: &[(&str, &str)]) -> Result<(), Refusal> {
        guard("127.0.0.1:16925", false).check(LOCAL.parse().unwrap(), &request(target, headers))
    }

    #[test]
    fn an_sdk_request_names_the_service_and_nothing_a_browser_sends() {
        assert_eq!(check("/latest/", &[("Host", "169.254.169.254")]), Ok(()));
        assert_eq!(
            check(
                "/latest/",
                &[("Host", "169.254.169.254"), ("Sec-Fetch-Site", "none")]
            ),
            Ok(())
        );
    }

    #[test]
    fn a_second_sec_fetch_site_is_judged_too() {
        let mut request = request("/roles", &[("Host", "127.0.0.1:16925")]);
        for site in ["none", "cross-site"] {
            request
                .headers_mut()
                .append("sec-fetch-site", site.parse().unwrap());
        }
        let verdict = guard("127.0.0.1:16925", false).check(LOCAL.parse().unwrap(), &request);
        assert_eq!(verdict, Err(Refusal::FromBrowser));
    }

    #[test]
    fn a_request_without_host_is_malformed() {
        assert_eq!(check("/roles", &[]), Err(Refusal::BadHostHeader));
        assert_eq!(Refusal::BadHostHeader.status(), 400);
    }

    #[test]
    fn a_request_with_an_origin_or_a_cross_site_fetch_is_a_browsers_and_refused() {
        let host = ("Host", "127.0.0.1:16925");
        for browser in [
            ("Origin", "https://evil.example"),
            ("Origin", "null"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Site", "same-site"),
            ("Sec-Fetch-Site", "same-origin"),
        ] {
            assert_eq!(
                check("/roles", &[host, browser]),
                Err(Refusal::FromBrowser),
                "{browser:?}"
            );
        }
    }

    #[test]
    fn two_host_headers_are_a_bad_request() {
        let refused = check(
            "/latest/",
            &[("Host", "169.254.169.254"), ("Host", "evil.example")],
        );
        assert_eq!(refused, Err(Refusal::BadHostHeader));
        assert_eq!(Refusal::BadHostHeader.status(), 400);
    }

    #[test]
    fn an_absolute_form_target_is_judged_by_its_own_authority() {
        assert_eq!(
            check(
                "http://evil.example/latest/",
                &[("Host", "169.254.169.254")]
            ),
            Err(Refusal::UnknownHostHeader)
        );
        assert_eq!(
            check(
                "http://169.254.169.254/latest/",
                &[("Host", "evil.example")]
            ),
            Ok(())
        );
    }

    #[test]
    fn two_host_headers_are_a_bad_request_even_beside_an_absolute_form_target() {
        let refused = check(
            "http://169.254.169.254/latest/",
            &[("Host", "169.254.169.254"), ("Host", "evil.example")],
        );
        assert_eq!(refused, Err(Refusal::BadHostHeader));
    }

    #[test]
    fn a_host_header_that_is_not_text_names_no_known_host() {
        let mut request = request("/latest/", &[]);
        request.headers_mut().insert(
            header::HOST,
            HeaderValue::from_bytes(b"169.254.169.254\xff").unwrap(),
        );
        let verdict = guard("127.0.0.1:16925", false).check(LOCAL.parse().unwrap(), &request);
        assert_eq!(verdict, Err(Refusal::UnknownHostHeader));
    }

    #[test]
    fn a_browsers_request_is_refused_as_one_whatever_its_host_headers() {
        let origin = ("Origin", "https://evil.example");
        for hosts in [
            &[][..],
            &[("Host", "evil.example")][..],
            &[("Host", "169.254.169.254"), ("Host", "evil.example")][..],
        ] {
            let headers: Vec<_> = hosts.iter().copied().chain([origin]).collect();
            assert_eq!(
                check("/latest/", &headers),
                Err(Refusal::FromBrowser),
                "{hosts:?}"
            );
        }
    }

    #[test]
    fn bound_address_is_allowed_with_or_without_port() {
        let g = guard("127.0.0.1:16925", false);
        for h in [
            "127.0.0.1",
            "127.0.0.1:16925",
            "localhost:16925",
            "LOCALHOST:16925",
            "[::1]:16925",
        ] {
            assert!(g.host_allowed(h), "{h}");
        }
    }

    #[test]
    fn metadata_address_is_always_allowed() {
        let g = guard("127.0.0.1:16925", false);
        assert!(g.host_allowed("169.254.169.254"));
        assert!(g.host_allowed("169.254.169.254:80"));
        assert!(g.host_allowed("[fd00:ec2::254]"));
    }

    #[test]
    fn rebinding_names_and_other_ports_are_refused() {
        let g = guard("127.0.0.1:16925", false);
        for h in [
            "evil.example",
            "evil.example:16925",
            "localhost",
            "localhost:80",
            "127.0.0.1:8080",
            "",
            "169.254.169.254.nip.io",
        ] {
            assert!(!g.host_allowed(h), "{h}");
        }
    }

    #[test]
    fn port_80_allows_bare_localhost() {
        let g = guard("127.0.0.1:80", false);
        assert!(g.host_allowed("localhost"));
    }

    #[test]
    fn unspecified_bind_accepts_ip_literals_only() {
        let g = guard("0.0.0.0:16925", true);
        assert!(g.host_allowed("10.1.2.3:16925"));
        assert!(!g.host_allowed("10.1.2.3:9999"));
        assert!(!g.host_allowed("evil.example:16925"));
    }

    #[test]
    fn the_container_endpoint_admits_bridged_peers_under_the_ecs_address_only() {
        let g = Guard::for_containers("127.0.0.1:16926".parse().unwrap());
        assert!(g.peer_allowed("172.17.0.2".parse().unwrap()));
        assert!(g.host_allowed("169.254.170.2"));
        assert!(g.host_allowed("127.0.0.1:16926"));
        assert!(!g.host_allowed("evil.example"));
        assert!(!guard("127.0.0.1:16925", false).host_allowed("169.254.170.2"));
    }

    #[test]
    fn only_loopback_and_the_bound_address_are_local_peers() {
        let g = guard("127.0.0.1:16925", false);
        assert!(
            g.peer_allowed("169.254.169.254".parse().unwrap()),
            "redirected local client"
        );
        let g = guard("169.254.169.254:80", false);
        assert!(g.peer_allowed("127.0.0.1".parse().unwrap()));
        assert!(g.peer_allowed("127.8.9.10".parse().unwrap()));
        assert!(g.peer_allowed("::1".parse().unwrap()));
        assert!(g.peer_allowed("::ffff:127.0.0.1".parse().unwrap()));
        assert!(g.peer_allowed("169.254.169.254".parse().unwrap()));
        assert!(!g.peer_allowed("192.168.1.20".parse().unwrap()));
        assert!(!g.peer_allowed("169.254.1.1".parse().unwrap()));
        assert!(guard("127.0.0.1:1", true).peer_allowed("192.168.1.20".parse().unwrap()));
    }
}
