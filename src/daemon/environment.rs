//! What the daemon takes from its environment variables, each checked at start, so a typo is
//! one line now rather than a failure later.

use super::DaemonError;
use crate::credentials::FALLBACK_REGION;
use crate::credentials::console::FederationEndpoint;
use crate::model::{Region, Secret};

/// `FINTORS_ADMIN_TOKEN`, when set: the admin API's bearer token.
pub(super) fn admin_token() -> Option<Secret> {
    std::env::var("FINTORS_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

/// `FINTORS_FEDERATION_ENDPOINT`, checked at start so a typo is one line now rather than a
/// failed `fintors console` later.
pub(super) fn federation_endpoint() -> Result<Option<FederationEndpoint>, DaemonError> {
    match std::env::var("FINTORS_FEDERATION_ENDPOINT") {
        Ok(url) if !url.is_empty() => FederationEndpoint::parse(&url)
            .map(Some)
            .map_err(DaemonError::Federation),
        _ => Ok(None),
    }
}

/// The region of the instance when neither the config nor the active role names one: the
/// standard variables, else STS's fallback.
pub(super) fn default_region() -> Region {
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(value) = std::env::var(name).ok().filter(|r| !r.is_empty()) {
            match Region::parse(&value) {
                Ok(region) => return region,
                Err(e) => tracing::warn!("{name} ignored: {e}"),
            }
        }
    }
    Region::parse(FALLBACK_REGION).expect("the fallback is a region")
}
