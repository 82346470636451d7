//! The composition root: the only module that sees every layer. Starting the daemon is five
//! named steps, each of which can fail with one line that names the thing and the fix:
//! [`load`] (the configuration, the state directory, the instance), [`bind`] (every listener,
//! before anything else is started; in `listen.rs`), [`build_state`] (the engine and what the handlers share;
//! the fuzz targets build theirs with it too), [`spawn`] (the listeners' accept loops; in `spawn.rs`), and
//! waiting for a signal. The default role's credentials are obtained before the ready line.

pub mod activation;
mod environment;
mod listen;
mod logging;
mod signals;
mod spawn;
pub mod state_dir;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cli::args::ServeArgs;
use crate::config::{Config, ConfigError, Listening, expand_tilde};
use crate::credentials::console::{Federation, FederationEndpoint};
use crate::credentials::discovery::Discovery;
use crate::credentials::portal::Portal;
use crate::credentials::{Bootstrap, MfaSessions, Registry, Reloader, RoleAssumer, Sources, Sts};
use crate::ec2::identity_signing::LazySigner;
use crate::ec2::instance::{self, Instance};
use crate::ec2::tokens::Tokens;
use crate::http::access_log::{AccessLog, AccessLogError};
use crate::http::guard::Guard;
use crate::http::handoffs::Handoffs;
use crate::http::{App, AppState, ContainerInfo, admin, container_app, imds_app};
use crate::model::Clock;
use activation::ActivationError;
use environment::{admin_token, default_region, federation_endpoint};
use listen::local_addr;
pub use listen::{Listeners, bind};
use spawn::limits;
pub use spawn::{Apps, spawn};
use state_dir::{StateDir, StateError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
    #[error(transparent)]
    Activation(#[from] ActivationError),
    #[error(transparent)]
    UnknownUser(#[from] users::UnknownUser),
    #[error("cannot listen on {addr}: {why}")]
    Bind { addr: SocketAddr, why: String },
    #[error("cannot watch for signals: {reason}")]
    Signals { reason: std::io::Error },
    #[error(
        "no state directory: set XDG_STATE_HOME or HOME, or pass --state-dir (it holds the \
         IMDSv2 token key)"
    )]
    NoStateDir,
    #[error("{0}")]
    Federation(String),
}

/// `fintors` / `fintors serve`: logging, a small runtime, then [`run`] until a signal.
pub fn serve(args: ServeArgs) -> Result<(), DaemonError> {
    logging::init(args.verbose);
    raise_open_file_limit();
    // fintors must never fetch its own base credentials (or region) from an instance metadata
    // service: that would be itself, or a real IMDS it should not talk to.
    // SAFETY: no other thread exists yet; the runtime is started below.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    // A credential daemon needs a few workers, not one per core: on a 16-core laptop a worker
    // per core would only add idle threads and resident memory.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("starting the tokio runtime")
        .block_on(run(args));
    logging::flush();
    result
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), DaemonError> {
    let loaded = load(&args).await?;
    let limits = limits(&args, &loaded.config)?;
    let listeners = bind(&args, &loaded.config).await?;
    // Installed before the port reports ready, so a SIGTERM right after start-up is graceful.
    let shutdown = signals::shutdown_on_signals()?;
    let config_path = loaded.config.path.clone();
    let log = loaded.log.clone();
    let (state, apps) = start_engine(&args, loaded, &listeners).await?;
    let bound = local_addr(&listeners.imds);
    let servers = spawn(listeners, apps, &limits, &shutdown);
    announce_ready(&state, &config_path, bound);
    for server in servers {
        server.await.expect("a listener task panicked");
    }
    if let Some(log) = log {
        log.flush().await;
    }
    match logging::dropped_lines() {
        0 => tracing::info!("stopped"),
        n => tracing::info!("stopped ({n} log lines could not be written to stderr)"),
    }
    Ok(())
}

