//! Talking to STS: the one place fintors spends its base credentials.
//!
//! [`Sts`] assumes roles with aws-sdk-sts, signing with the base credentials read afresh for
//! every call. Whatever goes wrong comes back as an [`StsError`] classified by the SDK error's
//! type, because its code is what IMDS clients get to see in the error document; the SDK's own
//! error chain goes to the debug log only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::meta::region::RegionProviderChain;
use aws_config::{BehaviorVersion, SdkConfig};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_sts::config::Region;

mod answers;
mod clock;
mod profiles;

pub(crate) use answers::{
    MAX_MESSAGE, classify, endpoint, endpoint_override, innermost, session_credentials,
};
pub use clock::{ClockWatch, Skew};

use super::assumer::{ConsoleFuture, ConsoleSession};
use super::sso::SsoLogin;
use super::{AssumeFuture, Bootstrap, MfaSessions, RoleAssumer, StsError};
use crate::config::{BaseCredentials, MfaConfig};
use crate::model::{CHAINED_MAX_SECONDS, Clock, Credentials, Role};

/// Used when neither the environment nor the profile names a region, as the AWS CLI did for STS.
pub const FALLBACK_REGION: &str = "us-east-1";

/// How long one AssumeRole may take, retries included, before fintors gives up on it for now.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);

/// [`OPERATION_TIMEOUT`] for every call of an AWS client of fintors's (STS, the SSO portal).
pub(crate) fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The base credentials as STS calls see them: bootstrapped ones if any, else the configured
/// source, read afresh on every call (see [`Reloading`]), so a rotated credentials file is picked
/// up at the next refresh.
#[derive(Debug)]
struct BaseProvider {
    bootstrap: Arc<Bootstrap>,
    configured: Reloading,
}

impl ProvideCredentials for BaseProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self.bootstrap.get() {
            Some(c) => future::ProvideCredentials::ready(Ok(c)),
            None => self.configured.provide_credentials(),
        }
    }
}

/// A credentials source built anew for every call. aws-config's providers parse the profile
/// files once and keep what they read, which would pin the keys fintors started with; a daemon
/// that runs for weeks must sign its next STS call with the keys the files hold now.
#[derive(Clone)]
struct Reloading(Arc<dyn Fn() -> SharedCredentialsProvider + Send + Sync>);

impl Reloading {
    fn new(build: impl Fn() -> SharedCredentialsProvider + Send + Sync + 'static) -> Self {
        Reloading(Arc::new(build))
    }
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloading")
    }
}

impl ProvideCredentials for Reloading {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let provider = (self.0)();
        future::ProvideCredentials::new(async move { provider.provide_credentials().await })
    }
}

/// (region, source profile); `None` for the defaults.
type ClientKey = (Option<String>, Option<String>);

/// The real thing: STS `AssumeRole` through aws-sdk-sts.
pub struct Sts {
    base: SdkConfig,
    /// The endpoint configured for STS, if any ([`endpoint_override`]), for messages.
    endpoint_override: Option<String>,
    /// `credentials.file` of the config, for saying it is missing.
    base_file: Option<std::path::PathBuf>,
    /// How far this clock is from STS's, from every answer's `Date`.
    pub clock_watch: ClockWatch,
    /// Where the base credentials come from, for messages: `profile "identity"`.
    source: String,
    /// The base profile's name, to tell an expired SSO session from other failures.
    base_profile: String,
    clock: Clock,
    /// Base credentials handed over at run time, which win over the configured source.
    bootstrap: Arc<Bootstrap>,
    /// The base credentials are a named profile's, not the default chain's (where the
    /// environment, web identity or a container come before any profile).
    base_is_profile: bool,
    /// MFA sessions, for roles that need them.
    pub mfa: Arc<MfaSessions>,
    /// One client per (region, source profile) actually used: a role's `region` overrides the
    /// default, and an imported role's `source_profile` replaces the base credentials.
    clients: Mutex<HashMap<ClientKey, aws_sdk_sts::Client>>,
}

