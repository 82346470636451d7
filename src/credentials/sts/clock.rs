//! How far this machine's clock is from STS's, read from the `Date` of every answer STS gives the
//! daemon (no call of its own): SigV4 refuses requests signed more than 5 minutes off, and every
//! credential's expiry is judged on this clock. `fintors doctor` reports it.

use std::sync::{Arc, Mutex};

use aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::BoxError;
use chrono::{DateTime, Utc};

use crate::model::Clock;

/// The last comparison of the two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    /// STS's time minus this machine's, in whole seconds (`Date` has no finer resolution):
    /// positive when this clock is behind.
    pub seconds: i64,
    /// When STS's answer arrived, by this machine's clock.
    pub at: DateTime<Utc>,
}

/// The interceptor every STS client of the daemon carries, and where it keeps the last
/// comparison. Cloned into each client; all clones share it.
#[derive(Debug, Clone)]
pub struct ClockWatch {
    clock: Clock,
    last: Arc<Mutex<Option<Skew>>>,
}

impl ClockWatch {
    pub fn new(clock: Clock) -> ClockWatch {
        ClockWatch {
            clock,
            last: Arc::default(),
        }
    }

    /// The last comparison, if STS has answered since the daemon started.
    pub fn last(&self) -> Option<Skew> {
        *self.last.lock().expect("poisoned")
    }

    /// Notes an answer dated `date` (an HTTP date, RFC 7231) arriving now.
    fn saw(&self, date: &str) {
        let Ok(theirs) = DateTime::parse_from_rfc2822(date) else {
            return;
        };
        let now = self.clock.now();
        let millis = (theirs.with_timezone(&Utc) - now).num_milliseconds();
        *self.last.lock().expect("poisoned") = Some(Skew {
            seconds: (millis as f64 / 1000.0).round() as i64,
            at: now,
        });
    }
}

impl Intercept for ClockWatch {
    fn name(&self) -> &'static str {
        "fintors clock watch"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.saw(date);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str) -> ClockWatch {
        ClockWatch::new(Clock::following_tokio(time.parse().unwrap()))
    }

    #[test]
    fn an_answer_dated_ahead_of_this_clock_says_by_how_much() {
        let watch = at("2026-12-06T05:00:00Z");
        watch.saw("Sun, 06 Dec 2026 05:07:30 GMT");
        assert_eq!(watch.last().unwrap().seconds, 450);
    }

    #[test]
    fn an_answer_dated_behind_is_a_negative_skew() {
        let watch = at("2026-12-06T05:00:00Z");
        watch.saw("Sun, 06 Dec 2026 04:59:58 GMT");
        assert_eq!(watch.last().unwrap().seconds, -2);
    }

    #[test]
    fn an_unreadable_date_leaves_the_last_comparison() {
        let watch = at("2026-12-06T05:00:00Z");
        watch.saw("Sun, 06 Dec 2026 05:00:01 GMT");
        watch.saw("yesterday-ish");
        assert_eq!(watch.last().unwrap().seconds, 1);
    }
}