/// Steps 3 and 4 for the real thing: STS with the configured base credentials, the state, the
/// default role's credentials, reload on SIGHUP, and what each listener serves.
async fn start_engine(
    args: &ServeArgs,
    loaded: Loaded,
    listeners: &Listeners,
) -> Result<(Arc<AppState>, Apps), DaemonError> {
    let bootstrap = Arc::new(Bootstrap::default());
    let sts = Arc::new(
        Sts::new(
            &loaded.config.base_credentials,
            loaded.config.mfa.clone(),
            bootstrap.clone(),
            Clock::system(),
        )
        .await,
    );
    let container = listeners.container.as_ref().map(|listener| ContainerInfo {
        url: format!("http://{}/creds", local_addr(listener)),
    });
    let container_key = match &listeners.container {
        Some(_) => Some(loaded.state_dir.container_key()?),
        None => None,
    };
    let settings = Settings {
        config_path: expand_tilde(&args.config),
        listening: in_effect(args, listeners),
        sts_clock: Some(sts.clock_watch.clone()),
        aws_profiles: args.aws_profiles,
        imdsv2_required: args.imdsv2_required,
        socket_activated: listeners.inherited,
        federation_endpoint: federation_endpoint()?,
    };
    let mfa = sts.mfa.clone();
    let portal = Arc::new(Portal::new(Clock::system()).await);
    let discovery = Discovery::new(
        portal.clone(),
        Some(loaded.state_dir.path().to_owned()),
        Clock::system(),
        &loaded.config,
    );
    let sources = Arc::new(Sources {
        sts,
        portal,
        clock: Clock::system(),
    });
    let state = build_state(
        loaded.config,
        &settings,
        sources,
        mfa,
        loaded.instance,
        Arc::new(loaded.tokens),
        Clock::system(),
        container,
        discovery,
        Arc::new(identity_signer(&loaded.state_dir)),
    );
    state.reloader.watch_current_sso().await;
    // Discovered roles are served from the last listing meanwhile.
    state.reloader.sync_soon();
    state.registry.prefetch_active().await;
    crate::credentials::online::retry_when_the_network_changes(state.registry.clone());

    state
        .reloader
        .on_sighup()
        .map_err(|reason| DaemonError::Signals { reason })?;
    if let Some(log) = &loaded.log {
        signals::reopen_on_sighup(log.clone())?;
    }
    let guard = |listener: &TcpListener, allow_remote| {
        Arc::new(Guard::new(local_addr(listener), allow_remote))
    };
    let apps = Apps {
        imds: imds_app(
            state.clone(),
            guard(&listeners.imds, args.allow_remote),
            loaded.log.clone(),
        ),
        imds6: listeners.imds6.as_ref().map(|listener| {
            imds_app(
                state.clone(),
                guard(listener, args.allow_remote),
                loaded.log.clone(),
            )
        }),
        container: listeners
            .container
            .as_ref()
            .zip(container_key)
            .map(|(listener, key)| {
                let guard = Arc::new(Guard::for_containers(local_addr(listener)));
                container_app(state.clone(), guard, key)
            }),
        admin: listeners.admin.as_ref().map(|listener| {
            App::new(
                admin::app(
                    state.clone(),
                    guard(listener, false),
                    bootstrap,
                    admin_token(),
                ),
                admin::refused,
            )
        }),
    };
    Ok((state, apps))
}

/// Where the command line, or systemd, fixed the daemon's listeners: with a socket passed in,
/// the IMDS address and port are systemd's, whatever the file says.
fn in_effect(args: &ServeArgs, listeners: &Listeners) -> Listening {
    let mut listening = args.listening();
    if listeners.inherited {
        let bound = local_addr(&listeners.imds);
        listening.addr = Some(bound.ip());
        listening.port = Some(bound.port());
    }
    listening
}

/// The longest list of roles the ready line holds; more are counted.
const READY_LINE_ROLES: usize = 60;