impl Sts {
    /// Loads the base credentials' provider and the standard region and endpoint settings
    /// (`AWS_REGION`, `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the profile's), never IMDS.
    pub async fn new(
        base_credentials: &BaseCredentials,
        mfa: MfaConfig,
        bootstrap: Arc<Bootstrap>,
        clock: Clock,
    ) -> Self {
        let (provider, region_chain) = match base_credentials {
            BaseCredentials::DefaultChain => (
                Reloading::new(|| {
                    SharedCredentialsProvider::new(
                        CredentialsProviderChain::first_try(
                            "Environment",
                            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                        )
                        .or_else(
                            "Profile",
                            aws_config::profile::ProfileFileCredentialsProvider::builder().build(),
                        )
                        .or_else(
                            "WebIdentityToken",
                            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                                .build(),
                        ),
                    )
                }),
                RegionProviderChain::first_try(
                    aws_config::environment::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(aws_config::profile::ProfileFileRegionProvider::new()),
            ),
            BaseCredentials::Profile { file, profile } => {
                let region = aws_config::profile::ProfileFileRegionProvider::builder()
                    .profile_files(profile_files(file.as_deref()))
                    .profile_name(profile)
                    .build();
                let (file, profile) = (file.clone(), profile.clone());
                (
                    Reloading::new(move || {
                        SharedCredentialsProvider::new(
                            aws_config::profile::ProfileFileCredentialsProvider::builder()
                                .profile_files(profile_files(file.as_deref()))
                                .profile_name(&profile)
                                .build(),
                        )
                    }),
                    RegionProviderChain::first_try(
                        aws_config::environment::EnvironmentVariableRegionProvider::new(),
                    )
                    .or_else(region),
                )
            }
        };
        let region_chain = region_chain.or_else(Region::new(FALLBACK_REGION));
        let provider = BaseProvider {
            bootstrap: bootstrap.clone(),
            configured: provider,
        };
        let base = aws_config::defaults(BehaviorVersion::latest())
            .credentials_provider(provider)
            .identity_cache(aws_config::identity::IdentityCache::no_cache())
            .region(region_chain)
            .timeout_config(timeouts())
            .load()
            .await;
        let endpoint_override = endpoint_override(&base);
        let clock_watch = ClockWatch::new(clock);
        let client = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&base)
                .interceptor(clock_watch.clone())
                .build(),
        );
        Sts {
            mfa: MfaSessions::new(
                mfa,
                endpoint(endpoint_override.as_deref(), &client),
                client,
                clock,
            ),
            endpoint_override,
            clock_watch,
            base_file: match base_credentials {
                BaseCredentials::Profile { file, .. } => file.clone(),
                BaseCredentials::DefaultChain => None,
            },
            base,
            source: match base_credentials {
                BaseCredentials::DefaultChain => "the default credential chain".to_owned(),
                BaseCredentials::Profile { profile, .. } => format!("profile \"{profile}\""),
            },
            base_profile: base_credentials.profile_name(),
            clock,
            bootstrap,
            base_is_profile: matches!(base_credentials, BaseCredentials::Profile { .. }),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, role: &Role) -> aws_sdk_sts::Client {
        let region = role.region.as_ref().map(|r| r.as_str().to_owned());
        let source = role.source_profile.clone();
        let mut clients = self.clients.lock().expect("sts client map poisoned");
        clients
            .entry((region.clone(), source.clone()))
            .or_insert_with(|| self.build_client(role, source.map(source_provider)))
            .clone()
    }

    /// A client for `role`'s region, signing with `credentials` instead of the base ones if given.
    fn build_client(
        &self,
        role: &Role,
        credentials: Option<SharedCredentialsProvider>,
    ) -> aws_sdk_sts::Client {
        let mut config =
            aws_sdk_sts::config::Builder::from(&self.base).interceptor(self.clock_watch.clone());
        if let Some(r) = &role.region {
            config = config.region(Region::new(r.as_str().to_owned()));
        }
        if let Some(credentials) = credentials {
            config = config.credentials_provider(credentials);
        }
        aws_sdk_sts::Client::from_conf(config.build())
    }
}

/// What signs for an imported role: its `source_profile`, read afresh for every call.
fn source_provider(profile: String) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Reloading::new(move || {
        SharedCredentialsProvider::new(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(&profile)
                .build(),
        )
    }))
}

