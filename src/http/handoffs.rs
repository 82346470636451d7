//! The console sign-ins waiting for the browser (`fintors console`'s one-use loopback links,
//! served by [`super::console`]): each sign-in URL under a random nonce, taken once, for a
//! minute at most. Shared state, kept in [`super::AppState`], apart from the handler that
//! reads it.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{Clock, Secret};

/// How long a handoff waits for the browser.
const VALID_FOR: TimeDelta = TimeDelta::seconds(60);
/// Sign-ins waiting at once; the oldest goes first. A person opens one at a time.
const MAX_PENDING: usize = 16;

/// Sign-in URLs waiting for the browser, each under a random nonce.
pub struct Handoffs {
    clock: Clock,
    pending: Mutex<Vec<Pending>>,
}

struct Pending {
    nonce: Secret,
    url: Secret,
    until: DateTime<Utc>,
}

impl Handoffs {
    pub fn new(clock: Clock) -> Handoffs {
        Handoffs {
            clock,
            pending: Mutex::default(),
        }
    }

    /// Keeps `url` for the browser; the nonce that fetches it once.
    pub fn offer(&self, url: Secret) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut pending = self.pending.lock().expect("poisoned");
        let now = self.clock.now();
        pending.retain(|p| p.until > now);
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push(Pending {
            nonce: Secret::new(nonce.clone()),
            url,
            until: now + VALID_FOR,
        });
        nonce
    }

    /// The URL kept under `nonce`, if it is still waiting; never again after.
    pub fn take(&self, nonce: &str) -> Option<Secret> {
        let mut pending = self.pending.lock().expect("poisoned");
        let now = self.clock.now();
        pending.retain(|p| p.until > now);
        let i = pending
            .iter()
            .position(|p| p.nonce.matches(nonce.as_bytes()))?;
        Some(pending.remove(i).url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoffs() -> Handoffs {
        Handoffs::new(Clock::system())
    }

    #[test]
    fn a_handoff_is_taken_once_and_only_with_its_nonce() {
        let handoffs = handoffs();
        let nonce = handoffs.offer(Secret::new("https://signin/x"));
        assert_eq!(nonce.len(), 32);
        assert!(handoffs.take("0".repeat(32).as_str()).is_none());
        assert_eq!(
            handoffs.take(&nonce).map(|u| u.expose().to_owned()),
            Some("https://signin/x".to_owned())
        );
        assert!(handoffs.take(&nonce).is_none(), "used");
    }

    #[test]
    fn only_the_latest_handoffs_wait() {
        let handoffs = handoffs();
        let first = handoffs.offer(Secret::new("first"));
        for _ in 0..MAX_PENDING {
            handoffs.offer(Secret::new("later"));
        }
        assert!(handoffs.take(&first).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_handoff_waits_a_minute_for_the_browser_and_no_longer() {
        let handoffs = Handoffs::new(Clock::following_tokio(Utc::now()));
        let early = handoffs.offer(Secret::new("early"));
        let late = handoffs.offer(Secret::new("late"));
        tokio::time::advance(std::time::Duration::from_secs(59)).await;
        assert!(handoffs.take(&early).is_some(), "within the minute");
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert!(handoffs.take(&late).is_none(), "past the minute");
    }
}
