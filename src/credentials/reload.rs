//! Reloading the configuration while running: on SIGHUP, or `fintors reload` (`POST
//! /fintors/reload`).
//!
//! A valid new configuration replaces the roles atomically (see [`Registry::reload`]): roles are
//! added and removed, the active role stays if it still exists, and unchanged roles keep their
//! cached credentials. An invalid one is rejected, with the error logged and answered, and the old
//! configuration stays. Settings that shape listeners or the STS client (addresses, ports, base
//! credentials, MFA, the instance) take effect at the next restart, and the reload says so. The
//! IAM Identity Center sessions the roles depend on are looked up again, and new ones watched.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::registry::{Registry, Reloaded};
use super::sso::{self, SsoLogin};
use crate::config::{Config, ConfigError};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub config: PathBuf,
    pub roles: Reloaded,
    /// Settings that changed but apply only after a restart.
    pub need_restart: Vec<&'static str>,
}

pub struct Reloader {
    config_path: PathBuf,
    aws_profiles: bool,
    current: Mutex<Config>,
    registry: Arc<Registry>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
    /// The SSO sessions the configuration's credentials depend on, and the token caches
    /// watched (each once, for the daemon's lifetime).
    sso: Mutex<Vec<SsoLogin>>,
    watched: Mutex<Vec<PathBuf>>,
}

impl Reloader {
    pub fn new(
        config_path: PathBuf,
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
            sso: Mutex::new(Vec::new()),
            watched: Mutex::new(Vec::new()),
        })
    }

    /// The IAM Identity Center sessions the running configuration depends on, base profile
    /// first.
    pub fn sso_logins(&self) -> Vec<SsoLogin> {
        self.sso.lock().expect("poisoned").clone()
    }

    /// `Reloader::watch_sso` for the configuration the daemon started with.
    pub async fn watch_current_sso(&self) {
        let config = self.current.lock().expect("poisoned").clone();
        self.watch_sso(&config).await;
    }

    /// Looks up the SSO sessions of `config` (the base profile's, then the roles' source
    /// profiles') and watches the token caches not watched yet (see [`sso::watch`]).
    async fn watch_sso(&self, config: &Config) {
        let logins = sso::logins(
            &config.base_credentials.profile_name(),
            config.roles.values(),
        )
        .await;
        let mut watched = self.watched.lock().expect("poisoned");
        for login in &logins {
            let Some(file) = login.cache_file() else {
                continue;
            };
            if !watched.contains(&file) {
                watched.push(file);
                tokio::spawn(sso::watch(login.clone(), self.registry.clone()));
            }
        }
        *self.sso.lock().expect("poisoned") = logins;
    }

    pub async fn reload(&self) -> Result<Report, ConfigError> {
        let _one_at_a_time = self.running.lock().await;
        let new = match Config::read(&self.config_path, self.aws_profiles).await {
            Ok(c) => c,
            Err(e) => {
                // One log line per problem: a file can have several.
                for problem in e.to_string().lines() {
                    tracing::error!(
                        "reload rejected, keeping the running configuration: {problem}"
                    );
                }
                return Err(e);
            }
        };
        self.watch_sso(&new).await;
        let mut current = self.current.lock().expect("poisoned");
        let mut need_restart = Vec::new();
        let mut check = |what: &'static str, same: bool| {
            if !same {
                need_restart.push(what);
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
        check("allow_users", current.allow_users == new.allow_users);
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
        let report = Report {
            config: new.path.clone(),
            roles: summary,
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
