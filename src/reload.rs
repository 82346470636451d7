//! Reloading the configuration while running: on SIGHUP, or `fintors reload` (`POST
//! /fintors/reload`).
//!
//! A valid new configuration replaces the roles atomically (see [`Registry::reload`]): roles are
//! added and removed, the active role stays if it still exists, and unchanged roles keep their
//! cached credentials. An invalid one is rejected, with the error logged and answered, and the old
//! configuration stays. Settings that shape listeners or the STS client (addresses, ports, base
//! credentials, MFA, the instance) take effect at the next restart, and the reload says so.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};

use crate::aws_profiles;
use crate::config::{Config, expand_tilde};
use crate::json_api::{error, json_value, read_json_body};
use crate::registry::Registry;
use crate::server::AppState;

pub const PATH: &str = "/fintors/reload";

/// What `fintors reload` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub config: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub active_role: Option<String>,
    /// Settings that changed but apply only after a restart.
    pub need_restart: Vec<String>,
}

pub struct Reloader {
    config_path: String,
    aws_profiles: bool,
    current: Mutex<Config>,
    registry: Arc<Registry>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
}

/// Reads the configuration, importing AWS profiles when asked to.
pub async fn load(config_path: &str, aws_profiles_flag: bool) -> Result<Config, String> {
    let mut config = Config::load(&expand_tilde(config_path)).map_err(|e| e.to_string())?;
    if aws_profiles_flag || config.aws_profiles {
        let profiles = aws_profiles::load().await?;
        let imported = aws_profiles::roles_from(&profiles);
        for reason in &imported.skipped {
            tracing::warn!("{reason}");
        }
        config
            .finish_import(imported.roles)
            .map_err(|e| e.to_string())?;
    }
    Ok(config)
}

impl Reloader {
    pub fn new(
        config_path: String,
        aws_profiles: bool,
        current: Config,
        registry: Arc<Registry>,
    ) -> Arc<Self> {
        Arc::new(Reloader {
            config_path,
            aws_profiles,
            current: Mutex::new(current),
            registry,
            running: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn reload(&self) -> Result<ReloadReport, String> {
        let _one_at_a_time = self.running.lock().await;
        let new = match load(&self.config_path, self.aws_profiles).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload rejected, keeping the running configuration: {e}");
                return Err(e);
            }
        };
        let mut current = self.current.lock().expect("poisoned");
        let mut need_restart = Vec::new();
        let mut check = |what: &str, same: bool| {
            if !same {
                need_restart.push(what.to_owned());
            }
        };
        check(
            "credentials",
            current.base_credentials == new.base_credentials,
        );
        check("MFA settings", current.mfa == new.mfa);
        check("addr", current.addr == new.addr);
        check("port", current.port == new.port);
        check("ecs_port", current.ecs_port == new.ecs_port);
        check("admin_port", current.admin_port == new.admin_port);
        check("instance", current.instance == new.instance);
        for what in &need_restart {
            tracing::warn!(
                "{what} changed in {}: restart fintors to apply it",
                new.path.display()
            );
        }
        let summary = self.registry.reload(&new);
        tracing::info!(
            added = %summary.added.join(","),
            removed = %summary.removed.join(","),
            changed = %summary.changed.join(","),
            active = %summary.active.as_deref().unwrap_or("none"),
            "reloaded {}",
            new.path.display()
        );
        let report = ReloadReport {
            config: new.path.display().to_string(),
            added: summary.added,
            removed: summary.removed,
            changed: summary.changed,
            active_role: summary.active,
            need_restart,
        };
        *current = new;
        Ok(report)
    }

    /// Reloads on every SIGHUP, for the daemon's lifetime.
    pub fn on_sighup(self: &Arc<Self>) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let this = self.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                let _ = this.reload().await;
            }
        });
        Ok(())
    }
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route(PATH, post(reload))
}

/// `POST /fintors/reload` with a JSON content type (the body is ignored), so no web page can
/// trigger it cross-site.
async fn reload(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(refusal) = read_json_body(request).await {
        return refusal;
    }
    match state.reloader.reload().await {
        Ok(report) => json_value(
            StatusCode::OK,
            serde_json::to_value(report).expect("serializes"),
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("configuration rejected, the running one is kept: {e}"),
        ),
    }
}
