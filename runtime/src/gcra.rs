//! The bucket arithmetic: one GCRA state per dimension, pure and clock-free.
//!
//! Time is integer nanoseconds since the limiter's origin. A dimension refills `capacity`
//! units per window of `window_ns`; its theoretical arrival time (TAT) minus now is the part of
//! the window in use, and a request fits when that plus its share stays within one window.
//!
//! To keep the hot path free of division and every result exact, each bucket measures time in
//! `ns × capacity`: a request of `u` units then occupies exactly `u × window_ns` of it, refunds
//! and debits move the TAT by exact differences, and only a wait (rare) divides, rounding up.
//! A TAT below now means a full bucket: readers take `max(tat, now)`, which floors refunds.
//! The same arithmetic can run in a shared store (see the Redis backend).

use std::time::Duration;

use crate::quota::{Cost, Dimension, Quota};

/// The dimensions that are buckets (concurrency is a counter, handled by the limiter), in the
/// order the shared store sends their keys.
pub(crate) const BUCKETS: [Dimension; 8] = [
    Dimension::RequestsPerMinute,
    Dimension::TokensPerMinute,
    Dimension::InputTokensPerMinute,
    Dimension::OutputTokensPerMinute,
    Dimension::RequestsPerDay,
    Dimension::TokensPerDay,
    Dimension::MinInterval,
    Dimension::RequestsPerSecond,
];

#[derive(Clone, Copy, Debug)]
struct Bucket {
    dimension: Dimension,
    /// Units the bucket holds when full (limit times headroom).
    capacity: u64,
    /// Nanoseconds over which `capacity` units refill.
    window_ns: u64,
    /// `capacity × window_ns`: one full window, in scaled time.
    full: u128,
    /// Theoretical arrival time in scaled time (`ns × capacity`).
    tat: u128,
}

impl Bucket {
    fn new(dimension: Dimension, capacity: u64, window_ns: u64, now: u64) -> Self {
        let mut bucket = Bucket {
            dimension,
            capacity,
            window_ns,
            full: u128::from(capacity) * u128::from(window_ns),
            tat: 0,
        };
        bucket.tat = bucket.scaled(now);
        bucket
    }

    #[inline]
    fn scaled(&self, ns: u64) -> u128 {
        u128::from(ns) * u128::from(self.capacity)
    }

    /// Scaled time that `units` occupy.
    #[inline]
    fn share(&self, units: u64) -> u128 {
        u128::from(units) * u128::from(self.window_ns)
    }

    /// Scaled time in use at `now` (units × window_ns).
    fn used(&self, now: u64) -> u128 {
        self.tat.saturating_sub(self.scaled(now))
    }

    /// Units in use at `now`, rounded up.
    fn level(&self, now: u64) -> u64 {
        let units = self.used(now).div_ceil(u128::from(self.window_ns));
        u64::try_from(units).unwrap_or(u64::MAX)
    }
}

/// What a reservation attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It fits now.
    Admit,
    /// It fits at this time (ns since origin), if nothing else is charged first.
    WaitUntil(u64),
    /// It can never fit this dimension.
    TooLarge {
        dimension: Dimension,
        requested: u64,
        capacity: u64,
    },
}

/// The GCRA state of every bucket dimension of one limit family.
#[derive(Clone, Debug, Default)]
pub(crate) struct Buckets {
    buckets: Vec<Bucket>,
}

impl Buckets {
    pub(crate) fn new(quota: &Quota) -> Self {
        let mut buckets = Buckets::default();
        buckets.set_quota(quota, 0);
        buckets
    }

