//! A sliding window over a bucket's dimension: what was charged in its last window, for a
//! server that counts per window (a fixed or sliding minute, as LLM gateways do) rather than
//! with a continuous refill.
//!
//! Such a server admits at most its limit in a window; a continuous bucket, full again one
//! window after a burst, would send the next window's refill into a window that has no room
//! left. The log keeps the limiter to at most its capacity in *any* window, which fits a
//! fixed window whatever its boundary, and a sliding one exactly: the same throughput at the
//! limit, no burst on top of what the server still counts.
//!
//! A server known to count per *fixed* window whose boundary has been seen admits more: the
//! whole limit in each of its windows, a burst at each boundary. Aligned to that boundary
//! (see [`Aligned`]), the log counts what was charged in the current window, and, since a
//! request sent just before the boundary may reach the server after it, what was charged in
//! a guard before it as well.

use std::collections::VecDeque;

use crate::units::cost::Dimension;

/// Where a server's fixed windows start, as far as this process can tell: one boundary (ns
/// since the limiter's origin, the latest moment it can be; the others are whole windows
/// before and after it) and a guard: how long before a boundary a request may be sent and
/// still reach the server after it (the boundary's uncertainty plus a round trip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Aligned {
    pub(crate) boundary: u64,
    pub(crate) guard: u64,
}

/// What one dimension charged within its last window, oldest first.
#[derive(Clone, Debug)]
pub(crate) struct WindowLog {
    pub(super) dimension: Dimension,
    capacity: u64,
    pub(super) window_ns: u64,
    /// (when, units), in the order charged.
    entries: VecDeque<(u64, u64)>,
    /// The server's fixed windows, once seen: counted per window instead of over any window.
    aligned: Option<Aligned>,
}

impl WindowLog {
    pub(super) fn new(dimension: Dimension, capacity: u64, window_ns: u64) -> Self {
        WindowLog {
            dimension,
            capacity,
            window_ns,
            entries: VecDeque::new(),
            aligned: None,
        }
    }

    /// The log of a new limit, keeping what `previous` charged.
    pub(super) fn after(mut self, previous: Option<&WindowLog>) -> Self {
        if let Some(previous) = previous {
            self.entries = previous.entries.clone();
        }
        self
    }

    /// Counts per the server's fixed windows from now on (`None`: over any window). The guard
    /// is kept under half a window.
    pub(super) fn align(&mut self, aligned: Option<Aligned>) {
        self.aligned = aligned.map(|a| Aligned {
            boundary: a.boundary,
            guard: a.guard.min(self.window_ns / 2),
        });
    }

    pub(super) fn is_aligned(&self) -> bool {
        self.aligned.is_some()
    }

    /// The start of the server's window that holds `now`, for an aligned log (before the
    /// origin for a window that started before it).
    fn window_start(&self, aligned: Aligned, now: u64) -> i128 {
        let window = i128::from(self.window_ns.max(1));
        let (now, boundary) = (i128::from(now), i128::from(aligned.boundary));
        now - (now - boundary).rem_euclid(window)
    }

    /// What counts in the server's window starting at `start`: charged since the guard before it.
    fn used_from(&self, start: i128, guard: u64) -> u64 {
        let from = start - i128::from(guard);
        self.entries
            .iter()
            .filter(|(at, _)| i128::from(*at) >= from)
            .map(|(_, units)| units)
            .sum()
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

    /// The most the log admits in one window.
    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// When `units` fit (`now` if they do now): when enough of what is in the window leaves it
    /// or, aligned, at the first of the server's windows with room for them.
    pub(super) fn fits_at(&self, units: u64, now: u64) -> u64 {
        if let Some(aligned) = self.aligned {
            let mut start = self.window_start(aligned, now);
            // The guard is under half a window, so the second window's count holds only what
            // is charged up to now, in its guard: at most two steps.
            for _ in 0..3 {
                if self.used_from(start, aligned.guard) + units <= self.capacity {
                    break;
                }
                start += i128::from(self.window_ns);
            }
            return u64::try_from(start).unwrap_or(0).max(now);
        }
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
        let window = self.window_ns + self.aligned.map_or(0, |a| a.guard);
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

    #[test]
    fn aligned_the_whole_limit_in_each_window_and_the_guard_counts_in_both() {
        // The server's windows start at 30 s, 90 s, ..; a request may be sent up to 1 s before
        // a boundary and reach the server after it.
        let mut log = WindowLog::new(Dimension::RequestsPerMinute, 10, 60 * SEC);
        log.align(Some(Aligned {
            boundary: 90 * SEC,
            guard: SEC,
        }));
        log.take(10, 5 * SEC);
        // Full until the boundary at 30 s; then the whole limit again, not at 65 s.
        assert_eq!(log.fits_at(1, 6 * SEC), 30 * SEC);
        assert_eq!(log.fits_at(10, 30 * SEC), 30 * SEC);
        // 4 sent in the guard before 90 s count in the window from 90 s too.
        log.take(6, 30 * SEC);
        log.take(4, 89_500_000_000);
        assert_eq!(log.fits_at(1, 89_600_000_000), 90 * SEC);
        assert_eq!(log.fits_at(6, 90 * SEC), 90 * SEC);
        assert_eq!(log.fits_at(7, 90 * SEC), 150 * SEC);
        // Unaligned: at most 10 in any minute, so the second 10 wait until 65 s.
        let mut sliding = WindowLog::new(Dimension::RequestsPerMinute, 10, 60 * SEC);
        sliding.take(10, 5 * SEC);
        assert_eq!(sliding.fits_at(10, 30 * SEC), 65 * SEC);
    }
}
