//! `"aws_profiles": true`: every profile in the AWS config file that has a `role_arn`, names a
//! permission set (`sso_account_id`, `sso_role_name`) or runs a `credential_process` becomes a
//! role, so users keep one source of truth.
//!
//! The file is read with the SDK's own parser (the same one the profile credentials use), and each
//! profile goes through the same validation as a role written in the fintors config. The alias is
//! the profile name; `source_profile` says whose credentials assume the role; `role_session_name`,
//! `duration_seconds`, `external_id` and `region` carry over. A profile fintors cannot serve is
//! skipped with a reason, never silently.

use aws_config::profile::ProfileSet;
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

use super::RawRole;
use crate::model::Role;

/// The roles the profiles define, and why others were skipped.
#[derive(Debug, Default)]
pub struct Imported {
    pub roles: Vec<Role>,
    pub skipped: Vec<String>,
}

/// Reads the AWS config (and credentials) files from their standard places.
pub async fn load() -> Result<ProfileSet, String> {
    load_from(&Fs::real(), &Env::real()).await
}

/// [`load`] with the file system and environment given, so tests and the fuzz targets can parse
/// in-memory files without reading the real home directory.
pub async fn load_from(fs: &Fs, env: &Env) -> Result<ProfileSet, String> {
    aws_config::profile::load(fs, env, &EnvConfigFiles::default(), None)
        .await
        .map_err(|e| format!("the AWS config file cannot be read: {e}"))
}

/// Which of the standard AWS files gives the `default` profile credentials of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultCredentials {
    /// None: an SDK with no profile selected goes on down its chain, to fintors.
    Neither,
    /// The credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    CredentialsFile,
    /// The config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
    ConfigFile,
}

impl DefaultCredentials {
    /// What to tell a user whose `default` profile wins over fintors in every SDK that has no
    /// profile selected; `None` when nothing does.
    pub fn shadowing_fintors(self) -> Option<String> {
        let file = match self {
            DefaultCredentials::Neither => return None,
            DefaultCredentials::CredentialsFile => "credentials",
            DefaultCredentials::ConfigFile => "config",
        };
        Some(format!(
            "the default profile in the AWS {file} file has credentials, which SDKs use before \
             fintors's: move them to a named profile and set \"credentials\": {{\"profile\": NAME}}"
        ))
    }
}

/// The keys that make a profile a credential source. Every SDK's default chain asks the
/// selected profile (`default` when none is) before the container and IMDS providers, so a
/// `default` profile with any of these wins over fintors: botocore's
/// `credentials.create_credential_resolver`, Go v2's `config.resolveCredentialChain`, JS v3's
/// `defaultProvider` (fromIni before remote providers), aws-config's `DefaultCredentialsChain`.
const CREDENTIAL_KEYS: [&str; 7] = [
    "aws_access_key_id",
    "credential_process",
    "role_arn",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "web_identity_token_file",
];

/// Where, if anywhere, the `default` profile has credentials an SDK would use before fintors's.
/// A file that cannot be read counts as giving none: the SDKs would not read it either.
pub async fn default_credentials() -> DefaultCredentials {
    use aws_runtime::env_config::file::EnvConfigFileKind;
    let has_credentials = |files: EnvConfigFiles| async move {
        aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
            .await
            .ok()
            .and_then(|set| {
                set.get_profile("default")
                    .map(|p| CREDENTIAL_KEYS.iter().any(|k| p.get(k).is_some()))
            })
            .unwrap_or(false)
    };
    let only = |kind| {
        let builder = EnvConfigFiles::builder();
        match kind {
            EnvConfigFileKind::Credentials => builder.include_default_credentials_file(true),
            _ => builder.include_default_config_file(true),
        }
        .build()
    };
    if has_credentials(only(EnvConfigFileKind::Credentials)).await {
        DefaultCredentials::CredentialsFile
    } else if has_credentials(only(EnvConfigFileKind::Config)).await {
        DefaultCredentials::ConfigFile
    } else {
        DefaultCredentials::Neither
    }
}

