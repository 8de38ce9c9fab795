//! The bucket arithmetic: one GCRA state per dimension, pure and clock-free.
//!
//! Time is integer nanoseconds since the limiter's origin, so every schedule is exact and the
//! same math can run elsewhere (a shared store keeps the same theoretical arrival times).
//!
//! A dimension with capacity `cap` units per window `W` charges `ceil(units * W / cap)` ns per
//! request. Its theoretical arrival time (TAT) minus now is the part of the window in use; a
//! request fits when that level plus its charge stays within `W`. Refunds and debits move the
//! TAT by the difference of two charges, so a full refund restores it exactly. A TAT below now
//! means a full bucket: readers take `max(tat, now)`, which is what floors refunds.

use std::time::Duration;

use crate::quota::{Cost, Dimension, Quota};

/// The dimensions that are buckets (concurrency is a counter, handled by the limiter).
const BUCKETS: [Dimension; 7] = [
    Dimension::RequestsPerMinute,
    Dimension::TokensPerMinute,
    Dimension::InputTokensPerMinute,
    Dimension::OutputTokensPerMinute,
    Dimension::RequestsPerDay,
    Dimension::TokensPerDay,
    Dimension::MinInterval,
];

#[derive(Clone, Copy, Debug)]
struct Bucket {
    dimension: Dimension,
    /// Units the bucket holds when full (limit times headroom).
    capacity: u64,
    /// Nanoseconds over which `capacity` units refill.
    window_ns: u64,
    /// `window_ns / capacity` when that is exact, else 0 (the hot path then divides).
    exact_ns_per_unit: u64,
    tat: u64,
}

impl Bucket {
    fn new(dimension: Dimension, capacity: u64, window_ns: u64, tat: u64) -> Self {
        let exact_ns_per_unit = if window_ns % capacity == 0 {
            window_ns / capacity
        } else {
            0
        };
        Bucket {
            dimension,
            capacity,
            window_ns,
            exact_ns_per_unit,
            tat,
        }
    }

    /// Nanoseconds of window that `units` occupy, rounded up.
    fn charge(&self, units: u64) -> u64 {
        if self.exact_ns_per_unit != 0 {
            if let Some(ns) = units.checked_mul(self.exact_ns_per_unit) {
                return ns;
            }
        } else if let Some(product) = units.checked_mul(self.window_ns) {
            return product.div_ceil(self.capacity);
        }
        let ns = (u128::from(units) * u128::from(self.window_ns)).div_ceil(u128::from(self.capacity));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Units in use at `now`, rounded up.
    fn level(&self, now: u64) -> u64 {
        let used_ns = self.tat.saturating_sub(now);
        let units =
            (u128::from(used_ns) * u128::from(self.capacity)).div_ceil(u128::from(self.window_ns));
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
                bucket.tat = now + bucket.charge(previous.level(now));
            }
            self.buckets.push(bucket);
        }
    }

    /// When `cost` fits every dimension at once, without charging it.
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
            let at = (bucket.tat + bucket.charge(units)).saturating_sub(bucket.window_ns);
            ready = ready.max(at);
        }
        if ready <= now {
            Decision::Admit
        } else {
            Decision::WaitUntil(ready)
        }
    }

    /// Charges `cost` on every dimension at `now` (after `decide` said it fits).
    pub(crate) fn charge(&mut self, cost: &Cost, now: u64) {
        for bucket in &mut self.buckets {
            let units = bucket.dimension.charge(cost);
            if units > 0 {
                bucket.tat = bucket.tat.max(now) + bucket.charge(units);
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

    /// Moves every dimension from having charged `from` to having charged `to`: a refund when
    /// `to` is smaller, a debit (possibly into debt) when larger.
    pub(crate) fn adjust(&mut self, from: &Cost, to: &Cost) {
        for bucket in &mut self.buckets {
            let before = bucket.charge(bucket.dimension.charge(from));
            let after = bucket.charge(bucket.dimension.charge(to));
            bucket.tat = if after >= before {
                bucket.tat.saturating_add(after - before)
            } else {
                bucket.tat.saturating_sub(before - after)
            };
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
        b.adjust(&cost, &Cost::default());
        assert_eq!(b.level(Dimension::TokensPerMinute, 5), Some(0));
        assert_eq!(b.level(Dimension::RequestsPerMinute, 5), Some(0));
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
            Decision::TooLarge { capacity: 15_000, .. }
        ));
    }
}
