//! Who uses a role, and through which door: per role, how many credential requests each
//! listener answered in total and in the last quarter hour, and when it last did. With several
//! roles served at once (an exec here, a pinned shell there, a container), this is how a user
//! sees which of them are still in use.
//!
//! Counting sits on the hot path of every credential request, so it is lock-free: a total and a
//! ring of per-minute counters per door, each a relaxed atomic. A minute's slot is reset by the
//! first request that finds it stale; a request racing that reset may go uncounted, which a
//! "recently" figure can afford.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// The listener a request came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The IMDS listener: the metadata paths and the role API's `/roles/ROLE/credentials`.
    Imds,
    /// The container credentials endpoint (`fintors exec`, pinned shells, containers).
    Container,
}

/// How far back "recently" reaches.
pub const RECENT_MINUTES: i64 = 15;
/// One slot more than [`RECENT_MINUTES`], so the current minute never overwrites the oldest one
/// still counted.
const SLOTS: usize = RECENT_MINUTES as usize + 1;

/// What one door served for one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorUsage {
    pub total: u64,
    pub recent: u64,
    pub last_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Usage {
    imds: Counter,
    container: Counter,
}

impl Usage {
    /// Notes one credential request answered through `door` at `now` (Unix seconds).
    pub fn record(&self, door: Door, now: i64) {
        self.counter(door).record(now);
    }

    /// What `door` served, as of `now`.
    pub fn of(&self, door: Door, now: DateTime<Utc>) -> DoorUsage {
        self.counter(door).read(now)
    }

    fn counter(&self, door: Door) -> &Counter {
        match door {
            Door::Imds => &self.imds,
            Door::Container => &self.container,
        }
    }
}

#[derive(Debug)]
struct Counter {
    total: AtomicU64,
    /// Unix seconds of the last request; `i64::MIN` for never.
    last: AtomicI64,
    /// Per slot: the minute (Unix minutes) it counts, and its count.
    minutes: [AtomicI64; SLOTS],
    counts: [AtomicU64; SLOTS],
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            total: AtomicU64::new(0),
            last: AtomicI64::new(i64::MIN),
            minutes: std::array::from_fn(|_| AtomicI64::new(i64::MIN)),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counter {
    fn record(&self, now: i64) {
        self.total.fetch_add(1, Ordering::Relaxed);
        // Written once a second at most, as the cache's own access time is.
        if self.last.load(Ordering::Relaxed) != now {
            self.last.store(now, Ordering::Relaxed);
        }
        let minute = now.div_euclid(60);
        let slot = minute.rem_euclid(SLOTS as i64) as usize;
        if self.minutes[slot].load(Ordering::Acquire) != minute {
            self.counts[slot].store(0, Ordering::Relaxed);
            self.minutes[slot].store(minute, Ordering::Release);
        }
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self, now: DateTime<Utc>) -> DoorUsage {
        let minute = now.timestamp().div_euclid(60);
        let recent = (0..SLOTS)
            .filter(|&i| {
                let counted = self.minutes[i].load(Ordering::Acquire);
                counted > minute - RECENT_MINUTES && counted <= minute
            })
            .map(|i| self.counts[i].load(Ordering::Relaxed))
            .sum();
        let last = self.last.load(Ordering::Relaxed);
        DoorUsage {
            total: self.total.load(Ordering::Relaxed),
            recent,
            last_at: (last != i64::MIN)
                .then(|| DateTime::from_timestamp(last, 0))
                .flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn each_door_counts_its_own_requests() {
        let usage = Usage::default();
        usage.record(Door::Imds, T0);
        usage.record(Door::Container, T0);
        usage.record(Door::Container, T0 + 1);
        assert_eq!(usage.of(Door::Imds, at(T0)).total, 1);
        let container = usage.of(Door::Container, at(T0 + 1));
        assert_eq!((container.total, container.recent), (2, 2));
        assert_eq!(container.last_at, Some(at(T0 + 1)));
    }

    #[test]
    fn requests_older_than_a_quarter_hour_leave_the_recent_count_but_not_the_total() {
        let usage = Usage::default();
        usage.record(Door::Imds, T0);
        usage.record(Door::Imds, T0 + 10 * 60);
        let later = usage.of(Door::Imds, at(T0 + 20 * 60));
        assert_eq!((later.total, later.recent), (2, 1));
        let much_later = usage.of(Door::Imds, at(T0 + 60 * 60));
        assert_eq!((much_later.total, much_later.recent), (2, 0));
    }

    #[test]
    fn a_slot_reused_after_the_ring_turns_starts_from_zero() {
        let usage = Usage::default();
        usage.record(Door::Imds, T0);
        usage.record(Door::Imds, T0);
        // The same slot, one turn of the ring later.
        let turn = SLOTS as i64 * 60;
        usage.record(Door::Imds, T0 + turn);
        assert_eq!(usage.of(Door::Imds, at(T0 + turn)).recent, 1);
    }

    #[test]
    fn a_role_never_asked_for_has_no_last_request() {
        let usage = Usage::default();
        assert_eq!(
            usage.of(Door::Container, at(T0)),
            DoorUsage {
                total: 0,
                recent: 0,
                last_at: None
            }
        );
    }
}
