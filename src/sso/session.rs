//! An `[sso-session NAME]` section of the AWS config file, read as the sign-in needs it: the
//! start URL, the region of SSO OIDC, and the scopes to register for.

use aws_config::profile::ProfileSet;

use super::SsoError;
use crate::config::aws_profiles;

/// The scope that lets a login list and use accounts, and that makes Identity Center issue
/// refresh tokens: what the AWS CLI asks for when a session names none.
pub const DEFAULT_SCOPE: &str = "sso:account:access";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The section's name: `corp` for `[sso-session corp]`; the start URL for a legacy
    /// profile's login.
    pub name: String,
    /// A legacy profile's login (`sso_start_url` and `sso_region` in the profile itself, no
    /// `[sso-session]`): its token is cached under its start URL, and its registration under
    /// no session name, as the AWS CLI caches them.
    pub legacy: bool,
    pub start_url: String,
    /// `sso_region`: where SSO OIDC and the portal are.
    pub region: String,
    /// `sso_registration_scopes`, as written (`None`: the line is absent). The registration
    /// cache's name depends on exactly this, as the AWS CLI names it.
    pub configured_scopes: Option<Vec<String>>,
}

impl Session {
    /// The session `name` of the AWS config file, or what to add to it.
    pub async fn load(name: &str) -> Result<Session, SsoError> {
        let profiles = aws_profiles::load().await.map_err(SsoError::Config)?;
        Session::of(&profiles, name)
    }

    /// The session `name` of profiles already read.
    pub fn of(profiles: &ProfileSet, name: &str) -> Result<Session, SsoError> {
        let section = profiles.sso_session(name).ok_or_else(|| {
            SsoError::Config(format!(
                "the AWS config file has no [sso-session {name}]: add it with sso_start_url and \
                 sso_region"
            ))
        })?;
        let setting = |key: &str| {
            section
                .get(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    SsoError::Config(format!(
                        "[sso-session {name}] in the AWS config file has no {key}: add it"
                    ))
                })
        };
        Ok(Session {
            name: name.to_owned(),
            legacy: false,
            start_url: setting("sso_start_url")?,
            region: setting("sso_region")?,
            configured_scopes: section.get("sso_registration_scopes").map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        })
    }

    /// The login of the legacy profile `profile` (`sso_start_url` and `sso_region` in the
    /// profile), or what to add to it.
    pub async fn load_legacy(profile: &str) -> Result<Session, SsoError> {
        let profiles = aws_profiles::load().await.map_err(SsoError::Config)?;
        Session::of_legacy(&profiles, profile)
    }

    /// [`Session::load_legacy`] in profiles already read.
    pub fn of_legacy(profiles: &ProfileSet, profile: &str) -> Result<Session, SsoError> {
        let setting = |key: &str| {
            profiles
                .get_profile(profile)
                .and_then(|p| p.get(key))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    SsoError::Config(format!(
                        "profile {profile} in the AWS config file has no {key}: add it, or an \
                         sso_session"
                    ))
                })
        };
        let start_url = setting("sso_start_url")?;
        Ok(Session {
            name: start_url.clone(),
            legacy: true,
            start_url,
            region: setting("sso_region")?,
            configured_scopes: None,
        })
    }

    /// What the token file is named after: the session's name, or a legacy login's start URL.
    pub fn token_key(&self) -> &str {
        &self.name
    }

    /// The scopes to register and sign in with: those configured, else `sso:account:access`.
    pub fn scopes(&self) -> Vec<String> {
        match &self.configured_scopes {
            Some(scopes) if !scopes.is_empty() => scopes.clone(),
            _ => vec![DEFAULT_SCOPE.to_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn profiles(text: &str) -> ProfileSet {
        let fs = aws_types::os_shim_internal::Fs::from_slice(&[("/c", text)]);
        let env = aws_types::os_shim_internal::Env::from_slice(&[
            ("AWS_CONFIG_FILE", "/c"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/none"),
            ("HOME", "/home/u"),
        ]);
        aws_profiles::load_from(&fs, &env).await.unwrap()
    }

    #[tokio::test]
    async fn a_session_is_read_with_its_scopes_split_on_commas() {
        let p = profiles(
            "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n\
             sso_region = eu-west-1\nsso_registration_scopes = sso:account:access, extra\n",
        )
        .await;
        let s = Session::of(&p, "corp").unwrap();
        assert_eq!(s.start_url, "https://corp.awsapps.com/start");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.scopes(), ["sso:account:access", "extra"]);
    }

    #[tokio::test]
    async fn a_session_without_scopes_signs_in_for_account_access() {
        let p = profiles(
            "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n\
             sso_region = eu-west-1\n",
        )
        .await;
        let s = Session::of(&p, "corp").unwrap();
        assert_eq!(s.configured_scopes, None);
        assert_eq!(s.scopes(), [DEFAULT_SCOPE]);
    }

    #[tokio::test]
    async fn a_legacy_profile_is_a_login_named_by_its_start_url() {
        let p = profiles(
            "[profile old]\nsso_start_url = https://corp.awsapps.com/start\n\
             sso_region = eu-west-1\nsso_account_id = 111122223333\nsso_role_name = Admin\n",
        )
        .await;
        let s = Session::of_legacy(&p, "old").unwrap();
        assert!(s.legacy);
        assert_eq!(s.token_key(), "https://corp.awsapps.com/start");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(
            s.scopes(),
            [DEFAULT_SCOPE],
            "renewable, unlike the AWS CLI's"
        );
        let none = Session::of_legacy(&p, "other").unwrap_err().to_string();
        assert!(none.contains("profile other"), "{none}");
    }

    #[tokio::test]
    async fn a_missing_session_or_setting_says_what_to_add() {
        let p = profiles("[sso-session corp]\nsso_start_url = https://x/start\n").await;
        let missing = Session::of(&p, "other").unwrap_err().to_string();
        assert!(missing.contains("no [sso-session other]"), "{missing}");
        let region = Session::of(&p, "corp").unwrap_err().to_string();
        assert!(region.contains("has no sso_region"), "{region}");
    }
}
