//! What a deployment pool has done so far: per deployment what the pool routed to it and its
//! family's numbers, and for the pool its queue's waits and its budget
//! ([`Pool::stats`](super::Pool::stats)).

use std::time::Duration;

use crate::family::breaker::BreakerState;
use crate::family::spend::BudgetLeft;
use crate::family::stats::FamilyStats;

/// A pool's snapshot.
///
/// The pool counts acquisitions: a call retried on another deployment acquires twice. Every
/// acquisition is admitted (routed to a deployment), refused, dropped while it waited, or
/// still waiting, so `admitted + refused + cancelled + waiting == issued`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name.
    pub pool: String,
    /// Each deployment, in the pool's order.
    pub deployments: Vec<DeploymentStats>,
    /// Acquisitions that joined the pool's queue.
    pub issued: u64,
    /// Acquisitions routed to a deployment and reserved there.
    pub admitted: u64,
    /// Acquisitions refused at once: no deployment could take them, or the pool's budget is
    /// spent.
    pub refused: u64,
    /// Acquisitions dropped while they waited.
    pub cancelled: u64,
    /// Acquisitions waiting now.
    pub waiting: u64,
    /// Time admitted acquisitions spent in the pool (its queue and the chosen deployment's
    /// limiter), added up.
    pub total_wait: Duration,
    /// The longest any acquisition waited in the pool.
    pub max_wait: Duration,
    /// Tokens reserved by admitted acquisitions, all deployments added.
    pub tokens: u64,
    /// What the pool's budget has left (`None` fields where unlimited).
    pub budget_left: BudgetLeft,
}

impl PoolStats {
    /// The deployment called `name`.
    pub fn deployment(&self, name: &str) -> Option<&DeploymentStats> {
        self.deployments
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// 429s all deployments saw.
    pub fn rate_limited(&self) -> u64 {
        self.deployments.iter().map(|d| d.rate_limited).sum()
    }

    /// Admitted acquisitions' mean wait in the pool.
    pub fn mean_wait(&self) -> Duration {
        if self.admitted == 0 {
            Duration::ZERO
        } else {
            self.total_wait / u32::try_from(self.admitted).unwrap_or(u32::MAX)
        }
    }
}

/// One deployment of a [`PoolStats`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeploymentStats {
    /// Its name in the pool.
    pub name: String,
    /// Acquisitions the pool routed to it.
    pub admitted: u64,
    /// Tokens those reserved (prompt estimate plus `n × max_tokens`).
    pub tokens: u64,
    /// Its part of the tokens the pool routed, in `[0, 1]` (0 before any).
    pub share: f64,
    /// 429s it answered (its family's count: calls made on it directly are included).
    pub rate_limited: u64,
    /// Where its circuit breaker stands.
    pub breaker: BreakerState,
    /// How much longer it is skipped for being out of quota, if it is.
    pub skipped_for: Option<Duration>,
    /// Its family's whole snapshot (the deployment's name is its family id): retries,
    /// charged tokens, cost, its own budget.
    pub family: FamilyStats,
}

/// The pool's running counts, under its mutex.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) issued: u64,
    pub(crate) admitted: u64,
    pub(crate) refused: u64,
    pub(crate) cancelled: u64,
    pub(crate) waiting: u64,
    pub(crate) total_wait: Duration,
    pub(crate) max_wait: Duration,
    /// Per deployment: admissions and tokens reserved.
    pub(crate) routed: Vec<(u64, u64)>,
}
