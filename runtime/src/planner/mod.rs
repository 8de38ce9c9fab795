//! Capacity planning (feature `planner`): how long a batch takes at a quota, what binds it, and
//! the lowest tier that meets a deadline.
//!
//! A plan runs the library's own [`Limiter`](crate::Limiter) on a paused tokio clock, with the
//! workload's workers acquiring, waiting out the latency and settling exactly as annotated calls
//! do; it is not a separate formula, so it is exact to the nanosecond and as fast as the limiter
//! (an hour of traffic in a few milliseconds, 100,000 requests well under a second in a release
//! build).
//!
//! ```
//! # use ratelimited_runtime::facade as ratelimited;
//! use std::time::Duration;
//! use ratelimited::planner::{Binding, Planner, PromptTokens, Workload};
//! use ratelimited::{limiter::Dimension, Quota};
//!
//! let workload = Workload::new(1_000)
//!     .prompt_tokens(PromptTokens::Fixed(1_200))
//!     .max_tokens(300)
//!     .concurrency(50)
//!     .latency(Duration::from_secs(2));
//! let plan = Planner::new(Quota::default().rpm(500).tpm(150_000)).plan(&workload)?;
//! // 1,500 tokens each against 150,000 per minute: the first 100 go at once, then 100 a minute.
//! assert_eq!(plan.binding(), Binding::Limit(Dimension::TokensPerMinute));
//! assert!(plan.makespan > Duration::from_secs(9 * 60) && plan.makespan < Duration::from_secs(10 * 60));
//! # Ok::<(), ratelimited::Error>(())
//! ```
//!
//! The planner needs tokio's `test-util` (for a paused clock), which slows every clock read of
//! the process a little; that is why it sits behind a feature, off by default.
//!
//! # Layout
//!
//! `workload` (what is sent), `simulation` (the paused run), `binding` (what held it back),
//! `plan` (the report), and here the [`Planner`] that ties them to a quota or a model and tier.
//! For a deployment pool: `pool_plan` (its report), `pool_simulation` (the pool's own routing
//! in a paused run) and `pool` (the [`PoolPlanner`]).

// Bottom up; rustfmt would sort adjacent `mod` lines.
mod binding;

mod workload;

mod simulation;

mod plan;

mod pool_plan;

mod pool_simulation;

mod pool;

use std::time::Duration;

pub use binding::Binding;
pub use plan::{Minute, Plan};
pub use pool::PoolPlanner;
pub use pool_plan::{DeploymentPlan, PoolPlan};
pub use workload::{PromptTokens, Workload};

use crate::units::error::Error;
use crate::units::quota::Quota;

/// Plans workloads against one quota.
#[derive(Clone, Debug, PartialEq)]
pub struct Planner {
    quota: Quota,
    refunds_output: bool,
}

impl Planner {
    /// A planner for an explicit quota (headroom included), with OpenAI's settling: the output
    /// reservation stays charged.
    pub fn new(quota: Quota) -> Self {
        Planner {
            quota,
            refunds_output: false,
        }
    }

    /// A planner for `model` at `tier`, with the limits an annotated call would get: the
    /// built-in table, `RATE_LIMITED_*` overrides and headroom from the process environment,
    /// and the provider's settling (Anthropic and Gemini refund unused output, OpenAI and
    /// Azure do not).
    ///
    /// # Errors
    /// The configuration errors of [`resolve`](crate::config::resolve): an unknown provider or tier, a
    /// malformed variable, a model with no limits at that tier.
    pub fn for_model(model: &str, tier: &str) -> Result<Self, Error> {
        let (quota, refunds_output) = model_quota(model, tier)?;
        Ok(Planner {
            quota,
            refunds_output,
        })
    }

    /// Whether the provider gives reserved but unused output back when a request settles.
    #[must_use]
    pub fn refunds_output(mut self, refunds: bool) -> Self {
        self.refunds_output = refunds;
        self
    }

    /// The quota plans are made against.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Runs `workload` against the quota in virtual time.
    ///
    /// # Errors
    /// - [`Error::Config`] naming a workload field outside what it accepts;
    /// - [`Error::RequestTooLarge`] if the workload's largest request can never fit the quota.
    pub fn plan(&self, workload: &Workload) -> Result<Plan, Error> {
        let outcome = simulation::simulate(&self.quota, workload, self.refunds_output)?;
        let charged_output = workload.usage(0, self.refunds_output).output_tokens;
        Ok(Plan::from_outcome(
            self.quota.clone(),
            self.refunds_output,
            workload.output_reserved(),
            charged_output,
            outcome,
        ))
    }
}

/// The lowest of `tiers` (given lowest first) at which `workload` on `model` finishes within
/// `deadline`, with its plan; `None` if even the highest is too slow.
///
/// ```no_run
/// # use ratelimited_runtime::facade as ratelimited;
/// use std::time::Duration;
/// use ratelimited::planner::{lowest_tier_meeting, Workload};
/// let workload = Workload::new(10_000).max_tokens(300).concurrency(64);
/// let tiers = ["tier-1", "tier-2", "tier-3", "tier-4", "tier-5"];
/// match lowest_tier_meeting("gpt-4o", &tiers, &workload, Duration::from_secs(3_600))? {
///     Some((tier, plan)) => println!("{tier}: {:?}", plan.makespan),
///     None => println!("no tier finishes within the hour"),
/// }
/// # Ok::<(), ratelimited::Error>(())
/// ```
///
/// # Errors
/// As [`Planner::for_model`] for any tier of the list, and as [`Planner::plan`]; a request
/// too large for a low tier only rules that tier out.
pub fn lowest_tier_meeting<'t>(
    model: &str,
    tiers: &[&'t str],
    workload: &Workload,
    deadline: Duration,
) -> Result<Option<(&'t str, Plan)>, Error> {
    workload.validate()?;
    for tier in tiers {
        let plan = match Planner::for_model(model, tier)?.plan(workload) {
            Ok(plan) => plan,
            Err(Error::RequestTooLarge { .. }) => continue,
            Err(other) => return Err(other),
        };
        if plan.makespan <= deadline {
            return Ok(Some((tier, plan)));
        }
    }
    Ok(None)
}

/// The quota an annotated call on `model` at `tier` would get, and whether its provider gives
/// unused output back: the model profile the registry resolves, from the process environment.
fn model_quota(model: &str, tier: &str) -> Result<(Quota, bool), Error> {
    let lookup = |name: &str| std::env::var(name).ok();
    let settings = crate::config::Settings::from_lookup(&lookup)?;
    let profile = crate::config::resolve(model, None, Some(tier), &settings, &lookup)?;
    Ok((profile.quota, profile.refunds_unused_output))
}