/// A profile that names a permission set (`sso_session`, `sso_account_id`, `sso_role_name`) as
/// a role. A legacy profile (`sso_start_url` of its own, no session) is left alone: the portal
/// is asked with a session's login.
fn permission_set(profile: &aws_config::profile::Profile) -> Option<RawRole> {
    Some(RawRole {
        sso_session: Some(profile.get("sso_session")?.to_owned()),
        account_id: Some(profile.get("sso_account_id")?.to_owned()),
        role_name: Some(profile.get("sso_role_name")?.to_owned()),
        region: profile.get("region").map(str::to_owned),
        ..RawRole::default()
    })
}

/// A profile whose credentials come from a command (`credential_process`) as a role of its own.
fn credential_command(profile: &aws_config::profile::Profile) -> Option<RawRole> {
    Some(RawRole {
        credential_process: Some(profile.get("credential_process")?.to_owned()),
        region: profile.get("region").map(str::to_owned),
        ..RawRole::default()
    })
}

pub fn roles_from(profiles: &ProfileSet) -> Imported {
    let mut imported = Imported::default();
    let mut names: Vec<&str> = profiles.profiles().collect();
    names.sort_unstable();
    for name in names {
        let Some(profile) = profiles.get_profile(name) else {
            continue;
        };
        let Some(arn) = profile.get("role_arn") else {
            if let Some(raw) = permission_set(profile).or_else(|| credential_command(profile)) {
                match raw.validate(name) {
                    Ok(role) => imported.roles.push(role),
                    Err(wrong) => {
                        let why: Vec<String> =
                            wrong.iter().map(|(f, e)| format!("{f}: {e}")).collect();
                        imported.skipped.push(format!(
                            "AWS profile \"{name}\" skipped: {}",
                            why.join("; ")
                        ));
                    }
                }
            }
            continue;
        };
        let skip = |why: String| format!("AWS profile \"{name}\" skipped: {why}");
        let source_profile = match (
            profile.get("source_profile"),
            profile.get("credential_source"),
        ) {
            (Some(source), _) => Some(source.to_owned()),
            (None, Some("Environment")) | (None, None) => None,
            (None, Some(other)) => {
                imported.skipped.push(skip(format!(
                    "credential_source = {other} is not supported (only Environment: fintors \
                     never asks a metadata service, which would be itself)"
                )));
                continue;
            }
        };
        let duration_seconds = match profile.get("duration_seconds").map(str::parse::<i64>) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(_)) => {
                imported
                    .skipped
                    .push(skip("duration_seconds is not a number".into()));
                continue;
            }
        };
        let raw = RawRole {
            arn: arn.to_owned(),
            session_name: profile.get("role_session_name").map(str::to_owned),
            duration_seconds,
            external_id: profile.get("external_id").map(str::to_owned),
            region: profile.get("region").map(str::to_owned),
            mfa_serial: profile.get("mfa_serial").map(str::to_owned),
            ..RawRole::default()
        };
        match raw.validate(name) {
            Ok(mut role) => {
                role.source_profile = source_profile;
                imported.roles.push(role);
            }
            Err(wrong) => {
                let why: Vec<String> = wrong.iter().map(|(f, e)| format!("{f}: {e}")).collect();
                imported.skipped.push(skip(why.join("; ")));
            }
        }
    }
    imported
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn import(config: &str) -> Imported {
        let fs = Fs::from_slice(&[("/home/u/.aws/config", config)]);
        let env = Env::from_slice(&[("HOME", "/home/u")]);
        let profiles = load_from(&fs, &env).await.unwrap();
        roles_from(&profiles)
    }

    #[tokio::test]
    async fn a_profile_with_a_credential_process_is_a_role_that_runs_it() {
        let imported = import(
            "[profile okta]\ncredential_process = okta-aws-cli web --format credential-process\n\
             region = eu-west-1\n",
        )
        .await;
        assert_eq!(imported.roles.len(), 1, "{:?}", imported.skipped);
        let okta = &imported.roles[0];
        assert_eq!(okta.alias.as_str(), "okta");
        assert_eq!(okta.kind(), "process");
        assert_eq!(okta.arn, None);
        assert_eq!(okta.region.as_ref().unwrap().as_str(), "eu-west-1");
        let crate::model::RoleSource::Process(process) = &okta.source else {
            panic!("{:?}", okta.source);
        };
        assert_eq!(
            process.command,
            "okta-aws-cli web --format credential-process"
        );
    }

    #[tokio::test]
    async fn profiles_with_role_arn_become_roles() {
        let imported = import(
            "[default]\nregion = us-east-1\n\
             [profile dev]\nrole_arn = arn:aws:iam::111111111111:role/dev\nsource_profile = base\n\
             role_session_name = alice\nduration_seconds = 7200\nexternal_id = ext-123\nregion = eu-west-1\n\
             mfa_serial = arn:aws:iam::111111111111:mfa/alice\n\
             [profile base]\naws_access_key_id = AKIA\n",
        )
        .await;
        assert_eq!(imported.roles.len(), 1, "{:?}", imported.skipped);
        let dev = &imported.roles[0];
        assert_eq!(dev.alias.as_str(), "dev");
        assert_eq!(dev.arn.as_ref().unwrap().account_id(), "111111111111");
        assert_eq!(dev.session_name.as_str(), "alice");
        assert_eq!(dev.duration_seconds, 7200);
        assert_eq!(dev.external_id.as_ref().unwrap().as_str(), "ext-123");
        assert_eq!(dev.region.as_ref().unwrap().as_str(), "eu-west-1");
        assert_eq!(dev.source_profile.as_deref(), Some("base"));
        assert_eq!(
            dev.mfa_serial.as_ref().unwrap().as_str(),
            "arn:aws:iam::111111111111:mfa/alice"
        );
    }

    #[tokio::test]
    async fn unservable_profiles_are_skipped_with_a_reason() {
        let imported = import(
            "[profile imds]\nrole_arn = arn:aws:iam::111111111111:role/a\ncredential_source = Ec2InstanceMetadata\n\
             [profile bad]\nrole_arn = arn:aws:iam::111:role/a\nsource_profile = b\n",
        )
        .await;
        assert!(imported.roles.is_empty());
        let reasons = imported.skipped.join("\n");
        assert!(
            reasons.contains("\"imds\" skipped: credential_source = Ec2InstanceMetadata"),
            "{reasons}"
        );
        assert!(reasons.contains("\"bad\" skipped: arn:"), "{reasons}");
    }

    #[tokio::test]
    async fn profiles_naming_a_permission_set_become_permission_set_roles() {
        let imported = import(
            "[profile payments-dev]\nsso_session = corp\nsso_account_id = 111122223333\n\
             sso_role_name = Developer\nregion = eu-west-1\n\
             [profile legacy]\nsso_start_url = https://old.awsapps.com/start\n\
             sso_account_id = 111122223333\nsso_role_name = Developer\n\
             [profile broken]\nsso_session = corp\nsso_account_id = 42\nsso_role_name = Developer\n\
             [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
        )
        .await;
        assert_eq!(imported.roles.len(), 1, "{:?}", imported.skipped);
        let dev = &imported.roles[0];
        assert_eq!(dev.alias.as_str(), "payments-dev");
        assert_eq!(
            dev.source,
            crate::model::RoleSource::PermissionSet(crate::model::PermissionSet {
                sso_session: "corp".into(),
                account_id: "111122223333".into(),
                role_name: "Developer".into(),
                account_name: None,
            })
        );
        assert_eq!(dev.region.as_ref().unwrap().as_str(), "eu-west-1");
        let reasons = imported.skipped.join("\n");
        assert!(
            reasons.contains("\"broken\" skipped: account_id/role_name"),
            "{reasons}"
        );
    }
}
