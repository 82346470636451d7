//! Back online: when the machine's addresses or routes change (Wi-Fi joined, a VPN up), every
//! role whose last attempt got no answer is tried again at once, rather than at the end of a
//! backoff that may have grown to five minutes while the laptop was offline. Roles STS refused
//! keep their backoff. Without word from the kernel (not Linux), a request still finds the
//! network back within [`NO_ANSWER_RETRY`](super::cache::NO_ANSWER_RETRY).

use std::sync::Arc;
use std::time::Duration;

use super::Registry;
use crate::platform::network::Changes;

/// How long a change is left to settle before the retry: joining a network brings an address,
/// then routes, then DNS over a few hundred milliseconds; one retry after them all, not one per
/// message and not before the default route exists.
const SETTLE: Duration = Duration::from_millis(750);

/// Watches for network changes for as long as the daemon runs. Returns at once (logging why at
/// debug) where changes cannot be watched.
pub fn retry_when_the_network_changes(registry: Arc<Registry>) {
    let changes = match Changes::subscribe() {
        Ok(changes) => changes,
        Err(e) => {
            tracing::debug!("not watching for network changes: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            if let Err(e) = changes.next().await {
                tracing::debug!("stopped watching for network changes: {e}");
                return;
            }
            tokio::time::sleep(SETTLE).await;
            changes.discard();
            tracing::debug!("the network changed: retrying the roles nothing answered");
            registry.retry_unanswered().await;
        }
    });
}
