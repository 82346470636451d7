//! Refresh ahead: once a role has credentials, one background task per role renews them before
//! they run short, for as long as someone wants the role, and then lets them lapse.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::RoleCache;

/// The refresher re-reads the wall clock at least this often, so a laptop waking from sleep
/// refreshes promptly instead of when a monotonic timer finally fires.
const WAKE_SLICE: Duration = Duration::from_secs(60);

impl RoleCache {
    /// Starts the background refresher unless it is already running.
    pub(super) fn ensure_refresher(self: &Arc<Self>) {
        if self
            .refresher_running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tokio::spawn(self.clone().refresh_loop());
        }
    }

    /// Someone still needs this role: it is active, or was asked for within one session length.
    /// A role never asked for (made active by a reload, then switched away from) is not: the
    /// subtraction saturates rather than overflowing from [`NEVER_ASKED`](super::NEVER_ASKED).
    pub(crate) fn wanted(&self, now: DateTime<Utc>) -> bool {
        self.pinned.load(Ordering::Relaxed)
            || now
                .timestamp()
                .saturating_sub(self.last_access.load(Ordering::Relaxed))
                <= i64::from(self.role.duration_seconds)
    }

    async fn refresh_loop(self: Arc<Self>) {
        loop {
            self.refresh_while_wanted().await;
            self.refresher_running.store(false, Ordering::Release);
            // A request may have arrived between the last check and the flag going down.
            if !self.wanted(self.clock.now())
                || self
                    .refresher_running
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                return;
            }
        }
    }

    async fn refresh_while_wanted(&self) {
        loop {
            let wake_at = self.next_refresh_at();
            loop {
                let now = self.clock.now();
                if now >= wake_at {
                    break;
                }
                let left = (wake_at - now).to_std().unwrap_or_default();
                tokio::time::sleep(left.min(WAKE_SLICE)).await;
            }
            if !self.wanted(self.clock.now()) {
                tracing::debug!(role = %self.role.alias, "not used lately; letting it lapse");
                return;
            }
            let mut failures = self.flight.lock().await;
            // A request may have refreshed, or a failure pushed the next attempt out, meanwhile.
            if self.clock.now() >= self.next_refresh_at() {
                let _ = self.call_sts(&mut failures).await;
            }
        }
    }

    /// When the background task should next call STS: at the planned refresh time, or after a
    /// failure at its retry time, whichever the latest event calls for.
    fn next_refresh_at(&self) -> DateTime<Utc> {
        let current = self.current.read().expect("poisoned").clone();
        match (current, self.last_failure()) {
            (Some(c), Some(f)) if f.at >= c.fetched_at => c.refresh_at.max(f.retry_at),
            (Some(c), _) => c.refresh_at,
            (None, Some(f)) => f.retry_at,
            (None, None) => self.clock.now(),
        }
    }
}
