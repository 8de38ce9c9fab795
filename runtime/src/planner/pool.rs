//! Plans for a deployment pool: the [`PoolPlanner`].

use super::pool_plan::PoolPlan;
use super::pool_simulation::plan_pool;
use super::workload::Workload;
use crate::config::pool::PoolConfig;
use crate::units::error::Error;

/// Plans workloads on a deployment pool: the library's own pool (its routing, FIFO and each
/// deployment's limiter) run in virtual time, as [`Planner`](super::Planner) runs one quota.
/// The plan says how long the run takes against the least the deployments allow together,
/// how the deployments share it, and which one the run waited on.
///
/// ```
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::planner::{Binding, PoolPlanner, PromptTokens, Workload};
/// use ratelimited::pool::{DeploymentConfig, PoolConfig};
/// use ratelimited::{limiter::Dimension, Quota};
///
/// let pool = PoolConfig::new("gpt-4o")
///     .deployment(DeploymentConfig::new("east", "azure/gpt-4o").quota(Quota::default().rpm(10_000).tpm(100_000)))
///     .deployment(DeploymentConfig::new("west", "azure/gpt-4o").quota(Quota::default().rpm(10_000).tpm(50_000)));
/// let workload = Workload::new(600)
///     .prompt_tokens(PromptTokens::Uniform { min: 400, max: 1_200 })
///     .max_tokens(300)
///     .concurrency(600)
///     .latency(Duration::from_millis(500));
/// let plan = PoolPlanner::new(pool).plan(&workload)?;
/// assert!(plan.ratio_to_minimum() < 1.01);
/// let east = plan.deployment("east").unwrap();
/// assert!((east.share - 2.0 / 3.0).abs() < 0.01);
/// assert_eq!(east.binding, Binding::Limit(Dimension::TokensPerMinute));
/// # Ok::<(), ratelimited::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PoolPlanner {
    config: PoolConfig,
}

impl PoolPlanner {
    /// A planner for the pool `config`. Its deployments resolve as the registry's would, from
    /// the quotas set in code and the process's `RATE_LIMITED_*` variables (tier tables,
    /// overrides, headroom); budgets and a shared Redis store are left out of a plan.
    pub fn new(config: PoolConfig) -> Self {
        PoolPlanner { config }
    }

    /// A planner for the pool `name` as `RATE_LIMITED_POOL_<NAME>` and its deployments'
    /// variables define it in the process environment.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable for an undefined or malformed pool.
    pub fn from_env(name: &str) -> Result<Self, Error> {
        let lookup = |var: &str| std::env::var(var).ok();
        let config = PoolConfig::from_lookup(name, &lookup)?.ok_or_else(|| {
            Error::config(
                PoolConfig::var(name),
                "",
                format!("the deployments of pool `{name}` in order (`east,west`); it is unset"),
            )
        })?;
        Ok(PoolPlanner::new(config))
    }

    /// The pool plans are made on.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Runs `workload` on the pool in virtual time.
    ///
    /// # Errors
    /// - [`Error::Config`] naming a workload field outside what it accepts, or a deployment's
    ///   variable;
    /// - [`Error::UnknownModel`] for a deployment with no limits;
    /// - [`Error::RequestTooLarge`] if the workload's largest request fits no deployment.
    pub fn plan(&self, workload: &Workload) -> Result<PoolPlan, Error> {
        let lookup = std::env::vars()
            .filter(|(name, _)| {
                name.starts_with("RATE_LIMITED_")
                    && !name.starts_with("RATE_LIMITED_REDIS")
                    && !name.contains("_BUDGET_")
            })
            .collect();
        plan_pool(&self.config.clone().without_budget(), workload, lookup)
    }
}
