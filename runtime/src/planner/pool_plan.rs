//! The answer of a pool plan: how long the run takes, how the deployments shared it, and
//! which deployment the run waited on.

use std::time::Duration;

use super::binding::Binding;
use crate::units::cost::Dimension;
use crate::units::quota::Quota;

/// One deployment's part of a [`PoolPlan`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeploymentPlan {
    /// Its name in the pool.
    pub name: String,
    /// Its limits (headroom included).
    pub quota: Quota,
    /// Requests routed to it.
    pub requests: u64,
    /// Tokens those reserved (prompt plus `n × max_tokens`).
    pub tokens: u64,
    /// Its part of the run's tokens, in `[0, 1]`.
    pub share: f64,
    /// How long, over the run, the request at the head of the pool waited for this deployment
    /// (the one it was then admitted on).
    pub limited: Duration,
    /// Which of its limits that wait was for, most of the time ([`Binding::Workers`] when the
    /// head never waited for it).
    pub binding: Binding,
}

/// The outcome of [`PoolPlanner::plan`](crate::planner::PoolPlanner::plan).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolPlan {
    /// The pool's name.
    pub pool: String,
    /// Each deployment, in the pool's order.
    pub deployments: Vec<DeploymentPlan>,
    /// Requests sent.
    pub requests: u64,
    /// From the first request to the last response.
    pub makespan: Duration,
    /// Tokens reserved in all (prompt plus `n × max_tokens` each).
    pub tokens: u64,
    /// The least makespan the deployments' request and token buckets allow together, however
    /// the requests are routed: each bucket starts full and refills at its limit, so the last
    /// admission comes no earlier than when their sum has let every request and token
    /// through; then one latency. Dimensions other than RPM and TPM are not counted.
    pub pooled_minimum: Duration,
}

impl PoolPlan {
    /// The deployment the pool's head waited for longest: the one that set the pace. `None`
    /// when no request waited at the head (the workers set the pace).
    pub fn binding_deployment(&self) -> Option<&DeploymentPlan> {
        self.deployments
            .iter()
            .filter(|d| d.limited > Duration::ZERO)
            .max_by_key(|d| d.limited)
    }

    /// The makespan over the pooled minimum: 1.0 is as fast as the limits allow.
    pub fn ratio_to_minimum(&self) -> f64 {
        self.makespan.as_secs_f64() / self.pooled_minimum.as_secs_f64()
    }

    /// The deployment called `name`.
    pub fn deployment(&self, name: &str) -> Option<&DeploymentPlan> {
        self.deployments
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
}

/// The earliest a set of refilling buckets (per deployment, its capacity per window) can have
/// admitted `amount` in all, for the dimension `dimension`.
pub(crate) fn pooled_admission(quotas: &[Quota], dimension: Dimension, amount: u64) -> Duration {
    let Some(window) = dimension.window() else {
        return Duration::ZERO;
    };
    let Some(capacity) = quotas
        .iter()
        .map(|q| q.capacity(dimension))
        .sum::<Option<u64>>()
    else {
        // A deployment without this limit admits any amount of it.
        return Duration::ZERO;
    };
    if capacity == 0 || amount <= capacity {
        return Duration::ZERO;
    }
    // Full buckets first, then the summed refill.
    let excess = (amount - capacity) as f64;
    window.mul_f64(excess / capacity as f64)
}
