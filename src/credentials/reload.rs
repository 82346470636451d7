//! Reloading the configuration while running: on SIGHUP, or `fintors reload` (`POST
//! /fintors/reload`).
//!
//! A valid new configuration replaces the roles atomically (see [`Registry::reload`]): roles are
//! added and removed, the active role stays if it still exists, and unchanged roles keep their
//! cached credentials. An invalid one is rejected, with the error logged and answered, and the old
//! configuration stays. Settings that shape listeners or the STS client (addresses, ports, base
//! credentials, MFA, the instance) take effect at the next restart, and the reload says so. The
//! IAM Identity Center sessions the roles depend on are looked up again: new ones are watched,
//! and those no longer used are no longer watched (nor renewed).
//!
//! The registry's roles are the configuration's and those its `identity_center` sessions
//! discovered ([`Discovery`]): every change of either (a reload, a new listing after a login or
//! `fintors sync`) is applied the same way, by `Reloader::apply`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use chrono::TimeDelta;

use super::StsError;
use super::discovery::Discovery;
use super::registry::{Registry, Reloaded};
use super::sso::{self, SsoLogin};
use crate::config::{Config, ConfigError, ContainerPort, DEFAULT_ADDR, DEFAULT_PORT, Listening};

/// A listing older than this is taken again after a login (a login within it, e.g. an hourly
/// token refresh, does not list again).
const LISTING_FRESH: TimeDelta = TimeDelta::hours(1);

/// What listing the Identity Center sessions again did.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    /// Each session listed, with its role count or why it could not be listed.
    pub sessions: Vec<(String, Result<usize, StsError>)>,
    pub roles: Reloaded,
}

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
    /// The configuration the daemon started with: what is in effect for the settings that
    /// apply only at start, however often the file changed since.
    started: Config,
    /// Where the command line said to listen, which no configuration changes.
    flags: Listening,
    registry: Arc<Registry>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
    /// The SSO sessions the configuration's credentials depend on, and the token caches
    /// watched (each by one task, for as long as the configuration uses it).
    sso: Mutex<Vec<SsoLogin>>,
    watched: Mutex<std::collections::HashMap<PathBuf, tokio::task::AbortHandle>>,
    pub discovery: Arc<Discovery>,
    /// This reloader, for the tasks it starts (listings after a reload or a login).
    me: Weak<Reloader>,
}

