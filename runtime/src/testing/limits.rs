//! The referee: the limits a [`MockProvider`](super::MockProvider) enforces, and the exact check
//! that a record of admissions stayed inside them.
//!
//! The check is independent of the mock's own buckets and of the crate's limiter, so a test can
//! prove "the limit was never exceeded" against either.

use std::fmt;

use tokio::time::Instant;

use super::bucket::WINDOW_NANOS;
use super::records::Admission;

use crate::config::limit_var;
use crate::model::limit_family::LimitFamily;
use crate::model::provider::Provider;
use crate::units::cost::Dimension;
use crate::units::quota::Quota;

/// The limits a [`MockProvider`](super::MockProvider) enforces: requests and tokens per minute.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use ratelimited::testing::MockLimits;
/// let limits = MockLimits::new(500, 30_000);
/// assert_eq!((limits.rpm, limits.tpm), (500, 30_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MockLimits {
    /// Requests per minute: the requests bucket's capacity (refilled at `rpm / 60 s`).
    pub rpm: u64,
    /// Tokens per minute: the tokens bucket's capacity (refilled at `tpm / 60 s`).
    pub tpm: u64,
}

impl MockLimits {
    /// Limits of `rpm` requests and `tpm` tokens per minute.
    pub const fn new(rpm: u64, tpm: u64) -> Self {
        MockLimits { rpm, tpm }
    }

    /// The variables that give `model`'s limiter exactly these limits
    /// (`RATE_LIMITED_<FAMILY>_RPM` and `_TPM`), so the client's limiter and the mock agree.
    /// Without them the limiter uses the tier table (gpt-4o-mini at tier-1: 200,000 TPM), and a
    /// mock with smaller limits answers 429s. For
    /// [`fresh_registry_with_env`](crate::registry::fresh_registry_with_env) or
    /// [`Registry::with_env`](crate::Registry::with_env). The model's provider is inferred as
    /// the attribute infers it, OpenAI where it cannot be (the mock speaks OpenAI's protocol).
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use ratelimited::testing::MockLimits;
    /// let vars = MockLimits::new(500, 5_000).env_for("gpt-4o-mini-2024-07-18");
    /// assert_eq!(vars[0], ("RATE_LIMITED_GPT_4O_MINI_RPM".to_owned(), "500".to_owned()));
    /// assert_eq!(vars[1], ("RATE_LIMITED_GPT_4O_MINI_TPM".to_owned(), "5000".to_owned()));
    /// // let _registry = ratelimited::testing::fresh_registry_with_env(vars);
    /// ```
    pub fn env_for(&self, model: &str) -> [(String, String); 2] {
        let provider = Provider::infer(model).unwrap_or(Provider::OpenAi);
        let family = LimitFamily::of(provider, model);
        [
            (
                limit_var(&family, Dimension::RequestsPerMinute),
                self.rpm.to_string(),
            ),
            (
                limit_var(&family, Dimension::TokensPerMinute),
                self.tpm.to_string(),
            ),
        ]
    }

    /// Checks that `admissions` could all have passed token buckets of these limits, each full
    /// at the first admission.
    ///
    /// With continuous refill the exact invariant is not "at most `tpm` in any 60 s window" (a
    /// full bucket at `t` plus a full refill by `t + 60 s` legally admits `2 × tpm` in a closed
    /// 60 s window) but the token-bucket one: for every interval `[t1, t2]`, what was admitted
    /// at instants inside it is at most `capacity + capacity × (t2 − t1) / 60 s`. This checks
    /// exactly that (integer arithmetic to the nanosecond, in O(n log n)), for requests (1 per
    /// admission) and for tokens, and returns the first violation found. Admissions need not be
    /// sorted.
    ///
    /// ```
    /// # use ratelimited_runtime::facade as ratelimited;
    /// use std::time::Duration;
    /// use ratelimited::testing::{Admission, MockLimits};
    /// use tokio::time::Instant;
    ///
    /// let t0 = Instant::now();
    /// let limits = MockLimits::new(100, 600); // 10 tokens per second
    /// let burst_then_refill = [
    ///     Admission::new(t0, 600),
    ///     Admission::new(t0 + Duration::from_secs(60), 600),
    /// ];
    /// assert!(limits.check(&burst_then_refill).is_ok());
    /// let too_fast = [
    ///     Admission::new(t0, 600),
    ///     Admission::new(t0 + Duration::from_secs(1), 11),
    /// ];
    /// assert!(limits.check(&too_fast).is_err());
    /// ```
    pub fn check(&self, admissions: &[Admission]) -> Result<(), LimitViolation> {
        let mut sorted: Vec<&Admission> = admissions.iter().collect();
        sorted.sort_by_key(|a| a.at);
        check_dimension(Dimension::RequestsPerMinute, self.rpm, &sorted, |_| 1)?;
        check_dimension(Dimension::TokensPerMinute, self.tpm, &sorted, |a| a.tokens)
    }
}

