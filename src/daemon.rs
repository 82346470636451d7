//! Start-up and shutdown of the serving daemon: load and check everything that can be wrong
//! before opening the port, obtain the default role's credentials, then serve until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::access_log::{AccessLog, AccessLogError};
use crate::activation::{self, ActivationError};
use crate::admin;
use crate::cli::{DEFAULT_ADDR, DEFAULT_PORT, ServeArgs};
use crate::container;
use crate::guard::Guard;
use crate::metadata::{self, Instance};
use crate::model::Secret;
use crate::model::{Clock, Region};
use crate::registry::Registry;
use crate::reload::{self, Reloader};
use crate::server::{self, AppState, ContainerInfo, Limits};
use crate::state::{StateDir, StateError};
use crate::sts::{Bootstrap, Sts};
use crate::tokens::Tokens;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
    #[error(transparent)]
    Activation(#[from] ActivationError),
    #[error("cannot listen on {addr}: {why}")]
    Bind { addr: SocketAddr, why: String },
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
    #[error(
        "no state directory: set XDG_STATE_HOME or HOME, or pass --state-dir (it holds the \
         IMDSv2 token key)"
    )]
    NoStateDir,
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), DaemonError> {
    let config = reload::load(&args.config, args.aws_profiles)
        .await
        .map_err(DaemonError::Config)?;
    for warning in crate::config::exposed_files(&config) {
        tracing::warn!("{warning}");
    }
    let state_dir = match args.state_dir.clone() {
        Some(dir) => dir,
        None => default_state_dir().ok_or(DaemonError::NoStateDir)?,
    };
    let state_dir = StateDir::open(&state_dir)?;
    let tokens = Arc::new(Tokens::load_or_create(&state_dir)?);
    let instance = Instance::from_config(
        &config.instance,
        &metadata::host_seed(),
        &default_region(),
        metadata::boot_time(),
    );
    let log = args.log.as_deref().map(AccessLog::open).transpose()?;
    let listener = match activation::inherited_listener()? {
        Some(socket) => {
            tracing::info!("serving on the socket passed by systemd");
            TcpListener::from_std(socket)?
        }
        None => {
            let addr = SocketAddr::new(
                args.addr.or(config.addr).unwrap_or(DEFAULT_ADDR),
                args.port.or(config.port).unwrap_or(DEFAULT_PORT),
            );
            TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::Bind {
                    addr,
                    why: explain_bind_error(&e, addr),
                })?
        }
    };
    let bound = listener.local_addr()?;
    let container = match args.ecs_port.or(config.ecs_port) {
        None => None,
        Some(port) => {
            // Loopback only: the SDKs accept plain HTTP for the container endpoint only there.
            let addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::Bind {
                    addr,
                    why: explain_bind_error(&e, addr),
                })?;
            let token = container::load_token(&state_dir)?;
            Some((listener, token))
        }
    };

    let admin = match args.admin_port.or(config.admin_port) {
        None => None,
        Some(port) => Some(bind_loopback(port).await?),
    };

    // Installed before the port reports ready, so a SIGTERM right after start-up is graceful.
    let shutdown = shutdown_signal()?;

    let clock = Clock::system();
    let bootstrap = Arc::new(Bootstrap::default());
    let sts = Arc::new(
        Sts::new(
            &config.base_credentials,
            config.mfa.clone(),
            bootstrap.clone(),
        )
        .await,
    );
    let mfa = sts.mfa.clone();
    let registry = Arc::new(Registry::new(&config, sts, clock));
    registry.prefetch_active().await;

    let container_info = match &container {
        Some((listener, _)) => Some(ContainerInfo {
            url: format!("http://{}/creds", listener.local_addr()?),
            token_file: state_dir.file(container::TOKEN_FILE),
        }),
        None => None,
    };
    let reloader = Reloader::new(
        args.config.clone(),
        args.aws_profiles,
        config.clone(),
        registry.clone(),
    );
    reloader.on_sighup()?;
    let state = Arc::new(AppState {
        reloader,
        container: container_info,
        mfa,
        registry: registry.clone(),
        instance,
        tokens,
        clock,
        imdsv2_required: args.imdsv2_required,
    });
    let app = server::app(
        state.clone(),
        Arc::new(Guard::new(bound, args.allow_remote)),
        log,
    );
    // All listeners stop on the same signal.
    let (stop, stopped) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let mut servers = vec![tokio::spawn(server::serve(
        listener,
        app,
        Limits::default(),
        until_stopped(stopped.clone()),
    ))];
    if let Some((listener, token)) = container {
        let addr = listener.local_addr()?;
        let guard = Arc::new(Guard::new(addr, false));
        tracing::info!("container credentials on http://{addr}/creds (`fintors env --ecs`)");
        servers.push(tokio::spawn(server::serve(
            listener,
            container::app(state.clone(), guard, token),
            Limits::default(),
            until_stopped(stopped.clone()),
        )));
    }
    if let Some(listener) = admin {
        let addr = listener.local_addr()?;
        let token = std::env::var("FINTORS_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        tracing::info!(
            "admin API on http://{addr} ({})",
            if token.is_some() {
                "FINTORS_ADMIN_TOKEN required"
            } else {
                "no token"
            }
        );
        servers.push(tokio::spawn(server::serve(
            listener,
            admin::app(state, Arc::new(Guard::new(addr, false)), bootstrap, token),
            Limits::default(),
            until_stopped(stopped),
        )));
    }
    // The ready line comes last, once every listener is serving: tests and scripts wait for it.
    let roles: Vec<String> = registry.aliases().iter().map(|a| a.to_string()).collect();
    tracing::info!(
        config = %config.path.display(),
        roles = %roles.join(","),
        active = %registry.active().map(|a| a.role().alias.to_string()).unwrap_or_else(|| "none".into()),
        "fintors {} listening on http://{bound}",
        env!("CARGO_PKG_VERSION"),
    );
    for server in servers {
        server.await.expect("server task panicked")?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The region of the instance when neither the config nor the active role names one: the
/// standard variables, else STS's fallback.
fn default_region() -> Region {
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        match std::env::var(name).ok().filter(|r| !r.is_empty()) {
            Some(value) => match Region::parse(&value) {
                Ok(region) => return region,
                Err(e) => tracing::warn!("{name} ignored: {e}"),
            },
            None => continue,
        }
    }
    Region::parse(crate::sts::FALLBACK_REGION).expect("the fallback is a region")
}

/// A listener on 127.0.0.1 for the side APIs, which must never be reachable from elsewhere.
async fn bind_loopback(port: u16) -> Result<TcpListener, DaemonError> {
    let addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
    TcpListener::bind(addr)
        .await
        .map_err(|e| DaemonError::Bind {
            addr,
            why: explain_bind_error(&e, addr),
        })
}

/// `$XDG_STATE_HOME/fintors`, else `~/.local/state/fintors`.
pub fn default_state_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("fintors")),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".local/state/fintors")),
    }
}

fn explain_bind_error(e: &std::io::Error, addr: SocketAddr) -> String {
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
             (try `curl http://{addr}/roles`) Otherwise pick another --port"
        ),
        ErrorKind::PermissionDenied => format!(
            "permission denied; ports below 1024 need root. Use --port {} (the default) instead",
            DEFAULT_PORT
        ),
        _ => e.to_string(),
    }
}

/// Resolves on the first SIGINT or SIGTERM; the handlers are registered when this is called.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    })
}
