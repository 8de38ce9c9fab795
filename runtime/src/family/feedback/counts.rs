//! The recent answers' counts and round trips a family keeps to tell how its server counts
//! over time (see `window.rs`).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::units::cost::Dimension;

/// How many answers' counts are kept to compare a new one with.
pub(super) const COUNTS_KEPT: usize = 16;

/// How many round trips the guard is the longest of.
const ROUND_TRIPS_KEPT: usize = 32;

/// A hint in whole seconds may be rounded either way by up to this.
pub(super) const WHOLE_SECOND: Duration = Duration::from_secs(1);

/// The longest wait a window's 429 can ask for: a minute's window.
pub(super) const MINUTE: Duration = Duration::from_secs(60);

/// One answer's count on a dimension.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub(super) dimension: Dimension,
    pub(super) sent: Instant,
    pub(super) answered: Instant,
    pub(super) remaining: u64,
    /// The limit the answer reported: counts under another limit are not compared.
    pub(super) limit: u64,
}

/// The recent answers' counts and round trips, and how closely the boundary is known.
#[derive(Debug, Default)]
pub(super) struct WindowWitness {
    pub(super) seen: VecDeque<Seen>,
    round_trips: VecDeque<Duration>,
    /// The narrowest guard aligned on so far.
    pub(super) aligned: Option<Duration>,
}

impl WindowWitness {
    pub(super) fn round_trip(&mut self, round_trip: Duration) {
        if self.round_trips.len() == ROUND_TRIPS_KEPT {
            self.round_trips.pop_front();
        }
        self.round_trips.push_back(round_trip);
    }

    pub(super) fn longest_round_trip(&self) -> Duration {
        self.round_trips.iter().copied().max().unwrap_or_default()
    }
}

/// What a refilling bucket of `limit` units per `window` gives back in `elapsed`, rounded up.
pub(super) fn refill(limit: u64, elapsed: Duration, window: Duration) -> u64 {
    let units = u128::from(limit) * elapsed.as_nanos();
    u64::try_from(units.div_ceil(window.as_nanos().max(1))).unwrap_or(u64::MAX)
}

/// How far a hint in whole seconds may be off.
pub(super) fn rounding(hint: Duration) -> Duration {
    if hint.subsec_nanos() == 0 {
        WHOLE_SECOND
    } else {
        Duration::ZERO
    }
}
