//! The mock's limits: a token bucket with continuous refill in exact integer arithmetic, or a
//! fixed or sliding one-minute window (see [`MockWindow`]).
//!
//! The mock is a referee for the limiter, so it must not share the limiter's rounding: every
//! quantity here is an integer count of token-nanoseconds, and a bucket of capacity `C` refills
//! exactly `C` tokens per 60 s.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Nanoseconds in the one-minute window every limit is expressed per.
pub(super) const WINDOW_NANOS: u128 = 60_000_000_000;

/// How a [`MockProvider`](super::MockProvider) counts each limit: what the server or gateway
/// in front of the client does (see [`MockProvider::window`](super::MockProvider::window)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MockWindow {
    /// A bucket that refills continuously, `limit` units a minute (OpenAI, Azure, Anthropic).
    #[default]
    Continuous,
    /// `limit` units per fixed minute, counted from the provider's creation: the count starts
    /// over at each boundary (a gateway counting per calendar minute).
    Fixed,
    /// `limit` units in any minute: what was admitted in the last 60 s (a gateway keeping a
    /// sliding log).
    Sliding,
}

/// One limit of the mock, full at creation, counted as its [`MockWindow`] says.
///
/// Continuous: `debt` is what is used, in token-nanoseconds per window: one token is
/// `WINDOW_NANOS` units, and each nanosecond refills `capacity` units, so nothing is ever
/// rounded.
#[derive(Clone, Debug)]
pub(super) struct Bucket {
    capacity: u64,
    at: Instant,
    count: Count,
}

#[derive(Clone, Debug)]
enum Count {
    Continuous { debt: u128 },
    Fixed { start: Instant, used: u64 },
    Sliding { log: VecDeque<(Instant, u64)> },
}

const WINDOW: Duration = Duration::from_secs(60);

impl Bucket {
    pub(super) fn new(capacity: u64, now: Instant) -> Self {
        Bucket::with_window(capacity, now, MockWindow::Continuous)
    }

    pub(super) fn with_window(capacity: u64, now: Instant, window: MockWindow) -> Self {
        let count = match window {
            MockWindow::Continuous => Count::Continuous { debt: 0 },
            MockWindow::Fixed => Count::Fixed {
                start: now,
                used: 0,
            },
            MockWindow::Sliding => Count::Sliding {
                log: VecDeque::new(),
            },
        };
        Bucket {
            capacity,
            at: now,
            count,
        }
    }

    /// The per-minute limit this bucket enforces.
    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    fn full(&self) -> u128 {
        u128::from(self.capacity) * WINDOW_NANOS
    }

    /// Units in use now (as of the last refill).
    fn used(&self) -> u64 {
        match &self.count {
            Count::Continuous { debt } => debt.div_ceil(WINDOW_NANOS) as u64,
            Count::Fixed { used, .. } => *used,
            Count::Sliding { log } => log.iter().map(|(_, units)| units).sum(),
        }
    }

    pub(super) fn refill(&mut self, now: Instant) {
        if now <= self.at {
            return;
        }
        let capacity = u128::from(self.capacity);
        let elapsed = now - self.at;
        match &mut self.count {
            Count::Continuous { debt } => {
                *debt = debt.saturating_sub(elapsed.as_nanos() * capacity);
            }
            Count::Fixed { start, used } => {
                let windows = (now - *start).as_nanos() / WINDOW.as_nanos();
                if windows > 0 {
                    *start += WINDOW * u32::try_from(windows).unwrap_or(u32::MAX);
                    *used = 0;
                }
            }
            Count::Sliding { log } => {
                while log.front().is_some_and(|(at, _)| *at + WINDOW <= now) {
                    log.pop_front();
                }
            }
        }
        self.at = now;
    }

    /// The exact time until `amount` fits (zero if it fits now); `amount <= capacity`.
    pub(super) fn wait_for(&self, amount: u64) -> Duration {
        match &self.count {
            Count::Continuous { debt } => {
                let excess = (debt + u128::from(amount) * WINDOW_NANOS).saturating_sub(self.full());
                duration_from_nanos(excess.div_ceil(u128::from(self.capacity)))
            }
            Count::Fixed { start, used } => {
                if used + amount <= self.capacity {
                    Duration::ZERO
                } else {
                    (*start + WINDOW).saturating_duration_since(self.at)
                }
            }
            Count::Sliding { log } => {
                let mut over = (self.used() + amount).saturating_sub(self.capacity);
                for (at, units) in log {
                    if over == 0 {
                        break;
                    }
                    over = over.saturating_sub(*units);
                    if over == 0 {
                        return (*at + WINDOW).saturating_duration_since(self.at);
                    }
                }
                Duration::ZERO
            }
        }
    }