/// The ready line, once every listener is serving (tests and scripts wait for it), and
/// systemd's READY=1 (a no-op without NOTIFY_SOCKET).
fn announce_ready(state: &AppState, config_path: &Path, bound: SocketAddr) {
    let aliases = state.registry.aliases();
    let roles = aliases
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",");
    // Hundreds of discovered roles would make the line a page long.
    let roles = if roles.len() <= READY_LINE_ROLES {
        roles
    } else {
        format!("{} (`fintors roles` lists them)", aliases.len())
    };
    let active = state.registry.active();
    tracing::info!(
        config = %config_path.display(),
        roles = %roles,
        active = %active.as_ref().map_or("none", |a| a.role().alias.as_str()),
        "fintors {} listening on http://{bound}",
        // The version alone: the commit is in `--version` and the status report, and the
        // line (whose config path is the user's) stays within one line's 160 characters.
        env!("CARGO_PKG_VERSION"),
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// What start-up reads before anything listens.
pub struct Loaded {
    pub config: Config,
    pub state_dir: StateDir,
    pub tokens: Tokens,
    pub instance: Instance,
    pub log: Option<Arc<AccessLog>>,
}

/// Step 1: the configuration (with the AWS profiles it imports), the state directory and its
/// token key, the instance, the access log.
pub async fn load(args: &ServeArgs) -> Result<Loaded, DaemonError> {
    let config = Config::read(&expand_tilde(&args.config), args.aws_profiles).await?;
    for warning in crate::config::exposed_files(&config) {
        tracing::warn!("{warning}");
    }
    if let Some(warning) = crate::config::aws_profiles::default_credentials()
        .await
        .shadowing_fintors()
    {
        tracing::warn!("{warning}");
    }
    let state_dir = match args.state_dir.clone() {
        Some(dir) => dir,
        None => crate::config::default_state_dir().ok_or(DaemonError::NoStateDir)?,
    };
    let state_dir = StateDir::open(&state_dir)?;
    let tokens = Tokens::from_key(state_dir.token_key()?);
    let instance = Instance::from_config(
        &config.instance,
        &instance::host_seed(),
        &default_region(),
        instance::boot_time(),
    );
    let log = args
        .log
        .as_deref()
        .map(|path| AccessLog::open(path, args.log_max_bytes))
        .transpose()?;
    Ok(Loaded {
        config,
        state_dir,
        tokens,
        instance,
        log,
    })
}

/// What the daemon's state depends on besides the configuration.
pub struct Settings {
    /// The file to re-read on reload.
    pub config_path: PathBuf,
    /// Where the command line said to listen, over whatever the file says.
    pub listening: Listening,
    /// What compares this clock with STS's, for the status report.
    pub sts_clock: Option<crate::credentials::ClockWatch>,
    pub aws_profiles: bool,
    pub imdsv2_required: bool,
    /// The IMDS listener came from systemd's socket (`LISTEN_FDS`).
    pub socket_activated: bool,
    /// `FINTORS_FEDERATION_ENDPOINT`, if set: where console sign-ins go instead of the role
    /// partition's federation endpoint.
    pub federation_endpoint: Option<FederationEndpoint>,
}

/// Step 3: the registry of roles over `assumer`, the reloader, and what every handler shares.
#[allow(clippy::too_many_arguments)]
pub fn build_state(
    config: Config,
    settings: &Settings,
    assumer: Arc<dyn RoleAssumer>,
    mfa: Arc<MfaSessions>,
    instance: Instance,
    tokens: Arc<Tokens>,
    clock: Clock,
    container: Option<ContainerInfo>,
    discovery: Arc<Discovery>,
    identity: Arc<LazySigner>,
) -> Arc<AppState> {
    let registry = Registry::new(&discovery.with_roles(&config), assumer, clock);
    let reloader = Reloader::new(
        settings.config_path.clone(),
        settings.aws_profiles,
        settings.listening,
        config,
        registry.clone(),
        discovery,
    );
    Arc::new(AppState {
        reloader,
        container,
        mfa,
        registry,
        instance,
        events: Arc::default(),
        identity,
        tokens,
        clock,
        imdsv2_required: settings.imdsv2_required,
        socket_activated: settings.socket_activated,
        federation: Federation::new(settings.federation_endpoint.clone()),
        handoffs: Arc::new(Handoffs::new(clock)),
        sts_clock: settings.sts_clock.clone(),
    })
}

/// The identity document's signer, its key and certificate kept in `state_dir`: made when a
/// signature is first asked for, since making a key costs tens of milliseconds of CPU that a
/// start should not.
fn identity_signer(state_dir: &StateDir) -> LazySigner {
    let state_dir = state_dir.clone();
    LazySigner::new(move || {
        state_dir
            .identity_signer(chrono::Utc::now())
            .map_err(|e| std::sync::Arc::new(e) as _)
    })
}

/// The common soft limit of 1024 open files would cap the daemon's connections well below what
/// it is built to hold; the hard limit is the user's to set, the soft one is ours to raise
/// (`rlimit` also knows macOS's cap, where the soft limit can start at 256).
fn raise_open_file_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(65_536) {
        tracing::warn!("cannot raise the open file limit: {e}");
    }
}