/// The files a base profile is read from: the AWS config file (`AWS_CONFIG_FILE`, else
/// `~/.aws/config`) and the credentials file: `credentials.file` if it exists, else the
/// standard one (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), which aws-config
/// treats as empty when missing. An SSO user has `~/.aws/config` and no credentials file at all,
/// and a file named in the config but missing must be no different when the profile is in the
/// config file: if it is in neither, aws-config says the profile was not found. Looked at
/// afresh for every STS call, so a file created later is used.
fn profile_files(file: Option<&std::path::Path>) -> EnvConfigFiles {
    let builder = EnvConfigFiles::builder().include_default_config_file(true);
    match file {
        Some(file) if file.exists() => builder.with_file(EnvConfigFileKind::Credentials, file),
        Some(_) => builder,
        None => builder.include_default_credentials_file(true),
    }
    .build()
}

impl RoleAssumer for Sts {
    fn assume_role<'a>(&'a self, role: &'a Role) -> AssumeFuture<'a> {
        Box::pin(async move {
            let client = self.signing_client(role)?;
            self.renew_login(role).await?;
            self.assume(&client, role, Some(role.duration_seconds))
                .await
        })
    }

    fn console_session<'a>(&'a self, role: &'a Role) -> ConsoleFuture<'a> {
        Box::pin(async move {
            let client = self.signing_client(role)?;
            self.renew_login(role).await?;
            // An MFA session is temporary by definition; otherwise ask the provider what it
            // signs with (the profile's keys, SSO role credentials, a source profile's role...).
            let signer = match &role.source_profile {
                Some(profile) => Some(source_provider(profile.clone())),
                None => self.base.credentials_provider(),
            };
            let temporary = match (&role.mfa_serial, signer) {
                (Some(_), _) | (None, None) => true,
                (None, Some(provider)) => match provider.provide_credentials().await {
                    Ok(base) => base.session_token().is_some(),
                    Err(e) => {
                        let error = StsError::NoBaseCredentials(innermost(&e));
                        return Err(self.explain(error, role).await);
                    }
                },
            };
            if !temporary {
                return Ok(ConsoleSession::Cached);
            }
            self.assume(&client, role, None)
                .await
                .map(ConsoleSession::Fresh)
        })
    }

    fn signing_profile(&self, role: &Role) -> Option<String> {
        if role.mfa_serial.is_some() || role.via.is_some() {
            return None;
        }
        match &role.source_profile {
            Some(profile) => Some(profile.clone()),
            None if self.base_is_profile && self.bootstrap.get().is_none() => {
                Some(self.base_profile.clone())
            }
            None => None,
        }
    }

    fn assume_role_as<'a>(&'a self, role: &'a Role, signer: Credentials) -> AssumeFuture<'a> {
        Box::pin(async move {
            let client = self.build_client(role, Some(signing_with(signer)));
            let duration = role.duration_seconds.min(CHAINED_MAX_SECONDS);
            self.assume(&client, role, Some(duration)).await
        })
    }

    fn console_session_as<'a>(&'a self, role: &'a Role, signer: Credentials) -> ConsoleFuture<'a> {
        Box::pin(async move {
            let client = self.build_client(role, Some(signing_with(signer)));
            self.assume(&client, role, None)
                .await
                .map(ConsoleSession::Fresh)
        })
    }
}

/// A provider of exactly `credentials`: another role's session, which signs a chained role's
/// AssumeRole.
fn signing_with(credentials: Credentials) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key.expose(),
        Some(credentials.session_token.expose().to_owned()),
        Some(credentials.expiration.into()),
        "fintors-via",
    ))
}

impl Sts {
    /// The client that signs `role`'s AssumeRole: the MFA session's for a role that needs MFA
    /// (not cached: the session changes when a new code arrives), else the shared one for its
    /// region and source profile.
    fn signing_client(&self, role: &Role) -> Result<aws_sdk_sts::Client, StsError> {
        match &role.mfa_serial {
            None => Ok(self.client(role)),
            Some(serial) => {
                let Some(session) = self.mfa.current(serial) else {
                    return Err(self.mfa.required(serial));
                };
                Ok(self.build_client(role, Some(SharedCredentialsProvider::new(session))))
            }
        }
    }

