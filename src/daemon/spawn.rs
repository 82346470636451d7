//! Step 4: an accept loop per listener, each with the limits every listener shares.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::environment::admin_token;
use super::listen::{Listeners, local_addr};
use super::{DaemonError, users};
use crate::cli::args::ServeArgs;
use crate::config::Config;
use crate::http::App;
use crate::http::listener::{self, Limits};

/// What each listener serves.
pub struct Apps {
    pub imds: App,
    pub imds6: Option<App>,
    pub container: Option<App>,
    pub admin: Option<App>,
}

/// What every listener allows: the default limits, for the users `--allow-users` (else the
/// config's `allow_users`) names besides the daemon's own and root.
pub(super) fn limits(args: &ServeArgs, config: &Config) -> Result<Limits, DaemonError> {
    let names = if args.allow_users.is_empty() {
        &config.allow_users
    } else {
        &args.allow_users
    };
    Ok(Limits {
        users: Some(Arc::new(users::allowed(names)?)),
        ..Limits::default()
    })
}

/// Step 4: an accept loop per listener, all stopping on `shutdown`, each with `limits`.
pub fn spawn(
    listeners: Listeners,
    apps: Apps,
    limits: &Limits,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut servers = vec![tokio::spawn(listener::serve(
        listeners.imds,
        apps.imds,
        limits.clone(),
        shutdown.clone(),
    ))];
    if let (Some(listener), Some(app)) = (listeners.imds6, apps.imds6) {
        tracing::debug!("IMDS also on http://{}", local_addr(&listener));
        servers.push(tokio::spawn(listener::serve(
            listener,
            app,
            limits.clone(),
            shutdown.clone(),
        )));
    }
    if let (Some(listener), Some(app)) = (listeners.container, apps.container) {
        tracing::info!(
            "container credentials on http://{}/creds (`fintors exec ROLE -- CMD`)",
            local_addr(&listener)
        );
        servers.push(tokio::spawn(listener::serve(
            listener,
            app,
            limits.clone(),
            shutdown.clone(),
        )));
    }
    if let (Some(listener), Some(app)) = (listeners.admin, apps.admin) {
        tracing::info!(
            "admin API on http://{} ({})",
            local_addr(&listener),
            if admin_token().is_some() {
                "FINTORS_ADMIN_TOKEN required"
            } else {
                "no token"
            }
        );
        servers.push(tokio::spawn(listener::serve(
            listener,
            app,
            limits.clone(),
            shutdown.clone(),
        )));
    }
    servers
}
