//! What a long run has done so far, per limit family: a snapshot cheap enough to read every
//! second ([`Registry::stats`](crate::Registry::stats), `ratelimited::stats::snapshot()`).
//!
//! Counts are per attempt: a call retried twice is issued three times. Every issued attempt is
//! in exactly one of admitted, refused (breaker, budget, too large, backend down), cancelled
//! (dropped while waiting) or waiting, so `admitted + refused + cancelled + waiting == issued`
//! holds in every snapshot.

use std::time::Duration;

use crate::family::breaker::BreakerState;
use crate::family::spend::BudgetLeft;
pub use crate::family::tenants::TenantStats;
use crate::units::money::Nanodollars;

/// Every family's snapshot and the process-wide budget.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// One entry per family used so far, whatever the tiers its calls named, sorted by
    /// provider and family.
    pub families: Vec<FamilyStats>,
    /// What the process-wide budget has left.
    pub budget_left: BudgetLeft,
}

impl Stats {
    /// The snapshot of the family with id `family` (`gpt-4o-mini`), if it was used.
    pub fn family(&self, family: &str) -> Option<&FamilyStats> {
        self.families.iter().find(|f| f.family == family)
    }

    /// Money spent by every family with a price, in US dollars.
    pub fn cost_usd(&self) -> f64 {
        self.families.iter().filter_map(|f| f.cost_usd).sum()
    }
}

/// Retries by what caused them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryCounts {
    /// After a 429.
    pub rate_limited: u64,
    /// After a 5xx, 529, timeout or reset connection.
    pub transient: u64,
}

impl RetryCounts {
    /// Every retry.
    pub fn total(&self) -> u64 {
        self.rate_limited + self.transient
    }
}

/// One family's numbers.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FamilyStats {
    /// The limit family id (`gpt-4o-mini`).
    pub family: String,
    /// The provider (`openai`).
    pub provider: String,
    /// Every tier its calls drew on so far, sorted. Each tier has a limiter of its own (limits
    /// differ by tier); the counts, breaker and budget below are the family's, all tiers added.
    pub tiers: Vec<String>,
    /// Attempts that asked to be admitted.
    pub issued: u64,
    /// Attempts the limiter admitted (and that were then sent).
    pub admitted: u64,
    /// Attempts refused before waiting or sending (breaker, budget, too large, backend down).
    pub refused: u64,
    /// Attempts dropped while they waited.
    pub cancelled: u64,
    /// Attempts waiting to be admitted now.
    pub waiting: u64,
    /// Admitted attempts whose answer has not been settled yet.
    pub in_flight: u64,
    /// Time admitted attempts spent waiting, added up.
    pub total_wait: Duration,
    /// The longest any attempt waited.
    pub max_wait: Duration,
    /// Retries, by reason.
    pub retries: RetryCounts,
    /// 429 answers seen (each one also drains the family's buckets).
    pub rate_limited: u64,
    /// Transient failures seen (5xx, 529, timeouts).
    pub transient_failures: u64,
    /// Where the circuit breaker stands.
    pub breaker: BreakerState,
    /// Tokens reserved by admitted attempts (prompt estimate + `n × max_tokens`).
    pub reserved_tokens: u64,
    /// Tokens the family's buckets were settled to (what the server's limiter charges).
    pub charged_tokens: u64,
    /// Calls that reported their usage.
    pub reported_calls: u64,
    /// The prompt estimate of the calls that reported usage.
    pub estimated_input_tokens: u64,
    /// Input tokens those calls reported.
    pub reported_input_tokens: u64,
    /// Output tokens those calls reported.
    pub reported_output_tokens: u64,
    /// Money spent so far at the family's price, in US dollars (the nearest `f64` to the whole
    /// nano-dollars the family counts); `None` with no price.
    pub cost_usd: Option<f64>,
    /// What the family's own budget has left.
    pub budget_left: BudgetLeft,
    /// The tenants that used the most tokens, most first (at most
    /// `TOP_TENANTS`, 10; see [`TenantStats`]).
    pub top_tenants_by_tokens: Vec<TenantStats>,
    /// The tenants whose calls waited the longest in all, longest first.
    pub top_tenants_by_wait: Vec<TenantStats>,
}

impl FamilyStats {
    /// Admitted attempts' mean wait.
    pub fn mean_wait(&self) -> Duration {
        if self.admitted == 0 {
            Duration::ZERO
        } else {
            self.total_wait / u32::try_from(self.admitted).unwrap_or(u32::MAX)
        }
    }

    /// The prompt estimate over the reported prompt, for calls that reported usage: 1.10
    /// means the estimate was 10 % high. `None` before any call reported usage.
    pub fn estimate_ratio(&self) -> Option<f64> {
        (self.reported_input_tokens > 0)
            .then(|| self.estimated_input_tokens as f64 / self.reported_input_tokens as f64)
    }
}

/// The running counts behind [`FamilyStats`]: kept under the family's mutex.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) issued: u64,
    pub(crate) admitted: u64,
    pub(crate) refused: u64,
    pub(crate) cancelled: u64,
    pub(crate) waiting: u64,
    pub(crate) in_flight: u64,
    pub(crate) total_wait: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) retries: RetryCounts,
    pub(crate) rate_limited: u64,
    pub(crate) transient_failures: u64,
    pub(crate) reserved_tokens: u64,
    pub(crate) charged_tokens: u64,
    pub(crate) reported_calls: u64,
    pub(crate) estimated_input_tokens: u64,
    pub(crate) reported_input_tokens: u64,
    pub(crate) reported_output_tokens: u64,
    pub(crate) cost: Nanodollars,
}
