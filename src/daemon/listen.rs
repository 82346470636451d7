//! Step 2 of start-up: every listener bound before anything else starts, so a port that is
//! taken or an address the machine lacks is one line naming the fix, not a half-started daemon.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

use super::{DaemonError, activation};
use crate::cli::args::ServeArgs;
use crate::config::{Config, ContainerPort, DEFAULT_ADDR, DEFAULT_PORT};

/// Every listener the daemon serves on.
pub struct Listeners {
    pub imds: TcpListener,
    /// IMDS on `[::1]` too, at the same port, when it listens on 127.0.0.1: where `network up`
    /// sends the IPv6 metadata address.
    pub imds6: Option<TcpListener>,
    pub container: Option<TcpListener>,
    pub admin: Option<TcpListener>,
    /// IMDS is on the socket systemd passed in: its address is systemd's to change.
    pub inherited: bool,
}

/// Step 2: the IMDS listener (the socket systemd passed in, else the configured address) and,
/// the container endpoint (unless it is off) and the admin API (when configured) on 127.0.0.1.
pub async fn bind(args: &ServeArgs, config: &Config) -> Result<Listeners, DaemonError> {
    let listening = args.listening().over(config);
    let inherited = activation::inherited_listener()?;
    let activated = inherited.is_some();
    let (imds, imds6) = match inherited {
        Some(socket) => {
            tracing::info!("serving on the socket passed by systemd");
            let imds = TcpListener::from_std(socket).map_err(|e| DaemonError::Bind {
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                why: e.to_string(),
            })?;
            // Passed 127.0.0.1:PORT, the daemon still holds [::1]:PORT itself: `network up`
            // sends fd00:ec2::254 there, and nobody else may hold it.
            let bound = local_addr(&imds);
            let imds6 = if bound.ip().is_loopback() && bound.is_ipv4() {
                also_on_ipv6_loopback(bound.port(), true).await?
            } else {
                None
            };
            (imds, imds6)
        }
        None => {
            let addr = SocketAddr::new(
                listening.addr.unwrap_or(DEFAULT_ADDR),
                listening.port.unwrap_or(DEFAULT_PORT),
            );
            let imds = bind_at(addr, "--port").await?;
            let imds6 = match addr.ip() {
                IpAddr::V4(v4) if v4.is_loopback() => {
                    also_on_ipv6_loopback(local_addr(&imds).port(), addr.port() != 0).await?
                }
                _ => None,
            };
            (imds, imds6)
        }
    };
    set_hop_limit(&imds, args.hop_limit)?;
    if let Some(imds6) = &imds6 {
        set_hop_limit(imds6, args.hop_limit)?;
    }
    // Loopback only: the SDKs accept plain HTTP for the container endpoint only there, and the
    // admin API must never be reachable from elsewhere.
    let on_loopback = |port, option| bind_at(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), option);
    let container = match ContainerPort::resolve(listening.ecs_port) {
        Some(port) => Some(on_loopback(port, "--ecs-port (or --ecs-port off)").await?),
        None => None,
    };
    let admin = match listening.admin_port {
        Some(port) => Some(on_loopback(port, "--admin-port").await?),
        None => None,
    };
    Ok(Listeners {
        imds,
        imds6,
        container,
        admin,
        inherited: activated,
    })
}

/// [::1]:`port`, or `None` with a warning where IPv6 is off: IPv4 clients are served either way.
/// A port the user chose (the default included) that something else holds on [::1] is an
/// error, not a warning: that holder, another user's process say, would be sent every IPv6
/// client's requests, `network up`'s redirect of fd00:ec2::254 included. A port picked with 0
/// that happens to be taken there only warns.
async fn also_on_ipv6_loopback(
    port: u16,
    chosen: bool,
) -> Result<Option<TcpListener>, DaemonError> {
    let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if chosen && e.kind() == std::io::ErrorKind::AddrInUse => Err(DaemonError::Bind {
            addr,
            why: explain_bind_error(&e, addr, "--port"),
        }),
        Err(e) => {
            tracing::warn!(
                "not serving IMDS on http://{addr} ({e}): clients in IPv6 endpoint mode will not \
                 reach fintors"
            );
            Ok(None)
        }
    }
}

/// Binds `addr`; a failure names `option`, the setting that moves this listener elsewhere.
async fn bind_at(addr: SocketAddr, option: &str) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| DaemonError::Bind {
            addr,
            why: explain_bind_error(&e, addr, option),
        })
}

/// Sets the TTL (hop limit) of everything sent on `listener`'s connections: accepted sockets
/// inherit it from the listening one, so it costs nothing per connection.
fn set_hop_limit(listener: &TcpListener, hops: u32) -> Result<(), DaemonError> {
    let socket = socket2::SockRef::from(listener);
    let addr = local_addr(listener);
    match addr {
        SocketAddr::V4(_) => socket.set_ttl_v4(hops),
        SocketAddr::V6(_) => socket.set_unicast_hops_v6(hops),
    }
    .map_err(|e| DaemonError::Bind {
        addr,
        why: format!("cannot set the hop limit to {hops}: {e}"),
    })
}

pub fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

fn explain_bind_error(e: &std::io::Error, addr: SocketAddr, option: &str) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine. Leave out --addr (and the config's \"addr\") \
             to listen on 127.0.0.1, and run `sudo fintors network up` once so that clients find \
             fintors at http://169.254.169.254/",
            addr.ip()
        ),
        ErrorKind::AddrInUse => format!(
            "the port is already in use; is fintors already running? \
             (try `fintors status`) Otherwise pick another {option}"
        ),
        ErrorKind::PermissionDenied => format!(
            "permission denied; ports below 1024 need root. Use --port {DEFAULT_PORT} (the \
             default) instead"
        ),
        _ => e.to_string(),
    }
}