    /// One AssumeRole of `role`, for `duration` seconds (STS's default of one hour if `None`).
    async fn assume(
        &self,
        client: &aws_sdk_sts::Client,
        role: &Role,
        duration: Option<u32>,
    ) -> Result<Credentials, StsError> {
        let Some(arn) = &role.arn else {
            return Err(super::assumer::unchainable(role));
        };
        let output = client
            .assume_role()
            .role_arn(arn.as_str())
            .role_session_name(role.session_name.as_str())
            .set_duration_seconds(duration.map(|d| d as i32))
            .set_external_id(role.external_id.as_ref().map(|e| e.as_str().to_owned()))
            .send()
            .await;
        match output {
            Ok(output) => session_credentials(output.credentials(), "AssumeRole"),
            Err(e) => {
                let error = classify(e, &endpoint(self.endpoint_override.as_deref(), client));
                Err(self.explain(error, role).await)
            }
        }
    }
}

impl Sts {
    /// Before base credentials that come from an IAM Identity Center login are loaded: its
    /// access token renewed first if it is about to expire, once for every caller (see
    /// `sso::usable_token`), so aws-config, which would renew it within 5 minutes of its expiry
    /// under no lock of fintors's, never spends the refresh token beside the daemon's renewal;
    /// and a login that has ended is the one-line error with the command that fixes it, with no
    /// call to Identity Center. Roles not signed by a profile's credentials are left alone.
    async fn renew_login(&self, role: &Role) -> Result<(), StsError> {
        let Some(profile) = self.signing_profile(role) else {
            return Ok(());
        };
        let Ok(files) = crate::config::aws_profiles::load().await else {
            return Ok(());
        };
        let Some(login) = SsoLogin::in_profiles(&files, &profile) else {
            return Ok(());
        };
        let Ok(session) = login.sso_session_in(&files) else {
            return Ok(());
        };
        crate::sso::usable_token(&session)
            .await
            .map(|_| ())
            .map_err(|e| {
                super::error::token_failure(e, || {
                    login
                        .explain(self.clock.now())
                        .unwrap_or_else(|| login.login_required("has ended"))
                })
            })
    }

    /// A failure to load base credentials from an IAM Identity Center session that has expired
    /// (or was never logged in) says so, with the login command; other failures to load them
    /// say which ones, and where to fix them.
    async fn explain(&self, error: StsError, role: &Role) -> StsError {
        if matches!(error, StsError::NoBaseCredentials(_)) {
            let profile = role.source_profile.as_deref().unwrap_or(&self.base_profile);
            if let Some(login) = SsoLogin::of_profile(profile).await
                && let Some(expired) = login.explain(self.clock.now())
            {
                return expired;
            }
            if let Some(why) = self.missing_profile(role).await {
                return StsError::NoBaseCredentials(why);
            }
        }
        self.name_the_source(error, role)
    }

    /// A missing file or profile behind `role`'s signing credentials, said with its fix.
    async fn missing_profile(&self, role: &Role) -> Option<String> {
        if self.bootstrap.get().is_some() {
            return None;
        }
        match &role.source_profile {
            Some(profile) => {
                let why = profiles::why_not(None, profile).await?;
                Some(format!("source_profile of role {}: {why}", role.alias))
            }
            None if self.base_is_profile => {
                let why = profiles::why_not(self.base_file.as_deref(), &self.base_profile).await?;
                Some(format!(
                    "base credentials: {why}; fix \"credentials\" in the config"
                ))
            }
            None => None,
        }
    }

    fn name_the_source(&self, error: StsError, role: &Role) -> StsError {
        match error {
            StsError::NoBaseCredentials(why) => {
                let source = match &role.source_profile {
                    Some(profile) => format!("source profile \"{profile}\" of role {}", role.alias),
                    None => self.source.clone(),
                };
                StsError::NoBaseCredentials(format!(
                    "cannot load the base credentials ({source}): {why}; check the \
                     \"credentials\" section of the config and the AWS config and credentials \
                     files"
                ))
            }
            other => other,
        }
    }
}