    /// Replaces the limits, keeping the units in use on every dimension that stays limited.
    pub(crate) fn set_quota(&mut self, quota: &Quota, now: u64) {
        let old = std::mem::take(&mut self.buckets);
        for dimension in BUCKETS {
            let Some(capacity) = quota.capacity(dimension) else {
                continue;
            };
            let window_ns = match dimension {
                Dimension::MinInterval => quota.min_interval.map_or(0, duration_ns),
                _ => dimension.window().map_or(0, duration_ns),
            };
            if window_ns == 0 {
                continue;
            }
            let mut bucket = Bucket::new(dimension, capacity, window_ns, now);
            if let Some(previous) = old.iter().find(|b| b.dimension == dimension) {
                // Keep the units in use (scaled by window_ns, so a new interval rescales).
                let used =
                    previous.used(now) * u128::from(window_ns) / u128::from(previous.window_ns);
                bucket.tat += used;
            }
            self.buckets.push(bucket);
        }
    }

    /// When `cost` fits every dimension at once, without charging it.
    #[inline]
    pub(crate) fn decide(&self, cost: &Cost, now: u64) -> Decision {
        let mut ready = now;
        for bucket in &self.buckets {
            let units = bucket.dimension.charge(cost);
            if units == 0 {
                continue;
            }
            if units > bucket.capacity {
                return Decision::TooLarge {
                    dimension: bucket.dimension,
                    requested: units,
                    capacity: bucket.capacity,
                };
            }
            let fits_at = (bucket.tat + bucket.share(units)).saturating_sub(bucket.full);
            if fits_at > bucket.scaled(now) {
                let at = fits_at.div_ceil(u128::from(bucket.capacity));
                ready = ready.max(u64::try_from(at).unwrap_or(u64::MAX));
            }
        }
        if ready <= now {
            Decision::Admit
        } else {
            Decision::WaitUntil(ready)
        }
    }

    /// The first dimension `cost` can never fit, whatever the state.
    pub(crate) fn oversized(&self, cost: &Cost) -> Option<Decision> {
        self.buckets.iter().find_map(|bucket| {
            let units = bucket.dimension.charge(cost);
            (units > bucket.capacity).then_some(Decision::TooLarge {
                dimension: bucket.dimension,
                requested: units,
                capacity: bucket.capacity,
            })
        })
    }

    /// Charges `cost` on every dimension at `now` (after `decide` said it fits).
    #[inline]
    pub(crate) fn charge(&mut self, cost: &Cost, now: u64) {
        for bucket in &mut self.buckets {
            let units = bucket.dimension.charge(cost);
            if units > 0 {
                bucket.tat = bucket.tat.max(bucket.scaled(now)) + bucket.share(units);
            }
        }
    }

    /// Charges `cost` on every dimension if it fits all of them at `now`; all or nothing.
    #[cfg(test)]
    fn try_charge(&mut self, cost: &Cost, now: u64) -> Decision {
        let decision = self.decide(cost, now);
        if decision == Decision::Admit {
            self.charge(cost, now);
        }
        decision
    }

    /// Moves every dimension from having charged `from` to having charged `to` at `now`: a
    /// refund when `to` is smaller, a debit (possibly into debt) when larger.
    ///
    /// Both start from the level at `now` (`max(tat, now)`): a debit on a bucket that has
    /// refilled since the charge must land in full, not vanish into the refill, and a refund
    /// stops at a full bucket.
    #[inline]
    pub(crate) fn adjust(&mut self, from: &Cost, to: &Cost, now: u64) {
        for bucket in &mut self.buckets {
            let before = bucket.share(bucket.dimension.charge(from));
            let after = bucket.share(bucket.dimension.charge(to));
            if before == after {
                continue;
            }
            let floor = bucket.scaled(now);
            let level = bucket.tat.max(floor);
            bucket.tat = if after > before {
                level.saturating_add(after - before)
            } else {
                level.saturating_sub(before - after).max(floor)
            };
        }
    }

    /// Raises the units in use on `dimension` at `now` to at least `used`.
    pub(crate) fn tighten(&mut self, dimension: Dimension, used: u64, now: u64) {
        if let Some(bucket) = self.buckets.iter_mut().find(|b| b.dimension == dimension) {
            let floor = bucket.scaled(now) + bucket.share(used);
            bucket.tat = bucket.tat.max(floor);
        }
    }

    /// Units in use on `dimension` at `now`, if it is a limited bucket.
    pub(crate) fn level(&self, dimension: Dimension, now: u64) -> Option<u64> {
        self.buckets
            .iter()
            .find(|b| b.dimension == dimension)
            .map(|b| b.level(now))
    }
}

