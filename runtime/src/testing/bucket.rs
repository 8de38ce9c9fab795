//! The mock's token bucket: continuous refill in exact integer arithmetic.
//!
//! The mock is a referee for the limiter, so it must not share the limiter's rounding: every
//! quantity here is an integer count of token-nanoseconds, and a bucket of capacity `C` refills
//! exactly `C` tokens per 60 s.

use std::time::Duration;

use tokio::time::Instant;

/// Nanoseconds in the one-minute window every limit is expressed per.
pub(super) const WINDOW_NANOS: u128 = 60_000_000_000;

/// A continuous-refill token bucket, full at creation.
///
/// `debt` is what is used, in token-nanoseconds per window: one token is `WINDOW_NANOS` units,
/// and each nanosecond refills `capacity` units, so nothing is ever rounded.
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    capacity: u64,
    debt: u128,
    at: Instant,
}

impl Bucket {
    pub(super) fn new(capacity: u64, now: Instant) -> Self {
        Bucket {
            capacity,
            debt: 0,
            at: now,
        }
    }

    /// The per-minute limit this bucket enforces.
    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    fn full(&self) -> u128 {
        u128::from(self.capacity) * WINDOW_NANOS
    }

    pub(super) fn refill(&mut self, now: Instant) {
        if now > self.at {
            let refill = (now - self.at).as_nanos() * u128::from(self.capacity);
            self.debt = self.debt.saturating_sub(refill);
            self.at = now;
        }
    }

    /// The exact time until `amount` fits (zero if it fits now); `amount <= capacity`.
    pub(super) fn wait_for(&self, amount: u64) -> Duration {
        let excess = (self.debt + u128::from(amount) * WINDOW_NANOS).saturating_sub(self.full());
        duration_from_nanos(excess.div_ceil(u128::from(self.capacity)))
    }

    pub(super) fn take(&mut self, amount: u64) {
        self.debt += u128::from(amount) * WINDOW_NANOS;
    }

    /// Returns `amount` (a refund), never above full.
    pub(super) fn give_back(&mut self, amount: u64) {
        self.debt = self.debt.saturating_sub(u128::from(amount) * WINDOW_NANOS);
    }

    /// Takes `amount`, but never below empty: a failed request may delay the next admission,
    /// but must not lock a client out for longer than one unit's refill.
    pub(super) fn take_saturating(&mut self, amount: u64) {
        self.debt = (self.debt + u128::from(amount) * WINDOW_NANOS).min(self.full());
    }

    /// Whole units left, rounded down.
    pub(super) fn remaining(&self) -> u64 {
        (self.full().saturating_sub(self.debt) / WINDOW_NANOS) as u64
    }

    /// The time until the bucket is full again.
    pub(super) fn reset(&self) -> Duration {
        duration_from_nanos(self.debt.div_ceil(u128::from(self.capacity)))
    }
}

fn duration_from_nanos(n: u128) -> Duration {
    Duration::new((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_math_is_exact() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(7_000, t0);
        bucket.take(7_000);
        assert_eq!(bucket.remaining(), 0);
        assert_eq!(bucket.reset(), Duration::from_secs(60));
        // One token takes 60 s / 7000 = 8_571_428.57.. ns.
        assert_eq!(bucket.wait_for(1), Duration::from_nanos(8_571_429));
        bucket.refill(t0 + Duration::from_nanos(8_571_428));
        assert_eq!(bucket.remaining(), 0);
        assert_eq!(bucket.wait_for(1), Duration::from_nanos(1));
        bucket.refill(t0 + Duration::from_nanos(8_571_429));
        assert_eq!(bucket.remaining(), 1);
        assert!(bucket.wait_for(1).is_zero());
        bucket.take_saturating(10);
        assert_eq!(bucket.debt, bucket.full());
        bucket.refill(t0 + Duration::from_secs(3600));
        assert_eq!(bucket.debt, 0);
        assert_eq!(bucket.remaining(), 7_000);
    }
}
