//! Priority lanes: which of a limiter's waiters goes next, and the share a lower lane keeps.

use std::fmt;

/// The lane a call waits in when its limit family is saturated.
///
/// A waiter in a higher lane is admitted before any waiter of a lower lane; within a lane,
/// waiters are admitted strictly in arrival order (so a large request is never starved inside
/// its lane). A lower lane is never frozen by a steady load above it: it keeps a guaranteed
/// minimum share of the admissions, [`DEFAULT_LANE_SHARE`] unless
/// [`Limiter::set_lane_share`](crate::Limiter::set_lane_share) says otherwise.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::{limiter::Cost, Limiter, Priority, Quota};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), ratelimited::Error> {
/// let limiter = Limiter::new(Quota::default().rpm(500));
/// // A user is waiting on this one: it goes ahead of the queued batch work.
/// let reservation = limiter
///     .acquire_with(Cost::request(200, 64), Priority::Interactive)
///     .await?;
/// # drop(reservation); Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// A person is waiting for the answer: admitted first.
    Interactive,
    /// Everything else; what [`Limiter::acquire`](crate::Limiter::acquire) uses.
    #[default]
    Normal,
    /// Bulk work that may wait: admitted last, within its guaranteed share.
    Batch,
}

impl Priority {
    /// Every lane, highest first.
    pub const ALL: [Priority; 3] = [Priority::Interactive, Priority::Normal, Priority::Batch];

    /// The lane's index: 0 is the highest.
    #[inline]
    pub(crate) fn lane(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Priority::Interactive => "interactive",
            Priority::Normal => "normal",
            Priority::Batch => "batch",
        })
    }
}

/// The share of admissions a waiting lower lane is guaranteed by default: 10%, one admission
/// in every ten while it has waiters. A share is at most one half, so that a higher lane always
/// keeps at least as much as the lanes below it.
pub const DEFAULT_LANE_SHARE: f64 = 0.1;

/// A lane share outside (0, 0.5], given to
/// [`Limiter::set_lane_share`](crate::Limiter::set_lane_share).
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error(
    "invalid lane share {0}: expected a fraction in (0, 0.5], for example 0.1 for one admission \
     in ten"
)]
pub struct InvalidLaneShare(pub f64);

/// How many admissions of higher lanes a waiting lane lets pass before it takes a turn:
/// with `share` = 1/(k+1) or more, k.
pub(crate) fn turns_passed_over(share: f64) -> Result<u32, InvalidLaneShare> {
    if !(share > 0.0 && share <= 0.5) {
        return Err(InvalidLaneShare(share));
    }
    // The epsilon keeps 0.1, 0.2, 0.25 .. exact despite their binary representations.
    let k = (1.0 / share + 1e-9).floor() - 1.0;
    Ok(k.clamp(0.0, f64::from(u32::MAX)) as u32)
}

/// How many lanes there are.
pub(crate) const LANES: usize = Priority::ALL.len();

/// Whose turn it is among lanes of waiters: the highest lane with waiters, unless a lower one
/// has let its quota of turns pass while it waited (the one that waited through the most goes
/// first, the higher one on a tie).
#[derive(Debug)]
pub(crate) struct LaneTurns {
    /// Per lane: admissions of higher lanes since the lane last had a turn, while it waited.
    passed_over: [u32; LANES],
    /// How many admissions of higher lanes a waiting lane lets pass before it takes a turn.
    turns_passed_over: u32,
}

impl LaneTurns {
    /// Turns with the [`DEFAULT_LANE_SHARE`].
    pub(crate) fn new() -> Self {
        LaneTurns {
            passed_over: [0; LANES],
            turns_passed_over: turns_passed_over(DEFAULT_LANE_SHARE)
                .expect("the default lane share is valid"),
        }
    }

    pub(crate) fn set_share(&mut self, share: f64) -> Result<(), InvalidLaneShare> {
        self.turns_passed_over = turns_passed_over(share)?;
        Ok(())
    }

    /// The lane whose head goes next, given which lanes have a waiter that may go.
    #[inline]
    pub(crate) fn next_of(&self, waiting: [bool; LANES]) -> Option<usize> {
        let top = waiting.iter().position(|&w| w)?;
        let starved = (top + 1..LANES)
            .filter(|&lane| waiting[lane] && self.passed_over[lane] >= self.turns_passed_over)
            // `max_by_key` keeps the last of equals: reversed, the higher lane wins ties.
            .rev()
            .max_by_key(|&lane| self.passed_over[lane]);
        Some(starved.unwrap_or(top))
    }

    /// Call before a waiter joins `lane`, given whether `lane` was empty: the share counts
    /// turns passed over while the lane waits, not before.
    #[inline]
    pub(crate) fn arriving_in(&mut self, was_empty: bool, lane: usize) {
        if was_empty {
            self.passed_over[lane] = 0;
        }
    }

    /// Counts an admission from `lane` against the share of the waiting lanes below it, given
    /// which lanes have waiters.
    #[inline]
    pub(crate) fn admitted_from_of(&mut self, waiting: [bool; LANES], lane: usize) {
        self.passed_over[lane] = 0;
        for (passed, waiting) in self.passed_over[lane + 1..]
            .iter_mut()
            .zip(&waiting[lane + 1..])
        {
            if *waiting {
                *passed = passed.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_rounded_so_the_lane_gets_at_least_it() {
        assert_eq!(turns_passed_over(0.1), Ok(9));
        assert_eq!(turns_passed_over(0.25), Ok(3));
        assert_eq!(turns_passed_over(0.3), Ok(2)); // one in three: 33% >= 30%
        assert_eq!(turns_passed_over(0.5), Ok(1));
        assert_eq!(turns_passed_over(1e-12), Ok(u32::MAX));
    }

    #[test]
    fn a_share_outside_the_unit_interval_is_refused() {
        for bad in [0.0, -0.1, 0.6, 1.0, f64::NAN, f64::INFINITY] {
            let err = turns_passed_over(bad).unwrap_err();
            assert!(
                err.to_string().contains("expected a fraction in (0, 0.5]"),
                "{err}"
            );
        }
    }

    #[test]
    fn lanes_are_ordered_highest_first() {
        assert!(Priority::Interactive < Priority::Normal && Priority::Normal < Priority::Batch);
        assert_eq!(Priority::default(), Priority::Normal);
        let lanes: Vec<usize> = Priority::ALL.iter().map(|p| p.lane()).collect();
        assert_eq!(lanes, [0, 1, 2]);
    }
}