    pub(super) fn take(&mut self, amount: u64) {
        match &mut self.count {
            Count::Continuous { debt } => *debt += u128::from(amount) * WINDOW_NANOS,
            Count::Fixed { used, .. } => *used += amount,
            Count::Sliding { log } => log.push_back((self.at, amount)),
        }
    }

    /// Returns `amount` (a refund), never above full.
    pub(super) fn give_back(&mut self, amount: u64) {
        match &mut self.count {
            Count::Continuous { debt } => {
                *debt = debt.saturating_sub(u128::from(amount) * WINDOW_NANOS);
            }
            Count::Fixed { used, .. } => *used = used.saturating_sub(amount),
            Count::Sliding { log } => {
                // From the newest admissions back.
                let mut left = amount;
                while left > 0 {
                    let Some(last) = log.back_mut() else { break };
                    let taken = left.min(last.1);
                    last.1 -= taken;
                    left -= taken;
                    if last.1 == 0 {
                        log.pop_back();
                    }
                }
            }
        }
    }

    /// Takes `amount`, but never below empty: a failed request may delay the next admission,
    /// but must not lock a client out for longer than one unit's refill.
    pub(super) fn take_saturating(&mut self, amount: u64) {
        let (room, full) = (self.capacity.saturating_sub(self.used()), self.full());
        match &mut self.count {
            Count::Continuous { debt } => {
                *debt = (*debt + u128::from(amount) * WINDOW_NANOS).min(full);
            }
            _ if room > 0 => self.take(amount.min(room)),
            _ => {}
        }
    }

    /// Whole units left, rounded down.
    pub(super) fn remaining(&self) -> u64 {
        match &self.count {
            Count::Continuous { debt } => (self.full().saturating_sub(*debt) / WINDOW_NANOS) as u64,
            _ => self.capacity.saturating_sub(self.used()),
        }
    }

    /// The time until the bucket is full again (a fixed window: until its next boundary).
    pub(super) fn reset(&self) -> Duration {
        match &self.count {
            Count::Continuous { debt } => {
                duration_from_nanos(debt.div_ceil(u128::from(self.capacity)))
            }
            Count::Fixed { start, .. } => (*start + WINDOW).saturating_duration_since(self.at),
            Count::Sliding { log } => log.back().map_or(Duration::ZERO, |(at, _)| {
                (*at + WINDOW).saturating_duration_since(self.at)
            }),
        }
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
        assert_eq!(bucket.used(), 7_000, "saturated at full");
        assert_eq!(bucket.reset(), Duration::from_secs(60));
        bucket.refill(t0 + Duration::from_secs(3600));
        assert_eq!(bucket.used(), 0);
        assert_eq!(bucket.remaining(), 7_000);
    }

    #[test]
    fn a_fixed_window_counts_until_its_boundary_and_a_sliding_one_a_minute_back() {
        let t0 = Instant::now();
        let mut fixed = Bucket::with_window(10, t0, MockWindow::Fixed);
        fixed.take(10);
        fixed.refill(t0 + Duration::from_secs(59));
        assert_eq!(fixed.remaining(), 0);
        assert_eq!(fixed.wait_for(1), Duration::from_secs(1));
        assert_eq!(fixed.reset(), Duration::from_secs(1));
        fixed.refill(t0 + Duration::from_secs(60));
        assert_eq!(fixed.remaining(), 10);
        // Windows are whole minutes from the start, however late the next request comes.
        fixed.take(3);
        fixed.refill(t0 + Duration::from_secs(150));
        assert_eq!(
            (fixed.remaining(), fixed.reset()),
            (10, Duration::from_secs(30))
        );

        let mut sliding = Bucket::with_window(10, t0, MockWindow::Sliding);
        sliding.take(6);
        sliding.refill(t0 + Duration::from_secs(20));
        sliding.take(4);
        assert_eq!(sliding.wait_for(1), Duration::from_secs(40));
        assert_eq!(sliding.wait_for(7), Duration::from_secs(60));
        sliding.give_back(3);
        assert_eq!(sliding.remaining(), 3);
        sliding.refill(t0 + Duration::from_secs(60));
        assert_eq!(sliding.remaining(), 9);
        sliding.take_saturating(20);
        assert_eq!(sliding.remaining(), 0);
    }
}
