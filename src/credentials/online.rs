//! Back online: when the machine's addresses or routes change (Wi-Fi joined, a VPN up), every
//! role whose last attempt got no answer is tried again at once, rather than at the end of a
//! backoff that may have grown to five minutes while the laptop was offline. Roles STS refused
//! keep their backoff. Without word from the kernel (not Linux), a request still finds the
//! network back within [`NO_ANSWER_RETRY`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Registry;
use super::cache::NO_ANSWER_RETRY;
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
    // Changes keep coming on some machines (containers starting, a VPN rewriting routes): one
    // retry at most every NO_ANSWER_RETRY, as often as requests may cause one, whatever comes
    // in between; a change is never dropped, only folded into the next retry.
    let spacing = NO_ANSWER_RETRY.to_std().expect("a positive interval");
    tokio::spawn(async move {
        let mut last: Option<Instant> = None;
        loop {
            if let Err(e) = changes.next().await {
                tracing::debug!("stopped watching for network changes: {e}");
                return;
            }
            let settled = Instant::now() + SETTLE;
            let due = last.map_or(settled, |last| settled.max(last + spacing));
            tokio::time::sleep_until(due).await;
            changes.discard();
            last = Some(Instant::now());
            tracing::debug!("the network changed: retrying the roles nothing answered");
            registry.retry_unanswered().await;
        }
    });
}
