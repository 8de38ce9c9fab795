//! The per-family correction of the prompt estimate against what the server charged.
//!
//! Pure arithmetic on instants passed in, so it is tested without a clock.

use std::time::Duration;

use tokio::time::Instant;

/// The largest factor the correction applies: a server that charges far more than any
/// estimate says is a misconfigured limit (which learned limits fix), not an estimate to
/// stretch without bound.
pub const MAX_CORRECTION: f64 = 1.5;

/// After this long without a new observation the correction has lost half of its excess over
/// 1: a server that once charged more (a burst of unusual prompts) does not slow a family for
/// good.
pub const CORRECTION_HALF_LIFE: Duration = Duration::from_secs(60);

/// How much more than the local estimate a family's server charges, learned from the server's
/// own accounting (`x-ratelimit-remaining-tokens`), bounded to `[1, MAX_CORRECTION]` and
/// decaying toward 1.
///
/// It hears only what the server surely counted: what reports that agree raised beyond the
/// uncertainty of when the server counted, over the prompt tokens charged meanwhile (see
/// `Buckets::reconcile`). A count read as of the answer overstates the server by the round
/// trip's refill, so a single answer never moves it, and a server that counts exactly leaves
/// it at 1.0.
///
/// It only ever raises estimates: a server that charges less than reserved gets the
/// difference back through the settle and the header tightening, while one that charges more
/// would overrun on every batch start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChargeCorrection {
    factor: f64,
    observed_at: Option<Instant>,
}

impl Default for ChargeCorrection {
    fn default() -> Self {
        ChargeCorrection {
            factor: 1.0,
            observed_at: None,
        }
    }
}

impl ChargeCorrection {
    /// The factor in force at `now`, in `[1, MAX_CORRECTION]`.
    pub fn factor(&self, now: Instant) -> f64 {
        let Some(at) = self.observed_at else {
            return self.factor;
        };
        let halvings =
            now.saturating_duration_since(at).as_secs_f64() / CORRECTION_HALF_LIFE.as_secs_f64();
        1.0 + (self.factor - 1.0) * 0.5_f64.powf(halvings)
    }

    /// Records that the server counted `charged` units in use where the local limiter
    /// counted `estimated`. A larger ratio raises the factor at once (an under-estimate costs
    /// 429s); a smaller one only lets the decay run. Returns whether the factor rose.
    pub fn observe(&mut self, estimated: u64, charged: u64, now: Instant) -> bool {
        if estimated == 0 {
            return false;
        }
        self.adopt(charged as f64 / estimated as f64, now)
    }

    /// Takes `factor` as observed at `observed_at` (another process's, shared through Redis)
    /// if it is above the factor in force at that moment. Returns whether the factor rose.
    pub fn adopt(&mut self, factor: f64, observed_at: Instant) -> bool {
        let factor = factor.clamp(1.0, MAX_CORRECTION);
        if factor.is_nan() || factor <= self.factor(observed_at) {
            return false;
        }
        self.factor = factor;
        self.observed_at = Some(observed_at);
        true
    }

    /// `tokens` scaled by the factor in force at `now`, rounded up.
    pub fn apply(&self, tokens: u64, now: Instant) -> u64 {
        let factor = self.factor(now);
        if factor <= 1.0 {
            return tokens;
        }
        (tokens as f64 * factor).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_neutral() {
        let now = Instant::now();
        let correction = ChargeCorrection::default();
        assert_eq!(correction.factor(now), 1.0);
        assert_eq!(correction.apply(1_000, now), 1_000);
    }

    #[test]
    fn an_undercount_raises_the_factor_within_its_bound() {
        let now = Instant::now();
        let mut correction = ChargeCorrection::default();
        correction.observe(1_000, 1_100, now);
        assert!((correction.factor(now) - 1.1).abs() < 1e-9);
        assert_eq!(correction.apply(1_000, now), 1_100);
        correction.observe(1_000, 9_000, now);
        assert_eq!(correction.factor(now), MAX_CORRECTION);
    }

    #[test]
    fn an_overcount_never_lowers_estimates() {
        let now = Instant::now();
        let mut correction = ChargeCorrection::default();
        correction.observe(1_000, 500, now);
        assert_eq!(correction.factor(now), 1.0);
        correction.observe(0, 500, now);
        assert_eq!(correction.factor(now), 1.0);
    }

    #[test]
    fn a_shared_factor_counts_from_when_it_was_observed() {
        // Later than the real now, so that going back two half-lives stays on the clock.
        let now = Instant::now() + CORRECTION_HALF_LIFE * 2;
        let mut correction = ChargeCorrection::default();
        // Shared a half-life ago at 1.4: worth 1.2 now, and above the neutral factor.
        assert!(correction.adopt(1.4, now - CORRECTION_HALF_LIFE));
        assert!((correction.factor(now) - 1.2).abs() < 1e-9);
        // An older or smaller one changes nothing; nonsense is clamped or refused.
        assert!(!correction.adopt(1.3, now - CORRECTION_HALF_LIFE * 2));
        assert!(!correction.adopt(f64::NAN, now));
        assert!(correction.adopt(9.0, now));
        assert_eq!(correction.factor(now), MAX_CORRECTION);
    }

    #[test]
    fn the_excess_halves_every_half_life() {
        let now = Instant::now();
        let mut correction = ChargeCorrection::default();
        correction.observe(1_000, 1_200, now);
        let later = now + CORRECTION_HALF_LIFE;
        assert!((correction.factor(later) - 1.1).abs() < 1e-9);
        let much_later = now + CORRECTION_HALF_LIFE * 20;
        assert!(correction.factor(much_later) < 1.000_001);
        // A smaller ratio than the decayed factor leaves it decaying.
        correction.observe(1_000, 1_050, later);
        assert!((correction.factor(later) - 1.1).abs() < 1e-9);
    }
}
