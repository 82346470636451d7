//! Step 2 of start-up: every listener bound before anything else starts, so a port that is
//! taken or an address the machine lacks is one line naming the fix, not a half-started daemon.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

use super::{DaemonError, activation};
use crate::cli::args::ServeArgs;
use crate::config::{Config, ContainerPort, DEFAULT_ADDR, DEFAULT_PORT};

/// Every listener the daemon serves on.
pub struct Listeners {
    pub imds: TcpListener,
    pub container: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

/// Step 2: the IMDS listener (the socket systemd passed in, else the configured address) and,
/// the container endpoint (unless it is off) and the admin API (when configured) on 127.0.0.1.
pub async fn bind(args: &ServeArgs, config: &Config) -> Result<Listeners, DaemonError> {
    let imds = match activation::inherited_listener()? {
        Some(socket) => {
            tracing::info!("serving on the socket passed by systemd");
            TcpListener::from_std(socket).map_err(|e| DaemonError::Bind {
                addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                why: e.to_string(),
            })?
        }
        None => {
            let addr = SocketAddr::new(
                args.addr.or(config.addr).unwrap_or(DEFAULT_ADDR),
                args.port.or(config.port).unwrap_or(DEFAULT_PORT),
            );
            bind_at(addr, "--port").await?
        }
    };
    // Loopback only: the SDKs accept plain HTTP for the container endpoint only there, and the
    // admin API must never be reachable from elsewhere.
    let on_loopback = |port, option| bind_at(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), option);
    let container = match ContainerPort::resolve(args.ecs_port.or(config.ecs_port)) {
        Some(port) => Some(on_loopback(port, "--ecs-port (or --ecs-port off)").await?),
        None => None,
    };
    let admin = match args.admin_port.or(config.admin_port) {
        Some(port) => Some(on_loopback(port, "--admin-port").await?),
        None => None,
    };
    Ok(Listeners {
        imds,
        container,
        admin,
    })
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