/// The same limits as a [`Quota`] (headroom 1), to configure a limiter against the mock.
impl From<MockLimits> for Quota {
    fn from(limits: MockLimits) -> Quota {
        Quota::default().rpm(limits.rpm).tpm(limits.tpm)
    }
}

/// The O(n) scan behind [`MockLimits::check`] for one dimension, over admissions sorted by time.
///
/// With `P(k)` the charges before index `k` and `t(k)` its time, the pair `i <= j` violates iff
/// `(P(j+1) − P(i)) × W > C × W + C × (t(j) − t(i))`, i.e. `A(j) − B(i) > C × W` with
/// `A(j) = P(j+1) × W − C × t(j)` and `B(i) = P(i) × W − C × t(i)`: keep the minimum `B`.
fn check_dimension(
    dimension: Dimension,
    capacity: u64,
    sorted: &[&Admission],
    charge: impl Fn(&Admission) -> u64,
) -> Result<(), LimitViolation> {
    let Some(first) = sorted.first() else {
        return Ok(());
    };
    let t0 = first.at;
    let cap = i128::from(capacity);
    let window = WINDOW_NANOS as i128;
    let mut prefix: i128 = 0;
    // (B(i), i, P(i)) with the smallest B so far.
    let mut best: Option<(i128, usize, i128)> = None;
    for (j, admission) in sorted.iter().enumerate() {
        let t = (admission.at - t0).as_nanos() as i128;
        let b = prefix * window - cap * t;
        if best.is_none_or(|(min, _, _)| b < min) {
            best = Some((b, j, prefix));
        }
        prefix += i128::from(charge(admission));
        let a = prefix * window - cap * t;
        let (min, i, prefix_i) = best.expect("set above");
        if a - min > cap * window {
            let from = sorted[i].at;
            let span = admission.at - from;
            let refill = (u128::from(capacity) * span.as_nanos()) / WINDOW_NANOS;
            return Err(LimitViolation {
                dimension,
                capacity,
                from,
                to: admission.at,
                admitted: u64::try_from(prefix - prefix_i).unwrap_or(u64::MAX),
                allowed: u64::try_from(u128::from(capacity) + refill).unwrap_or(u64::MAX),
            });
        }
    }
    Ok(())
}

/// An interval in which more was admitted than a token bucket allows (see [`MockLimits::check`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitViolation {
    /// [`Dimension::RequestsPerMinute`] or [`Dimension::TokensPerMinute`].
    pub dimension: Dimension,
    /// The bucket's capacity (the per-minute limit).
    pub capacity: u64,
    /// The first admission of the interval.
    pub from: Instant,
    /// The last admission of the interval.
    pub to: Instant,
    /// Requests or tokens admitted at instants in `[from, to]`.
    pub admitted: u64,
    /// The most the bucket allows over that interval, rounded down:
    /// `capacity + capacity × (to − from) / 60 s`.
    pub allowed: u64,
}

impl fmt::Display for LimitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.dimension {
            Dimension::RequestsPerMinute => "requests",
            _ => "tokens",
        };
        write!(
            f,
            "{} limit exceeded: {} {unit} admitted within {:?}, but a bucket of capacity {} \
             refilling {} per minute allows at most {}",
            self.dimension,
            self.admitted,
            self.to - self.from,
            self.capacity,
            self.capacity,
            self.allowed
        )
    }
}

impl std::error::Error for LimitViolation {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn checker_finds_the_worst_interval() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let limits = MockLimits::new(1_000, 600);
        // 300 + 300 at 0 s, then 40 at 3 s: 640 > 600 + 30.
        let admissions = [
            Admission::new(t0 + s(3), 40),
            Admission::new(t0, 300),
            Admission::new(t0, 300),
        ];
        let violation = limits.check(&admissions).unwrap_err();
        assert_eq!(violation.dimension, Dimension::TokensPerMinute);
        assert_eq!((violation.from, violation.to), (t0, t0 + s(3)));
        assert_eq!((violation.admitted, violation.allowed), (640, 630));
        assert!(violation.to_string().contains("640 tokens"));
        // Exactly at the bound passes.
        let exact = [Admission::new(t0, 600), Admission::new(t0 + s(3), 30)];
        assert!(limits.check(&exact).is_ok());
        assert!(limits.check(&[]).is_ok());
    }
}
