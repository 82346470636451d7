//! Wall-clock time, swappable in tests.
//!
//! Credential validity is decided on the wall clock, never on a monotonic one: on Linux the
//! monotonic clock stops while a laptop sleeps, so a cache that trusted it would serve credentials
//! that expired during the night. Tests follow tokio's paused clock instead, so hours of refresh
//! behaviour run in milliseconds.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a fixed start that advances with tokio's (pausable) time.
    anchor: Option<(DateTime<Utc>, tokio::time::Instant)>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { anchor: None }
    }

    /// A clock that starts at `start` and advances only as tokio's time does (tests pause it).
    pub fn following_tokio(start: DateTime<Utc>) -> Self {
        Clock {
            anchor: Some((start, tokio::time::Instant::now())),
        }
    }

    /// [`Clock::now`] in whole seconds since the Unix epoch (rounded down), without the
    /// calendar: all the hot path needs. Converting to dates and back cost a cached credential
    /// GET ~290 of its ~13,700 instructions (callgrind).
    pub fn seconds(&self) -> i64 {
        match self.anchor {
            // Rounded down before the epoch too, as chrono's `timestamp()` is.
            None => match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                Ok(since) => since.as_secs() as i64,
                Err(before) => {
                    let before = before.duration();
                    -(before.as_secs() as i64) - i64::from(before.subsec_nanos() > 0)
                }
            },
            Some(_) => self.now().timestamp(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.anchor {
            None => Utc::now(),
            Some((start, at)) => {
                let elapsed = tokio::time::Instant::now() - at;
                start + chrono::Duration::from_std(elapsed).expect("test clock overflow")
            }
        }
    }
}
