//! A sliding window over a bucket's dimension: what was charged in its last window, for a
//! server that counts per window (a fixed or sliding minute, as LLM gateways do) rather than
//! with a continuous refill.
//!
//! Such a server admits at most its limit in a window; a continuous bucket, full again one
//! window after a burst, would send the next window's refill into a window that has no room
//! left. The log keeps the limiter to at most its capacity in *any* window, which fits a
//! fixed window whatever its boundary, and a sliding one exactly: the same throughput at the
//! limit, no burst on top of what the server still counts.

use std::collections::VecDeque;

use crate::units::cost::Dimension;

/// What one dimension charged within its last window, oldest first.
#[derive(Clone, Debug)]
pub(crate) struct WindowLog {
    pub(super) dimension: Dimension,
    capacity: u64,
    window_ns: u64,
    /// (when, units), in the order charged.
    entries: VecDeque<(u64, u64)>,
}

impl WindowLog {
    pub(super) fn new(dimension: Dimension, capacity: u64, window_ns: u64) -> Self {
        WindowLog {
            dimension,
            capacity,
            window_ns,
            entries: VecDeque::new(),
        }
    }

    /// The log of a new limit, keeping what `previous` charged.
    pub(super) fn after(mut self, previous: Option<&WindowLog>) -> Self {
        if let Some(previous) = previous {
            self.entries = previous.entries.clone();
        }
        self
    }

    /// The log of a limit that had `units` in use at `now` before it was counted per window.
    pub(super) fn seeded(mut self, units: u64, now: u64) -> Self {
        if units > 0 {
            self.entries.push_back((now, units));
        }
        self
    }

    fn live(&self, now: u64) -> impl Iterator<Item = &(u64, u64)> {
        let window = self.window_ns;
        self.entries
            .iter()
            .filter(move |(at, _)| at.saturating_add(window) > now)
    }

    /// When `units` fit (`now` if they do now): when enough of what is in the window leaves it.
    pub(super) fn fits_at(&self, units: u64, now: u64) -> u64 {
        let used: u64 = self.live(now).map(|(_, u)| u).sum();
        let mut over = (used + units).saturating_sub(self.capacity);
        if over == 0 {
            return now;
        }
        for (at, charged) in self.live(now) {
            over = over.saturating_sub(*charged);
            if over == 0 {
                return at.saturating_add(self.window_ns);
            }
        }
        // Larger than the whole window: the bucket refuses it as too large first.
        now.saturating_add(self.window_ns)
    }

    pub(super) fn take(&mut self, units: u64, now: u64) {
        let window = self.window_ns;
        while self
            .entries
            .front()
            .is_some_and(|(at, _)| at.saturating_add(window) <= now)
        {
            self.entries.pop_front();
        }
        self.entries.push_back((now, units));
    }

    /// Moves a charge made at `charged_at` from `from` to `to` units. A refund lands on that
    /// charge (if it has not left the window yet; one without its time is not given back:
    /// the window then keeps the larger count); a debit goes with it, or in now.
    pub(super) fn shift(&mut self, from: u64, to: u64, charged_at: Option<u64>, now: u64) {
        let entry = charged_at.and_then(|at| {
            self.entries
                .iter_mut()
                .rev()
                .find(|(when, units)| *when == at && *units >= from.min(to))
        });
        match entry {
            Some((_, units)) => *units = (*units + to).saturating_sub(from),
            None if to > from => self.take(to - from, now),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn at_most_the_capacity_in_any_window() {
        let mut log = WindowLog::new(Dimension::RequestsPerMinute, 10, 60 * SEC);
        log.take(6, 0);
        log.take(4, 20 * SEC);
        assert_eq!(log.fits_at(1, 30 * SEC), 60 * SEC, "when the first 6 leave");
        assert_eq!(log.fits_at(7, 30 * SEC), 80 * SEC, "when all 10 have left");
        assert_eq!(log.fits_at(6, 60 * SEC), 60 * SEC);
    }

    #[test]
    fn a_refund_lands_on_its_charge_and_a_debit_goes_with_it() {
        let mut log = WindowLog::new(Dimension::TokensPerMinute, 100, 60 * SEC);
        log.take(50, 0);
        log.take(50, 10 * SEC);
        // The first charge settles to 20: 30 free now; 50 more when it leaves at 60 s, 80
        // when the second does too.
        log.shift(50, 20, Some(0), 30 * SEC);
        assert_eq!(log.fits_at(30, 30 * SEC), 30 * SEC);
        assert_eq!(log.fits_at(50, 30 * SEC), 60 * SEC);
        assert_eq!(log.fits_at(80, 30 * SEC), 70 * SEC);
        // A refund without its time is kept (the larger count); a debit goes in now.
        log.shift(50, 0, None, 30 * SEC);
        assert_eq!(log.fits_at(31, 30 * SEC), 60 * SEC);
        log.shift(0, 10, None, 40 * SEC);
        assert_eq!(log.fits_at(21, 40 * SEC), 60 * SEC);
    }
}