#[inline]
pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn thirty_thousand_tpm_schedules_ten_thousand_token_requests_twenty_seconds_apart() {
        let mut b = Buckets::new(&Quota::default().tpm(30_000));
        let cost = Cost::request(10_000, 0);
        for _ in 0..3 {
            assert_eq!(b.try_charge(&cost, 0), Decision::Admit);
        }
        assert_eq!(b.try_charge(&cost, 0), Decision::WaitUntil(20 * SEC));
        assert_eq!(b.try_charge(&cost, 20 * SEC), Decision::Admit);
        assert_eq!(b.try_charge(&cost, 20 * SEC), Decision::WaitUntil(40 * SEC));
    }

    #[test]
    fn one_unit_over_capacity_is_too_large() {
        let b = Buckets::new(&Quota::default().tpm(30_000));
        assert_eq!(
            b.decide(&Cost::request(30_001, 0), 0),
            Decision::TooLarge {
                dimension: Dimension::TokensPerMinute,
                requested: 30_001,
                capacity: 30_000
            }
        );
    }

    #[test]
    fn full_refund_restores_the_state_exactly() {
        let quota = Quota::default().tpm(27_000).rpm(7);
        let mut b = Buckets::new(&quota);
        let cost = Cost::request(1_234, 567);
        assert_eq!(b.try_charge(&cost, 5), Decision::Admit);
        b.adjust(&cost, &Cost::default(), 5);
        assert_eq!(b.level(Dimension::TokensPerMinute, 5), Some(0));
        assert_eq!(b.level(Dimension::RequestsPerMinute, 5), Some(0));
    }

    #[test]
    fn a_debit_after_the_bucket_refilled_lands_in_full() {
        // 600 of 6,000 TPM charged at 0; at 30 s the bucket is full again. A settle that
        // reports 1,000 more tokens than reserved must leave exactly 1,000 in use, not fold
        // the debit into the refill.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let cost = Cost::request(600, 0);
        assert_eq!(b.try_charge(&cost, 0), Decision::Admit);
        b.adjust(&cost, &Cost::request(1_600, 0), 30 * SEC);
        assert_eq!(b.level(Dimension::TokensPerMinute, 30 * SEC), Some(1_000));
    }

    #[test]
    fn a_refund_stops_at_a_full_bucket() {
        // A refund larger than what is still in use empties the bucket and no more: a later
        // charge starts from full, not from credit.
        let mut b = Buckets::new(&Quota::default().tpm(6_000));
        let cost = Cost::request(3_000, 0);
        assert_eq!(b.try_charge(&cost, 0), Decision::Admit);
        b.adjust(&cost, &Cost::default(), 20 * SEC);
        assert_eq!(b.level(Dimension::TokensPerMinute, 20 * SEC), Some(0));
        b.charge(&Cost::request(6_000, 0), 20 * SEC);
        assert_eq!(
            b.decide(&Cost::request(1, 0), 20 * SEC),
            Decision::WaitUntil(20 * SEC + 10_000_000)
        );
    }

    #[test]
    fn changing_the_quota_keeps_the_units_in_use() {
        let mut b = Buckets::new(&Quota::default().tpm(60_000));
        assert_eq!(b.try_charge(&Cost::request(30_000, 0), 0), Decision::Admit);
        b.set_quota(&Quota::default().tpm(30_000), 0);
        assert_eq!(b.level(Dimension::TokensPerMinute, 0), Some(30_000));
        assert_eq!(
            b.decide(&Cost::request(1, 0), 0),
            Decision::WaitUntil(2_000_000)
        );
    }

    #[test]
    fn headroom_scales_capacity_and_rate() {
        let b = Buckets::new(&Quota::default().tpm(30_000).headroom(0.5));
        assert!(matches!(
            b.decide(&Cost::request(15_001, 0), 0),
            Decision::TooLarge {
                capacity: 15_000,
                ..
            }
        ));
    }
}
