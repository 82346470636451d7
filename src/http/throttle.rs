//! Warnings that an attacker (or a misconfigured client) can cause at any rate: a page of the
//! same line per refused request would flood the terminal and the journal (81 k lines in 6 s,
//! measured) and slow the daemon down. Each cause gets a [`Throttle`]: its first occurrence is
//! logged at once, the ones after it within [`INTERVAL`] are only counted, and the next line says
//! how many there were.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per cause per this interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// One cause of a warning.
#[derive(Debug, Default)]
pub struct Throttle {
    /// When the last line was logged, and how many occurrences went unsaid since.
    state: Mutex<Option<(Instant, u64)>>,
}

impl Throttle {
    pub const fn new() -> Self {
        Throttle {
            state: Mutex::new(None),
        }
    }

    /// Counts an occurrence; `Some(n)` when it is to be logged, `n` being the occurrences left
    /// unsaid since the last line.
    pub fn due(&self) -> Option<u64> {
        self.due_at(Instant::now())
    }

    fn due_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *state {
            Some((last, unsaid)) if now.duration_since(*last) < INTERVAL => {
                *unsaid += 1;
                None
            }
            _ => {
                let unsaid = state.map_or(0, |(_, n)| n);
                *state = Some((now, 0));
                Some(unsaid)
            }
        }
    }
}

/// `" (and 12 more like it since the last such line, ...)"`, or nothing.
pub fn more(unsaid: u64) -> String {
    if unsaid == 0 {
        String::new()
    } else {
        format!(
            " (and {unsaid} more like it since the last such line, at most one per {} s)",
            INTERVAL.as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_is_logged_and_the_next_ones_in_the_interval_counted() {
        let throttle = Throttle::new();
        let start = Instant::now();
        assert_eq!(throttle.due_at(start), Some(0));
        for i in 1..=5 {
            assert_eq!(throttle.due_at(start + Duration::from_millis(i)), None);
        }
        assert_eq!(throttle.due_at(start + INTERVAL), Some(5));
        assert_eq!(throttle.due_at(start + INTERVAL), None);
    }

    #[test]
    fn the_count_is_said_in_words_only_when_there_is_one() {
        assert_eq!(more(0), "");
        assert!(more(3).starts_with(" (and 3 more like it"), "{}", more(3));
    }
}
