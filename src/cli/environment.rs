//! What in a shell's environment keeps its SDKs from fintors: the variables that win over IMDS
//! and the container endpoint in the SDKs' default chains, or stop them from asking IMDS. What
//! `fintors doctor` fails on, and `fintors env` and `status` warn about; and where the tools
//! that read no region from IMDS would find one.

use crate::config::aws_profiles;

/// The variables that, set alone, make the SDKs' default chains stop before IMDS and the
/// container endpoint (or fail there): environment keys (half a pair is an error in botocore),
/// a selected profile, web identity, the relative container URI. A session token or a role
/// ARN alone does not (`pin::OVERRIDING`, what a pinned process loses, is wider).
const WINNING: [&str; 6] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// One thing found in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Keeps SDKs from fintors's credentials: what and the fix.
    Wins(String),
    /// The shell is pinned to a role of fintors's container endpoint: worth knowing.
    Pinned(String),
}

/// What `env` (a variable's value, empty counting as unset) holds that matters to SDKs that
/// should find fintors.
pub fn findings(env: &dyn Fn(&str) -> Option<String>) -> Vec<Finding> {
    let pinned = env("FINTORS_ROLE");
    let mut found = Vec::new();
    for name in WINNING {
        if env(name).is_some() {
            found.push(Finding::Wins(format!(
                "{name} is set in this shell: SDKs use it before fintors's credentials; unset {name}"
            )));
        }
    }
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        found.push(Finding::Wins(
            "AWS_EC2_METADATA_DISABLED=true: SDKs never ask IMDS; unset AWS_EC2_METADATA_DISABLED"
                .into(),
        ));
    }
    // fintors pins a shell to its own container endpoint on loopback (or, in a container,
    // the bridge address `network up --containers` serves).
    let fintors_uri = |uri: &str| {
        uri.starts_with("http://127.0.0.1:") || uri.starts_with("http://169.254.170.2/")
    };
    match (env("AWS_CONTAINER_CREDENTIALS_FULL_URI"), &pinned) {
        (Some(uri), Some(role)) if fintors_uri(&uri) => found.push(Finding::Pinned(format!(
            "this shell is pinned to {role} (the container endpoint): `fintors_unpin` follows the \
             active role again"
        ))),
        (Some(uri), _) => found.push(Finding::Wins(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI={uri}: SDKs ask it before IMDS; unset it, or pin \
             with `fintors env --role ROLE`"
        ))),
        (None, _) => {}
    }
    found
}

/// The [`Finding::Wins`] of this process's own environment: the warnings `fintors env` and
/// `status` print.
pub fn warnings() -> Vec<String> {
    findings(&variable)
        .into_iter()
        .filter_map(|finding| match finding {
            Finding::Wins(text) => Some(text),
            Finding::Pinned(_) => None,
        })
        .collect()
}

/// Where botocore (and so the AWS CLI v1) finds a region in this environment, and so where
/// `fintors env` need not give it one: `AWS_DEFAULT_REGION`, else the selected profile's
/// `region`. They never read `AWS_REGION`, nor the instance metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotocoreRegion {
    Variable(String),
    Profile { region: String, profile: String },
}

/// The region botocore would use in `env`, if any.
pub async fn botocore_region(env: &dyn Fn(&str) -> Option<String>) -> Option<BotocoreRegion> {
    if let Some(region) = env("AWS_DEFAULT_REGION") {
        return Some(BotocoreRegion::Variable(region));
    }
    let profile = env("AWS_PROFILE")
        .or_else(|| env("AWS_DEFAULT_PROFILE"))
        .unwrap_or_else(|| "default".to_owned());
    let files = aws_profiles::load().await.ok()?;
    let region = files.get_profile(&profile)?.get("region")?.to_owned();
    Some(BotocoreRegion::Profile { region, profile })
}

/// This process's environment as [`findings`] and [`botocore_region`] read it: a variable
/// set to the empty string counts as unset.
pub fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