impl Reloader {
    /// The reloader of `registry`, whose roles are `current`'s with what `discovery` found.
    pub fn new(
        config_path: PathBuf,
        aws_profiles: bool,
        flags: Listening,
        current: Config,
        registry: Arc<Registry>,
        discovery: Arc<Discovery>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Reloader {
            config_path,
            aws_profiles,
            started: current.clone(),
            flags,
            current: Mutex::new(current),
            registry,
            running: tokio::sync::Mutex::new(()),
            sso: Mutex::new(Vec::new()),
            watched: Mutex::default(),
            discovery,
            me: me.clone(),
        })
    }

    /// The configuration file read at start and on every reload.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// Makes the registry's roles `config`'s and its discovered ones.
    fn apply(&self, config: &Config) -> Reloaded {
        let effective = self.discovery.with_roles(config);
        if let Some(name) = effective.unresolved_default() {
            tracing::warn!(
                "default_role \"{name}\" is not among the {} roles configured and discovered: \
                 no role is active until you pick one (`fintors roles` lists them)",
                effective.roles.len()
            );
        }
        let before = self.registry.active().map(|a| a.role().alias.to_string());
        let summary = self.registry.reload(&effective);
        if let Some(gone) = before.filter(|b| summary.removed.contains(b)) {
            tracing::warn!(
                "the active role {gone} is no longer listed or configured; active now: {}",
                summary.active.as_deref().unwrap_or("none")
            );
        }
        summary
    }

    /// Lists every Identity Center session of the running configuration again, then applies
    /// what they list: `fintors sync`, and the listing at start and after a reload.
    pub async fn sync(&self) -> Synced {
        let config = self.current.lock().expect("poisoned").clone();
        let mut synced = Synced::default();
        for session in config.identity_center.keys() {
            let listed = self.discovery.list(session).await;
            if let Err(e) = &listed {
                tracing::warn!(
                    sso_session = %session,
                    "cannot list the session's roles (the last listing is served): {}",
                    e.message()
                );
            }
            synced.sessions.push((session.clone(), listed));
        }
        if synced.sessions.is_empty() {
            return synced;
        }
        // The configuration may have been reloaded meanwhile: apply the one running now, under
        // its lock, as a reload does, so neither applies a configuration the other replaced.
        let current = self.current.lock().expect("poisoned");
        synced.roles = self.apply(&current);
        drop(current);
        // Said once the roles are in place: what a reader of the log may rely on.
        for (session, listed) in &synced.sessions {
            if let Ok(n) = listed {
                tracing::info!(
                    "SSO session \"{session}\": the portal lists {n} roles ({} new, {} gone in all)",
                    synced.roles.added.len(),
                    synced.roles.removed.len()
                );
            }
        }
        synced
    }

    /// [`Reloader::sync`] in the background.
    pub fn sync_soon(&self) {
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(async move {
                me.sync().await;
            });
        }
    }

    /// Whether the running configuration discovers the roles of the sso-session `name`.
    pub fn discovers(&self, name: &str) -> bool {
        self.current
            .lock()
            .expect("poisoned")
            .identity_center
            .contains_key(name)
    }

    /// After `login` changed: if it is gone (a logout, `aws sso logout`), stops serving what
    /// it gave (see [`Reloader::forget_logged_out`]); else lists its session again if it is
    /// discovered and its listing is missing, failed or older than [`LISTING_FRESH`].
    fn after_login(self: &Arc<Self>, login: &SsoLogin) {
        if login.logged_out() {
            let me = self.clone();
            tokio::spawn(async move { me.forget_logged_out().await });
            return;
        }
        let Some(session) = &login.session else {
            return;
        };
        let discovered = self.discovers(session);
        let now = self.registry.clock().now();
        let listed = self.discovery.session(session);
        let stale = listed.failure.is_some()
            || listed
                .listing
                .is_none_or(|l| now - l.listed_at > LISTING_FRESH);
        if discovered && stale {
            self.sync_soon();
        }
    }

    /// Stops serving the credentials that came from an IAM Identity Center login that is gone
    /// (logged out): those of the roles it gives ([`sso::login_of_role`]) and of the roles
    /// chained to them. Their next request asks again and is told to log in. The aliases of
    /// the roles whose credentials were dropped.
    pub async fn forget_logged_out(&self) -> Vec<crate::model::Alias> {
        let gone: Vec<PathBuf> = self
            .sso_logins()
            .iter()
            .filter(|login| login.logged_out())
            .filter_map(SsoLogin::cache_file)
            .collect();
        if gone.is_empty() {
            return Vec::new();
        }
        let Ok(files) = crate::config::aws_profiles::load().await else {
            return Vec::new();
        };
        let from_gone = |role: &crate::model::Role| {
            let signing = self.registry.signing_profile(role);
            sso::login_of_role(&files, role, signing.as_deref())
                .and_then(|login| login.cache_file())
                .is_some_and(|file| gone.contains(&file))
        };
        let dropped = self.registry.forget_credentials(from_gone).await;
        if !dropped.is_empty() {
            let names: Vec<&str> = dropped.iter().map(|a| a.as_str()).collect();
            tracing::info!(
                "logged out: no longer serving the credentials of {}",
                names.join(", ")
            );
        }
        dropped
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
    /// profiles') and watches the token caches not watched yet (see [`sso::watch`]); stops
    /// watching those it no longer uses, which are then neither renewed nor warned about.
    async fn watch_sso(&self, config: &Config) {
        let logins = sso::logins(
            &config.base_credentials.profile_name(),
            config.roles.values(),
            config.identity_center.keys().map(String::as_str),
        )
        .await;
        let mut watched = self.watched.lock().expect("poisoned");
        let used: Vec<PathBuf> = logins.iter().filter_map(SsoLogin::cache_file).collect();
        watched.retain(|file, task| {
            let keep = used.contains(file);
            if !keep {
                tracing::info!("no longer watching {}: no role uses it", file.display());
                task.abort();
            }
            keep
        });
        for login in &logins {
            let Some(file) = login.cache_file() else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = watched.entry(file) {
                let me = self.me.clone();
                let changed = Arc::new(move |login: &SsoLogin| {
                    if let Some(me) = me.upgrade() {
                        me.after_login(login);
                    }
                });
                let me = self.me.clone();
                let tell = Arc::new(move |text: &str| {
                    tracing::warn!("{text}");
                    let notify = me
                        .upgrade()
                        .is_some_and(|me| me.current.lock().expect("poisoned").notify);
                    if notify {
                        crate::platform::notify::desktop("fintors", text);
                    }
                });
                let task = tokio::spawn(sso::watch(
                    login.clone(),
                    self.registry.clone(),
                    changed,
                    tell,
                ));
                entry.insert(task.abort_handle());
            }
        }
        *self.sso.lock().expect("poisoned") = logins;
    }

    /// The settings `new` changes that apply only at start: compared with what the daemon
    /// started with (not the last file read, so a change undone needs nothing), and where to
    /// listen as the command line overrides it (a port the command line gives is not changed
    /// by the file's).
    fn need_restart(&self, new: &Config) -> Vec<&'static str> {
        let old = &self.started;
        // Defaults filled in: writing the default port into the file changes nothing.
        let resolved = |config: &Config| {
            let l = self.flags.over(config);
            (
                l.addr.unwrap_or(DEFAULT_ADDR),
                l.port.unwrap_or(DEFAULT_PORT),
                ContainerPort::resolve(l.ecs_port),
                l.admin_port,
            )
        };
        let (running, wanted) = (resolved(old), resolved(new));
        let changes = [
            ("credentials", old.base_credentials != new.base_credentials),
            ("MFA settings", old.mfa != new.mfa),
            ("addr", running.0 != wanted.0),
            ("port", running.1 != wanted.1),
            ("ecs_port", running.2 != wanted.2),
            ("admin_port", running.3 != wanted.3),
            ("instance", old.instance != new.instance),
            ("allow_users", old.allow_users != new.allow_users),
        ];
        changes
            .into_iter()
            .filter_map(|(what, changed)| changed.then_some(what))
            .collect()
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
        let need_restart = self.need_restart(&new);
        for what in &need_restart {
            tracing::warn!(
                "{what} changed in {}: restart fintors to apply it",
                new.path.display()
            );
        }
        let summary = self.apply(&new);
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
        let listed = !new.identity_center.is_empty();
        *current = new;
        drop(current);
        if listed {
            self.sync_soon();
        }
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
