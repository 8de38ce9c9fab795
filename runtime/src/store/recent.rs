//! What this process spent on a shared family lately, per bucket and per slice of its window:
//! written back to Redis when Redis could not know it (spent on the fallback while it was away)
//! or lost it (a store that came back empty; see `recovery.rs`).
//!
//! Each bucket keeps its window in 60 slices (a second for a per-minute bucket, 24 minutes for
//! a per-day one). What is written back is the sum of the slices that overlap the last window:
//! at least the last window's worth, never less, so a server that still counts it is never
//! overrun; at most one slice more.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::limits::window_us;
use crate::limiter::gcra::BUCKETS;
use crate::limiter::{Reservation, SharedHold};
use crate::sync::Locked;
use crate::units::cost::{Cost, Dimension};
use crate::units::quota::Quota;

/// Slices per window.
const SLICES: u64 = 60;

/// Where a reservation was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Through {
    /// In Redis.
    Redis,
    /// On the local fallback, while Redis was away: Redis does not know it yet.
    Fallback,
}

/// This process's recent spend on one family.
pub(crate) struct Recent {
    origin: Instant,
    /// One per dimension of [`BUCKETS`], in its order.
    rings: Mutex<Vec<Ring>>,
    /// Whether something spent on the fallback was not written back yet.
    unsynced: AtomicBool,
}

#[derive(Default)]
struct Ring {
    slice_us: u64,
    slices: VecDeque<Slice>,
}

#[derive(Clone, Copy)]
struct Slice {
    index: u64,
    /// Everything charged in this slice, net of settles.
    all: i64,
    /// What of it went through the fallback and was not written back yet.
    fallback: i64,
}

/// Units per bucket, in the order of [`BUCKETS`] (0 where a bucket is not limited).
pub(super) type Units = [i64; BUCKETS.len()];

impl Recent {
    pub(super) fn new() -> Self {
        Recent {
            origin: Instant::now(),
            rings: Mutex::new((0..BUCKETS.len()).map(|_| Ring::default()).collect()),
            unsynced: AtomicBool::new(false),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Records a charge moved from `from` to `to` (a new reservation from nothing, a settle,
    /// a refund to nothing) on `quota`'s buckets.
    pub(super) fn record(&self, quota: &Quota, from: &Cost, to: &Cost, through: Through) {
        if from == to {
            return;
        }
        let now = self.now_us();
        let mut rings = self.rings.locked();
        for (ring, dimension) in rings.iter_mut().zip(BUCKETS) {
            let delta = signed(dimension.charge(to)) - signed(dimension.charge(from));
            let window = window_us(quota, dimension);
            if delta == 0 || quota.capacity(dimension).is_none() || window == 0 {
                continue;
            }
            let slice = ring.slice_for(window);
            let index = now / slice;
            ring.prune(index, window);
            let current = match ring.slices.back_mut() {
                Some(last) if last.index == index => last,
                _ => {
                    ring.slices.push_back(Slice {
                        index,
                        all: 0,
                        fallback: 0,
                    });
                    ring.slices.back_mut().expect("just pushed")
                }
            };
            current.all += delta;
            if through == Through::Fallback {
                current.fallback += delta;
            }
        }
        if through == Through::Fallback {
            self.unsynced.store(true, Ordering::Release);
        }
    }

    /// Whether something spent on the fallback was not written back yet.
    pub(super) fn has_unsynced(&self) -> bool {
        self.unsynced.load(Ordering::Acquire)
    }

    /// What was spent on the fallback within each bucket's last window and not written back
    /// (negative: a settle gave back more than was written back), taken: it counts as written
    /// back from now on ([`restore`](Recent::restore) if it
    /// could not be).
    pub(super) fn take_unsynced(&self, quota: &Quota) -> Units {
        self.unsynced.store(false, Ordering::Release);
        self.sum(quota, |slice| std::mem::take(&mut slice.fallback))
    }

    /// Everything spent within each bucket's last window (what a store that lost its state
    /// no longer counts); the fallback's part counts as written back from now on.
    pub(super) fn take_all(&self, quota: &Quota) -> Units {
        self.unsynced.store(false, Ordering::Release);
        self.sum(quota, |slice| {
            slice.fallback = 0;
            slice.all
        })
        .map(|units| units.max(0))
    }

    /// Puts back what [`take_unsynced`](Recent::take_unsynced) took, when writing it back
    /// failed.
    pub(super) fn restore(&self, units: &Units) {
        let mut rings = self.rings.locked();
        for (ring, &units) in rings.iter_mut().zip(units) {
            if let Some(last) = ring.slices.back_mut().filter(|_| units != 0) {
                last.fallback += units;
                self.unsynced.store(true, Ordering::Release);
            }
        }
    }

    /// Per bucket of `quota`, the sum of `take` over the slices within its last window.
    fn sum(&self, quota: &Quota, mut take: impl FnMut(&mut Slice) -> i64) -> Units {
        let now = self.now_us();
        let mut units = [0; BUCKETS.len()];
        let mut rings = self.rings.locked();
        for ((ring, dimension), out) in rings.iter_mut().zip(BUCKETS).zip(&mut units) {
            let window = window_us(quota, dimension);
            if quota.capacity(dimension).is_none() || window == 0 || ring.slice_us == 0 {
                continue;
            }
            ring.prune(now / ring.slice_us, window);
            *out = ring.slices.iter_mut().map(&mut take).sum::<i64>();
        }
        units
    }
}

impl Ring {
    /// The slice length for `window`; a ring kept at another one starts over.
    fn slice_for(&mut self, window: u64) -> u64 {
        let slice = (window / SLICES).max(1);
        if self.slice_us != slice {
            self.slice_us = slice;
            self.slices.clear();
        }
        slice
    }

    /// Forgets the slices wholly before the window that ends in slice `index`.
    fn prune(&mut self, index: u64, window: u64) {
        let keep = window.div_ceil(self.slice_us.max(1));
        while self
            .slices
            .front()
            .is_some_and(|s| s.index.saturating_add(keep) < index)
        {
            self.slices.pop_front();
        }
    }
}

fn signed(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}

/// A reservation taken on the fallback while Redis was away, recorded so that its spend
/// (settled to what the request really used) reaches Redis when it answers again.
pub(super) struct FallbackHeld {
    pub(super) recent: Arc<Recent>,
    /// The family's limits when it was charged (the buckets it is recorded on).
    pub(super) quota: Quota,
    pub(super) reservation: Reservation,
}

impl SharedHold for FallbackHeld {
    fn start(&self) -> Option<std::time::SystemTime> {
        None
    }

    fn release(self: Box<Self>, _quota: &Quota, from: &Cost, to: &Cost) {
        self.recent.record(&self.quota, from, to, Through::Fallback);
        self.reservation.release_to(*to);
    }
}

/// The units of `dimension` in `units`.
pub(super) fn units_of(units: &Units, dimension: Dimension) -> i64 {
    BUCKETS
        .iter()
        .position(|&d| d == dimension)
        .map_or(0, |i| units[i])
}
